//! What the PostgreSQL backend promises beyond the conformance suite, on real servers and
//! processes: positions in commit order while another appender holds a transaction open, two
//! OS processes racing on the same streams, SIGKILL of an appending process, a crash of the
//! database itself, and a schema newer than the binary. Ignored (reported skipped) where
//! PostgreSQL is not installed.

use ichigen_shared::envelope::RecordedEvent;
use ichigen_shared::store::postgres::{PostgresOptions, PostgresStore, APPEND_LOCK};
use ichigen_shared::store::{
    read_whole_stream, EventStore, ExpectedRevision, StoreError, SubscribeFrom, SubscriptionFilter,
};
use ichigen_tests::conformance::{event, fresh_category};
use ichigen_tests::postgres::TestPostgres;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn connect(server: &TestPostgres) -> PostgresStore {
    PostgresStore::connect(&server.url(), PostgresOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", server.url()))
}

async fn raw_client(server: &TestPostgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The classic sequence-gap problem: a transaction that took position 101 commits after one
/// that took 102, and a subscriber that already passed 102 never sees 101. Here another
/// appender (a raw session following the backend's protocol: the append lock, then the head)
/// holds its transaction open with an event written; the store's appends must wait for it, get
/// the positions after it, and a subscriber sees every event once, gapless, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn positions_follow_commit_order_while_another_appender_holds_its_transaction() {
    let server = TestPostgres::start();
    let store = Arc::new(connect(&server).await);
    let cat = fresh_category();
    store
        .append(
            &format!("{cat}-0"),
            ExpectedRevision::NoStream,
            vec![event("Before.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    let mut sub = store
        .subscribe(
            SubscribeFrom::Start,
            SubscriptionFilter::categories([cat.clone()]),
        )
        .await
        .unwrap();

    // The slow appender: lock, head, one event at head + 1, and then it waits.
    let mut slow = raw_client(&server).await;
    let tx = slow.transaction().await.unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .await
        .unwrap();
    let head: i64 = tx
        .query_one("SELECT max(position) FROM ichigen_events", &[])
        .await
        .unwrap()
        .get(0);
    let slow_id = uuid::Uuid::new_v4();
    tx.execute(
        "INSERT INTO ichigen_events (position, stream, revision, id, type, data, correlation_id, \
         causation_id, actor, occurred_at) VALUES ($1, $2, 0, $3, 'Slow.v1', '\\x7b7d', $3, NULL, \
         'SYSTEM:slow', now())",
        &[&(head + 1), &format!("{cat}-slow"), &slow_id],
    )
    .await
    .unwrap();

    // Meanwhile the store appends from 20 tasks: none may be acknowledged yet.
    let appends: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let stream = format!("{cat}-{}", i + 1);
            tokio::spawn(async move {
                store
                    .append(
                        &stream,
                        ExpectedRevision::NoStream,
                        vec![event("After.v1", serde_json::json!({ "i": i }))],
                    )
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        appends.iter().all(|a| !a.is_finished()),
        "an append was acknowledged while another appender held its positions uncommitted"
    );
    tx.commit().await.unwrap();
    let mut after = Vec::new();
    for a in appends {
        after.push(a.await.unwrap().unwrap().position.commit);
    }
    assert!(
        after.iter().all(|p| *p > (head + 1) as u64),
        "every later commit got a later position: {after:?} vs {}",
        head + 1
    );

    // The subscriber: 22 events, gapless, the slow one right after the first.
    let mut seen: Vec<RecordedEvent> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 22 {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(Ok(e))) => seen.push(e),
            other => panic!("subscription ended early: {other:?} after {}", seen.len()),
        }
    }
    assert_eq!(seen[1].id, slow_id);
    assert!(seen
        .windows(2)
        .all(|w| w[1].position.commit == w[0].position.commit + 1));
    store.shutdown().await;
}

/// Two OS processes, one database: they race on the same four streams with exact revisions.
/// Every revision has exactly one winner, nothing is lost, and both processes' subscriptions
/// deliver the same events in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn two_processes_racing_on_the_same_streams_agree() {
    let server = TestPostgres::start();
    // Create the schema first, so the racers do not also race to migrate it.
    connect(&server).await.shutdown().await;
    const ROUNDS: u64 = 40;
    let total = (2 * ROUNDS * 4).to_string();
    let racers: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            Command::new(env!("CARGO_BIN_EXE_pg_racer"))
                .args([&server.url(), *tag, &ROUNDS.to_string(), &total])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut wins: Vec<(String, u64, String)> = Vec::new();
    let mut seen: Vec<Vec<String>> = Vec::new();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        assert!(out.status.success(), "a racer failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut mine = Vec::new();
        let mut won = 0;
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["won", stream, revision, id] => {
                    won += 1;
                    wins.push((
                        stream.to_string(),
                        revision.parse().unwrap(),
                        id.to_string(),
                    ));
                }
                ["seen", position, id] => mine.push(format!("{position} {id}")),
                ["lost", _] => {}
                _ => panic!("unexpected line {line:?}"),
            }
        }
        assert_eq!(
            won,
            ROUNDS * 4,
            "each racer wins every one of its appends eventually"
        );
        seen.push(mine);
    }
    // One winner per revision: 2 × ROUNDS revisions per stream, each claimed once.
    let revisions: HashSet<(String, u64)> = wins.iter().map(|(s, r, _)| (s.clone(), *r)).collect();
    assert_eq!(revisions.len(), wins.len(), "a revision was won twice");
    let store = connect(&server).await;
    for k in 0..4 {
        let stored = read_whole_stream(&store, &format!("race-{k}"))
            .await
            .unwrap();
        assert_eq!(stored.len() as u64, 2 * ROUNDS);
        assert!(stored
            .iter()
            .enumerate()
            .all(|(i, e)| e.revision == i as u64));
        for e in &stored {
            assert!(
                wins.iter().any(|(_, _, id)| *id == e.id.to_string()),
                "a stored event nobody was told it won"
            );
        }
    }
    // Both processes saw the same events in the same order.
    assert_eq!(seen[0].len(), wins.len());
    assert_eq!(seen[0], seen[1]);
    store.shutdown().await;
}

struct Ack {
    stream: String,
    revision: u64,
    id: uuid::Uuid,
}

/// Runs `append_forever` against `url` until it printed `acks` acknowledgements, then
/// `stop` (SIGKILL of the appender, or a crash of the database); the acknowledgements seen.
fn run_until(url: &str, acks: usize, stop: impl FnOnce(&mut std::process::Child)) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_append_forever"))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let parse = |line: &str| {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ack", stream, revision, _position, id] => Some(Ack {
                stream: stream.to_string(),
                revision: revision.parse().ok()?,
                id: id.parse().ok()?,
            }),
            _ => None,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < acks && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => seen.extend(parse(&line)),
            _ => break,
        }
    }
    stop(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    for line in lines.map_while(Result::ok) {
        seen.extend(parse(&line));
    }
    assert!(seen.len() >= acks, "only {} acks", seen.len());
    seen
}

async fn assert_all_stored(store: &PostgresStore, acked: &[Ack]) {
    let mut streams: HashMap<&str, Vec<RecordedEvent>> = HashMap::new();
    for ack in acked {
        if !streams.contains_key(ack.stream.as_str()) {
            let events = read_whole_stream(store, &ack.stream).await.unwrap();
            streams.insert(&ack.stream, events);
        }
        let stored = &streams[ack.stream.as_str()];
        let at = stored.get(ack.revision as usize);
        assert_eq!(
            at.map(|e| e.id),
            Some(ack.id),
            "acknowledged {} @{} is lost",
            ack.stream,
            ack.revision
        );
    }
}

/// SIGKILL of a process in the middle of appending: every acknowledged event is stored, and
/// the store takes new appends (three kills on the same database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn acknowledged_appends_survive_sigkill_of_the_appender() {
    let server = TestPostgres::start();
    connect(&server).await.shutdown().await;
    let mut acked = Vec::new();
    for acks in [1500, 3000, 500] {
        // Child::kill sends SIGKILL: no destructor, nothing flushed on the way out.
        acked.extend(run_until(&server.url(), acks, |child| {
            let _ = child.kill();
        }));
        let store = connect(&server).await;
        assert_all_stored(&store, &acked).await;
        store.shutdown().await;
    }
}

/// The database crashes (`pg_ctl stop -m immediate`: no checkpoint, no clean shutdown) while
/// a process appends; after it restarts, every event that process saw acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn acknowledged_appends_survive_a_database_crash() {
    let server = TestPostgres::start();
    connect(&server).await.shutdown().await;
    let acked = run_until(&server.url(), 2000, |_| server.stop_immediately());
    server.restart();
    let store = connect(&server).await;
    assert_all_stored(&store, &acked).await;
    // And it goes on taking appends.
    let stream = format!("{}-1", fresh_category());
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("After.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    store.shutdown().await;
}

/// A database migrated by a newer binary is refused with one clear error, and an unreachable
/// one fails start-up within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn a_newer_schema_and_an_unreachable_database_are_refused() {
    let server = TestPostgres::start();
    connect(&server).await.shutdown().await;
    server.psql("UPDATE ichigen_meta SET value = 99 WHERE key = 'schema_version'");
    match PostgresStore::connect(&server.url(), PostgresOptions::default()).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("newer than this binary"), "{message}")
        }
        Err(other) => panic!("expected a refusal of the schema, got {other}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    let options = PostgresOptions {
        connect_timeout: Duration::from_millis(500),
        ..PostgresOptions::default()
    };
    let started = Instant::now();
    let unreachable = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        server.port() + 1
    );
    match PostgresStore::connect(&unreachable, options).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("127.0.0.1"), "{message}")
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// `sslmode=require` in `store.url` encrypts every connection, trusting the CA named by the
/// options (a managed database's bundle); an untrusted server certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn tls_is_used_when_the_url_requires_it() {
    let server = TestPostgres::start_with_tls();
    let url = format!("{}?sslmode=require", server.url());
    let trusting = PostgresOptions {
        ca_file: Some(server.ca_file()),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect(&url, trusting).await.unwrap();
    let stream = format!("{}-1", fresh_category());
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("Secret.v1", serde_json::json!({}))],
        )
        .await
        .unwrap();
    assert_eq!(store.read_stream(&stream, 0, 10).await.unwrap().len(), 1);
    let plain = server.psql(
        "SELECT count(*) FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = 'ichigen' AND NOT coalesce(s.ssl, false)",
    );
    let encrypted = server.psql(
        "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = 'ichigen' AND s.ssl",
    );
    assert_eq!(plain, "0", "an ichigen connection without TLS");
    assert!(
        encrypted.parse::<u32>().unwrap() >= 2,
        "{encrypted} TLS connections"
    );
    store.shutdown().await;
    // Without the CA, the server's certificate is not trusted: refused, not downgraded.
    match PostgresStore::connect(&url, PostgresOptions::default()).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("127.0.0.1"), "{message}")
        }
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("an untrusted certificate was accepted"),
    }
}

/// Two stores on one database (what two processes are): each writer remembers revisions
/// between its commits, and learns what the other appended since, so an expectation is
/// decided on what is stored; a retry of the other's append is recognised by its ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_postgres), ignore = "PostgreSQL is not installed (no initdb)")]
async fn a_writer_sees_what_another_process_appended_since_its_last_commit() {
    let server = TestPostgres::start();
    let a = connect(&server).await;
    let b = connect(&server).await;
    let stream = format!("{}-1", fresh_category());
    let one = || vec![event("Shared.v1", serde_json::json!({}))];
    a.append(&stream, ExpectedRevision::NoStream, one())
        .await
        .unwrap();
    b.append(&stream, ExpectedRevision::Exact(0), one())
        .await
        .unwrap();
    // A last wrote revision 0; B's revision 1 is what counts.
    match a.append(&stream, ExpectedRevision::Exact(0), one()).await {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(1)),
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(
        a.append(&stream, ExpectedRevision::Exact(1), one())
            .await
            .unwrap()
            .next_expected,
        2
    );
    // B retries A's last append (same ids) under Any and at its place: the same answer, once.
    let batch = one();
    let first = a
        .append(&stream, ExpectedRevision::Exact(2), batch.clone())
        .await
        .unwrap();
    let any = b
        .append(&stream, ExpectedRevision::Any, batch.clone())
        .await
        .unwrap();
    let exact = b
        .append(&stream, ExpectedRevision::Exact(2), batch)
        .await
        .unwrap();
    assert_eq!((any, exact), (first, first));
    assert_eq!(read_whole_stream(&a, &stream).await.unwrap().len(), 4);
    a.shutdown().await;
    b.shutdown().await;
}
