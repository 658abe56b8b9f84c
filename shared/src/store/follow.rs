//! Catch-up subscriptions that turn live, for backends whose positions are gapless sequence
//! numbers with a broadcast of what was committed (the embedded store's writer, the PostgreSQL
//! tail).
//!
//! The handover has no gap and no duplicate because of the order of three steps:
//! 1. take a receiver of the broadcast of committed batches;
//! 2. read the log from the start position until a read comes back short;
//! 3. follow the receiver, skipping positions already delivered.
//!
//! A batch is broadcast only once it is committed (visible to reads), so an event is either
//! visible to the reads of step 2 or broadcast after step 1 (or both, and then deduplicated by
//! position); an event committed before step 1 but after the start position is read by step 2.
//! Positions are gapless, so a jump in the live feed (a subscriber too slow for the broadcast
//! buffer) is seen, and the subscription goes back to step 1.
//!
//! After each page of step 2 and each batch of step 3 whose last events the filter skipped, the
//! subscription sends a [`SubscriptionItem::Checkpoint`] of the last position it scanned, so a
//! filtered consumer's position follows the log, not just the events it takes. An unfiltered
//! subscription (or one whose page ended on a delivered event) sends none.

use crate::envelope::RecordedEvent;
use crate::store::{Position, StoreError, Subscription, SubscriptionFilter, SubscriptionItem};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

/// Events read per page of the catch-up.
const PAGE: usize = 2048;
/// Items a subscription buffers before its consumer must take them.
const DELIVERY_BUFFER: usize = 4096;

/// A committed batch, in position order.
pub(crate) type Batch = Arc<Vec<RecordedEvent>>;

/// What a backend gives a subscription to follow.
#[async_trait]
pub(crate) trait Log: Send + Sync + 'static {
    /// Up to `max` events after the sequence number `after`, in order.
    async fn read_after(&self, after: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError>;
    /// A new receiver of committed batches (sees batches committed from now on).
    fn live(&self) -> broadcast::Receiver<Batch>;
}

/// Starts a subscription after the sequence number `start` (0: from the first event).
pub(crate) fn spawn<L: Log>(log: L, start: u64, filter: SubscriptionFilter) -> Subscription {
    let (tx, rx) = mpsc::channel(DELIVERY_BUFFER);
    let mut live = log.live();
    let mut last = start;
    tokio::spawn(async move {
        // Last position delivered, as an event or a checkpoint.
        let mut sent = last;
        'catch_up: loop {
            // Step 2: history.
            loop {
                let page = match log.read_after(last, PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                let done = page.len() < PAGE;
                for event in page {
                    last = event.position.commit;
                    if filter.matches(&event.stream, &event.event_type) {
                        sent = last;
                        if tx.send(Ok(SubscriptionItem::Event(event))).await.is_err() {
                            return;
                        }
                    }
                }
                if !checkpoint(&tx, &mut sent, last).await {
                    return;
                }
                if done {
                    break;
                }
            }
            // Step 3: live.
            loop {
                let batch = tokio::select! {
                    _ = tx.closed() => return,
                    batch = live.recv() => batch,
                };
                match batch {
                    Ok(batch) => {
                        for event in batch.iter() {
                            let seq = event.position.commit;
                            if seq <= last {
                                continue;
                            }
                            if seq != last + 1 {
                                live = live.resubscribe();
                                continue 'catch_up;
                            }
                            last = seq;
                            if filter.matches(&event.stream, &event.event_type) {
                                sent = last;
                                if tx
                                    .send(Ok(SubscriptionItem::Event(event.clone())))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                        if !checkpoint(&tx, &mut sent, last).await {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        live = live.resubscribe();
                        continue 'catch_up;
                    }
                    // The store shut down: end the subscription.
                    Err(RecvError::Closed) => return,
                }
            }
        }
    });
    Subscription::from_channel(rx)
}

/// Sends a checkpoint at `last` if the subscription scanned past what it delivered; `false` once
/// the consumer is gone.
async fn checkpoint(tx: &Sender, sent: &mut u64, last: u64) -> bool {
    if last <= *sent {
        return true;
    }
    *sent = last;
    tx.send(Ok(SubscriptionItem::Checkpoint(Position::sequence(last))))
        .await
        .is_ok()
}

type Sender = mpsc::Sender<Result<SubscriptionItem, crate::store::StoreError>>;
