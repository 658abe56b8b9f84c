//! `http.max_body_bytes` on every route, before anything reads the body.
//!
//! actix-web's `JsonConfig`/`PayloadConfig` limits bind only the extractors that read them;
//! the GraphQL extractor (JSON and multipart) and any handler reading the raw payload read
//! whatever comes. So this middleware wraps every request:
//!
//! * a `Content-Length` over the limit is answered **413** at once, without reading a byte
//!   of the body;
//! * any other body (chunked, or a length that lies) is counted as it is read, and the read
//!   fails as soon as it passes the limit: the handler stops, and whatever it answered is
//!   replaced by the 413. The rest of the body is never buffered (actix-http discards it
//!   until the client stops or its disconnect timeout, then closes the connection).
//!
//! The 413 speaks the route's language: a GraphQL-shaped body on `/graphql`
//! (`{"data": null, "errors": [{"message", "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}`), an
//! RFC 9457 problem with code `PAYLOAD_TOO_LARGE` everywhere else (the integration APIs).
//! WebSocket upgrades are not counted: after the handshake the "body" is the socket's frames,
//! whose size the WebSocket codec bounds.

use crate::graphql::conventions::ErrorCode;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpResponse};
use futures::Stream;
use ichigen_shared::http::Problem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The limit, as app data (`App::app_data(BodyLimit(n))`); without it nothing is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// The middleware (`App::wrap(from_fn(body_limit::enforce))`).
pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(BodyLimit(limit)) = req.app_data::<BodyLimit>().copied() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let response = too_large(req.path(), limit);
        return Ok(req.into_response(response).map_into_right_body());
    }
    if req.headers().contains_key(header::UPGRADE) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let tripped = Arc::new(AtomicBool::new(false));
    let inner = req.take_payload();
    req.set_payload(Payload::from(Box::pin(Limited {
        inner: Some(inner),
        read: 0,
        limit,
        tripped: tripped.clone(),
    })
        as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>));
    let path = req.path().to_string();
    let result = next.call(req).await;
    if !tripped.load(Ordering::Acquire) {
        return Ok(result?.map_into_left_body());
    }
    match result {
        Ok(res) => Ok(res
            .into_response(too_large(&path, limit))
            .map_into_right_body()),
        Err(_) => Err(TooLarge { path, limit }.into()),
    }
}

/// The 413 as an error, for a handler that failed rather than answered.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {limit} bytes")]
struct TooLarge {
    path: String,
    limit: usize,
}

impl actix_web::ResponseError for TooLarge {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
    }

    fn error_response(&self) -> HttpResponse {
        too_large(&self.path, self.limit)
    }
}

/// The 413 for `path`.
pub fn too_large(path: &str, limit: usize) -> HttpResponse {
    let message = format!(
        "the request body is larger than {limit} bytes, the most this server accepts \
         (http.max_body_bytes)"
    );
    if path == crate::graphql::GRAPHQL_PATH {
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", ErrorCode::PayloadTooLarge.as_str());
        let mut error = async_graphql::ServerError::new(message, None);
        error.extensions = Some(extensions);
        HttpResponse::PayloadTooLarge().json(async_graphql::Response::from_errors(vec![error]))
    } else {
        Problem::new(413, ErrorCode::PayloadTooLarge.as_str(), message)
            .answer()
            .into_response()
    }
}

/// The request body, failing once more than `limit` bytes came.
struct Limited {
    /// Dropped once the limit is passed, which tells actix-http nobody reads the rest.
    inner: Option<Payload>,
    read: usize,
    limit: usize,
    tripped: Arc<AtomicBool>,
}

impl Stream for Limited {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.read = this.read.saturating_add(chunk.len());
                if this.read > this.limit {
                    this.inner = None;
                    this.tripped.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                } else {
                    Poll::Ready(Some(Ok(chunk)))
                }
            }
            other => other,
        }
    }
}
