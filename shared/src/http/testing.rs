//! What the tests of every integration API check an answer with: one reading of a response
//! ([`send`] → [`Reply`]) and one definition of a well-formed problem ([`assert_problem`]), so
//! that the APIs' tests hold them to the same contract.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use serde_json::Value;

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// `Idempotent-Replayed: true`.
    pub replayed: bool,
    pub body: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

/// Sends `req` to an `actix_web::test::init_service` app and reads the whole answer.
///
/// # Panics
/// On a header or body that is not UTF-8 (a test failure).
pub async fn send<S, R, B>(app: &S, req: R) -> Reply
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = actix_web::test::call_service(app, req).await;
    let status = res.status().as_u16();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("<not text>").to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let replayed = header("idempotent-replayed").as_deref() == Some("true");
    let bytes = actix_web::test::read_body(res).await.to_vec();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        replayed,
        body,
        json,
    }
}

/// Asserts that `reply` is a problem body with this status and code, and a matching `type`.
///
/// # Panics
/// When it is not (a test failure).
pub fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.content_type, super::problem::PROBLEM_JSON);
    assert_eq!(reply.json["code"], code, "{}", reply.body);
    assert_eq!(reply.json["status"], status);
    assert_eq!(
        reply.json["type"],
        format!(
            "https://ichigen.dev/problems/{}",
            code.to_ascii_lowercase().replace('_', "-")
        )
    );
}
