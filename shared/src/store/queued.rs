//! An append handed to a backend's single writer (the embedded store's thread, the PostgreSQL
//! writer task): checked first, queued, answered once the writer decided it.

use crate::envelope::NewEvent;
use crate::store::{validate_append, AppendResult, ExpectedRevision, StoreError};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One append waiting for the writer.
pub(crate) struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedRevision,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult, StoreError>>,
    pub enqueued: Instant,
}

/// Checks what every backend checks (stream name, ids, payload size), queues the append with
/// `wrap` (the writer's command for it) and waits for the answer. The writer always answers; a
/// dropped reply means it stopped mid-batch (the batch was not acknowledged, so the caller may
/// retry with the same ids).
pub(crate) async fn submit<C>(
    commands: &mpsc::Sender<C>,
    wrap: fn(AppendRequest) -> C,
    stream: &str,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
    max_event_bytes: usize,
) -> Result<AppendResult, StoreError> {
    validate_append(stream, &events)?;
    if let Some(big) = events.iter().find(|e| e.data.len() > max_event_bytes) {
        return Err(StoreError::EventTooLarge {
            size: big.data.len(),
            limit: max_event_bytes,
        });
    }
    let (reply, answer) = oneshot::channel();
    let request = AppendRequest {
        stream: stream.to_string(),
        expected,
        events,
        reply,
        enqueued: Instant::now(),
    };
    commands
        .send(wrap(request))
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}
