//! Sets `cfg(has_postgres)` when PostgreSQL's server binaries are installed, so that the tests
//! needing a PostgreSQL server run here and are `#[ignore]`d (reported as skipped, never as
//! passed) on a machine without them. Looks where `ichigen_tests::postgres::bin_dir` does.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_postgres)");
    println!("cargo::rerun-if-env-changed=ICHIGEN_TEST_PG_BIN");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=/usr/lib/postgresql");
    let explicit = std::env::var_os("ICHIGEN_TEST_PG_BIN")
        .is_some_and(|d| Path::new(&d).join("initdb").exists());
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("bin").join("initdb").exists());
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("initdb").exists()));
    if explicit || debian || on_path {
        println!("cargo::rustc-cfg=has_postgres");
    }
}
