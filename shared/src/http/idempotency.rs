//! `Idempotency-Key` for every integration API: a retried request returns its first answer and
//! changes nothing twice, across restarts and crashes.
//!
//! # Design
//!
//! **Where keys live.** In the event store, so they survive restarts and are as durable as the
//! writes themselves: one stream per key, `<category>-<request id>`, where the category is the
//! API's ([`KeyStreams::category`]: `wmsrequest` for the WMS API, owned by inventory;
//! `pimrequest` for the PIM API, owned by order) and the request id is the UUID v5 of
//! `"<token subject>\n<key>"` ([`request_id`]). Keys are scoped by the caller, so two
//! integrations cannot collide or read each other's answers. Keys do not expire.
//!
//! **What a key stream holds** (event type names per API, [`KeyStreams`]; the WMS API's are
//! `WmsRequestStarted.v1`, `WmsRequestResponsePart.v1`, `WmsRequestCompleted.v1`):
//! - *Started* {fingerprint, instance, startedAt, method, path}: a *claim*. The fingerprint is
//!   the UUID v5 of method, path and the raw body bytes ([`fingerprint`]); the instance names
//!   the process that claimed (random per process).
//! - *ResponsePart* {claim, seq, text}: pieces of a large answer (a bulk report can exceed what
//!   one event may carry), written in the same append as, and before, …
//! - *Completed* {fingerprint, claim, status, contentType, body | parts}: the answer, byte for
//!   byte.
//!
//! **Protocol** ([`KeyStreams::run`]):
//! 1. Read the key stream. `Completed` with the same fingerprint → replay the stored answer with
//!    `Idempotent-Replayed: true`; another fingerprint → 422 `IDEMPOTENCY_KEY_REUSED`.
//! 2. A claim without `Completed`: another fingerprint → 422 `IDEMPOTENCY_KEY_REUSED`. If the
//!    claim is running in this process (a process-wide set of claim ids), or in another
//!    process that may still be alive → 409 `IDEMPOTENCY_IN_PROGRESS`. Otherwise the claim was
//!    abandoned (crash, or a store failure answered with 503): take over and *recover*.
//! 3. Claim by appending `Started` with the expected revision just read (`NoStream` for a new
//!    key). Exactly one of several racing claimants wins; a loser re-reads and lands in 1 or 2.
//!    The claim id enters the in-process set *before* the append, so a racing request in this
//!    process can never mistake a live claim for an abandoned one.
//! 4. Execute (the API's closure, given an [`Execution`]). Every line's events should carry the
//!    causation id [`KeyStreams::line_causation_id`] derives from (request id, line index):
//!    that is how a later recovery recognises the line in the stream it wrote.
//! 5. Append the answer (`Completed`, with parts) expecting the claim's revision, then answer.
//!    The answer is given only once it is stored: if it cannot be stored, the caller gets 503
//!    and the retry recovers, so no caller ever sees two different answers for one key.
//!
//! **Recovery** is the API's: with [`Execution::recover`] set, its closure must find out what
//! an earlier attempt of the same request already applied (by the causation ids) and report
//! those lines from the store instead of applying them again; every other line runs now. A
//! line refused by the domain appended nothing, so running it again is correct; it is decided
//! against today's state, which is fine because its first answer was never given.
//!
//! **When is a claim abandoned?** Claimed by this process and not in its in-flight set: its
//! task ended without storing an answer. Claimed by another process: on the embedded store
//! that process is gone (one process per data directory, enforced by its lock file); on a
//! shared store (KurrentDB) it may still be running, so the claim is taken over only after
//! [`TAKEOVER_AFTER`], on the assumption that no request runs that long (one that did could
//! see a line run by both; the lease is minutes, a 20,000-line bulk takes seconds). A late
//! original then fails to store its answer (the revision moved on) and answers with the stored
//! one, or 409.
//!
//! **Not recorded:** requests refused before anything runs (no token, wrong role, no key,
//! malformed JSON, body or line limits) — nothing happened, so the key stays free for a fixed
//! request — and 5xx failures (see step 5).
//!
//! Run it with [`KeyStreams::run_detached`]: execution runs in a task of its own, so a client
//! that hangs up does not cancel a request halfway; it finishes and stores its answer for the
//! retry.

use super::problem::{Answer, Problem};
use super::request::{Caller, KeyedWrite};
use crate::envelope::{Actor, Metadata, NewEvent, RecordedEvent};
use crate::ids::{derived_event_id, ICHIGEN_NAMESPACE};
use crate::store::{read_whole_stream, DynEventStore, ExpectedRevision, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// What is particular to one API's keys: the category of its key streams (owned by the service
/// that owns the API) and the type names of their events (stored, so they never change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStreams {
    /// `wmsrequest`, `pimrequest`, …
    pub category: &'static str,
    /// The claim, e.g. `WmsRequestStarted.v1`.
    pub started: &'static str,
    /// A piece of a large answer, e.g. `WmsRequestResponsePart.v1`.
    pub response_part: &'static str,
    /// The stored answer, e.g. `WmsRequestCompleted.v1`.
    pub completed: &'static str,
    /// The API's name in logs ("WMS", "PIM").
    pub api: &'static str,
    /// How its streams are named, for the event catalogue (`wmsrequest-<key>`).
    pub stream_pattern: &'static str,
}
/// How old another process's unfinished claim must be before a shared store's process takes
/// it over (see the module docs). Generous: a 20,000-line bulk takes seconds.
pub const TAKEOVER_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// Answer text per event: far below the embedded store's 4 MiB and KurrentDB's ~1 MB per event
/// even if JSON escaping doubled it.
const PART_BYTES: usize = 256 * 1024;
/// Claim attempts lost to racing requests before answering 409.
const MAX_CLAIM_ROUNDS: usize = 3;

/// This process, as named in its claims.
static INSTANCE: LazyLock<Uuid> = LazyLock::new(Uuid::new_v4);
/// Claims being executed in this process. Process-wide on purpose: actix builds the app once
/// per worker thread, and a request on one worker must see a claim running on another.
static IN_FLIGHT: LazyLock<Mutex<HashSet<Uuid>>> = LazyLock::new(Mutex::default);

/// The request a caller's key names: UUID v5 of `"<subject>\n<key>"`.
pub fn request_id(subject: &str, key: &str) -> Uuid {
    Uuid::new_v5(&ICHIGEN_NAMESPACE, format!("{subject}\n{key}").as_bytes())
}

impl KeyStreams {
    /// The catalogue of this API's bookkeeping events (streams `<category>-<key hash>`).
    pub fn catalogue(&'static self, owner: &'static str) -> Vec<crate::catalogue::EventDoc> {
        use crate::catalogue::EventDoc;
        let stream = self.stream_pattern;
        vec![
            EventDoc::of::<RequestStarted>(self.started, owner, stream),
            EventDoc::of::<ResponsePart>(self.response_part, owner, stream),
            EventDoc::of::<Completed>(self.completed, owner, stream),
        ]
    }

    /// The key's stream.
    pub fn request_stream(&self, request: Uuid) -> String {
        crate::ids::stream_name(self.category, &request.to_string())
    }

    /// The causation id every event of line `index` of `request` carries.
    pub fn line_causation_id(&self, request: Uuid, index: usize) -> Uuid {
        derived_event_id(&self.request_stream(request), index)
    }

    /// A claim as an event with id `claim` (random: two claimants must never share an id, or
    /// the store would take the second append for a retry of the first).
    pub fn started_event(
        &self,
        started: &RequestStarted,
        claim: Uuid,
        metadata: Metadata,
    ) -> Result<NewEvent, serde_json::Error> {
        NewEvent::json(claim, self.started, started, metadata)
    }
}

/// What a key is bound to: method, path and the exact body bytes.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Uuid {
    let mut text = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
    text.extend_from_slice(method.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(path.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(body);
    Uuid::new_v5(&ICHIGEN_NAMESPACE, &text)
}

/// A claim on an `Idempotency-Key`: the request with this fingerprint is being done.
/// Bookkeeping of the integration APIs, not a business fact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestStarted {
    /// Of the method, path and body: the same key with another request is refused.
    pub fingerprint: Uuid,
    /// The claiming process.
    pub instance: Uuid,
    pub started_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
}

/// A piece of a stored answer too large for one event, in order.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct ResponsePart {
    /// The claim (the `Started` event's id) the answer belongs to.
    claim: Uuid,
    seq: u32,
    text: String,
}

/// The first answer to a keyed request, which a retry with the same key gets byte for byte.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Completed {
    fingerprint: Uuid,
    claim: Uuid,
    /// The HTTP status answered.
    status: u16,
    content_type: String,
    /// The body when it fits one event; otherwise in `parts` part events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default)]
    parts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStreamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key stream {stream}: {detail}")]
    Unreadable { stream: String, detail: String },
}

/// The folded key stream.
#[derive(Default)]
struct KeyRecord {
    last_revision: Option<u64>,
    /// The latest claim: its event id and content.
    claim: Option<(Uuid, RequestStarted)>,
    completed: Option<(Uuid, Answer)>,
}

async fn read_record(
    keys: &KeyStreams,
    store: &DynEventStore,
    stream: &str,
) -> Result<KeyRecord, KeyStreamError> {
    let recorded = read_whole_stream(store.as_ref(), stream).await?;
    fold(keys, stream, &recorded)
}

fn fold(
    keys: &KeyStreams,
    stream: &str,
    recorded: &[RecordedEvent],
) -> Result<KeyRecord, KeyStreamError> {
    let bad = |detail: String| KeyStreamError::Unreadable {
        stream: stream.to_string(),
        detail,
    };
    let mut record = KeyRecord::default();
    let mut parts: HashMap<Uuid, BTreeMap<u32, String>> = HashMap::new();
    for r in recorded {
        record.last_revision = Some(r.revision);
        let decode_error =
            |e: serde_json::Error| bad(format!("{} at {}: {e}", r.event_type, r.revision));
        match &*r.event_type {
            t if t == keys.started => {
                record.claim = Some((r.id, r.decode().map_err(decode_error)?))
            }
            t if t == keys.response_part => {
                let part: ResponsePart = r.decode().map_err(decode_error)?;
                parts
                    .entry(part.claim)
                    .or_default()
                    .insert(part.seq, part.text);
            }
            t if t == keys.completed => {
                let done: Completed = r.decode().map_err(decode_error)?;
                let body = match done.body {
                    Some(body) => body,
                    None => {
                        let pieces = parts.remove(&done.claim).unwrap_or_default();
                        if pieces.len() != done.parts as usize {
                            return Err(bad(format!(
                                "answer has {} of {} parts",
                                pieces.len(),
                                done.parts
                            )));
                        }
                        pieces.into_values().collect()
                    }
                };
                record.completed = Some((
                    done.fingerprint,
                    Answer {
                        status: done.status,
                        content_type: done.content_type,
                        body,
                        headers: Vec::new(),
                    },
                ));
            }
            other => return Err(bad(format!("unknown event type {other}"))),
        }
    }
    Ok(record)
}

/// The events that store `answer` for `claim`: parts first, `Completed` last, in one append.
fn completion_events(
    keys: &KeyStreams,
    fingerprint: Uuid,
    claim: Uuid,
    answer: &Answer,
    metadata: &Metadata,
) -> Result<Vec<NewEvent>, serde_json::Error> {
    let mut events = Vec::new();
    let body = if answer.body.len() <= PART_BYTES {
        Some(answer.body.clone())
    } else {
        for (seq, text) in split_text(&answer.body, PART_BYTES).into_iter().enumerate() {
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            events.push(NewEvent::json(
                Uuid::new_v5(&claim, format!("part-{seq}").as_bytes()),
                keys.response_part,
                &ResponsePart {
                    claim,
                    seq,
                    text: text.to_string(),
                },
                metadata.clone(),
            )?);
        }
        None
    };
    let parts = u32::try_from(events.len()).unwrap_or(u32::MAX);
    events.push(NewEvent::json(
        Uuid::new_v5(&claim, b"completed"),
        keys.completed,
        &Completed {
            fingerprint,
            claim,
            status: answer.status,
            content_type: answer.content_type.clone(),
            body,
            parts,
        },
        metadata.clone(),
    )?);
    Ok(events)
}

/// Splits `text` into pieces of at most `max` bytes, at character boundaries.
fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Membership of a claim in [`IN_FLIGHT`] for as long as this guard lives (also when its task
/// panics or is dropped).
struct InFlight(Uuid);

impl InFlight {
    fn enter(claim: Uuid) -> Self {
        lock_in_flight().insert(claim);
        InFlight(claim)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock_in_flight().remove(&self.0);
    }
}

fn lock_in_flight() -> std::sync::MutexGuard<'static, HashSet<Uuid>> {
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether claim `id` is running in this process.
pub fn is_in_flight(id: Uuid) -> bool {
    lock_in_flight().contains(&id)
}

/// Everything [`KeyStreams::run`] needs to know about the request.
#[derive(Clone, Debug)]
pub struct KeyedRequest {
    pub actor: Actor,
    pub key: String,
    pub fingerprint: Uuid,
    pub method: String,
    pub path: String,
    pub correlation_id: Uuid,
}

impl KeyedRequest {
    /// The request as received: its method, path and exact body bytes make the fingerprint.
    pub fn new(req: &actix_web::HttpRequest, caller: &Caller, key: String, body: &[u8]) -> Self {
        KeyedRequest {
            actor: caller.actor.clone(),
            key,
            fingerprint: fingerprint(req.method().as_str(), req.path(), body),
            method: req.method().to_string(),
            path: req.path().to_string(),
            correlation_id: caller.correlation_id,
        }
    }
}

/// How to execute the request once claimed: `(request id, recover)` → its answer, or a 5xx
/// problem (left unrecorded).
pub struct Execution {
    pub request: Uuid,
    pub recover: bool,
}

enum Claimed {
    Answer(Answer),
    Claim {
        guard: InFlight,
        revision: u64,
        recover: bool,
    },
}

impl KeyStreams {
    /// Answers a write: `prepared` is the checked write ([`super::request::keyed_write`]) with
    /// the API's parsed plan, or the problem that refused it before anything ran (answered as
    /// is, nothing recorded). The plan runs under the key with `execute(plan, caller, execution)`
    /// ([`KeyStreams::run_detached`]).
    pub async fn respond<P, F, Fut>(
        &'static self,
        store: DynEventStore,
        now: DateTime<Utc>,
        prepared: Result<(KeyedWrite, P), Problem>,
        execute: F,
    ) -> actix_web::HttpResponse
    where
        P: Send + 'static,
        F: FnOnce(P, Caller, Execution) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Answer, Problem>> + Send,
    {
        let (write, plan) = match prepared {
            Ok(prepared) => prepared,
            Err(problem) => return problem.answer().into_response(),
        };
        let caller = write.caller;
        self.run_detached(store, now, write.keyed, move |execution| {
            execute(plan, caller, execution)
        })
        .await
        .into_response()
    }

    /// [`KeyStreams::run`] in a task of its own: actix drops a handler whose client hung up,
    /// and a request cancelled between its writes and its stored answer would leave work for
    /// recovery; a detached task finishes and stores the answer for the retry. A panic in
    /// `execute` answers 500 (nothing stored: the retry recovers).
    pub async fn run_detached<F, Fut>(
        &'static self,
        store: DynEventStore,
        now: DateTime<Utc>,
        request: KeyedRequest,
        execute: F,
    ) -> Answer
    where
        F: FnOnce(Execution) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Answer, Problem>> + Send,
    {
        let correlation_id = request.correlation_id;
        let task = tokio::spawn(async move { self.run(&store, now, &request, execute).await });
        match task.await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::error!(%correlation_id, api = self.api, error = %e,
                    "integration request task failed");
                Problem::internal(500, correlation_id, "the request failed unexpectedly").answer()
            }
        }
    }

    /// Runs `execute` at most once per key (see the module docs) and answers.
    pub async fn run<F, Fut>(
        &self,
        store: &DynEventStore,
        now: DateTime<Utc>,
        request: &KeyedRequest,
        execute: F,
    ) -> Answer
    where
        F: FnOnce(Execution) -> Fut,
        Fut: Future<Output = Result<Answer, Problem>>,
    {
        let request_id = request_id(&request.actor.subject, &request.key);
        let stream = self.request_stream(request_id);
        let metadata = Metadata {
            correlation_id: request.correlation_id,
            causation_id: None,
            actor: request.actor.clone(),
            occurred_at: now,
        };
        let internal = |error: &dyn std::fmt::Display| internal(request, &stream, error);
        let (guard, revision, recover) =
            match self.claim(store, now, request, &stream, &metadata).await {
                Claimed::Answer(answer) => return answer,
                Claimed::Claim {
                    guard,
                    revision,
                    recover,
                } => (guard, revision, recover),
            };
        if recover {
            tracing::warn!(%stream, api = self.api, correlation_id = %request.correlation_id,
                "recovering an abandoned integration request");
        }
        let answer = match execute(Execution {
            request: request_id,
            recover,
        })
        .await
        {
            Ok(answer) => answer,
            Err(problem) => return problem.answer(),
        };
        let events = match completion_events(self, request.fingerprint, guard.0, &answer, &metadata)
        {
            Ok(events) => events,
            Err(e) => return internal(&e),
        };
        match store
            .append(&stream, ExpectedRevision::Exact(revision), events)
            .await
        {
            Ok(_) => answer,
            // Taken over by another process after TAKEOVER_AFTER: its answer is the one that
            // counts.
            Err(StoreError::WrongExpectedVersion { .. }) => {
                match read_record(self, store, &stream).await {
                    Ok(KeyRecord {
                        completed: Some((fingerprint, stored)),
                        ..
                    }) if fingerprint == request.fingerprint => replayed(stored),
                    Ok(_) => in_progress(),
                    Err(e) => internal(&e),
                }
            }
            Err(e) => internal(&e),
        }
    }

    async fn claim(
        &self,
        store: &DynEventStore,
        now: DateTime<Utc>,
        request: &KeyedRequest,
        stream: &str,
        metadata: &Metadata,
    ) -> Claimed {
        let internal = |error: &dyn std::fmt::Display| internal(request, stream, error);
        for _ in 0..MAX_CLAIM_ROUNDS {
            let record = match read_record(self, store, stream).await {
                Ok(record) => record,
                Err(e) => return Claimed::Answer(internal(&e)),
            };
            if let Some((fingerprint, stored)) = record.completed {
                return Claimed::Answer(if fingerprint == request.fingerprint {
                    replayed(stored)
                } else {
                    reused()
                });
            }
            let recover = match &record.claim {
                None => false,
                Some((_, started)) if started.fingerprint != request.fingerprint => {
                    return Claimed::Answer(reused())
                }
                Some((id, started)) => {
                    if is_in_flight(*id) || !abandoned(started, store.backend_name(), now) {
                        return Claimed::Answer(in_progress());
                    }
                    true
                }
            };
            let claim = Uuid::new_v4();
            // Before the append: from the moment the claim is visible, it is known to be live.
            let guard = InFlight::enter(claim);
            let started = RequestStarted {
                fingerprint: request.fingerprint,
                instance: *INSTANCE,
                started_at: now,
                method: request.method.clone(),
                path: request.path.clone(),
            };
            let event = match self.started_event(&started, claim, metadata.clone()) {
                Ok(event) => event,
                Err(e) => return Claimed::Answer(internal(&e)),
            };
            match store
                .append(
                    stream,
                    ExpectedRevision::after(record.last_revision),
                    vec![event],
                )
                .await
            {
                Ok(result) => {
                    return Claimed::Claim {
                        guard,
                        revision: result.next_expected,
                        recover,
                    }
                }
                // Another request claimed first: look again.
                Err(StoreError::WrongExpectedVersion { .. }) => drop(guard),
                Err(e) => return Claimed::Answer(internal(&e)),
            }
        }
        Claimed::Answer(in_progress())
    }
}

/// A key stream failure: logged with its cause, answered with 503 (nothing was stored, so the
/// retry is safe).
fn internal(request: &KeyedRequest, stream: &str, error: &dyn std::fmt::Display) -> Answer {
    tracing::error!(correlation_id = %request.correlation_id, %stream, %error,
        "idempotency key stream failed");
    Problem::internal(
        503,
        request.correlation_id,
        "the request could not be completed; retry it with the same Idempotency-Key",
    )
    .answer()
}

/// Whether an unfinished claim that is not running in this process may be taken over.
fn abandoned(started: &RequestStarted, backend: &str, now: DateTime<Utc>) -> bool {
    started.instance == *INSTANCE
        || backend == "embedded"
        || now.signed_duration_since(started.started_at) >= TAKEOVER_AFTER
}

fn replayed(mut answer: Answer) -> Answer {
    answer
        .headers
        .push(("idempotent-replayed", "true".to_string()));
    answer
}

fn reused() -> Answer {
    Problem::new(
        422,
        "IDEMPOTENCY_KEY_REUSED",
        "this Idempotency-Key was already used for a different request (method, path or body); \
         use a new key for a new request",
    )
    .answer()
}

fn in_progress() -> Answer {
    Problem::new(
        409,
        "IDEMPOTENCY_IN_PROGRESS",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
    .answer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_at_char_boundaries() {
        let text = "aé".repeat(10);
        let pieces = split_text(&text, 4);
        assert!(pieces.iter().all(|p| p.len() <= 4));
        assert_eq!(pieces.concat(), text);
        assert!(split_text("", 4).is_empty());
    }

    const TEST_KEYS: KeyStreams = KeyStreams {
        category: "testrequest",
        started: "TestRequestStarted.v1",
        response_part: "TestRequestResponsePart.v1",
        completed: "TestRequestCompleted.v1",
        api: "test",
        stream_pattern: "testrequest-<key>",
    };

    #[test]
    fn ids_are_scoped_by_subject_and_stable() {
        assert_eq!(request_id("wms-1", "k"), request_id("wms-1", "k"));
        assert_ne!(request_id("wms-1", "k"), request_id("wms-2", "k"));
        // The separator keeps ("a\nb", "c") and ("a", "b\nc") apart only if keys have no
        // newline, which the header rules guarantee (visible ASCII).
        let r = request_id("wms-1", "k");
        assert_ne!(
            TEST_KEYS.line_causation_id(r, 0),
            TEST_KEYS.line_causation_id(r, 1)
        );
        assert!(TEST_KEYS.request_stream(r).starts_with("testrequest-"));
        assert_ne!(
            fingerprint("POST", "/a", b"{}"),
            fingerprint("POST", "/b", b"{}")
        );
    }

    #[test]
    fn large_answers_round_trip_through_parts() {
        let answer = Answer {
            status: 200,
            content_type: "application/json".into(),
            body: format!("[{}]", "\"x\",".repeat(200_000)),
            headers: Vec::new(),
        };
        let meta = Metadata::new(Actor::system("t"));
        let claim = Uuid::new_v4();
        let events = completion_events(&TEST_KEYS, Uuid::nil(), claim, &answer, &meta).unwrap();
        assert!(events.len() > 2);
        let recorded: Vec<RecordedEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| RecordedEvent {
                id: e.id,
                stream: "testrequest-x".into(),
                revision: i as u64,
                position: crate::store::Position::sequence(i as u64),
                event_type: e.event_type.into(),
                data: e.data.into(),
                metadata: e.metadata,
            })
            .collect();
        let record = fold(&TEST_KEYS, "testrequest-x", &recorded).unwrap();
        assert_eq!(record.completed.unwrap().1, answer);
    }
}
