//! The SQLite layout of the embedded store and the decoding of its rows. (Public so that the
//! baseline benchmark writes exactly these rows with plain rusqlite.)
//!
//! Two files:
//!
//! * `events.sqlite`, the log: one table, `events`, whose integer primary key is the global
//!   position (gapless, assigned by the single writer). Appends only ever touch its last pages, so
//!   a synced group commit writes little more than the events themselves.
//! * `events.index.sqlite`, attached as `idx`: `streams (stream, revision) → position`, the
//!   index for reading a stream. It is derived from the log, so it is written without syncing
//!   (`synchronous = OFF`) by the indexer thread after each log commit (before the ack), and repaired on open from the log
//!   (`idx.meta.indexed_upto`); a lost or corrupt index file (or another store's) is rebuilt, an
//!   index ahead of the log refused (see `open_index`). The log's `meta` table holds the
//!   store's id (see `files`). Keeping it out of the
//!   synced file matters: with many streams each event dirties its own index page, and syncing
//!   those pages cut group-commit throughput by three to four times.
//!
//! There is deliberately no index on the event id: see `writer` for how retries are recognised
//! without one.

use crate::auth::Actor;
use crate::envelope::{Metadata, RecordedEvent};
use crate::store::{Position, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// `ICHG`: marks a SQLite file as an Ichigen store, so a foreign database is refused.
const APPLICATION_ID: i64 = 0x4943_4847;
/// Version of the layout below; a newer file is refused rather than misread.
const LAYOUT_VERSION: i64 = 1;

pub const LAYOUT: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    id             BLOB    NOT NULL,
    type           TEXT    NOT NULL,
    data           BLOB    NOT NULL,
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB,
    actor          TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The stream index (attached as `idx`).
pub const INDEX_LAYOUT: &str = "
CREATE TABLE IF NOT EXISTS idx.streams (
    stream   TEXT    NOT NULL,
    revision INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (stream, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx.meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO idx.meta VALUES ('indexed_upto', 0);
";

/// File name of the stream index, beside the log.
pub const INDEX_FILE_NAME: &str = "events.index.sqlite";

/// Indexes every logged event after `idx.meta.indexed_upto`.
const INDEX_NEW_EVENTS: &str = "INSERT OR IGNORE INTO idx.streams (stream, revision, position) \
     SELECT stream, revision, position FROM events \
     WHERE position > (SELECT value FROM idx.meta WHERE key = 'indexed_upto')";

/// Brings the index up to the log in one transaction (on open, and by the indexer after each
/// commit). The statements are prepared once per connection: parsing the SQL again for every
/// batch cost the indexer as much as running it.
pub fn catch_up_index(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN")?;
    conn.prepare_cached(INDEX_NEW_EVENTS)?.execute([])?;
    conn.prepare_cached(MARK_INDEXED)?.execute([])?;
    conn.execute_batch("COMMIT")
}

/// Remembers how far the index reaches.
const MARK_INDEXED: &str =
    "UPDATE idx.meta SET value = (SELECT coalesce(max(position), 0) FROM events) \
     WHERE key = 'indexed_upto'";

/// Reads a stream through the index.
pub(super) const READ_STREAM: &str =
    "SELECT e.position, e.stream, e.revision, e.id, e.type, e.data, \
     e.correlation_id, e.causation_id, e.actor, e.occurred_at \
     FROM idx.streams i JOIN events e ON e.position = i.position \
     WHERE i.stream = ?1 AND i.revision >= ?2 ORDER BY i.revision LIMIT ?3";

fn index_path(file: &Path) -> std::path::PathBuf {
    file.with_file_name(INDEX_FILE_NAME)
}

/// Every connection attaches the index, so this is also where each connection gets its
/// statement settings.
///
/// Query-planner stability (QPSG) is on: without it, SQLite plans `LIMIT ?n` (and other bound
/// values) for the value bound at preparation and expires the cached statement whenever another
/// value is bound, so the stream read re-parsed its SQL on most calls (a third of the read CPU
/// in the orders benchmark). Our statements have one good plan whatever the values.
fn attach_index(conn: &Connection, file: &Path) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    let path = index_path(file);
    conn.execute("ATTACH DATABASE ?1 AS idx", [path.to_string_lossy()])?;
    Ok(())
}

/// Why the index could not be attached as it is.
enum IndexProblem {
    /// Damaged or unreadable: rebuilt from the log.
    Sqlite(rusqlite::Error),
    /// Another store's index: rebuilt from the log.
    OtherStore(String),
    /// It covers events the log does not have: the log lost acknowledged events, refused.
    Ahead(StoreError),
}

impl From<rusqlite::Error> for IndexProblem {
    fn from(e: rusqlite::Error) -> Self {
        IndexProblem::Sqlite(e)
    }
}

/// Attaches the index to the writer, creating or rebuilding it, and brings it up to the log.
///
/// The index is derived, so a damaged one, or one of another store (its `meta.store_id`), is
/// deleted and rebuilt. But one that has indexed further than the log reaches proves that the
/// log lost events that were acknowledged (an older copy put back, a truncated file): that is
/// refused, never papered over by dropping the index.
fn open_index(conn: &Connection, file: &Path, store_id: Uuid) -> Result<(), StoreError> {
    let path = index_path(file);
    let prepare = |conn: &Connection| -> Result<(), IndexProblem> {
        attach_index(conn, file)?;
        conn.execute_batch(
            "PRAGMA idx.journal_mode = WAL; PRAGMA idx.synchronous = OFF; \
             PRAGMA idx.cache_size = -65536;",
        )?;
        conn.execute_batch(INDEX_LAYOUT)?;
        conn.execute(
            "INSERT OR IGNORE INTO idx.meta VALUES ('store_id', ?1)",
            [store_id.to_string()],
        )?;
        let indexed_for: String = conn.query_row(
            "SELECT CAST(value AS TEXT) FROM idx.meta WHERE key = 'store_id'",
            [],
            |r| r.get(0),
        )?;
        if indexed_for != store_id.to_string() {
            return Err(IndexProblem::OtherStore(indexed_for));
        }
        let (indexed, logged): (i64, i64) = conn.query_row(
            "SELECT (SELECT value FROM idx.meta WHERE key = 'indexed_upto'), \
             (SELECT coalesce(max(position), 0) FROM events)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if indexed > logged {
            return Err(IndexProblem::Ahead(StoreError::Corrupt(format!(
                "{} has indexed events up to position {indexed}, but {} ends at position \
                 {logged}: acknowledged events are missing from the log (an older or truncated \
                 copy?). Restore the log; to keep this log as it is, delete {INDEX_FILE_NAME} \
                 (and its -wal) so that the index is rebuilt from it",
                path.display(),
                file.display()
            ))));
        }
        Ok(catch_up_index(conn)?)
    };
    let why = match prepare(conn) {
        Ok(()) => return Ok(()),
        Err(IndexProblem::Ahead(refused)) => return Err(refused),
        Err(IndexProblem::Sqlite(e)) => e.to_string(),
        Err(IndexProblem::OtherStore(id)) => format!("it is the index of store {id}"),
    };
    // The index is derived data: a damaged one is deleted and rebuilt from the log.
    tracing::warn!(error = %why, "stream index unusable; rebuilding it from the log");
    let _ = conn.execute_batch("DETACH DATABASE idx");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    prepare(conn).map_err(|problem| match problem {
        IndexProblem::Sqlite(e) => open_error(&path, e),
        IndexProblem::OtherStore(id) => StoreError::Io(format!(
            "{}: a rebuilt index still names store {id}",
            path.display()
        )),
        IndexProblem::Ahead(refused) => refused,
    })
}

/// The store's id, kept in the log's `meta` (made on first open, also for a log older than the
/// id: the marker and the index then take it from here).
fn store_id(conn: &Connection) -> rusqlite::Result<Uuid> {
    let found: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = found.and_then(|text| Uuid::parse_str(&text).ok()) {
        return Ok(id);
    }
    let id = Uuid::new_v4();
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('store_id', ?1)",
        [id.to_string()],
    )?;
    Ok(id)
}

pub const COLUMNS: &str =
    "position, stream, revision, id, type, data, correlation_id, causation_id, actor, occurred_at";

pub const INSERT: &str = "INSERT INTO events (position, stream, revision, id, type, data, \
     correlation_id, causation_id, actor, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Opens the writer's connection, creating or checking the layout; returns it with the
/// store's id.
pub(super) fn open_writer(file: &Path) -> Result<(Connection, Uuid), StoreError> {
    let conn = Connection::open(file).map_err(|e| open_error(file, e))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| open_error(file, e))?;
    let app_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| open_error(file, e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| open_error(file, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| open_error(file, e))?;
    if app_id == 0 && tables == 0 {
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {LAYOUT_VERSION};"
        ))
        .map_err(|e| open_error(file, e))?;
    } else if app_id != APPLICATION_ID {
        return Err(StoreError::Corrupt(format!(
            "{} is a SQLite database of another application",
            file.display()
        )));
    } else if version > LAYOUT_VERSION {
        return Err(StoreError::Corrupt(format!(
            "{} was written by a newer Ichigen (layout {version}, this build reads {LAYOUT_VERSION})",
            file.display()
        )));
    }
    conn.execute_batch(LAYOUT)
        .map_err(|e| open_error(file, e))?;
    let store_id = store_id(&conn).map_err(|e| open_error(file, e))?;
    open_index(&conn, file, store_id)?;
    Ok((conn, store_id))
}

/// Opens a read connection. Readers never block the writer in WAL mode.
pub(super) fn open_reader(file: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(file, e))?;
    conn.execute_batch(
        "PRAGMA query_only = ON; PRAGMA cache_size = -16384; PRAGMA mmap_size = 1073741824; \
         PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| open_error(file, e))?;
    attach_index(&conn, file).map_err(|e| open_error(file, e))?;
    Ok(conn)
}

/// Opens the indexer's connection: reads the log, writes the (unsynced) index. Like the
/// writer's, it never checkpoints on its own (see `checkpointer`).
pub(super) fn open_indexer(file: &Path) -> Result<Connection, StoreError> {
    open_worker(
        file,
        "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 0;",
        "PRAGMA idx.synchronous = OFF; PRAGMA idx.cache_size = -65536;",
    )
}

/// Opens the checkpoint thread's connection. The log is checkpointed with `synchronous = FULL`,
/// so its database file is synced before any WAL frame it copied can be overwritten; the index
/// is derived data and, as everywhere, unsynced.
pub(super) fn open_checkpointer(file: &Path) -> Result<Connection, StoreError> {
    open_worker(
        file,
        "PRAGMA busy_timeout = 0; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
        "PRAGMA idx.synchronous = OFF;",
    )
}

/// A read-write connection of one of the store's own threads: `pragmas` for the log, then the
/// index attached and given `index_pragmas`.
fn open_worker(file: &Path, pragmas: &str, index_pragmas: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(file).map_err(|e| open_error(file, e))?;
    conn.execute_batch(pragmas)
        .map_err(|e| open_error(file, e))?;
    attach_index(&conn, file).map_err(|e| open_error(file, e))?;
    conn.execute_batch(index_pragmas)
        .map_err(|e| open_error(file, e))?;
    Ok(conn)
}

fn open_error(file: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("{}: {e}", file.display()))
        }
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Locked {
                path: file.display().to_string(),
            }
        }
        _ => StoreError::Io(format!("{}: {e}", file.display())),
    }
}

/// Maps an SQLite failure during normal operation.
pub(super) fn io_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Io(e.to_string()),
    }
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn uuid_from(bytes: &[u8]) -> Uuid {
    Uuid::from_slice(bytes).unwrap_or(Uuid::nil())
}

/// Decodes rows, sharing one `Arc<str>` per distinct event type and stream name within a read
/// so that a page of a million events does not allocate a million copies of the same text.
#[derive(Default)]
pub(super) struct RowDecoder {
    types: HashMap<String, Arc<str>>,
    last_stream: Option<Arc<str>>,
}

impl RowDecoder {
    fn intern_type(&mut self, s: &str) -> Arc<str> {
        if let Some(t) = self.types.get(s) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(s);
        self.types.insert(s.to_string(), t.clone());
        t
    }

    fn stream(&mut self, s: &str) -> Arc<str> {
        match &self.last_stream {
            Some(last) if &**last == s => last.clone(),
            _ => {
                let arc: Arc<str> = Arc::from(s);
                self.last_stream = Some(arc.clone());
                arc
            }
        }
    }

    pub(super) fn decode(&mut self, row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
        let position: i64 = row.get(0)?;
        let stream = self.stream(row.get_ref(1)?.as_str()?);
        let revision: i64 = row.get(2)?;
        let id = uuid_from(row.get_ref(3)?.as_blob()?);
        let event_type = self.intern_type(row.get_ref(4)?.as_str()?);
        let data: Arc<[u8]> = Arc::from(row.get_ref(5)?.as_blob()?);
        let correlation_id = uuid_from(row.get_ref(6)?.as_blob()?);
        let causation_id = row.get_ref(7)?.as_blob_or_null()?.map(uuid_from);
        let actor = Actor::from_compact(row.get_ref(8)?.as_str()?);
        let occurred_at = DateTime::from_timestamp_micros(row.get(9)?).unwrap_or_default();
        Ok(RecordedEvent {
            id,
            stream,
            revision: revision as u64,
            position: Position::sequence(position as u64),
            event_type,
            data,
            metadata: Metadata {
                correlation_id,
                causation_id,
                actor,
                occurred_at,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::{EmbeddedOptions, EmbeddedStore};
    use crate::store::EventStore;
    use rusqlite::StatementStatus;

    /// Without query-planner stability, binding another `LIMIT` expires the cached stream read
    /// and SQLite parses it again on the next step: a third of the read CPU under load.
    #[tokio::test]
    async fn a_cached_stream_read_is_not_prepared_again_for_another_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default())
            .await
            .expect("store");
        let conn = open_reader(&dir.path().join(EmbeddedStore::FILE_NAME)).expect("reader");
        for limit in [1_i64, 4096, 1, 7] {
            let mut stmt = conn.prepare_cached(READ_STREAM).expect("prepare");
            let rows = stmt
                .query_map(rusqlite::params!["s-1", 0_i64, limit], |_| Ok(()))
                .expect("query")
                .count();
            assert_eq!(rows, 0);
            assert_eq!(
                stmt.get_status(StatementStatus::RePrepare),
                0,
                "limit {limit}"
            );
        }
        drop(conn);
        store.shutdown().await;
    }
}
