//! Error answers as RFC 9457 problem details (`application/problem+json`).
//!
//! A WMS integrator's client branches on `code` (stable, SCREAMING_SNAKE, the same codes the
//! GraphQL API uses) and shows `detail` to an operator; `type` is the code as a URI so that
//! generic problem-aware tooling can tell problems apart too. `field` names the request field
//! to blame, in the request's own (camelCase) spelling.
//!
//! Statuses of domain refusals (documented for integrators):
//!
//! | code                 | status | why                                                 |
//! |----------------------|--------|-----------------------------------------------------|
//! | `INVALID_INPUT`      | 422    | well-formed JSON whose values the domain refuses     |
//! | `NOT_FOUND`          | 404    | unknown location, SKU not stocked, no reservation   |
//! | `CONFLICT`           | 409    | the stock is not in the state the request assumed   |
//! | `INSUFFICIENT_STOCK` | 409    | a state conflict too: it may pass after a receipt   |
//! | `LOCATION_INACTIVE`  | 409    | the location exists but takes no movements now      |
//!
//! Protocol errors: malformed JSON 400 `INVALID_INPUT`, missing or bad `Idempotency-Key` 400
//! `IDEMPOTENCY_KEY_REQUIRED`, no or bad token 401 `UNAUTHENTICATED`, wrong role 403
//! `FORBIDDEN`, key reused with another body 422 `IDEMPOTENCY_KEY_REUSED`, key still running
//! 409 `IDEMPOTENCY_IN_PROGRESS`, body too large 413 `PAYLOAD_TOO_LARGE`, too many bulk lines
//! 413 `TOO_MANY_LINES`, store trouble 503 (or 500) `INTERNAL` with the correlation id.

use crate::domain::InventoryError;
use serde::Serialize;
use uuid::Uuid;

/// Where problem type URIs live: `<base><code in lower kebab case>`.
pub const PROBLEM_TYPE_BASE: &str = "https://ichigen.dev/problems/";
/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The media type of every success answer.
pub const JSON: &str = "application/json";

/// One problem. The `type` URI and the `title` follow from the code and are added when the
/// body is written (which also keeps this value small: it travels in every `Err`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    /// Set on internal failures, so that an integrator's report can be found in our logs.
    pub correlation_id: Option<Uuid>,
}

/// The body as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    code: &'static str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Uuid>,
}

impl Problem {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            detail: detail.into(),
            field: None,
            correlation_id: None,
        }
    }

    /// `https://ichigen.dev/problems/<code in lower kebab case>`.
    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", kebab(self.code))
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A domain refusal, with the status of the table above.
    pub fn refusal(error: &InventoryError) -> Self {
        let code = error.code();
        let mut problem = Problem::new(status_of(code), code, error.to_string());
        problem.field = api_field(error).map(str::to_string);
        problem
    }

    /// A failure that is ours, not the caller's. The detail stays generic (the cause is logged
    /// under the correlation id); 503 says "retry", 500 says "retrying will not help".
    pub fn internal(status: u16, correlation_id: Uuid, detail: impl Into<String>) -> Self {
        let mut problem = Problem::new(status, "INTERNAL", detail);
        problem.correlation_id = Some(correlation_id);
        problem
    }

    /// The problem as an answer (serialization of this plain struct cannot fail; if it ever
    /// did, a minimal hand-written body still carries the code).
    pub fn answer(&self) -> Answer {
        let body = serde_json::to_string(&ProblemBody {
            type_uri: self.type_uri(),
            title: title(self.code),
            status: self.status,
            code: self.code,
            detail: &self.detail,
            field: self.field.as_deref(),
            correlation_id: self.correlation_id,
        })
        .unwrap_or_else(|_| format!(r#"{{"status":{},"code":"{}"}}"#, self.status, self.code));
        let mut answer = Answer {
            status: self.status,
            content_type: PROBLEM_JSON.to_string(),
            body,
            headers: Vec::new(),
        };
        match self.code {
            "UNAUTHENTICATED" => answer
                .headers
                .push(("www-authenticate", "Bearer".to_string())),
            "IDEMPOTENCY_IN_PROGRESS" | "INTERNAL" if self.status != 500 => {
                answer.headers.push(("retry-after", "1".to_string()))
            }
            _ => {}
        }
        answer
    }
}

/// An HTTP answer in a form that can be stored (idempotent replay), moved between tasks
/// (`HttpResponse` is not `Send`) and compared in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    /// JSON text; kept as text so that a replay answers the very same bytes.
    pub body: String,
    /// Extra headers (lower-case names).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    /// A JSON success body.
    pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Self, serde_json::Error> {
        Ok(Answer {
            status,
            content_type: JSON.to_string(),
            body: serde_json::to_string(body)?,
            headers: Vec::new(),
        })
    }

    pub fn into_response(self) -> actix_web::HttpResponse {
        let status = actix_web::http::StatusCode::from_u16(self.status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = actix_web::HttpResponse::build(status);
        builder.content_type(self.content_type);
        for (name, value) in self.headers {
            builder.insert_header((name, value));
        }
        builder.body(self.body)
    }
}

/// The HTTP status of a domain code (see the module table).
pub fn status_of(code: &str) -> u16 {
    match code {
        "NOT_FOUND" => 404,
        "CONFLICT" | "INSUFFICIENT_STOCK" | "LOCATION_INACTIVE" => 409,
        _ => 422,
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

/// `INSUFFICIENT_STOCK` → `insufficient-stock`.
fn kebab(code: &str) -> String {
    code.to_ascii_lowercase().replace('_', "-")
}

fn title(code: &str) -> &'static str {
    match code {
        "INVALID_INPUT" => "Invalid input",
        "NOT_FOUND" => "Not found",
        "CONFLICT" => "Conflict with the current stock",
        "INSUFFICIENT_STOCK" => "Insufficient stock",
        "LOCATION_INACTIVE" => "Location inactive",
        "UNAUTHENTICATED" => "Authentication required",
        "FORBIDDEN" => "Not allowed for this role",
        "IDEMPOTENCY_KEY_REQUIRED" => "Idempotency-Key header required",
        "IDEMPOTENCY_KEY_REUSED" => "Idempotency-Key reused with a different request",
        "IDEMPOTENCY_IN_PROGRESS" => "A request with this Idempotency-Key is in progress",
        "PAYLOAD_TOO_LARGE" => "Request body too large",
        "TOO_MANY_LINES" => "Too many lines",
        "INTERNAL" => "Internal error",
        _ => "Request refused",
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
