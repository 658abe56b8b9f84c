//! Loading an aggregate: read its whole stream and fold it, the first step of every command
//! handler (load → decide → append with the loaded revision).

use crate::store::{read_whole_stream, DynEventStore, Position, StoreError};
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
