//! The tail: one task per process that follows the log by position and broadcasts what it
//! reads to this process's live subscriptions.
//!
//! It wakes when this process's writer commits, when any process's commit is notified on
//! [`super::writer::CHANNEL`] (`LISTEN` on a connection of its own, opened again if it
//! drops), and every [`POLL`] regardless, so a lost notification delays delivery by at most
//! that much. Each wake reads every event after the last one it broadcast. Positions are
//! gapless and assigned in commit order (see [`super::writer`]), so reading `position > last`
//! never skips an event that commits later.

use super::{writer, Batch, PostgresStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// Longest wait between two reads when no wake arrives.
const POLL: Duration = Duration::from_millis(250);
/// Events per read.
const PAGE: usize = 2048;

pub(super) fn spawn(
    store: PostgresStore,
    connect: writer::Connect,
    mut last: u64,
    sender: broadcast::Sender<Batch>,
    committed: Arc<Notify>,
    stop: watch::Receiver<bool>,
) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(connect, wake.clone(), stop.clone()));
    tokio::spawn(async move {
        loop {
            // Everything committed after `last`.
            loop {
                match store.read_all_after(last, PAGE).await {
                    Ok(page) if page.is_empty() => break,
                    Ok(page) => {
                        let full = page.len() == PAGE;
                        if let Some(tail) = page.last() {
                            last = tail.position.commit;
                        }
                        // No receiver yet is fine: subscriptions catch up from the table.
                        let _ = sender.send(Arc::new(page));
                        if !full {
                            break;
                        }
                    }
                    Err(crate::store::StoreError::Closed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "the PostgreSQL tail could not read; retrying");
                        break;
                    }
                }
            }
            let mut stopped = stop.clone();
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = committed.notified() => {}
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// Keeps a `LISTEN` connection open and wakes the tail on every notification.
async fn listen(connect: writer::Connect, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let (client, mut notifications) = connect.connect_listening().await?;
            client
                .batch_execute(&format!("LISTEN {}", writer::CHANNEL))
                .await
                .map_err(super::schema::store_error)?;
            while notifications.recv().await.is_some() {
                wake.notify_one();
            }
            drop(client);
            Ok::<(), crate::store::StoreError>(())
        };
        let mut stopped = stop.clone();
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            ended = session => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "PostgreSQL LISTEN connection failed; reopening");
                }
            }
        }
        let mut stopped = stop.clone();
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
