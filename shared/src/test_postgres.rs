//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` into a temporary directory,
//! `pg_ctl start` on a free 127.0.0.1 port, stopped (and the directory removed) when dropped.
//! Test support, not product code: it panics when the server cannot be started.
//!
//! The server binaries are found under `/usr/lib/postgresql/<version>/bin` (Debian's layout),
//! in `ICHIGEN_TEST_PG_BIN`, or on `PATH`. PostgreSQL refuses to run as root, so when the tests
//! run as root the server runs as the `postgres` user (`runuser -u postgres --`), which owns its
//! directory. Tests that need a server are compiled with `cfg(has_postgres)` (set by the tests
//! crate's build script when it finds `initdb`) and are `#[ignore]`d otherwise, so that the
//! runner reports them as skipped rather than passed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server. Drop stops it.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    /// Serves TLS with a certificate for 127.0.0.1 signed by a CA of its own.
    tls: bool,
}

impl TestPostgres {
    /// `initdb`, then start on a free port; panics with the server's log when that fails.
    pub fn start() -> TestPostgres {
        Self::start_with(false)
    }

    /// [`Self::start`] serving TLS (as well as plain connections) with a certificate for
    /// 127.0.0.1 signed by a test CA: [`Self::ca_file`] is the CA to trust.
    pub fn start_with_tls() -> TestPostgres {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> TestPostgres {
        let bin = bin_dir().expect("PostgreSQL server binaries (initdb) not found");
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("ichigen-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            // The server's own user must own its data and socket directories.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the PostgreSQL test dir failed");
        }
        let data = dir.path().join("data");
        let port = free_port();
        let server = TestPostgres {
            bin,
            dir,
            port,
            as_postgres,
            tls,
        };
        let out = server
            .command("initdb")
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if tls {
            server.make_certificates();
        }
        server.launch();
        server
    }

    /// The test CA's certificate (PEM), for a server started with TLS.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.crt")
    }

    /// A CA and a server certificate for 127.0.0.1, with openssl, owned by the server's user.
    fn make_certificates(&self) {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=ichigen test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(tls.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&tls)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let status = Command::new("chmod")
            .arg("600")
            .arg(tls.join("server.key"))
            .status()
            .expect("chmod");
        assert!(status.success());
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of another database of this server.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `psql -c sql` against the `postgres` database; its stdout.
    pub fn psql(&self, sql: &str) -> String {
        let out = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-At", "-c", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Starts the stopped server again on the same data directory and port.
    pub fn restart(&self) {
        self.launch();
    }

    /// `pg_ctl start` on the data directory, waiting until it accepts connections.
    fn launch(&self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200 \
             -c shared_buffers=64MB -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let tls = self.dir.path().join("tls");
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                tls.join("server.crt").display(),
                tls.join("server.key").display()
            ));
        }
        let log = self.dir.path().join("server.log");
        let out = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.path().join("data"))
            .args(["-o", &options, "-l"])
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once (`-m immediate`): what a crash of the database looks like.
    pub fn stop_immediately(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

/// Where `initdb` and `pg_ctl` are, if anywhere.
pub fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("ICHIGEN_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some(newest) = versions.pop() {
        return Some(newest);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| Path::new(p).join("initdb").exists())
    })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
