//! Durability: a child process appends continuously and is killed with SIGKILL; after a restart
//! every event it saw acknowledged is there, in order, and the store opens cleanly and takes
//! new appends. Three kills at different moments on the same data directory.

use ichigen_shared::store::embedded::{EmbeddedOptions, EmbeddedStore};
use ichigen_shared::store::{read_whole_stream, EventStore, ExpectedRevision};
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
