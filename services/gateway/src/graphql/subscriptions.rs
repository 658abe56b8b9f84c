//! Subscriptions over WebSocket (graphql-ws, `graphql-transport-ws`, and the legacy
//! subscriptions-transport-ws, `graphql-ws`) on `GET /graphql`, closed at once when the
//! server starts to stop.
//!
//! async-graphql speaks the protocols ([`async_graphql::http::WebSocket`]: client messages
//! in, server messages out); this module moves them between it and the socket (actix-ws),
//! answers pings, and drops a client that has been silent for [`CLIENT_TIMEOUT`]. It is ours
//! rather than async-graphql-actix-web's actor because that actor offers no way to close its
//! sockets from outside: an open subscription (GraphiQL in a browser) then held every graceful
//! stop for the whole `http.shutdown_timeout_secs`. Here every socket also waits on the
//! server's [`Shutdown`] and closes with 1001 (going away, "server shutting down").

use crate::shutdown::Shutdown;
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::{Data, Executor};
use futures::StreamExt;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How often the server pings a client.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A client that sends nothing (not even a pong) for this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message a client may send (a subscribe message is a query and its variables).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The close reason sent when the server stops.
pub const SHUTTING_DOWN: &str = "server shutting down";

/// Upgrades `req` and serves subscriptions on it until either side closes or `shutdown`
/// starts. `on_init` turns the `connection_init` payload into the connection's data (or
/// refuses it: the protocol closes the socket with the error).
pub fn serve<E, OnInit, InitFut>(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
    executor: E,
    on_init: OnInit,
    shutdown: Shutdown,
) -> actix_web::Result<HttpResponse>
where
    E: Executor,
    OnInit: FnOnce(serde_json::Value) -> InitFut + Send + 'static,
    InitFut: Future<Output = async_graphql::Result<Data>> + Send + 'static,
{
    let protocol = req
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|value| value.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
        .ok_or_else(|| {
            actix_web::error::ErrorBadRequest(
                "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
            )
        })?;
    let (response, session, messages) =
        actix_ws::handle_with_protocols(req, payload, &ALL_WEBSOCKET_PROTOCOLS)?;
    let messages = messages
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    // Client messages reach the protocol through a channel, so that the socket loop below
    // owns the socket alone.
    let (to_protocol, from_client) = futures::channel::mpsc::unbounded::<Vec<u8>>();
    let protocol_stream =
        WebSocket::new(executor, from_client, protocol).on_connection_init(on_init);
    actix_web::rt::spawn(run(
        session,
        messages,
        to_protocol,
        protocol_stream,
        shutdown,
    ));
    Ok(response)
}

/// One socket: client frames to the protocol, protocol messages to the client, pings, and
/// the close on shutdown.
async fn run(
    mut session: Session,
    mut messages: actix_ws::AggregatedMessageStream,
    to_protocol: futures::channel::mpsc::UnboundedSender<Vec<u8>>,
    protocol: impl futures::Stream<Item = WsMessage>,
    shutdown: Shutdown,
) {
    tokio::pin!(protocol);
    let stopping = shutdown.started();
    tokio::pin!(stopping);
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + HEARTBEAT_INTERVAL,
        HEARTBEAT_INTERVAL,
    );
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let close = loop {
        tokio::select! {
            () = &mut stopping => {
                break Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some(SHUTTING_DOWN.to_string()),
                });
            }
            message = messages.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        if to_protocol.unbounded_send(text.as_bytes().to_vec()).is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(bytes))) => {
                        if to_protocol.unbounded_send(bytes.to_vec()).is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    // The client closes: answer its close, end.
                    Some(Ok(AggregatedMessage::Close(reason))) => break reason,
                    // A protocol error or a vanished client.
                    Some(Err(_)) | None => return,
                }
            }
            out = protocol.next() => match out {
                Some(WsMessage::Text(text)) => {
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    break Some(CloseReason {
                        code: CloseCode::from(code),
                        description: Some(reason),
                    });
                }
                None => break None,
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > CLIENT_TIMEOUT {
                    return;
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    // Ends the subscriptions of this connection, then the socket.
    drop(to_protocol);
    let _ = session.close(close).await;
}
