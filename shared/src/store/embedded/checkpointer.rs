//! WAL checkpoints off the write path.
//!
//! In WAL mode every commit appends pages to the `-wal` file; a checkpoint copies them back
//! into the database file (and, for the log, syncs it) so the WAL can start over. SQLite's
//! automatic checkpoint runs inside the commit that crosses its threshold: under load the
//! writer copied thousands of pages and synced the database file before answering its batch,
//! 10–50 ms several times a second, which every order in flight waited for (the recurring
//! p99 steps in the orders benchmark). So the writer and the indexer turn automatic
//! checkpoints off, and this thread, on a connection of its own, copies pages with PASSIVE
//! checkpoints, which never block a writer.
//!
//! A WAL only starts over when a write transaction begins while every frame in it has been
//! copied, which under steady writes never happens by itself: frames keep arriving while this
//! thread copies. So once a WAL has grown past its restart size, this thread copies it until
//! little is left and then asks its owner (the writer for the log, the indexer for the index)
//! to copy the rest itself between two batches ([`Finish`]): a few frames and, for the log,
//! one small sync. The owner's next write transaction then restarts the WAL.

use super::schema;
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// WAL frames (pages) past which a WAL is brought back to its start by default
/// ([`super::EmbeddedOptions::wal_restart_pages`]): 16 MiB of 4 KiB pages, about what
/// `wal_autocheckpoint = 4000` used to allow.
pub(super) const RESTART_PAGES: u32 = 4096;

/// How often the thread looks at the WALs while nothing asks it to.
const INTERVAL: Duration = Duration::from_millis(50);

/// Frames left uncopied small enough for the owner to copy between two batches.
const FINISH_FRAMES: i64 = 256;

/// Passes in a row before the owner is asked to finish anyway (writes may outrun the copying).
const MAX_PASSES: usize = 4;

/// "Copy what is left of your WAL": set by the checkpointer, run by the owner thread of one
/// schema (`main` for the writer, `idx` for the indexer).
pub(super) struct Finish {
    db: &'static str,
    asked: AtomicBool,
}

impl Finish {
    fn new(db: &'static str) -> Self {
        Finish {
            db,
            asked: AtomicBool::new(false),
        }
    }

    /// On the owner's thread, between two batches: if the checkpointer asked, copies what is
    /// left of the WAL on the owner's connection, so its next write transaction restarts it.
    /// A failure is logged and left for the next request.
    pub(super) fn run_if_asked(&self, conn: &Connection) {
        if !(self.asked.load(Ordering::Relaxed) && self.asked.swap(false, Ordering::AcqRel)) {
            return;
        }
        match passive(conn, self.db) {
            Ok(_) => {}
            // The checkpoint thread is copying this very moment: it asks again after its pass.
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => {
                tracing::warn!(db = self.db, error = %e, "finishing WAL checkpoint failed; retried later")
            }
        }
    }

    fn ask(&self) {
        self.asked.store(true, Ordering::Release);
    }
}

/// (log frames, frames copied) after one PASSIVE checkpoint of `db`.
fn passive(conn: &Connection, db: &str) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(&format!("PRAGMA {db}.wal_checkpoint(PASSIVE)"), [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

pub(super) struct Checkpointer {
    /// The writer's request flag (the log, `main`).
    pub log: Arc<Finish>,
    /// The indexer's request flag (the index, `idx`).
    pub index: Arc<Finish>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; a WAL past `restart_pages` frames is brought back to its start.
    /// `head` is the writer's last committed position: while it stands still there is nothing
    /// new to copy, and an idle store's thread only looks at it.
    pub(super) fn start(
        file: &Path,
        restart_pages: u32,
        head: Arc<AtomicU64>,
    ) -> Result<Self, StoreError> {
        let conn = schema::open_checkpointer(file)?;
        let restart = i64::from(restart_pages.max(1));
        let log = Arc::new(Finish::new("main"));
        let index = Arc::new(Finish::new("idx"));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (log, index, stop) = (log.clone(), index.clone(), stop.clone());
            std::thread::Builder::new()
                .name("ichigen-store-checkpoint".into())
                .spawn(move || run(&conn, restart, &head, [&log, &index], &stop))
                .map_err(|e| StoreError::Io(format!("cannot start the checkpoint thread: {e}")))?
        };
        Ok(Checkpointer {
            log,
            index,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (before the writer's last checkpoint, which must not find it busy).
    pub(super) fn stop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    conn: &Connection,
    restart: i64,
    head: &AtomicU64,
    owners: [&Finish; 2],
    stop: &(Mutex<bool>, Condvar),
) {
    let (flag, wake) = stop;
    let mut copied_upto = None;
    loop {
        {
            let stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) = wake
                .wait_timeout(stopped, INTERVAL)
                .unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
        }
        // Nothing committed since the last look. (The index follows the log, so an index
        // commit that landed after that look waits in its WAL for the next write; shutdown
        // folds both WALs in.)
        let now = head.load(Ordering::Acquire);
        if copied_upto == Some(now) {
            continue;
        }
        copied_upto = Some(now);
        for owner in owners {
            pass(conn, restart, owner);
        }
    }
}

/// Copies the owner's WAL; if it is past `restart` frames, copies again until a pass finds few
/// new frames (so few arrive during the next), then asks the owner to finish.
fn pass(conn: &Connection, restart: i64, owner: &Finish) {
    let db = owner.db;
    let mut previous: Option<i64> = None;
    for _ in 0..MAX_PASSES {
        match passive(conn, db) {
            // Nothing to restart yet (or not in WAL mode: -1).
            Ok((log, _)) if log < restart => return,
            Ok((log, _)) => {
                let fresh = previous.map_or(log, |p| log - p);
                previous = Some(log);
                if fresh <= FINISH_FRAMES {
                    break;
                }
            }
            // Busy (the owner's own finishing checkpoint runs) or I/O: try again next time.
            Err(e) => {
                tracing::debug!(db, error = %e, "background WAL checkpoint skipped");
                return;
            }
        }
    }
    owner.ask();
}

#[cfg(test)]
mod tests {
    use crate::auth::Actor;
    use crate::envelope::{Metadata, NewEvent};
    use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
    use crate::store::{EventStore, ExpectedRevision};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn wal_bytes(dir: &Path, file: &str) -> u64 {
        std::fs::metadata(dir.join(format!("{file}-wal"))).map_or(0, |m| m.len())
    }

    /// With automatic checkpoints off, a WAL starts over only if something brings it back to
    /// its start while writes keep coming: 8 writers append ~45 MiB without a pause, and
    /// neither WAL (the log's, the index's) may keep more than a fraction of it (without the
    /// restarts the log's grew past all of it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_writes_both_wals_start_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = EmbeddedOptions {
            wal_restart_pages: 256,
            ..EmbeddedOptions::default()
        };
        let store = Arc::new(
            EmbeddedStore::open(dir.path(), options.clone())
                .await
                .expect("store"),
        );
        const WRITERS: u64 = 8;
        const APPENDS: u64 = 800;
        let payload = "x".repeat(7_000);
        let largest = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let watcher = {
            let (dir, largest) = (dir.path().to_path_buf(), largest.clone());
            tokio::spawn(async move {
                loop {
                    let now = [
                        wal_bytes(&dir, EmbeddedStore::FILE_NAME),
                        wal_bytes(&dir, super::schema::INDEX_FILE_NAME),
                    ];
                    for (max, now) in largest.iter().zip(now) {
                        max.fetch_max(now, Ordering::Relaxed);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, payload) = (store.clone(), payload.clone());
                tokio::spawn(async move {
                    for i in 0..APPENDS {
                        // Many streams, so the index's pages are scattered too.
                        let data = format!("{{\"w\":{w},\"i\":{i},\"pad\":\"{payload}\"}}");
                        store
                            .append(
                                &format!("wal-{w}x{}", i % 97),
                                ExpectedRevision::Any,
                                vec![NewEvent {
                                    id: uuid::Uuid::new_v4(),
                                    event_type: "Padded.v1".into(),
                                    data: data.into_bytes(),
                                    metadata: Metadata::new(Actor::system("wal-test")),
                                }],
                            )
                            .await
                            .expect("append");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        watcher.abort();
        let written = WRITERS * APPENDS * 7_000;
        let [log_wal, index_wal] = [0, 1].map(|i| largest[i].load(Ordering::Relaxed));
        assert!(
            log_wal < written / 3,
            "the log's WAL reached {log_wal} bytes of {written} written"
        );
        assert!(
            index_wal < 8 << 20,
            "the index's WAL reached {index_wal} bytes"
        );
        // Everything is still there after the WALs were copied and restarted, also reopened.
        store.shutdown().await;
        drop(store);
        let store = EmbeddedStore::open(dir.path(), options)
            .await
            .expect("reopen");
        let mut count = 0;
        let mut after = None;
        loop {
            let page = store.read_all(after, 1_000).await.expect("read_all");
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            count += page.len() as u64;
        }
        assert_eq!(count, WRITERS * APPENDS);
        let stream = crate::store::read_whole_stream(&store, "wal-3x5")
            .await
            .expect("stream");
        assert_eq!(stream.len(), (0..APPENDS).filter(|i| i % 97 == 5).count());
        store.shutdown().await;
    }
}
