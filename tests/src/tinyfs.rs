//! A small file system of its own for a test, to fill a disk for real: a tmpfs mounted on a
//! fresh temporary directory (`mount -t tmpfs -o size=…`), filled to the last byte with a
//! ballast file (writes then fail with ENOSPC, as on a full disk) and freed again.
//!
//! Mounting needs root (CAP_SYS_ADMIN) and a kernel that lets this process mount; where it
//! does not, [`probe`] says why, and the tests that need it are reported as skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted (lazily) when dropped.
pub struct TinyFs {
    mount_point: tempfile::TempDir,
}

/// Name of the file that fills the file system.
const BALLAST: &str = "ballast";

impl TinyFs {
    /// Mounts a tmpfs of `bytes` on a fresh temporary directory; `Err` says why it cannot.
    pub fn mount(bytes: u64) -> Result<TinyFs, String> {
        let mount_point =
            tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(mount_point.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', " ")
            ));
        }
        Ok(TinyFs { mount_point })
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    fn ballast(&self) -> PathBuf {
        self.path().join(BALLAST)
    }

    /// Fills every free byte with the ballast file; from then on writes that need a new block
    /// fail with ENOSPC.
    pub fn fill(&self) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.ballast())
            .expect("ballast file");
        let chunk = vec![0x5a_u8; 64 * 1024];
        // Big chunks first, then single pages, then bytes: up to the very last one.
        for size in [chunk.len(), 4096, 1] {
            while file.write_all(&chunk[..size]).is_ok() {}
        }
        let _ = file.sync_all();
    }

    /// Frees what [`TinyFs::fill`] took.
    pub fn free(&self) {
        std::fs::remove_file(self.ballast()).expect("remove the ballast");
    }

    /// Free bytes now.
    pub fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        // Lazy: a file still open (a store being dropped) does not keep the mount.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount_point.path())
            .status();
    }
}

/// Whether a [`TinyFs`] can be mounted here: `Err` with the reason if not.
pub fn probe() -> Result<(), String> {
    TinyFs::mount(1 << 20).map(drop)
}
