//! Error answers as RFC 9457 problem details (`application/problem+json`), for every
//! integration API (the inventory WMS API, the order service's PIM API).
//!
//! An integrator's client branches on `code` (stable, SCREAMING_SNAKE, the same codes the
//! GraphQL API uses, see [`crate::graphql::conventions::ErrorCode`]) and shows `detail` to an
//! operator; `type` is the code as a URI so that generic problem-aware tooling can tell problems
//! apart too. `field` names the request field to blame, in the request's own (camelCase)
//! spelling.
//!
//! Statuses of domain refusals ([`status_of`]):
//!
//! | code                 | status | why                                                 |
//! |----------------------|--------|-----------------------------------------------------|
//! | `INVALID_INPUT`      | 422    | well-formed JSON whose values the domain refuses     |
//! | `NOT_FOUND`          | 404    | the thing named does not exist                       |
//! | `CONFLICT`           | 409    | the state is not what the request assumed           |
//! | `INSUFFICIENT_STOCK` | 409    | a state conflict too: it may pass after a receipt   |
//! | `LOCATION_INACTIVE`  | 409    | the location exists but takes no movements now      |
//!
//! Protocol errors: malformed JSON 400 `INVALID_INPUT`, missing or bad `Idempotency-Key` 400
//! `IDEMPOTENCY_KEY_REQUIRED`, no or bad token 401 `UNAUTHENTICATED`, wrong role 403
//! `FORBIDDEN`, key reused with another body 422 `IDEMPOTENCY_KEY_REUSED`, key still running
//! 409 `IDEMPOTENCY_IN_PROGRESS`, body too large 413 `PAYLOAD_TOO_LARGE`, too many bulk lines
//! 413 `TOO_MANY_LINES`, store trouble 503 (or 500) `INTERNAL` with the correlation id.

use serde::Serialize;
use uuid::Uuid;

/// Where problem type URIs live: `<base><code in lower kebab case>`.
pub const PROBLEM_TYPE_BASE: &str = "https://ichigen.dev/problems/";
/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The media type of every success answer.
pub const JSON: &str = "application/json";

/// A domain refusal an API reports: each service's error enum implements it, so that the
/// problem (and a bulk line's error) is built the same way everywhere.
pub trait Refusal: std::fmt::Display {
    /// The stable SCREAMING_SNAKE code.
    fn code(&self) -> &'static str;
    /// The request field to blame, in the API's spelling.
    fn field(&self) -> Option<&'static str>;
}

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

    /// A domain refusal, with the status of the module table.
    pub fn refusal<R: Refusal + ?Sized>(error: &R) -> Self {
        LineError::refusal(error).into_problem()
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

/// A line's refusal, as reported: in a bulk answer's `error`, or as a single request's
/// problem ([`LineError::into_problem`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl LineError {
    pub fn refusal<R: Refusal + ?Sized>(error: &R) -> Self {
        LineError {
            code: error.code(),
            field: error.field().map(str::to_string),
            message: error.to_string(),
        }
    }

    /// A line that does not have the request's JSON shape. serde names the offending field
    /// only in its message; the common cases are picked out so clients can branch on them
    /// (`type` for an unknown or missing tag of a tagged line).
    pub fn malformed(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let field = if message.starts_with("unknown variant") || message.contains("field `type`") {
            Some("type".to_string())
        } else {
            message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name.to_string())
        };
        LineError {
            code: "INVALID_INPUT",
            field,
            message,
        }
    }

    /// The refusal as the problem of a single-line request.
    pub fn into_problem(self) -> Problem {
        Problem {
            field: self.field,
            ..Problem::new(status_of(self.code), self.code, self.message)
        }
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

    #[derive(Debug, thiserror::Error)]
    #[error("qty must be at least 1")]
    struct TooFew;

    impl Refusal for TooFew {
        fn code(&self) -> &'static str {
            "INVALID_INPUT"
        }
        fn field(&self) -> Option<&'static str> {
            Some("qty")
        }
    }

    #[test]
    fn refusals_map_to_status_type_and_field() {
        let p = Problem::refusal(&TooFew);
        assert_eq!(
            (p.status, p.code, p.field.as_deref()),
            (422, "INVALID_INPUT", Some("qty"))
        );
        let a = p.answer();
        assert_eq!(a.content_type, PROBLEM_JSON);
        assert!(a
            .body
            .contains(r#""type":"https://ichigen.dev/problems/invalid-input""#));
        assert_eq!(status_of("NOT_FOUND"), 404);
        assert_eq!(status_of("INSUFFICIENT_STOCK"), 409);
        let busy = Problem::new(409, "IDEMPOTENCY_IN_PROGRESS", "x").answer();
        assert!(busy.headers.contains(&("retry-after", "1".to_string())));
        let fatal = Problem::internal(500, Uuid::nil(), "x").answer();
        assert!(fatal.headers.is_empty(), "500 says: do not retry");
    }

    #[test]
    fn malformed_lines_name_their_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Line {
            sku: String,
        }
        let e = serde_json::from_str::<Line>("{}").unwrap_err();
        assert_eq!(LineError::malformed(&e).field.as_deref(), Some("sku"));
    }
}
