//! `/graphql` on actix-web: POST runs queries and mutations, a WebSocket upgrade runs
//! subscriptions (graphql-ws and the legacy subscriptions-transport-ws), and a plain GET serves
//! GraphiQL when enabled ([`super::graphiql`], from the binary).
//!
//! Authentication failures never fall back to anonymous access: a client with a broken token
//! must find out, not silently see less.
//!
//! * **HTTP**: an invalid `Authorization` header is answered with **401** and a GraphQL-shaped
//!   body, `{"data": null, "errors": [{"message": …, "extensions": {"code":
//!   "UNAUTHENTICATED"}}]}`, plus `WWW-Authenticate: Bearer`; the operation is not run. 401
//!   rather than 200 because nothing of the request was executed and HTTP clients, proxies and
//!   retry logic all understand 401. Authorization failures inside an operation (a valid
//!   token with the wrong role) are ordinary field errors (`UNAUTHENTICATED` for anonymous
//!   callers, `FORBIDDEN` otherwise) in a 200 response, alongside the fields that did resolve.
//! * **WebSocket** ([`super::subscriptions`]; closed with 1001 when the server starts to
//!   stop): the token is read from the `connection_init` payload (`Authorization` or
//!   `authorization`, `"Bearer <token>"`), falling back to the upgrade request's
//!   `Authorization` header. A bad header on the upgrade request gets the same 401 as HTTP; a
//!   bad token in `connection_init` closes the socket with code 1002 and the reason
//!   `UNAUTHENTICATED: <message>` (graphql-ws; the legacy protocol gets a `connection_error`
//!   with that message). One correlation id serves the whole connection.

use super::conventions::{gql_error, ErrorCode};
use super::{GraphqlSettings, IchigenSchema, RequestContext};
use crate::auth::{AuthError, JwtAuth};
use crate::shutdown::Shutdown;
use actix_web::http::header;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, Responder};
use async_graphql::{Data, ErrorExtensionValues, ServerError};
use async_graphql_actix_web::{GraphQLRequest, GraphQLResponse};
use ichigen_shared::auth::{Actor, Role};
use ichigen_shared::telemetry::CorrelationId;
use std::sync::Arc;
use uuid::Uuid;

/// Where the API is mounted.
pub const GRAPHQL_PATH: &str = "/graphql";

/// Longest close reason a WebSocket close frame can carry (RFC 6455 §5.5: 125-byte control
/// payload minus the 2-byte code).
const MAX_CLOSE_REASON: usize = 123;

/// Mounts `/graphql`. Expects app data `web::Data<IchigenSchema>`,
/// `web::Data<Arc<JwtAuth>>` and `web::Data<GraphqlSettings>`, and `web::Data<Shutdown>` for
/// subscriptions to close when the server stops.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(GRAPHQL_PATH)
            .route(web::post().to(execute))
            .route(web::get().to(get)),
    )
    .configure(super::graphiql::configure);
}

async fn execute(
    req: HttpRequest,
    schema: web::Data<IchigenSchema>,
    auth: web::Data<Arc<JwtAuth>>,
    request: GraphQLRequest,
) -> HttpResponse {
    let actor = match header_actor(&req, &auth) {
        Ok(actor) => actor,
        Err(e) => return unauthenticated(&e),
    };
    if !may_use_graphql(&actor) {
        return integration_only();
    }
    let context = RequestContext {
        actor,
        correlation_id: correlation_id(&req),
    };
    let mut request = request.into_inner().data(context);
    super::documents::prepare(&mut request);
    let response = schema.execute(request).await;
    GraphQLResponse::from(response).respond_to(&req)
}

async fn get(
    req: HttpRequest,
    payload: web::Payload,
    schema: web::Data<IchigenSchema>,
    auth: web::Data<Arc<JwtAuth>>,
    settings: web::Data<GraphqlSettings>,
) -> actix_web::Result<HttpResponse> {
    if is_websocket_upgrade(&req) {
        return subscriptions(req, payload, &schema, &auth);
    }
    Ok(super::graphiql::page(&settings))
}

fn subscriptions(
    req: HttpRequest,
    payload: web::Payload,
    schema: &IchigenSchema,
    auth: &Arc<JwtAuth>,
) -> actix_web::Result<HttpResponse> {
    let fallback = match header_actor(&req, auth) {
        Ok(actor) if !may_use_graphql(&actor) => return Ok(integration_only()),
        Ok(actor) => actor,
        Err(e) => return Ok(unauthenticated(&e)),
    };
    let correlation_id = correlation_id(&req);
    let auth = Arc::clone(auth);
    // Without the server's switch (a test app), sockets close only when their client goes.
    let shutdown = req
        .app_data::<web::Data<Shutdown>>()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default();
    super::subscriptions::serve(
        &req,
        payload,
        schema.clone(),
        move |init_payload| async move {
            let actor =
                connection_actor(&auth, &init_payload, fallback).map_err(|e| ws_auth_error(&e))?;
            if !may_use_graphql(&actor) {
                return Err(gql_error(
                    ErrorCode::Forbidden,
                    format!("{}: {INTEGRATION_ONLY}", ErrorCode::Forbidden.as_str()),
                ));
            }
            let mut data = Data::default();
            data.insert(RequestContext {
                actor,
                correlation_id,
            });
            Ok(data)
        },
        shutdown,
    )
}

/// The actor of a subscription connection: the `connection_init` payload's token if it has
/// one (browsers cannot set headers on a WebSocket), else the upgrade request's.
pub(crate) fn connection_actor(
    auth: &JwtAuth,
    init_payload: &serde_json::Value,
    fallback: Actor,
) -> Result<Actor, AuthError> {
    let value = init_payload
        .get("Authorization")
        .or_else(|| init_payload.get("authorization"));
    match value {
        None | Some(serde_json::Value::Null) => Ok(fallback),
        Some(serde_json::Value::String(header)) => auth.actor_from_authorization(Some(header)),
        Some(_) => Err(AuthError::Malformed(
            "`Authorization` in connection_init must be a string `Bearer <token>`".into(),
        )),
    }
}

/// The close reason carries no extensions, so the code leads the message.
pub(crate) fn ws_auth_error(e: &AuthError) -> async_graphql::Error {
    let mut reason = format!("{}: {e}", ErrorCode::Unauthenticated.as_str());
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    gql_error(ErrorCode::Unauthenticated, reason)
}

fn header_actor(req: &HttpRequest, auth: &JwtAuth) -> Result<Actor, AuthError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| AuthError::Malformed("the Authorization header is not ASCII".into()))
        })
        .transpose()?;
    auth.actor_from_authorization(header)
}

/// The id the telemetry middleware assigned, or a fresh one when it is not installed (tests,
/// or a deployment without it), so that events always carry one.
fn correlation_id(req: &HttpRequest) -> Uuid {
    req.extensions()
        .get::<CorrelationId>()
        .map(|c| c.0)
        .unwrap_or_else(Uuid::new_v4)
}

/// design.md: "WMS credentials reach only the integration API".
const INTEGRATION_ONLY: &str = "WMS_INTEGRATION tokens are for the integration API only";

fn may_use_graphql(actor: &Actor) -> bool {
    actor.role != Role::WmsIntegration
}

fn integration_only() -> HttpResponse {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", ErrorCode::Forbidden.as_str());
    let mut error = ServerError::new(INTEGRATION_ONLY, None);
    error.extensions = Some(extensions);
    HttpResponse::Forbidden().json(async_graphql::Response::from_errors(vec![error]))
}

fn unauthenticated(e: &AuthError) -> HttpResponse {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", ErrorCode::Unauthenticated.as_str());
    let mut error = ServerError::new(e.to_string(), None);
    error.extensions = Some(extensions);
    HttpResponse::Unauthorized()
        .insert_header((
            header::WWW_AUTHENTICATE,
            r#"Bearer realm="ichigen", error="invalid_token""#,
        ))
        .json(async_graphql::Response::from_errors(vec![error]))
}

fn is_websocket_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
        })
}
