//! The one error type of the inventory domain.
//!
//! Every refusal is a typed variant so that the GraphQL layer (`UserError { field, code, .. }`)
//! and the WMS API (JSON problem bodies with a code per line) can map it without parsing text:
//! [`InventoryError::code`] gives the stable machine code, [`InventoryError::field`] the input
//! field to blame when the caller sent something wrong.

use thiserror::Error;

/// Why a command was refused. A refused command appends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InventoryError {
    /// A quantity is below its allowed minimum (1 for movements, 0 for absolute values).
    #[error("{field} must be at least {min}, got {value}")]
    InvalidQuantity {
        field: &'static str,
        value: i64,
        min: i64,
    },
    /// A non-quantity input is malformed (empty id, empty reason code, expiry in the past, …).
    #[error("{field} is invalid: {reason}")]
    InvalidInput {
        field: &'static str,
        reason: &'static str,
    },
    /// The command would push a bucket past `i64::MAX`.
    #[error("{field} would overflow the stock counter")]
    Overflow { field: &'static str },
    /// Not enough available-to-promise (or on-hand) stock for the request.
    #[error("insufficient stock: requested {requested}, available {available}")]
    InsufficientStock { requested: i64, available: i64 },
    /// The movement would take on-hand below what is reserved: reserved stock is promised to
    /// customers and only a reservation consumption may take it away.
    #[error("on hand would drop to {on_hand_after}, below the {reserved} reserved")]
    BelowReserved { on_hand_after: i64, reserved: i64 },
    /// Moving back to sellable more than is non-sellable.
    #[error("insufficient non-sellable stock: requested {requested}, non-sellable {non_sellable}")]
    InsufficientNonSellable { requested: i64, non_sellable: i64 },
    /// Compare-and-set lost: on hand is no longer what the caller last saw.
    #[error("on hand is {actual}, not the expected {expected}")]
    OnHandMismatch { expected: i64, actual: i64 },
    /// A reservation id is reused with different content (owner, quantity or expiry).
    #[error("reservation {reservation_id} already exists with different content")]
    ReservationConflict { reservation_id: String },
    /// A returned unit's key was already used here with the other outcome (received into
    /// stock vs written off): a unit is one or the other, so this is a caller bug, not a retry.
    #[error("returned unit {key} was already {outcome} here")]
    ReturnKeyConflict { key: String, outcome: &'static str },
    /// No reservation with this id on this SKU × location.
    #[error("reservation {reservation_id} not found")]
    ReservationNotFound { reservation_id: String },
    /// The reservation is no longer open (consumed, released or expired).
    #[error("reservation {reservation_id} is already {status}")]
    ReservationClosed {
        reservation_id: String,
        status: &'static str,
    },
    /// Consuming more than the reservation still holds.
    #[error("cannot consume {requested}: the reservation holds {reserved}")]
    ExceedsReservation { requested: i64, reserved: i64 },
    /// The SKU has no stock record at this location (never received, counted or announced).
    #[error("the SKU is not stocked at this location (no receipt, count or transfer yet)")]
    UnknownSku,
    /// A location field failed validation.
    #[error("location {field} is invalid: {reason}")]
    InvalidLocation {
        field: &'static str,
        reason: &'static str,
    },
    /// `Define` on a code that is already defined.
    #[error("location {code} already exists")]
    LocationExists { code: String },
    /// A command on a location that was never defined.
    #[error("location {code} is not defined")]
    UnknownLocation { code: String },
    /// Stock movements on a deactivated location (checked by the handler, which loads both).
    #[error("location {code} is inactive")]
    LocationInactive { code: String },
    /// The other location a command names (a transfer's `toLocation` or `fromLocation`) is
    /// not defined, or is the command's own location.
    #[error("{field} {code} is not a defined location other than this one")]
    UnknownOtherLocation { field: &'static str, code: String },
    /// The other location a command names is deactivated (a transfer to a closed store).
    #[error("{field} {code} is inactive")]
    OtherLocationInactive { field: &'static str, code: String },
    /// The transfer id is already used here with other content (another destination, source
    /// or quantity): a transfer id names one transfer.
    #[error("transfer {transfer_id} already exists here with other content")]
    TransferConflict { transfer_id: String },
    /// A transfer-in for a transfer that was never shipped to this location (or only
    /// announced): stock is received only from a transfer in transit.
    #[error("transfer {transfer_id} is not in transit to this location")]
    TransferNotInTransit { transfer_id: String },
    /// A transfer is received once.
    #[error("transfer {transfer_id} was already received here")]
    TransferAlreadyReceived { transfer_id: String },
    /// Receiving more than the transfer shipped.
    #[error("cannot receive {requested}: transfer {transfer_id} shipped {in_transit}")]
    TransferExceedsInTransit {
        transfer_id: String,
        requested: i64,
        in_transit: i64,
    },
    /// The location has taken as many orders as its daily capacity allows on its local `day`.
    #[error("location {location} has no capacity left on {day}")]
    CapacityExhausted {
        location: String,
        day: chrono::NaiveDate,
    },
}

impl InventoryError {
    /// The stable SCREAMING_SNAKE code the API layers put into their error bodies.
    pub fn code(&self) -> &'static str {
        use InventoryError::*;
        match self {
            InvalidQuantity { .. } | InvalidInput { .. } | Overflow { .. } => "INVALID_INPUT",
            ExceedsReservation { .. } | InvalidLocation { .. } => "INVALID_INPUT",
            InsufficientStock { .. } | BelowReserved { .. } | InsufficientNonSellable { .. } => {
                "INSUFFICIENT_STOCK"
            }
            OnHandMismatch { .. } | ReservationConflict { .. } | ReservationClosed { .. } => {
                "CONFLICT"
            }
            LocationExists { .. } | ReturnKeyConflict { .. } => "CONFLICT",
            ReservationNotFound { .. } | UnknownLocation { .. } | UnknownSku => "NOT_FOUND",
            LocationInactive { .. } | OtherLocationInactive { .. } => "LOCATION_INACTIVE",
            UnknownOtherLocation { .. } | TransferNotInTransit { .. } => "NOT_FOUND",
            TransferConflict { .. } | TransferAlreadyReceived { .. } => "CONFLICT",
            TransferExceedsInTransit { .. } => "INVALID_INPUT",
            CapacityExhausted { .. } => "CAPACITY_EXHAUSTED",
        }
    }

    /// The input field to blame, when the error is about something the caller sent.
    pub fn field(&self) -> Option<&'static str> {
        use InventoryError::*;
        match self {
            InvalidQuantity { field, .. }
            | InvalidInput { field, .. }
            | Overflow { field }
            | InvalidLocation { field, .. } => Some(field),
            InsufficientStock { .. }
            | BelowReserved { .. }
            | InsufficientNonSellable { .. }
            | ExceedsReservation { .. } => Some("qty"),
            OnHandMismatch { .. } => Some("expectedOnHand"),
            ReservationConflict { .. } | ReservationNotFound { .. } | ReservationClosed { .. } => {
                Some("reservationId")
            }
            LocationExists { .. } => Some("code"),
            ReturnKeyConflict { .. } => Some("key"),
            // Stock commands name the location in a `location` field (the common case).
            UnknownLocation { .. } | LocationInactive { .. } => Some("location"),
            UnknownSku => Some("sku"),
            UnknownOtherLocation { field, .. } | OtherLocationInactive { field, .. } => Some(field),
            TransferConflict { .. }
            | TransferNotInTransit { .. }
            | TransferAlreadyReceived { .. } => Some("transferId"),
            TransferExceedsInTransit { .. } => Some("qty"),
            CapacityExhausted { .. } => Some("location"),
        }
    }
}

/// `value >= 1`, else a typed error naming the field.
pub(crate) fn positive(field: &'static str, value: i64) -> Result<i64, InventoryError> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(InventoryError::InvalidQuantity {
            field,
            value,
            min: 1,
        })
    }
}

/// `value >= 0`, else a typed error naming the field.
pub(crate) fn non_negative(field: &'static str, value: i64) -> Result<i64, InventoryError> {
    if value >= 0 {
        Ok(value)
    } else {
        Err(InventoryError::InvalidQuantity {
            field,
            value,
            min: 0,
        })
    }
}

/// `a + b` or a typed overflow error naming the field that caused it.
pub(crate) fn add(field: &'static str, a: i64, b: i64) -> Result<i64, InventoryError> {
    a.checked_add(b).ok_or(InventoryError::Overflow { field })
}

/// The one rule for codes, names and references ([`ichigen_shared::validate::check_text`]:
/// non-blank, at most `max` characters, no control characters, no surrounding whitespace),
/// else a typed error naming the field.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<(), InventoryError> {
    ichigen_shared::validate::check_text(value, max)
        .map_err(|reason| InventoryError::InvalidInput { field, reason })
}

/// [`text`] for an optional field: absent is fine.
pub(crate) fn optional_text(
    field: &'static str,
    value: &Option<String>,
    max: usize,
) -> Result<(), InventoryError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_fields() {
        let e = InventoryError::InvalidQuantity {
            field: "qty",
            value: 0,
            min: 1,
        };
        assert_eq!((e.code(), e.field()), ("INVALID_INPUT", Some("qty")));
        let e = InventoryError::InsufficientStock {
            requested: 3,
            available: 1,
        };
        assert_eq!(e.code(), "INSUFFICIENT_STOCK");
        assert_eq!(
            e.to_string(),
            "insufficient stock: requested 3, available 1"
        );
        let e = InventoryError::ReservationNotFound {
            reservation_id: "r".into(),
        };
        assert_eq!((e.code(), e.field()), ("NOT_FOUND", Some("reservationId")));
        let e = InventoryError::OnHandMismatch {
            expected: 1,
            actual: 2,
        };
        assert_eq!(e.code(), "CONFLICT");
        assert_eq!(positive("qty", 0).unwrap_err().field(), Some("qty"));
        assert_eq!(non_negative("counted", 0), Ok(0));
        assert_eq!(
            add("qty", i64::MAX, 1),
            Err(InventoryError::Overflow { field: "qty" })
        );
        assert!(text("reasonCode", "  ", 64).is_err());
        assert_eq!(
            text("reference", "ASN\n1", 64),
            Err(InventoryError::InvalidInput {
                field: "reference",
                reason: "must not contain control characters or line breaks"
            })
        );
    }
}
