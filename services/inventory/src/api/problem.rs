//! Error answers of the WMS API: RFC 9457 problem details, as every integration API writes them
//! ([`ichigen_shared::http::problem`], where the codes and their statuses are listed). What is
//! the inventory's own: how an [`InventoryError`] becomes a problem ([`Refusal`]).
//!
//! Statuses of the inventory's refusals (documented for integrators):
//!
//! | code                 | status | why                                                 |
//! |----------------------|--------|-----------------------------------------------------|
//! | `INVALID_INPUT`      | 422    | well-formed JSON whose values the domain refuses     |
//! | `NOT_FOUND`          | 404    | unknown location, SKU not stocked, no reservation   |
//! | `CONFLICT`           | 409    | the stock is not in the state the request assumed   |
//! | `INSUFFICIENT_STOCK` | 409    | a state conflict too: it may pass after a receipt   |
//! | `LOCATION_INACTIVE`  | 409    | the location exists but takes no movements now      |

use crate::domain::InventoryError;

pub use ichigen_shared::http::problem::{
    status_of, Answer, LineError, Problem, Refusal, JSON, PROBLEM_JSON, PROBLEM_TYPE_BASE,
};

impl Refusal for InventoryError {
    fn code(&self) -> &'static str {
        InventoryError::code(self)
    }

    fn field(&self) -> Option<&'static str> {
        api_field(self)
    }
}

/// The request field a refusal blames. Location refusals name the location aggregate's own
/// `code`; in a movement request that value arrived as `location`.
pub fn api_field(error: &InventoryError) -> Option<&'static str> {
    match error {
        InventoryError::UnknownLocation { .. } | InventoryError::LocationInactive { .. } => {
            Some("location")
        }
        other => other.field(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_status_type_and_field() {
        let p = Problem::refusal(&InventoryError::InsufficientStock {
            requested: 3,
            available: 1,
        });
        assert_eq!(p.status, 409);
        assert_eq!(
            p.type_uri(),
            "https://ichigen.dev/problems/insufficient-stock"
        );
        assert_eq!(p.field.as_deref(), Some("qty"));
        let p = Problem::refusal(&InventoryError::UnknownLocation { code: "X".into() });
        assert_eq!((p.status, p.field.as_deref()), (404, Some("location")));
        let p = Problem::refusal(&InventoryError::InvalidQuantity {
            field: "qty",
            value: 0,
            min: 1,
        });
        assert_eq!((p.status, p.code), (422, "INVALID_INPUT"));
        let a = p.answer();
        assert_eq!(a.content_type, PROBLEM_JSON);
        assert!(a
            .body
            .contains(r#""type":"https://ichigen.dev/problems/invalid-input""#));
    }
}
