//! The pure returns domain: decide(state, command, …) -> events and state.apply(event).
//!
//! - [`policy`]: return reasons and condition grades as data, stream `rma-policy`.
//! - [`rma`]: the return aggregate, stream `rma-<uuid>`: request, approve or reject, receive,
//!   grade, refund or exchange, close.
//! - resale SKUs and prices (`ichigen_shared::resale`, re-exported here) for units graded for
//!   resale: shared because the inventory filters new against resale stock by them.
//! - [`error`]: [`RmaError`], the one refusal type, with its API code and field.
//!
//! No I/O and no clock here: the handler passes the order's facts, the current policy, the
//! order's refundable amount and `now`.

pub mod error;
pub mod policy;
pub mod rma;

pub use error::{validate_code, RmaError};
pub use ichigen_shared::resale::{is_resale_sku, resale_grade, resale_price, resale_sku};
pub use policy::{
    decide_policy, default_policy, ConditionGrade, ConditionGradeSpec, Disposition, Policy,
    PolicyCommand, PolicyEvent, ReturnReason, ReturnReasonSpec, POLICY_STREAM,
};
pub use rma::{
    decide, exchange_difference, exchange_terms, refund_quote, stream_name, ExchangeTerms,
    OrderFacts, OrderLineFacts, ReceivedLine, RefundQuote, RequestReturn, RequestedLine, Rma,
    RmaCommand, RmaEvent, RmaStatus,
};
