//! `memory`: what a queued task costs in memory, handle included, when it
//! carries a 64-byte payload. Each measurement runs in a child process (see
//! [`memory_probe`]); this side starts them, interleaved, and reads their
//! figures.
//!
//! The figure is the growth of the resident set: what the process really
//! holds once the tasks are queued, including memory a pool freed on the way
//! (a message consumed, a buffer outgrown) that the allocator kept.

use std::process::{Command, Stdio};

use super::{Bench, interleave};
use crate::memory_probe::{self, Probe};
use crate::report::{Label, Row, Summary, Target, Unit, compare};

/// The scenario's name.
pub const NAME: &str = "memory";

/// Runs [`NAME`]: target (a) <= 1.5x (b1).
pub fn run(bench: &Bench) -> Vec<Row> {
    if !memory_probe::is_supported() {
        eprintln!("{NAME}: skipped, this system has no /proc/self/status to read RSS from");
        return Vec::new();
    }
    let count = bench.settings.size(1_000_000, 100_000);
    let samples = interleave(bench.settings.reps(), &Probe::ALL, |&probe| {
        spawn_probe(probe, count)
    });
    let figures: Vec<(Label, Summary)> = Probe::ALL
        .iter()
        .zip(&samples)
        .map(|(probe, samples)| (probe.label(), Summary::of(samples)))
        .collect();
    compare(NAME, Unit::BytesPerTask, &figures, 1, Target::AtMost(1.5))
}

/// Runs this program again as a probe of `probe` with `count` tasks, and
/// returns the bytes per task it prints.
///
/// # Panics
///
/// If the probe cannot start, fails, or prints something else.
fn spawn_probe(probe: Probe, count: usize) -> f64 {
    let program = std::env::current_exe().expect("a program knows where it is");
    let output = Command::new(program)
        .args([
            "--memory-probe",
            probe.flag(),
            "--count",
            &count.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("the memory probe can start");
    assert!(
        output.status.success(),
        "the memory probe of ({}) failed: {}",
        probe.flag(),
        output.status
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    printed.trim().parse().unwrap_or_else(|_| {
        panic!(
            "the memory probe of ({}) printed `{printed}`, not a number",
            probe.flag()
        )
    })
}
