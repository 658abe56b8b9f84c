//! Crash-test writer: appends to the embedded store in `argv[1]` (or to the PostgreSQL database
//! when `argv[1]` is a `postgres://` URL) from 16 concurrent tasks until killed, printing `ack <stream> <revision> <position> <event-id>` for each acknowledged event
//! only after the store acknowledged it. `tests/crash_recovery.rs` kills it with SIGKILL and
//! checks that every printed event survived. An optional second argument sets
//! `EmbeddedOptions::wal_restart_pages`, so that the kill also lands among background WAL
//! checkpoints and restarts.

use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore};
use ichigen_shared::store::{read_whole_stream, ExpectedRevision};
use std::io::Write;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: append_forever <data-dir> [wal-restart-pages]");
        std::process::exit(2);
    };
    let mut options = EmbeddedOptions::default();
    if let Some(pages) = std::env::args().nth(2).and_then(|p| p.parse().ok()) {
        options.wal_restart_pages = pages;
    }
    let opened: Result<ichigen_shared::store::DynEventStore, _> = if dir.starts_with("postgres://")
    {
        PostgresStore::connect(&dir, PostgresOptions::default())
            .await
            .map(|s| Arc::new(s) as _)
    } else {
        EmbeddedStore::open(std::path::Path::new(&dir), options)
            .await
            .map(|s| Arc::new(s) as _)
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("append_forever: {e}");
            std::process::exit(1);
        }
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            let out = out.clone();
            tokio::spawn(async move {
                let stream = format!("crash-{t}");
                // Resume after earlier runs: continue from the stream's last revision.
                let existing = read_whole_stream(&*store, &stream)
                    .await
                    .unwrap_or_default();
                let mut last = existing.last().map(|e| e.revision);
                loop {
                    let events: Vec<NewEvent> = (0..1 + (t % 3))
                        .map(|i| NewEvent {
                            id: Uuid::new_v4(),
                            event_type: "CrashTested.v1".into(),
                            data: format!("{{\"task\":{t},\"i\":{i}}}").into_bytes(),
                            metadata: Metadata::new(Actor::system("crash-test")),
                        })
                        .collect();
                    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
                    let result = match store
                        .append(&stream, ExpectedRevision::after(last), events)
                        .await
                    {
                        Ok(r) => r,
                        Err(e) => {
                            eprintln!("append failed: {e}");
                            std::process::exit(1);
                        }
                    };
                    let first_rev = result.next_expected + 1 - ids.len() as u64;
                    let first_pos = result.position.commit + 1 - ids.len() as u64;
                    let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                    for (i, id) in ids.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "ack {stream} {} {} {id}",
                            first_rev + i as u64,
                            first_pos + i as u64
                        );
                    }
                    let _ = out.flush();
                    last = Some(result.next_expected);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}
