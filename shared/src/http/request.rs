//! What every integration request goes through before it runs: the caller's credentials, the
//! `Idempotency-Key` header, the body (with a limit) and, for bulk requests, the line array.
//! Each refusal is a [`Problem`], so that an integrator sees one error format for everything.

use super::idempotency::KeyedRequest;
use super::problem::{LineError, Problem};
use crate::auth::jwt::JwtAuth;
use crate::auth::{Actor, Role};
use crate::envelope::Metadata;
use crate::store::Position;
use crate::telemetry::CorrelationId;
use actix_web::{web, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

/// The header that makes a POST or PUT safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;

/// Who asked, for the events' metadata.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub correlation_id: Uuid,
}

impl Caller {
    /// The metadata of the events line `causation_id` of this caller's request appends: the
    /// causation id is how recovery recognises the line later.
    pub fn metadata(&self, causation_id: Uuid, occurred_at: DateTime<Utc>) -> Metadata {
        Metadata {
            correlation_id: self.correlation_id,
            causation_id: Some(causation_id),
            actor: self.actor.clone(),
            occurred_at,
        }
    }

    /// A failure of a keyed write whose outcome is unknown, or a stream this build cannot
    /// read: logged with the correlation id, answered with a generic problem (503: retry; 500:
    /// retrying will not help). Nothing is recorded under the key, so a retry with the same
    /// key recovers. `api` names the API in the log.
    pub fn unrecorded(&self, api: &str, error: &dyn std::fmt::Display, status: u16) -> Problem {
        tracing::error!(correlation_id = %self.correlation_id, %error, api, "integration request failed");
        Problem::internal(
            status,
            self.correlation_id,
            "the request could not be completed; nothing was recorded under its Idempotency-Key, \
             so retry it with the same key",
        )
    }

    /// [`Self::unrecorded`] for a stream that could not be folded: 503 for the store, 500 for
    /// an event this build cannot read.
    pub fn fold_failure(&self, api: &str, e: &crate::aggregate::FoldError) -> Problem {
        match e {
            crate::aggregate::FoldError::Store(_) => self.unrecorded(api, e, 503),
            crate::aggregate::FoldError::Unreadable { .. } => self.unrecorded(api, e, 500),
        }
    }
}

/// A write that passed the checks every integration write goes through, in this order:
/// credentials, `Idempotency-Key`, body limit. Its body is still to be parsed by the API.
pub struct KeyedWrite {
    pub caller: Caller,
    pub keyed: KeyedRequest,
    pub body: web::Bytes,
}

/// Checks a write (see [`KeyedWrite`]); each refusal is a problem and records nothing.
pub async fn keyed_write(
    req: &HttpRequest,
    payload: web::Payload,
    auth: &JwtAuth,
    api: &str,
    limit: usize,
) -> Result<KeyedWrite, Problem> {
    let caller = authorize_integration(req, auth, api)?;
    let key = idempotency_key(req)?;
    let body = read_body(payload, limit).await?;
    let keyed = KeyedRequest::new(req, &caller, key, &body);
    Ok(KeyedWrite {
        caller,
        keyed,
        body,
    })
}

/// The body of a single-line write as `T`; malformed JSON is 400 `INVALID_INPUT`, naming the
/// field where serde does.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem {
        field: LineError::malformed(&e).field,
        ..Problem::new(400, "INVALID_INPUT", format!("the body is not valid: {e}"))
    })
}

/// The `atLeast` query parameter of a read: the position a write returned, to wait for.
pub fn at_least(req: &HttpRequest) -> Result<Option<Position>, Problem> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Query {
        at_least: Option<String>,
    }
    let query = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| Problem::new(400, "INVALID_INPUT", e.to_string()))?;
    query
        .into_inner()
        .at_least
        .map(|text| {
            text.parse::<Position>().map_err(|e| {
                Problem::new(422, "INVALID_INPUT", e.to_string()).with_field("atLeast")
            })
        })
        .transpose()
}

/// A read-your-writes wait that did not end: 503, retry the read.
pub fn wait_failed(caller: &Caller, error: &dyn std::fmt::Display) -> Problem {
    tracing::warn!(correlation_id = %caller.correlation_id, %error, "read-your-writes wait failed");
    Problem::internal(
        503,
        caller.correlation_id,
        format!("{error}; retry the read"),
    )
}

/// The caller, if its token carries an integration role: `WMS_INTEGRATION` (the role of
/// system-to-system credentials: a WMS, a PIM) or `ADMIN`. 401 without a valid token, 403 for
/// another role. `api` names the API in the refusal ("WMS", "PIM").
pub fn authorize_integration(
    req: &HttpRequest,
    auth: &JwtAuth,
    api: &str,
) -> Result<Caller, Problem> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| {
            v.to_str().map_err(|_| {
                Problem::new(
                    401,
                    "UNAUTHENTICATED",
                    "the Authorization header is not text",
                )
            })
        })
        .transpose()?;
    let actor: Actor = auth
        .actor_from_authorization(header)
        .map_err(|e| Problem::new(401, "UNAUTHENTICATED", e.to_string()))?;
    match actor.role {
        Role::WmsIntegration | Role::Admin => Ok(Caller {
            actor,
            correlation_id: correlation_id(req),
        }),
        Role::Anonymous => Err(Problem::new(
            401,
            "UNAUTHENTICATED",
            "a bearer token with role WMS_INTEGRATION is required",
        )),
        other => Err(Problem::new(
            403,
            "FORBIDDEN",
            format!("role {other} may not use the {api} API (WMS_INTEGRATION or ADMIN only)"),
        )),
    }
}

/// The gateway's correlation id for this request; a fresh one where no middleware set it.
pub fn correlation_id(req: &HttpRequest) -> Uuid {
    req.extensions()
        .get::<CorrelationId>()
        .map(|c| c.0)
        .unwrap_or_else(Uuid::new_v4)
}

/// The `Idempotency-Key` header: exactly one, 1–255 visible ASCII characters (so no newline,
/// which keeps `"<subject>\n<key>"` unambiguous in the request id).
pub fn idempotency_key(req: &HttpRequest) -> Result<String, Problem> {
    let refuse = |detail: &str| {
        Problem::new(400, "IDEMPOTENCY_KEY_REQUIRED", detail).with_field(IDEMPOTENCY_KEY)
    };
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY);
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refuse(
            "every write needs exactly one Idempotency-Key header (1-255 visible ASCII characters)",
        ));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(refuse(
            "the Idempotency-Key must be 1-255 visible ASCII characters",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Reads the body up to `limit` bytes (a problem beyond), so that every refusal, this one
/// included, is a problem body.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, Problem> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                400,
                "INVALID_INPUT",
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(Problem::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("the body exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The lines of a bulk body `{ "<field>": [...] }`, kept as raw JSON so that one malformed line
/// is reported as that line's error instead of failing the whole request. `Err` for a body of
/// another shape, no lines, or more than `max` (nothing is executed or recorded then).
pub fn bulk_lines(
    body: &[u8],
    field: &'static str,
    max: usize,
) -> Result<Vec<serde_json::Value>, Problem> {
    let malformed = |detail: String| {
        Problem::new(
            400,
            "INVALID_INPUT",
            format!("the body is not a bulk request: {detail}"),
        )
        .with_field(field)
    };
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    let lines = match object.remove(field) {
        Some(serde_json::Value::Array(lines)) => lines,
        Some(_) => return Err(malformed(format!("`{field}` is not an array"))),
        None => return Err(malformed(format!("missing field `{field}`"))),
    };
    if lines.is_empty() {
        return Err(Problem::new(
            422,
            "INVALID_INPUT",
            format!("a bulk request needs at least one entry in `{field}`"),
        )
        .with_field(field));
    }
    if lines.len() > max {
        return Err(Problem::new(
            413,
            "TOO_MANY_LINES",
            format!(
                "{} entries; a bulk request carries at most {max}: split it",
                lines.len()
            ),
        )
        .with_field(field));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bodies_are_checked_as_a_whole() {
        assert_eq!(
            bulk_lines(br#"{"items":[1,2]}"#, "items", 2).unwrap().len(),
            2
        );
        assert_eq!(
            bulk_lines(br#"{"items":[1,2,3]}"#, "items", 2)
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(
            bulk_lines(br#"{"items":[]}"#, "items", 2)
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(bulk_lines(b"[", "items", 2).unwrap_err().status, 400);
        let wrong = bulk_lines(br#"{"lines":[1]}"#, "items", 2).unwrap_err();
        assert_eq!((wrong.status, wrong.field.as_deref()), (400, Some("items")));
    }

    #[actix_web::test]
    async fn keys_must_be_visible_ascii() {
        let req = actix_web::test::TestRequest::post()
            .insert_header((IDEMPOTENCY_KEY, "k-1"))
            .to_http_request();
        assert_eq!(idempotency_key(&req).unwrap(), "k-1");
        let req = actix_web::test::TestRequest::post()
            .insert_header((IDEMPOTENCY_KEY, "has space"))
            .to_http_request();
        assert_eq!(
            idempotency_key(&req).unwrap_err().code,
            "IDEMPOTENCY_KEY_REQUIRED"
        );
        let req = actix_web::test::TestRequest::post().to_http_request();
        assert!(idempotency_key(&req).is_err());
    }
}
