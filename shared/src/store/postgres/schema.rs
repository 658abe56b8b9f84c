//! The PostgreSQL layout of the store, its versioned migrations, and row decoding.
//!
//! One table, `ichigen_events`, holds every event: its `position` (the global order, gapless,
//! assigned under the append lock, see [`super::writer`]) is the primary key; `(stream,
//! revision)` is unique (reading a stream, the revision check) and so is `id` (an event id is
//! global: a retried append is recognised wherever it landed). `ichigen_meta` records the
//! schema version, so that a binary never writes a layout it does not know.

use crate::auth::Actor;
use crate::envelope::{Metadata, RecordedEvent};
use crate::store::{Position, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

/// Key of the session advisory lock taken while migrating (`ICHGMIGR`).
const MIGRATION_LOCK: i64 = 0x4943_4847_4d49_4752;

/// The migrations, in order; the schema version is how many of them ran. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the event log.
    "CREATE TABLE ichigen_events (
        position       bigint      PRIMARY KEY,
        stream         text        NOT NULL,
        revision       bigint      NOT NULL,
        id             uuid        NOT NULL,
        type           text        NOT NULL,
        data           bytea       NOT NULL,
        correlation_id uuid        NOT NULL,
        causation_id   uuid,
        actor          text        NOT NULL,
        occurred_at    timestamptz NOT NULL,
        CONSTRAINT ichigen_events_stream_revision UNIQUE (stream, revision),
        CONSTRAINT ichigen_events_id UNIQUE (id)
    )",
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The columns every read selects, in the order [`RowDecoder::decode`] reads them.
pub const COLUMNS: &str =
    "position, stream, revision, id, type, data, correlation_id, causation_id, actor, occurred_at";

/// Brings the database to [`SCHEMA_VERSION`], one migration per transaction, under a lock so
/// that processes starting together migrate once. A database whose version is newer than this
/// binary is refused.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let failed = |what: &str, e: tokio_postgres::Error| {
        StoreError::Unavailable(format!("PostgreSQL {what} failed: {}", describe(&e)))
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed("migration lock", e))?;
    let result = async {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS ichigen_meta (key text PRIMARY KEY, value bigint NOT NULL)",
            )
            .await
            .map_err(|e| failed("schema check", e))?;
        let current: i64 = client
            .query_opt(
                "SELECT value FROM ichigen_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .map_err(|e| failed("schema check", e))?
            .map_or(0, |r| r.get(0));
        if current > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "the database's schema is version {current}, newer than this binary's \
                 {SCHEMA_VERSION}: upgrade ichigen"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i64 + 1;
            let tx = client
                .transaction()
                .await
                .map_err(|e| failed("migration", e))?;
            tx.batch_execute(sql)
                .await
                .map_err(|e| failed(&format!("migration {version}"), e))?;
            tx.execute(
                "INSERT INTO ichigen_meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&version],
            )
            .await
            .map_err(|e| failed(&format!("migration {version}"), e))?;
            tx.commit()
                .await
                .map_err(|e| failed(&format!("migration {version}"), e))?;
            tracing::info!(version, "PostgreSQL event store schema migrated");
        }
        Ok(())
    }
    .await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked.map_err(|e| failed("migration unlock", e))?;
    Ok(())
}

/// A PostgreSQL error as one line: the server's message (and detail) when there is one.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    }
}

/// Maps a client error: a lost or unusable connection is `Unavailable` (retry), anything else
/// an I/O failure of the store.
pub fn store_error(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() {
        StoreError::Unavailable(format!("PostgreSQL: {}", describe(&e)))
    } else {
        StoreError::Io(format!("PostgreSQL: {}", describe(&e)))
    }
}

/// Decodes rows, sharing one `Arc<str>` per distinct stream and type within a read.
#[derive(Default)]
pub struct RowDecoder {
    strings: HashMap<String, Arc<str>>,
}

impl RowDecoder {
    fn shared(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(s.to_owned(), a.clone());
        a
    }

    /// One row selected with [`COLUMNS`].
    pub fn decode(&mut self, row: &Row) -> Result<RecordedEvent, StoreError> {
        let corrupt = |e: tokio_postgres::Error| {
            StoreError::Corrupt(format!("an ichigen_events row cannot be read: {e}"))
        };
        let position: i64 = row.try_get(0).map_err(corrupt)?;
        let stream: &str = row.try_get(1).map_err(corrupt)?;
        let revision: i64 = row.try_get(2).map_err(corrupt)?;
        let id: Uuid = row.try_get(3).map_err(corrupt)?;
        let event_type: &str = row.try_get(4).map_err(corrupt)?;
        let data: &[u8] = row.try_get(5).map_err(corrupt)?;
        let correlation_id: Uuid = row.try_get(6).map_err(corrupt)?;
        let causation_id: Option<Uuid> = row.try_get(7).map_err(corrupt)?;
        let actor: &str = row.try_get(8).map_err(corrupt)?;
        let occurred_at: DateTime<Utc> = row.try_get(9).map_err(corrupt)?;
        Ok(RecordedEvent {
            id,
            stream: self.shared(stream),
            revision: revision as u64,
            position: Position::sequence(position as u64),
            event_type: self.shared(event_type),
            data: Arc::from(data),
            metadata: Metadata {
                correlation_id,
                causation_id,
                actor: Actor::from_compact(actor),
                occurred_at,
            },
        })
    }
}
