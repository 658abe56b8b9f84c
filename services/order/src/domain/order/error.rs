//! The one error type of the order domain.
//!
//! Every refusal is a typed variant so that the GraphQL layer (`UserError { field, code, .. }`)
//! and the HTTP API can map it without parsing text: [`OrderError::code`] gives the stable
//! machine code, [`OrderError::field`] the input field to blame.
//!
//! **Field convention:** the camelCase path of the offending value in the command's input as
//! the API spells it, list elements by zero-based index, joined with dots: `lines.0.qty`,
//! `allocations.2.reservationId`, `payment.amount`, `reason`. A whole list is blamed by its
//! name (`lines`). Errors about the order's state rather than an input (a void while the order
//! is still open) have no field.

use ichigen_shared::money::{Currency, Money};
use thiserror::Error;

/// Why a command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    /// A non-quantity input is malformed (empty id, negative price, bad coordinates, …).
    #[error("{field} is invalid: {reason}")]
    InvalidInput { field: String, reason: &'static str },
    /// A quantity outside `min..=max`.
    #[error("{field} must be between {min} and {max}, got {value}")]
    InvalidQuantity {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
    /// Amounts in more than one currency (an order has one).
    #[error("{field} is in {actual}, the order is in {expected}")]
    CurrencyMismatch {
        field: String,
        expected: Currency,
        actual: Currency,
    },
    /// An amount would overflow the decimal type.
    #[error("{field} overflows")]
    Overflow { field: String },
    /// No line with this id on the order (or in the placement's lines).
    #[error("line {line_id} is not on the order")]
    UnknownLine { field: String, line_id: String },
    /// The step does not fit the line's delivery method or location (shipping a pickup line,
    /// staging a shipped line, picking up at another store).
    #[error("line {line_id}: {reason}")]
    WrongDelivery {
        field: String,
        line_id: String,
        reason: &'static str,
    },
    /// Placement allocations add up to more than the line's quantity.
    #[error("line {line_id} orders {qty} but {allocated} are allocated")]
    OverAllocated {
        field: String,
        line_id: String,
        qty: i64,
        allocated: i64,
    },
    /// Placement without partial orders allowed, and a line is not fully allocated.
    #[error("line {line_id}: {allocated} of {requested} could be sourced")]
    LineNotFullyAllocated {
        field: String,
        line_id: String,
        requested: i64,
        allocated: i64,
    },
    /// A partial order with nothing sourced at all.
    #[error("nothing on the order could be sourced")]
    NothingSourced,
    /// The authorization does not equal what the customer owes.
    #[error("the payment is {actual}, the order's total is {expected}")]
    PaymentAmountMismatch { expected: Money, actual: Money },
    #[error("the order does not exist")]
    OrderNotFound,
    /// Placing an order id that exists under another idempotency key.
    #[error("the order already exists")]
    OrderExists,
    /// The idempotency key was used for a different request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// More than the line still has for this step (cancel more than remaining, ship more than
    /// is held at the location, pick up more than is staged, …).
    #[error("line {line_id}: requested {requested}, only {available} left for this")]
    ExceedsAvailable {
        field: String,
        line_id: String,
        requested: i64,
        available: i64,
    },
    /// A whole-order cancel when every unit is already shipped or picked up.
    #[error("nothing left to cancel: every unit is shipped or picked up")]
    NothingToCancel,
    /// The fulfillment order holding units of the line refused to cancel them: they were
    /// shipped or handed over (or the pickup expired) before the cancellation reached it.
    #[error("line {line_id}: {qty} unit(s) could not be cancelled: {why}")]
    NotCancellable {
        field: String,
        line_id: String,
        qty: i64,
        /// E.g. "their fulfillment is PICKED_UP".
        why: String,
    },
    /// A fulfillment id reused with different content.
    #[error("fulfillment {fulfillment_id} was already recorded differently")]
    FulfillmentConflict { fulfillment_id: String },
    #[error("fulfillment {fulfillment_id} is not a shipment of this order")]
    UnknownFulfillment { fulfillment_id: String },
    /// A reservation id already used on this order with different content.
    #[error("reservation {reservation_id} is already used on this order")]
    ReservationConflict { reservation_id: String },
    /// Capturing more than is authorized and not yet captured, or than the customer still owes
    /// for units not cancelled.
    #[error("cannot capture {requested}: only {capturable} can be captured")]
    CaptureExceedsAuthorized { requested: Money, capturable: Money },
    #[error("cannot refund {requested}: only {refundable} is captured and not refunded")]
    RefundExceedsCaptured { requested: Money, refundable: Money },
    /// Capturing after the authorization was voided.
    #[error("the payment was voided")]
    PaymentVoided,
    /// Voiding after money was taken: refund instead.
    #[error("money was captured: refund instead of voiding")]
    VoidAfterCapture,
    /// Voiding while some units may still ship.
    #[error("the order still has units to fulfil: cancel them before voiding")]
    PaymentStillNeeded,
    /// A provider reference reused for a different capture or refund.
    #[error("payment reference {reference} was already used with another amount")]
    PaymentReferenceConflict { reference: String },
    /// A refund's operation key already names another refund of this order.
    #[error("refund operation {operation} was already used for another refund")]
    RefundOperationConflict { operation: String },
    /// A payment command on an order that has no payment (an exchange credit paid for it all).
    #[error("the order has no payment: its credit paid for it")]
    NoPayment,
}

impl OrderError {
    /// The stable SCREAMING_SNAKE code the API layers put into their error bodies.
    pub fn code(&self) -> &'static str {
        use OrderError::*;
        match self {
            InvalidInput { .. }
            | InvalidQuantity { .. }
            | CurrencyMismatch { .. }
            | Overflow { .. }
            | WrongDelivery { .. }
            | OverAllocated { .. }
            | PaymentAmountMismatch { .. } => "INVALID_INPUT",
            LineNotFullyAllocated { .. } | NothingSourced => "INSUFFICIENT_STOCK",
            UnknownLine { .. } | OrderNotFound | UnknownFulfillment { .. } => "NOT_FOUND",
            OrderExists
            | IdempotencyKeyReused
            | ExceedsAvailable { .. }
            | NothingToCancel
            | NotCancellable { .. }
            | FulfillmentConflict { .. }
            | ReservationConflict { .. }
            | CaptureExceedsAuthorized { .. }
            | RefundExceedsCaptured { .. }
            | PaymentVoided
            | VoidAfterCapture
            | PaymentStillNeeded
            | PaymentReferenceConflict { .. }
            | RefundOperationConflict { .. }
            | NoPayment => "CONFLICT",
        }
    }

    /// The input field to blame (see the module documentation for the convention).
    pub fn field(&self) -> Option<&str> {
        use OrderError::*;
        match self {
            InvalidInput { field, .. }
            | InvalidQuantity { field, .. }
            | CurrencyMismatch { field, .. }
            | Overflow { field }
            | UnknownLine { field, .. }
            | WrongDelivery { field, .. }
            | OverAllocated { field, .. }
            | LineNotFullyAllocated { field, .. }
            | ExceedsAvailable { field, .. }
            | NotCancellable { field, .. } => Some(field),
            NothingSourced => Some("lines"),
            PaymentAmountMismatch { .. } => Some("payment.amount"),
            OrderExists => Some("orderId"),
            IdempotencyKeyReused => Some("idempotencyKey"),
            FulfillmentConflict { .. } | UnknownFulfillment { .. } => Some("fulfillmentId"),
            ReservationConflict { .. } => Some("newReservationId"),
            CaptureExceedsAuthorized { .. } | RefundExceedsCaptured { .. } => Some("amount"),
            PaymentReferenceConflict { .. } => Some("reference"),
            RefundOperationConflict { .. } => Some("operation"),
            OrderNotFound | NothingToCancel | PaymentVoided | VoidAfterCapture
            | PaymentStillNeeded | NoPayment => None,
        }
    }
}

pub(super) use ichigen_shared::validate::{non_empty, quantity};

impl From<ichigen_shared::validate::Invalid> for OrderError {
    fn from(e: ichigen_shared::validate::Invalid) -> Self {
        use ichigen_shared::validate::Invalid;
        match e {
            Invalid::Input { field, reason } => OrderError::InvalidInput { field, reason },
            Invalid::Quantity {
                field,
                value,
                min,
                max,
            } => OrderError::InvalidQuantity {
                field,
                value,
                min,
                max,
            },
        }
    }
}
