//! Durability: a child process appends continuously and is killed with SIGKILL; after a restart
//! every event it saw acknowledged is there, in order, and the store opens cleanly and takes
//! new appends. Three kills at different moments on the same data directory. And a data
//! directory whose files disagree (an emptied, missing or older log) is refused, never opened
//! as a shorter or empty history.

use ichigen_shared::store::embedded::schema::INDEX_FILE_NAME;
use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, EventStore, ExpectedRevision, StoreError};
use ichigen_tests::conformance::event;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Ack {
    stream: String,
    revision: u64,
    position: u64,
    id: uuid::Uuid,
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    if parts.next()? != "ack" {
        return None;
    }
    Some(Ack {
        stream: parts.next()?.to_string(),
        revision: parts.next()?.parse().ok()?,
        position: parts.next()?.parse().ok()?,
        id: parts.next()?.parse().ok()?,
    })
}

/// Runs the writer until it has printed `acks` acknowledgements, then SIGKILLs it. The writer's
/// WALs restart every 16 pages, so the kill comes among background checkpoints and restarts.
fn run_and_kill(dir: &std::path::Path, acks: usize) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_append_forever"))
        .arg(dir)
        .arg("16")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < acks && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => seen.extend(parse(&line)),
            _ => break,
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush, no WAL checkpoint.
    child.kill().unwrap();
    child.wait().unwrap();
    // Acks printed before the kill but not yet read are acknowledged too.
    for line in lines.map_while(Result::ok) {
        seen.extend(parse(&line));
    }
    assert!(
        seen.len() >= acks,
        "writer produced only {} acks",
        seen.len()
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<Ack> = Vec::new();
    for (round, acks) in [1500, 4000, 700].into_iter().enumerate() {
        acked.extend(run_and_kill(dir.path(), acks));

        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .unwrap_or_else(|e| panic!("round {round}: store does not reopen: {e}"));
        // Every acknowledged event is at its revision and position.
        let mut streams: HashMap<String, Vec<_>> = HashMap::new();
        for ack in &acked {
            if !streams.contains_key(&ack.stream) {
                let events = read_whole_stream(&store, &ack.stream).await.unwrap();
                streams.insert(ack.stream.clone(), events);
            }
            let events = &streams[&ack.stream];
            let stored = events.get(ack.revision as usize).unwrap_or_else(|| {
                panic!("round {round}: lost {} rev {}", ack.stream, ack.revision)
            });
            assert_eq!(stored.id, ack.id);
            assert_eq!(stored.position.commit, ack.position);
        }
        // Streams are gapless and $all is one gapless, ordered sequence.
        for events in streams.values() {
            assert!(events
                .iter()
                .enumerate()
                .all(|(i, e)| e.revision == i as u64));
        }
        let mut after = None;
        let mut expected_seq = 1;
        loop {
            let page = store.read_all(after, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.position);
            for e in &page {
                assert_eq!(
                    e.position.commit, expected_seq,
                    "round {round}: $all gapless"
                );
                expected_seq += 1;
            }
        }
        // And it takes new appends.
        let r = store
            .append(
                "crash-after",
                ExpectedRevision::Any,
                vec![event("After.v1", serde_json::json!({}))],
            )
            .await
            .unwrap();
        assert_eq!(r.position.commit, expected_seq);
        store.shutdown().await;
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let second = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).await;
    assert!(matches!(
        second,
        Err(ichigen_shared::store::StoreError::Locked { .. })
    ));
    first.shutdown().await;
    // Released on shutdown.
    let again = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    again.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_or_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(EmbeddedStore::FILE_NAME),
        b"this is not a database, just some text that is long enough to look like a header....",
    )
    .unwrap();
    let opened = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).await;
    assert!(
        matches!(opened, Err(ichigen_shared::store::StoreError::Corrupt(_))),
        "{:?}",
        opened.err()
    );
}

#[tokio::test]
async fn a_lost_stream_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    for i in 0..5u64 {
        let expected = ExpectedRevision::after(i.checked_sub(1));
        store
            .append(
                "idx-a",
                expected,
                vec![event("Indexed.v1", serde_json::json!({ "i": i }))],
            )
            .await
            .unwrap();
    }
    store.shutdown().await;
    let index = dir
        .path()
        .join(ichigen_shared::store::embedded::schema::INDEX_FILE_NAME);
    // Garbage instead of the index: it is derived data, so the store rebuilds it.
    std::fs::write(&index, vec![9u8; 4096]).unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    let events = read_whole_stream(&store, "idx-a").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    // Revisions continue from the rebuilt index, not from zero.
    let r = store
        .append(
            "idx-a",
            ExpectedRevision::Exact(4),
            vec![event("Indexed.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(r.next_expected, 5);
    assert!(store
        .append(
            "idx-a",
            ExpectedRevision::NoStream,
            vec![event("Indexed.v1", serde_json::json!({}))]
        )
        .await
        .is_err());
    store.shutdown().await;
}

/// A store with 50 acknowledged events in `dir`, shut down cleanly (no WAL left).
async fn store_with_50_events(dir: &std::path::Path) -> Vec<uuid::Uuid> {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..50u64 {
        let e = event("Received.v1", serde_json::json!({ "i": i }));
        ids.push(e.id);
        store
            .append(&format!("files-{}", i % 5), ExpectedRevision::Any, vec![e])
            .await
            .unwrap();
    }
    store.shutdown().await;
    ids
}

async fn refused(dir: &std::path::Path) -> String {
    match EmbeddedStore::open(dir, EmbeddedOptions::default()).await {
        Err(StoreError::Corrupt(message)) => message,
        Err(other) => panic!("refused with the wrong error: {other}"),
        Ok(store) => {
            let head = store.head().await.unwrap();
            store.shutdown().await;
            panic!("opened (head {head:?}) instead of refusing")
        }
    }
}

async fn all_ids(dir: &std::path::Path) -> Vec<uuid::Uuid> {
    let store = EmbeddedStore::open(dir, EmbeddedOptions::default())
        .await
        .unwrap();
    let events = store.read_all(None, 10_000).await.unwrap();
    store.shutdown().await;
    events.iter().map(|e| e.id).collect()
}

/// The QA case: the log emptied on disk while the index (or only the marker written when the
/// store was created) remains. The store refuses to open, changes nothing, and opens with
/// every event once the log is put back.
#[tokio::test]
async fn an_emptied_or_missing_log_is_refused_not_opened_as_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let ids = store_with_50_events(dir.path()).await;
    let log = dir.path().join(EmbeddedStore::FILE_NAME);
    let index = dir.path().join(INDEX_FILE_NAME);
    let saved_log = std::fs::read(&log).unwrap();
    let saved_index = std::fs::read(&index).unwrap();

    // Emptied beside the index.
    std::fs::write(&log, b"").unwrap();
    let message = refused(dir.path()).await;
    assert!(
        message.contains("events.sqlite") && message.contains("empty"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&index).unwrap(),
        saved_index,
        "the index is left alone"
    );
    // Emptied, and the index deleted too: the marker still tells.
    std::fs::remove_file(&index).unwrap();
    let message = refused(dir.path()).await;
    assert!(message.contains("STORE"), "{message}");
    // Missing altogether beside an index.
    std::fs::remove_file(&log).unwrap();
    std::fs::write(&index, &saved_index).unwrap();
    let message = refused(dir.path()).await;
    assert!(message.contains("missing"), "{message}");
    assert!(!log.exists(), "no empty log was created");

    // Put back: every acknowledged event is there.
    std::fs::write(&log, &saved_log).unwrap();
    assert_eq!(all_ids(dir.path()).await, ids);

    // A genuinely new directory still opens as an empty store.
    let fresh = tempfile::tempdir().unwrap();
    assert!(all_ids(fresh.path()).await.is_empty());
    assert!(fresh.path().join("STORE").exists());
    assert!(all_ids(fresh.path()).await.is_empty(), "and opens again");
}

/// A log shorter than the index (an older copy put back) is refused: the index proves events
/// were acknowledged that the log lacks. Deleting the index is the operator's explicit way to
/// keep the older log.
#[tokio::test]
async fn a_log_shorter_than_its_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ids = store_with_50_events(dir.path()).await;
    let log = dir.path().join(EmbeddedStore::FILE_NAME);
    let older = std::fs::read(&log).unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    for i in 0..10u64 {
        store
            .append(
                "files-later",
                ExpectedRevision::Any,
                vec![event("Received.v1", serde_json::json!({ "i": i }))],
            )
            .await
            .unwrap();
    }
    store.shutdown().await;
    std::fs::write(&log, &older).unwrap();
    let message = refused(dir.path()).await;
    assert!(
        message.contains("position 60") && message.contains("position 50"),
        "{message}"
    );
    std::fs::remove_file(dir.path().join(INDEX_FILE_NAME)).unwrap();
    assert_eq!(all_ids(dir.path()).await, ids);
}

/// After a crash the commits may still be in the WAL only. With the log emptied, SQLite would
/// delete that WAL on open; the store refuses first and leaves it, so putting the log back
/// recovers every acknowledged event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_log_beside_a_crashed_stores_wal_is_refused_and_the_wal_kept() {
    let dir = tempfile::tempdir().unwrap();
    let acked = run_and_kill(dir.path(), 300);
    let log = dir.path().join(EmbeddedStore::FILE_NAME);
    let wal = dir.path().join(format!("{}-wal", EmbeddedStore::FILE_NAME));
    let saved_log = std::fs::read(&log).unwrap();
    let saved_wal = std::fs::read(&wal).unwrap();
    assert!(!saved_wal.is_empty(), "the crash left a WAL");
    std::fs::write(&log, b"").unwrap();
    std::fs::remove_file(dir.path().join(INDEX_FILE_NAME)).unwrap();
    std::fs::remove_file(dir.path().join("STORE")).unwrap();
    let message = refused(dir.path()).await;
    assert!(message.contains("events.sqlite-wal"), "{message}");
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        saved_wal,
        "the WAL is left alone"
    );
    std::fs::write(&log, &saved_log).unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
        .await
        .unwrap();
    for ack in &acked {
        let events = store
            .read_stream(&ack.stream, ack.revision, 1)
            .await
            .unwrap();
        assert_eq!(events.first().map(|e| e.id), Some(ack.id));
    }
    store.shutdown().await;
}
