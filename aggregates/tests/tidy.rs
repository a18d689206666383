//! The domain crate does no I/O: its manifest must not name an adapter crate.

#[test]
fn aggregates_depends_on_no_adapter() {
    let manifest = include_str!("../Cargo.toml");
    for banned in [
        "sqlx",
        "lapin",
        "axum",
        "reqwest",
        "tokio-postgres",
        "hyper",
        "postgres-es",
    ] {
        let dependency_line = manifest.lines().any(|line| {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            name == banned
        });
        assert!(!dependency_line, "aggregates must not depend on {banned}");
    }
}
