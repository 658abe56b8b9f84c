//! What the tests of generated files share: compare the committed file with what the code
//! generates, or rewrite it under `make schema` (`ICHIGEN_UPDATE_SCHEMA=1`).

/// Panics with the first differing line unless `committed_path` holds `current`; with
/// `ICHIGEN_UPDATE_SCHEMA=1`, writes `current` there instead.
pub fn check_generated(committed_path: &str, current: &str) {
    let path = std::path::Path::new(committed_path);
    if std::env::var("ICHIGEN_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, current).unwrap_or_else(|e| panic!("write {committed_path}: {e}"));
        return;
    }
    let Ok(committed) = std::fs::read_to_string(path) else {
        panic!("{committed_path} is missing: run `make schema` and commit the result");
    };
    if committed != current {
        let first_difference = committed
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(current.lines().count()));
        panic!(
            "{committed_path} is out of date (first difference at line {}): run `make schema` \
             and commit the result",
            first_difference + 1
        );
    }
}
