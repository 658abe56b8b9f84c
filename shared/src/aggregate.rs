//! Loading an aggregate (read its whole stream and fold it) and running a command on it: load →
//! decide → append with the loaded revision, again on a concurrent write. Every handler that
//! owns a stream outright (locations, catalog, fulfillment orders, orders, returns) goes
//! through [`execute`]; the stock handlers keep their own single writer per stream.

use crate::envelope::{Metadata, NewEvent};
use crate::store::{read_whole_stream, DynEventStore, ExpectedRevision, Position, StoreError};
use std::collections::HashMap;
use uuid::Uuid;

/// How an aggregate reads a stored event back from its type and data: `None` for a type it
/// does not know.
pub type Decoder<E> = fn(&str, &[u8]) -> Option<Result<E, serde_json::Error>>;

#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event this build cannot read (bad payload, or a type from a newer writer).
    #[error("stream {stream} holds an event this build cannot read: {detail}")]
    Unreadable { stream: String, detail: String },
}

/// Reads a whole stream and folds it with `apply`: the state and the revision it reflects
/// (`None` for no stream). An event this build cannot read is an error: deciding on a state we
/// cannot see whole could break an invariant.
pub async fn fold_stream<S: Default, E>(
    store: &DynEventStore,
    stream: &str,
    decode: Decoder<E>,
    apply: fn(&mut S, &E),
) -> Result<(S, Option<u64>), FoldError> {
    fold_stream_noting(store, stream, decode, apply, &HashMap::new(), |_, _, _| {}).await
}

/// [`fold_stream`], calling `seen(line, state, position)` after each event whose causation id
/// `causes` maps to a line: how an idempotent request's recovery finds which of its lines an
/// earlier attempt applied, and the state right after each (a line's events are contiguous,
/// so the last call for a line is the state after all of them).
pub async fn fold_stream_noting<S: Default, E>(
    store: &DynEventStore,
    stream: &str,
    decode: Decoder<E>,
    apply: fn(&mut S, &E),
    causes: &HashMap<Uuid, usize>,
    mut seen: impl FnMut(usize, &S, Position),
) -> Result<(S, Option<u64>), FoldError> {
    let recorded = read_whole_stream(store.as_ref(), stream).await?;
    let mut state = S::default();
    for r in &recorded {
        match decode(&r.event_type, &r.data) {
            Some(Ok(event)) => apply(&mut state, &event),
            Some(Err(e)) => {
                return Err(FoldError::Unreadable {
                    stream: stream.to_string(),
                    detail: format!("{} at revision {}: {e}", r.event_type, r.revision),
                })
            }
            None => {
                return Err(FoldError::Unreadable {
                    stream: stream.to_string(),
                    detail: format!("unknown event type {}", r.event_type),
                })
            }
        }
        if let Some(&line) = r.metadata.causation_id.as_ref().and_then(|c| causes.get(c)) {
            seen(line, &state, r.position);
        }
    }
    Ok((state, recorded.last().map(|r| r.revision)))
}

/// How many times [`execute`] reloads after a concurrent write before giving up.
pub const MAX_CONFLICT_RETRIES: usize = 8;

/// Where [`execute`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Read and fold the stream first (the usual case).
    Load,
    /// Decide on the empty state and append with `NoStream`, reading the stream only if it
    /// turns out to exist: for commands that create their stream under a fresh or derived id,
    /// where the read would almost always find nothing (one store round trip saved).
    AssumeNew,
}

/// How [`execute`] turns a decided event into a stored one.
pub struct Encoding<E> {
    pub event_type: fn(&E) -> &'static str,
    pub payload: fn(&E) -> Result<Vec<u8>, serde_json::Error>,
}

/// What [`execute`] did: the events decided (empty for a retry that changed nothing), the
/// state after them, and the position they reached.
#[derive(Debug, Clone)]
pub struct Executed<S, E> {
    pub events: Vec<E>,
    pub state: S,
    pub position: Option<Position>,
}

/// Why [`execute`] failed: the domain refused (`Decide`), or the store or the stream did.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<D> {
    #[error(transparent)]
    Decide(D),
    #[error(transparent)]
    Fold(#[from] FoldError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode an event: {0}")]
    Encode(String),
    #[error("stream {0} kept changing under concurrent writers; try again")]
    Contended(String),
}

/// Runs one command on the aggregate in `stream`: fold it (or start empty, see [`Start`]),
/// `decide`, and append the events expecting the revision folded. A concurrent write makes
/// the append fail with `WrongExpectedVersion`; then the stream is folded again and the command
/// decided again on the new state, up to [`MAX_CONFLICT_RETRIES`] times: never a lost update.
/// Each event gets a fresh id.
#[allow(clippy::too_many_arguments)]
pub async fn execute<S: Default, E, D>(
    store: &DynEventStore,
    stream: &str,
    decode: Decoder<E>,
    apply: fn(&mut S, &E),
    encoding: &Encoding<E>,
    start: Start,
    metadata: &Metadata,
    mut decide: impl FnMut(&S) -> Result<Vec<E>, D>,
) -> Result<Executed<S, E>, ExecuteError<D>> {
    let mut load = start == Start::Load;
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut state, revision) = if load {
            fold_stream(store, stream, decode, apply).await?
        } else {
            (S::default(), None)
        };
        load = true;
        let events = decide(&state).map_err(ExecuteError::Decide)?;
        for e in &events {
            apply(&mut state, e);
        }
        if events.is_empty() {
            return Ok(Executed {
                events,
                state,
                position: None,
            });
        }
        let new_events = events
            .iter()
            .map(|e| {
                Ok(NewEvent {
                    id: Uuid::new_v4(),
                    event_type: (encoding.event_type)(e).to_string(),
                    data: (encoding.payload)(e).map_err(|e| ExecuteError::Encode(e.to_string()))?,
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, ExecuteError<D>>>()?;
        match store
            .append(stream, ExpectedRevision::after(revision), new_events)
            .await
        {
            Ok(appended) => {
                return Ok(Executed {
                    events,
                    state,
                    position: Some(appended.position),
                })
            }
            Err(StoreError::WrongExpectedVersion { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ExecuteError::Contended(stream.to_string()))
}

#[cfg(test)]
mod tests {
    //! [`execute`] against a real embedded store: a counter aggregate whose command says
    //! "add `n` unless the total would pass `limit`".
    use super::*;
    use crate::auth::Actor;
    use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
    use std::sync::Arc;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Added(i64);

    #[derive(Default, Debug)]
    struct Counter {
        total: i64,
        events: usize,
    }

    fn apply(state: &mut Counter, e: &Added) {
        state.total += e.0;
        state.events += 1;
    }

    fn decode(event_type: &str, data: &[u8]) -> Option<Result<Added, serde_json::Error>> {
        (event_type == "Added.v1").then(|| serde_json::from_slice(data))
    }

    const ENCODING: Encoding<Added> = Encoding {
        event_type: |_| "Added.v1",
        payload: |e| serde_json::to_vec(e),
    };

    fn add(n: i64, limit: i64) -> impl FnMut(&Counter) -> Result<Vec<Added>, String> {
        move |c| {
            if c.total + n > limit {
                Err(format!("{} + {n} passes {limit}", c.total))
            } else {
                Ok(vec![Added(n)])
            }
        }
    }

    async fn store() -> (tempfile::TempDir, DynEventStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .expect("store");
        (dir, Arc::new(store))
    }

    fn metadata() -> Metadata {
        Metadata::new(Actor::system("test"))
    }

    async fn run(
        store: &DynEventStore,
        start: Start,
        n: i64,
        limit: i64,
    ) -> Result<Executed<Counter, Added>, ExecuteError<String>> {
        execute(
            store,
            "counter-1",
            decode,
            apply,
            &ENCODING,
            start,
            &metadata(),
            add(n, limit),
        )
        .await
    }

    #[tokio::test]
    async fn assume_new_on_an_existing_stream_reloads_and_decides_on_the_real_state() {
        let (_dir, store) = store().await;
        run(&store, Start::Load, 5, 10).await.expect("first");
        // Deciding on the empty state would allow +6; the stream holds 5, so it is refused.
        let refused = run(&store, Start::AssumeNew, 6, 10).await;
        assert!(
            matches!(refused, Err(ExecuteError::Decide(_))),
            "{refused:?}"
        );
        let done = run(&store, Start::AssumeNew, 5, 10).await.expect("fits");
        assert_eq!((done.state.total, done.state.events), (10, 2));
        let (reloaded, revision) = fold_stream::<Counter, _>(&store, "counter-1", decode, apply)
            .await
            .expect("fold");
        assert_eq!((reloaded.total, revision), (10, Some(1)));
    }

    #[tokio::test]
    async fn concurrent_commands_never_lose_an_update_nor_pass_the_limit() {
        let (_dir, store) = store().await;
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { run(&store, Start::Load, 1, 10).await })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => accepted += 1,
                Err(ExecuteError::Decide(_)) | Err(ExecuteError::Contended(_)) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        let (state, _) = fold_stream::<Counter, _>(&store, "counter-1", decode, apply)
            .await
            .expect("fold");
        assert_eq!(
            state.total, accepted,
            "every accepted command is in the stream"
        );
        assert!(state.total <= 10);
    }

    #[tokio::test]
    async fn a_refusal_appends_nothing() {
        let (_dir, store) = store().await;
        assert!(run(&store, Start::Load, 11, 10).await.is_err());
        assert_eq!(store.head().await.expect("head"), None);
    }
}
