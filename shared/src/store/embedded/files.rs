//! The data directory's files, and what must agree among them before the store opens.
//!
//! * `events.sqlite` with its `-wal` and `-shm`: the log, the truth.
//! * `events.index.sqlite` with its WAL: the stream index, derived from the log (rebuilt when
//!   lost, damaged or another store's; refused when it covers events the log does not have).
//! * `STORE`: the marker, written once a store's log has been created, with the store's id.
//!   The log's `meta` table and the index's hold the same id.
//! * `LOCK`: one process at a time.
//! * `space-probe.log`, `space-probe.index`: written and removed by a degraded store to see
//!   whether the disk has room again (see `health`).
//!
//! A log that is missing or empty while anything else shows that it held a store (the marker,
//! a WAL of commits, the `-shm` of a process that had it open, a stream index) is refused with
//! [`StoreError::Corrupt`]: opening it would present an empty history as if nothing had been
//! acknowledged. (SQLite itself deletes the WAL of a zero-byte database file when it opens
//! it, so the check runs before SQLite sees the file.) A genuinely new, empty directory opens
//! as a new store; the marker is written after the log exists, so a crash in between leaves a
//! store that opens (and gets its marker then).

use super::schema::INDEX_FILE_NAME;
use super::EmbeddedStore;
use crate::store::StoreError;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

/// The marker's file name, beside the log.
pub const MARKER_FILE_NAME: &str = "STORE";

/// Files a degraded store writes (and removes) to see whether the disk has room again: one for
/// the writer, one for the indexer.
pub const SPACE_PROBE_FILE_NAMES: [&str; 2] = ["space-probe.log", "space-probe.index"];

/// What the marker's first line says, for an operator who finds the file.
const MARKER_HEADER: &str =
    "Ichigen event store. Its log is events.sqlite (with events.sqlite-wal): \
     while this file exists, a missing or empty log is refused, not opened as a new store.";

fn len_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// Checks, before SQLite opens anything, that a missing or empty log does not belong to a store
/// that held events. Returns the store id the marker names (`None`: no marker yet).
pub(super) fn check_before_open(dir: &Path) -> Result<Option<Uuid>, StoreError> {
    let marker = read_marker(dir)?;
    let log = dir.join(EmbeddedStore::FILE_NAME);
    let log_len = len_of(&log);
    if log_len.is_some_and(|len| len > 0) {
        return Ok(marker);
    }
    let mut evidence = Vec::new();
    if marker.is_some() {
        evidence.push(format!(
            "{MARKER_FILE_NAME} (written when the store was created)"
        ));
    }
    let wal = dir.join(format!("{}-wal", EmbeddedStore::FILE_NAME));
    if let Some(len) = len_of(&wal).filter(|len| *len > 0) {
        evidence.push(format!("{} ({len} bytes of commits)", file_name(&wal)));
    }
    let shm = dir.join(format!("{}-shm", EmbeddedStore::FILE_NAME));
    if shm.exists() {
        evidence.push(format!(
            "{} (left by a process that had it open)",
            file_name(&shm)
        ));
    }
    let index = dir.join(INDEX_FILE_NAME);
    if len_of(&index).is_some_and(|len| len > 0) {
        evidence.push(format!("{INDEX_FILE_NAME} (a stream index of its events)"));
    }
    if evidence.is_empty() {
        return Ok(None);
    }
    let state = if log_len.is_none() {
        "missing"
    } else {
        "empty (0 bytes)"
    };
    Err(StoreError::Corrupt(format!(
        "{} in {} is {state}, but the directory held a store: {}. Refusing to open it as an \
         empty store; restore events.sqlite (and events.sqlite-wal) from a backup, or start a \
         new store in an empty directory",
        EmbeddedStore::FILE_NAME,
        dir.display(),
        evidence.join(", ")
    )))
}

/// After the log is open: a marker naming another store is refused; a missing one is written.
pub(super) fn settle_marker(
    dir: &Path,
    marker: Option<Uuid>,
    store_id: Uuid,
) -> Result<(), StoreError> {
    match marker {
        Some(id) if id == store_id => Ok(()),
        Some(id) => Err(StoreError::Corrupt(format!(
            "{} in {} belongs to store {store_id}, but the directory's {MARKER_FILE_NAME} names \
             store {id}: the log was replaced by another store's",
            EmbeddedStore::FILE_NAME,
            dir.display()
        ))),
        None => write_marker(dir, store_id),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn read_marker(dir: &Path) -> Result<Option<Uuid>, StoreError> {
    let path = dir.join(MARKER_FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StoreError::Io(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    text.lines()
        .find_map(|line| line.strip_prefix("id="))
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
        .map(Some)
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} names no store id (expected a line `id=<uuid>`)",
                path.display()
            ))
        })
}

/// Writes the marker durably: a temporary file, synced, renamed, and the directory synced.
fn write_marker(dir: &Path, store_id: Uuid) -> Result<(), StoreError> {
    let path = dir.join(MARKER_FILE_NAME);
    let temporary = dir.join(format!("{MARKER_FILE_NAME}.tmp"));
    let io = |what: &str, e: std::io::Error| StoreError::Io(format!("cannot {what}: {e}"));
    let mut file = std::fs::File::create(&temporary)
        .map_err(|e| io(&format!("create {}", temporary.display()), e))?;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    write!(file, "{MARKER_HEADER}\nid={store_id}\ncreated={created}\n")
        .and_then(|()| file.sync_all())
        .map_err(|e| io(&format!("write {}", temporary.display()), e))?;
    std::fs::rename(&temporary, &path)
        .map_err(|e| io(&format!("rename {}", temporary.display()), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(&format!("sync {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_passes_and_a_marker_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check_before_open(dir.path()).expect("new"), None);
        let id = Uuid::new_v4();
        settle_marker(dir.path(), None, id).expect("written");
        assert_eq!(read_marker(dir.path()).expect("read"), Some(id));
        settle_marker(dir.path(), Some(id), id).expect("same store");
        assert!(matches!(
            settle_marker(dir.path(), Some(id), Uuid::new_v4()),
            Err(StoreError::Corrupt(_))
        ));
        assert!(!dir.path().join(format!("{MARKER_FILE_NAME}.tmp")).exists());
    }

    /// Each piece of evidence alone makes an empty or missing log a refusal.
    #[test]
    fn an_empty_log_beside_evidence_of_a_store_is_refused() {
        let log = EmbeddedStore::FILE_NAME;
        let cases: [(&str, &[u8]); 4] = [
            (
                MARKER_FILE_NAME,
                b"x\nid=6f1c3e0a-7d2b-4f5e-9a1b-2c3d4e5f6a7b\n",
            ),
            ("events.sqlite-wal", b"frames"),
            ("events.sqlite-shm", b""),
            (INDEX_FILE_NAME, b"index pages"),
        ];
        for (name, content) in cases {
            for log_present in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                std::fs::write(dir.path().join(name), content).expect("write");
                if log_present {
                    std::fs::write(dir.path().join(log), b"").expect("empty log");
                }
                let refused = check_before_open(dir.path());
                assert!(
                    matches!(&refused, Err(StoreError::Corrupt(m)) if m.contains(name)),
                    "{name} (log present: {log_present}): {refused:?}"
                );
            }
        }
        // An empty index file, or an empty WAL, proves nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(INDEX_FILE_NAME), b"").expect("write");
        std::fs::write(dir.path().join("events.sqlite-wal"), b"").expect("write");
        assert_eq!(check_before_open(dir.path()).expect("nothing held"), None);
    }
}
