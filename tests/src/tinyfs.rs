//! Small file systems of their own for a test, to break a disk for real:
//!
//! * [`TinyFs`]: a tmpfs mounted on a fresh temporary directory (`mount -t tmpfs -o size=…`),
//!   filled to the last byte with a ballast file (writes then fail with ENOSPC, as on a full
//!   disk) and freed again.
//! * [`FailingDisk`]: ext2 on a loop device whose backing file is cut short while mounted
//!   (`truncate` + `losetup -c`): from then on the device answers EIO, as a dying disk does.
//!   (What lay past the cut is gone, so this one does not come back.) Not ext4: its journal
//!   thread, and the lazy inode table initialisation mkfs.ext4 leaves running, can wait on
//!   each other forever once the device fails, leaving the test process unkillable (seen
//!   here: writes stuck in `fdatasync`, uninterruptible) — a hanging disk, not a failing one.
//!
//! Mounting needs root (CAP_SYS_ADMIN), a kernel that lets this process mount and, for the
//! loop device, `losetup` and `mkfs.ext2`; where that is missing, [`probe`] and
//! [`probe_failing_disk`] say why, and the tests that need them are reported as skipped.

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

/// Whether a [`FailingDisk`] can be made here: `Err` with the reason if not.
pub fn probe_failing_disk() -> Result<(), String> {
    FailingDisk::mount(8 << 20).map(drop)
}

/// ext2 on a loop device that can be made to fail with EIO; detached when dropped.
pub struct FailingDisk {
    /// Holds the image file.
    images: tempfile::TempDir,
    device: String,
    mount_point: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} refused: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl FailingDisk {
    /// A fresh ext2 of `bytes` on a loop device, mounted on a fresh temporary directory.
    pub fn mount(bytes: u64) -> Result<FailingDisk, String> {
        let images = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let image = images.path().join("disk.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| format!("cannot make the image: {e}"))?;
        let image = image.to_string_lossy().into_owned();
        let device = run("losetup", &["--find", "--show", &image])?;
        let mount_point = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                let _ = run("losetup", &["-d", &device]);
                return Err(format!("no temporary directory: {e}"));
            }
        };
        let disk = FailingDisk {
            images,
            device,
            mount_point,
        };
        let target = disk.path().to_string_lossy().into_owned();
        run(
            "mkfs.ext2",
            &["-q", "-E", "lazy_itable_init=0", &disk.device],
        )?;
        // errors=continue: the file system keeps answering (with EIO), as a disk does before
        // an operator steps in, instead of turning read-only.
        run("mount", &["-o", "errors=continue", &disk.device, &target])?;
        Ok(disk)
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    /// From now on every write that reaches the device (and every read past what is cached)
    /// fails with EIO.
    pub fn fail(&self) {
        let image = self.images.path().join("disk.img");
        std::fs::OpenOptions::new()
            .write(true)
            .open(image)
            .and_then(|f| f.set_len(64 * 1024))
            .expect("cut the image short");
        run("losetup", &["-c", &self.device]).expect("losetup -c");
    }
}

impl Drop for FailingDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount_point.path())
            .status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}
