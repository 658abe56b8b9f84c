//! A fixed set of async locks picked by an id: "one at a time per order" in this process
//! without a lock per order (which would grow without bound) and without one global lock
//! (which would serialise unrelated orders). Two ids may share a stripe; that only makes one
//! wait for the other, never lets two holders of the same id in.

use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Striped async locks keyed by a [`Uuid`].
pub struct StripedLock {
    stripes: Vec<Mutex<()>>,
}

impl StripedLock {
    /// `stripes` locks (at least one).
    pub fn new(stripes: usize) -> Self {
        StripedLock {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for `id`'s stripe and holds it until the guard is dropped.
    pub async fn lock(&self, id: Uuid) -> MutexGuard<'_, ()> {
        let stripe = (id.as_u128() % self.stripes.len() as u128) as usize;
        // `stripe < len` by construction; the first stripe is only a fallback for the types.
        let lock = self.stripes.get(stripe).unwrap_or(&self.stripes[0]);
        lock.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holders_of_one_id_never_overlap() {
        let locks = Arc::new(StripedLock::new(4));
        let inside = Arc::new(AtomicUsize::new(0));
        let id = Uuid::new_v4();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (locks, inside) = (locks.clone(), inside.clone());
                tokio::spawn(async move {
                    let _guard = locks.lock(id).await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    }
}
