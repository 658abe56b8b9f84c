//! One of two processes racing on the same PostgreSQL streams (`tests/postgres_backend.rs`).
//!
//! `pg_racer <url> <tag> <rounds> <total>`: appends `rounds` events to each of the streams
//! `race-0` … `race-3`, each with the exact revision it last read, retrying on
//! `WrongExpectedVersion` until it wins; prints `won <stream> <revision> <id>` for each win and
//! `lost <n>` at the end of the race. Meanwhile it follows the `race` category from the start
//! and, once it has seen `total` events, prints `seen <position> <id>` for each in the order
//! delivered, then exits.

use ichigen_shared::auth::Actor;
use ichigen_shared::envelope::{Metadata, NewEvent};
use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore};
use ichigen_shared::store::{
    EventStore, ExpectedRevision, StoreError, SubscribeFrom, SubscriptionFilter,
};
use std::io::Write;
use uuid::Uuid;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(tag), Some(rounds), Some(total)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|r| r.parse::<u64>().ok()),
        args.get(4).and_then(|t| t.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: pg_racer <url> <tag> <rounds> <total>");
        std::process::exit(2);
    };
    let store = match PostgresStore::connect(url, PostgresOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pg_racer: {e}");
            std::process::exit(1);
        }
    };
    let mut sub = store
        .subscribe(
            SubscribeFrom::Start,
            SubscriptionFilter::categories(["race"]),
        )
        .await
        .unwrap_or_else(|e| fail(&e));
    let follower = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(total);
        while seen.len() < total {
            match sub.next().await {
                Some(Ok(e)) => seen.push((e.position, e.id)),
                Some(Err(e)) => fail(&e),
                None => break,
            }
        }
        seen
    });
    let mut out = std::io::stdout().lock();
    let mut lost = 0u64;
    for round in 0..rounds {
        for k in 0..4 {
            let stream = format!("race-{k}");
            loop {
                let current = store
                    .read_stream(&stream, 0, usize::MAX)
                    .await
                    .unwrap_or_else(|e| fail(&e))
                    .last()
                    .map(|e| e.revision);
                let event = NewEvent {
                    id: Uuid::new_v4(),
                    event_type: "Raced.v1".into(),
                    data: format!("{{\"tag\":\"{tag}\",\"round\":{round}}}").into_bytes(),
                    metadata: Metadata::new(Actor::system("pg-racer")),
                };
                let id = event.id;
                match store
                    .append(&stream, ExpectedRevision::after(current), vec![event])
                    .await
                {
                    Ok(r) => {
                        let _ = writeln!(out, "won {stream} {} {id}", r.next_expected);
                        break;
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => lost += 1,
                    Err(e) => fail(&e),
                }
            }
        }
    }
    let _ = writeln!(out, "lost {lost}");
    let seen = follower.await.unwrap_or_default();
    for (position, id) in seen {
        let _ = writeln!(out, "seen {position} {id}");
    }
    let _ = out.flush();
    store.shutdown().await;
}

fn fail(e: &StoreError) -> ! {
    eprintln!("pg_racer: {e}");
    std::process::exit(1)
}
