//! An example's binary, for the tests that run one as a process: built by
//! cargo, with the features given, into the profile directory of the test
//! binary that asks (so that it is the build `cargo test` made, or an
//! up-to-date one cargo makes at once).

use std::path::PathBuf;
use std::process::Command;

/// Builds the example `name` with `features` and returns its path.
///
/// # Panics
///
/// If cargo cannot be run or the build fails: the test cannot go on.
pub fn built_example(name: &str, features: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--example", name]);
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    if profile.ends_with("release") {
        build.arg("--release");
    }
    let built = build.status().expect("run cargo to build the example");
    assert!(built.success(), "building the {name} example failed");
    let example = profile.join("examples").join(name);
    assert!(example.exists(), "{} is missing", example.display());
    example
}
