//! Catch-up subscriptions that turn live.
//!
//! The handover has no gap and no duplicate because of the order of three steps:
//! 1. take a receiver of the writer's broadcast of committed batches;
//! 2. read the table from the start position until a read comes back empty;
//! 3. follow the receiver, skipping positions already delivered.
//!
//! The writer broadcasts a batch after its commit, so an event is either visible to the reads of
//! step 2 or broadcast after step 1 (or both, and then deduplicated by position). Positions are
//! gapless, so a jump in the live feed (a subscriber too slow for the broadcast buffer) is seen,
//! and the subscription goes back to step 1.
//!
//! After each page of step 2 and each batch of step 3 whose last events the filter skipped, the
//! subscription sends a [`SubscriptionItem::Checkpoint`] of the last position it scanned, so a
//! filtered consumer's position follows the log, not just the events it takes. An unfiltered
//! subscription (or one whose page ended on a delivered event) sends none.

use super::EmbeddedStore;
use crate::store::{Position, SubscribeFrom, Subscription, SubscriptionFilter, SubscriptionItem};
use std::sync::atomic::Ordering;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

const PAGE: usize = 2048;
const DELIVERY_BUFFER: usize = 4096;

pub(super) fn spawn(
    store: EmbeddedStore,
    from: SubscribeFrom,
    filter: SubscriptionFilter,
) -> Subscription {
    let (tx, rx) = mpsc::channel(DELIVERY_BUFFER);
    // Step 1 happens before the start position is read, so `End` misses nothing either.
    let mut live = store.live_receiver();
    let mut last = match from {
        SubscribeFrom::Start => 0,
        SubscribeFrom::After(p) => p.commit,
        SubscribeFrom::End => store.inner.head.load(Ordering::Acquire),
    };
    tokio::spawn(async move {
        // Last position delivered, as an event or a checkpoint.
        let mut sent = last;
        'catch_up: loop {
            // Step 2: history.
            loop {
                let page = match store.read_all_after(last, PAGE).await {
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
