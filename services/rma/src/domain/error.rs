//! The one error type of the returns domain (policy and RMAs).
//!
//! Every refusal is a typed variant so that the GraphQL layer (`UserError { field, code, .. }`)
//! and an HTTP API can map it without parsing text:
//!
//! - [`RmaError::code`] is one of the shared `ErrorCode` values (`INVALID_INPUT`, `NOT_FOUND`,
//!   `CONFLICT`), so the GraphQL layer maps it one to one;
//! - [`RmaError::kind`] is a finer, stable name (`ALREADY_RECEIVED`, `RETURN_WINDOW_CLOSED`,
//!   …) for clients that explain a refusal in their own words;
//! - [`RmaError::field`] is the input field to blame.
//!
//! **Field convention** (as in the order domain): the camelCase path of the offending value in
//! the command's input, list elements by zero-based index, joined with dots: `lines.0.qty`,
//! `lines.1.reasonCode`, `disposition.priceFactor`. A whole list is blamed by its name
//! (`lines`). Errors about the return's state rather than an input have no field.

use chrono::{DateTime, Utc};
use ichigen_shared::money::{Currency, Money};
use rust_decimal::Decimal;
use thiserror::Error;

use super::rma::RmaStatus;

/// Why a command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RmaError {
    /// A non-quantity input is malformed (empty id, bad code, label too long, …).
    #[error("{field} is invalid: {reason}")]
    InvalidInput { field: String, reason: &'static str },
    /// A number outside `min..=max`.
    #[error("{field} must be between {min} and {max}, got {value}")]
    InvalidQuantity {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
    /// An amount in another currency than the order's.
    #[error("{field} is in {actual}, the return is in {expected}")]
    CurrencyMismatch {
        field: String,
        expected: Currency,
        actual: Currency,
    },
    /// An amount would overflow the decimal type.
    #[error("{field} overflows")]
    Overflow { field: String },
    /// No return reason with this code in the policy.
    #[error("return reason {code} is not defined")]
    UnknownReason { field: String, code: String },
    /// The reason exists but is retired: it is no longer offered for new returns.
    #[error("return reason {code} is retired")]
    ReasonRetired { field: String, code: String },
    /// The reason cannot price a return of this order (its shipping fee is in another currency).
    #[error("return reason {code} cannot be used here: {reason}")]
    ReasonNotApplicable {
        field: String,
        code: String,
        reason: &'static str,
    },
    /// No condition grade with this code in the policy.
    #[error("condition grade {code} is not defined")]
    UnknownGrade { field: String, code: String },
    /// The grade exists but is retired: no new unit may be graded with it.
    #[error("condition grade {code} is retired")]
    GradeRetired { field: String, code: String },
    /// The requested order line is not on the order.
    #[error("line {order_line_id} is not on the order")]
    UnknownOrderLine {
        field: String,
        order_line_id: String,
    },
    /// Nothing of the line was delivered or picked up yet: there is nothing to return.
    #[error("line {order_line_id} is not fulfilled yet")]
    NotFulfilled {
        field: String,
        order_line_id: String,
    },
    /// More units than were fulfilled and are not already being returned.
    #[error("line {order_line_id}: requested {requested}, only {returnable} can be returned")]
    ExceedsReturnable {
        field: String,
        order_line_id: String,
        requested: i64,
        returnable: i64,
    },
    /// The reason's return window ended (`fulfilled_at + window_days`).
    #[error("line {order_line_id}: the return window for {reason_code} ended at {deadline}")]
    ReturnWindowClosed {
        field: String,
        order_line_id: String,
        reason_code: String,
        deadline: DateTime<Utc>,
    },
    /// No such return (a command other than a request on an empty stream).
    #[error("the return does not exist")]
    RmaNotFound,
    /// A request for an RMA id that already holds a different request.
    #[error("the return already exists with a different request")]
    RmaExists,
    /// Approving a rejected return or rejecting an approved one.
    #[error("the return was already {decision}")]
    AlreadyDecided { decision: &'static str },
    /// The command does not fit where the return stands (receive before approval, anything
    /// but retries after close, …).
    #[error("cannot {action} a return that is {status}")]
    WrongStatus {
        action: &'static str,
        status: RmaStatus,
    },
    /// No line with this id on the return.
    #[error("line {rma_line_id} is not on the return")]
    UnknownRmaLine { field: String, rma_line_id: String },
    /// Receiving more units of a line than were requested: the unit was already received.
    #[error(
        "line {rma_line_id}: {received} of {requested} units already received, cannot receive \
         {qty} more"
    )]
    AlreadyReceived {
        field: String,
        rma_line_id: String,
        requested: i64,
        received: i64,
        qty: i64,
    },
    /// A receipt id reused with another location or other lines.
    #[error("receipt {receipt_id} was already recorded differently")]
    ReceiptConflict { receipt_id: String },
    /// No received unit with this id.
    #[error("unit {unit_id} is not received on this return")]
    UnknownUnit { unit_id: String },
    /// The unit already has another grade (a grade is final: it moved stock).
    #[error("unit {unit_id} is already graded {grade}")]
    AlreadyGraded { unit_id: String, grade: String },
    /// The resale SKU derived from the original SKU is not a valid SKU.
    #[error("resale SKU {sku} is invalid: {reason}")]
    InvalidResaleSku { sku: String, reason: &'static str },
    /// A refund or exchange with no unit ready for it (not received, awaiting inspection, or
    /// already refunded or exchanged).
    #[error("no unit is ready to be refunded or exchanged")]
    NothingToSettle,
    /// An exchange order id reused with another replacement total.
    #[error("exchange {exchange_order_id} was already recorded differently")]
    ExchangeConflict { exchange_order_id: String },
    /// Closing while received units still wait for a grade or a refund/exchange.
    #[error(
        "cannot close: {ungraded} units wait for a grade, {unsettled} for a refund or exchange"
    )]
    NotReadyToClose { ungraded: usize, unsettled: usize },
    /// A policy value out of range (fee percentage, price factor).
    #[error("{field} must be {expected}, got {value}")]
    OutOfRange {
        field: String,
        value: Decimal,
        expected: &'static str,
    },
}

impl RmaError {
    /// One of the shared `ErrorCode` wire values, for `UserError.code` and problem bodies.
    pub fn code(&self) -> &'static str {
        use RmaError::*;
        match self {
            InvalidInput { .. }
            | InvalidQuantity { .. }
            | CurrencyMismatch { .. }
            | Overflow { .. }
            | ReasonRetired { .. }
            | ReasonNotApplicable { .. }
            | GradeRetired { .. }
            | InvalidResaleSku { .. }
            | OutOfRange { .. } => "INVALID_INPUT",
            UnknownReason { .. }
            | UnknownGrade { .. }
            | UnknownOrderLine { .. }
            | RmaNotFound
            | UnknownRmaLine { .. }
            | UnknownUnit { .. } => "NOT_FOUND",
            NotFulfilled { .. }
            | ExceedsReturnable { .. }
            | ReturnWindowClosed { .. }
            | RmaExists
            | AlreadyDecided { .. }
            | WrongStatus { .. }
            | AlreadyReceived { .. }
            | ReceiptConflict { .. }
            | AlreadyGraded { .. }
            | NothingToSettle
            | ExchangeConflict { .. }
            | NotReadyToClose { .. } => "CONFLICT",
        }
    }

    /// A finer, stable SCREAMING_SNAKE name of the refusal (a client may show its own text).
    pub fn kind(&self) -> &'static str {
        use RmaError::*;
        match self {
            InvalidInput { .. } => "INVALID_INPUT",
            InvalidQuantity { .. } => "INVALID_QUANTITY",
            CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            Overflow { .. } => "OVERFLOW",
            UnknownReason { .. } => "UNKNOWN_REASON",
            ReasonRetired { .. } => "REASON_RETIRED",
            ReasonNotApplicable { .. } => "REASON_NOT_APPLICABLE",
            UnknownGrade { .. } => "UNKNOWN_GRADE",
            GradeRetired { .. } => "GRADE_RETIRED",
            UnknownOrderLine { .. } => "UNKNOWN_ORDER_LINE",
            NotFulfilled { .. } => "NOT_FULFILLED",
            ExceedsReturnable { .. } => "EXCEEDS_RETURNABLE",
            ReturnWindowClosed { .. } => "RETURN_WINDOW_CLOSED",
            RmaNotFound => "RMA_NOT_FOUND",
            RmaExists => "RMA_EXISTS",
            AlreadyDecided { .. } => "ALREADY_DECIDED",
            WrongStatus { .. } => "WRONG_STATUS",
            UnknownRmaLine { .. } => "UNKNOWN_RMA_LINE",
            AlreadyReceived { .. } => "ALREADY_RECEIVED",
            ReceiptConflict { .. } => "RECEIPT_CONFLICT",
            UnknownUnit { .. } => "UNKNOWN_UNIT",
            AlreadyGraded { .. } => "ALREADY_GRADED",
            InvalidResaleSku { .. } => "INVALID_RESALE_SKU",
            NothingToSettle => "NOTHING_TO_SETTLE",
            ExchangeConflict { .. } => "EXCHANGE_CONFLICT",
            NotReadyToClose { .. } => "NOT_READY_TO_CLOSE",
            OutOfRange { .. } => "OUT_OF_RANGE",
        }
    }

    /// The input field to blame (see the module documentation for the convention).
    pub fn field(&self) -> Option<&str> {
        use RmaError::*;
        match self {
            InvalidInput { field, .. }
            | InvalidQuantity { field, .. }
            | CurrencyMismatch { field, .. }
            | Overflow { field }
            | UnknownReason { field, .. }
            | ReasonRetired { field, .. }
            | ReasonNotApplicable { field, .. }
            | UnknownGrade { field, .. }
            | GradeRetired { field, .. }
            | UnknownOrderLine { field, .. }
            | NotFulfilled { field, .. }
            | ExceedsReturnable { field, .. }
            | ReturnWindowClosed { field, .. }
            | UnknownRmaLine { field, .. }
            | AlreadyReceived { field, .. }
            | OutOfRange { field, .. } => Some(field),
            RmaExists => Some("rmaId"),
            ReceiptConflict { .. } => Some("receiptId"),
            UnknownUnit { .. } | AlreadyGraded { .. } => Some("unitId"),
            InvalidResaleSku { .. } => Some("gradeCode"),
            ExchangeConflict { .. } => Some("exchangeOrderId"),
            RmaNotFound
            | AlreadyDecided { .. }
            | WrongStatus { .. }
            | NothingToSettle
            | NotReadyToClose { .. } => None,
        }
    }
}

/// A typed `InvalidInput`.
pub(crate) fn invalid(field: impl Into<String>, reason: &'static str) -> RmaError {
    RmaError::InvalidInput {
        field: field.into(),
        reason,
    }
}

/// A non-blank string of at most `max` characters, else a typed error naming the field.
pub(crate) fn text(field: impl Into<String>, value: &str, max: usize) -> Result<(), RmaError> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else {
        Ok(at_most(field, value, max)?)
    }
}

pub(crate) use ichigen_shared::validate::{at_most, quantity};

impl From<ichigen_shared::validate::Invalid> for RmaError {
    fn from(e: ichigen_shared::validate::Invalid) -> Self {
        use ichigen_shared::validate::Invalid;
        match e {
            Invalid::Input { field, reason } => RmaError::InvalidInput { field, reason },
            Invalid::Quantity {
                field,
                value,
                min,
                max,
            } => RmaError::InvalidQuantity {
                field,
                value,
                min,
                max,
            },
        }
    }
}

/// A policy code (reason or grade): 1–32 characters of `[A-Z0-9_]`. Codes appear in resale
/// SKUs and API enums, so they stay plain upper-case identifiers.
pub fn validate_code(field: impl Into<String>, code: &str) -> Result<(), RmaError> {
    if code.is_empty() {
        Err(invalid(field, "must not be empty"))
    } else if code.len() > 32 {
        Err(invalid(field, "must be at most 32 characters"))
    } else if !is_code(code) {
        Err(invalid(field, "may contain only A-Z, 0-9 and '_'"))
    } else {
        Ok(())
    }
}

/// Whether `s` has the shape of a policy code (checked without building an error).
pub(crate) use ichigen_shared::resale::is_code;

/// No more decimals than the currency has (no fractions of a yen), and not negative.
pub(crate) fn amount(
    field: impl Into<String>,
    money: &Money,
    currency: Currency,
) -> Result<(), RmaError> {
    let field = field.into();
    if money.currency != currency {
        return Err(RmaError::CurrencyMismatch {
            field,
            expected: currency,
            actual: money.currency,
        });
    }
    non_negative_minor_units(field, money)
}

/// Not negative, and no more decimals than its own currency has.
pub(crate) fn non_negative_minor_units(
    field: impl Into<String>,
    money: &Money,
) -> Result<(), RmaError> {
    if money.amount.is_sign_negative() && !money.amount.is_zero() {
        return Err(invalid(field, "must not be negative"));
    }
    if money.amount.normalize().scale() > money.currency.minor_units() {
        return Err(invalid(field, "has more decimals than the currency allows"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_kinds_and_fields() {
        let e = RmaError::AlreadyReceived {
            field: "lines.0.qty".into(),
            rma_line_id: "R1".into(),
            requested: 2,
            received: 2,
            qty: 1,
        };
        assert_eq!(
            (e.code(), e.kind(), e.field()),
            ("CONFLICT", "ALREADY_RECEIVED", Some("lines.0.qty"))
        );
        assert_eq!(
            e.to_string(),
            "line R1: 2 of 2 units already received, cannot receive 1 more"
        );
        let e = RmaError::UnknownReason {
            field: "lines.1.reasonCode".into(),
            code: "X".into(),
        };
        assert_eq!(
            (e.code(), e.field()),
            ("NOT_FOUND", Some("lines.1.reasonCode"))
        );
        assert_eq!(RmaError::NothingToSettle.field(), None);
        assert!(validate_code("code", "SIZE_FIT_2").is_ok());
        for bad in ["", "size", "A-B", &"A".repeat(33)] {
            assert_eq!(
                validate_code("code", bad).unwrap_err().field(),
                Some("code")
            );
        }
        assert!(text("labelJa", "  ", 10).is_err());
        assert!(text("labelJa", "初期不良", 4).is_ok());
        assert!(text("labelJa", "初期不良!", 4).is_err());
        assert!(at_most("note", "", 4).is_ok());
        let yen = |s| Money::parse(s, "JPY").unwrap();
        assert!(amount("fee", &yen("800"), Currency::JPY).is_ok());
        assert!(amount("fee", &yen("0.5"), Currency::JPY).is_err());
        assert!(amount("fee", &yen("-1"), Currency::JPY).is_err());
        assert!(matches!(
            amount("fee", &yen("1"), Currency::USD),
            Err(RmaError::CurrencyMismatch { .. })
        ));
    }
}
