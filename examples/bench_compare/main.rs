//! Measures `actix-workerpool` against hand-rolled pools, in one process and
//! one run, scenario by scenario, and prints every figure next to its target.
//!
//! # What is measured
//!
//! | scenario          | what                                                         | target for (a)        |
//! |-------------------|--------------------------------------------------------------|-----------------------|
//! | `noop-4`          | ns per no-op task, 4 workers, a stream of 200,000 tasks      | <= 0.9x (b1)          |
//! | `noop-64`         | the same with 64 workers (and 64 readers in (b1))            | <= 0.9x (b1)          |
//! | `round-trip`      | p50 and p99 ns of submit-one-then-await, 4 idle workers      | p50 <= 1.2x, p99 <= 1.5x (b1) |
//! | `memory`          | RSS bytes per queued task with a 64-byte payload, handle included | <= 1.5x (b1)     |
//! | `sleep-100ms`     | wall time of 100 tasks x 100 ms on 5 workers                 | <= 1.015x the ideal 2.0 s |
//! | `cpu-2-arbiters`  | tasks/s of ~1 ms CPU-bound tasks, 4 workers on 2 arbiters    | >= 1.8x the same pool on 1 arbiter |
//! | `noop-2-arbiters` | ns per no-op task, 4 workers on 2 arbiters, 100,000 tasks    | <= 1.5x (b2)          |
//! | `keyed-4`         | ns per keyed no-op task (64 keys in turn), 4 workers, 100,000 tasks | <= 4x (a) with tasks without a key |
//!
//! The streams keep at most 1,024 tasks in flight, awaiting the oldest when
//! the window is full. Every run checks that every task completed, so that a
//! broken pool cannot report a fast time. Each scenario does one untimed
//! warm-up round, then its repetitions with the pools interleaved (rep 1: a,
//! b1, ...; rep 2: a, b1, ...), so that drift in the machine's speed hits
//! every pool alike. `memory` measures each pool in a fresh child process
//! (this program, started again with a hidden `--memory-probe` flag), so that
//! memory one pool freed does not flatter the next.
//!
//! # The pools
//!
//! * (a) `actix-workerpool`, the pool under test, through its public API;
//! * (b1) a tokio channel pool on the actix `System`'s current-thread runtime:
//!   one bounded `mpsc` channel, N reader tasks sharing its receiver, each job
//!   answered through its own oneshot, like a Go worker pool;
//! * (b2) the same pool on a 2-thread tokio runtime, its submitter a task on
//!   that runtime too;
//! * (c) plain actix actors fed round-robin with `Addr::send`.
//!
//! # Running it
//!
//! ```sh
//! cargo run --release --example bench_compare                     # every scenario, a few minutes
//! cargo run --release --example bench_compare -- --quick          # smaller and fewer, under 30 s
//! cargo run --release --example bench_compare -- --only round-trip   # one scenario, e.g. to profile
//! cargo run --release --example bench_compare -- --tasks 1000000 --reps 7
//! cargo run --release --example bench_compare -- --untimed        # tasks not timed: what timing costs
//! cargo run --release --example bench_compare --features metrics   # with metrics recorded
//! ```
//!
//! `--reps N` sets the timed repetitions of every scenario (default 5; 3 with
//! `--quick`, and 1 for `sleep-100ms`); `--tasks N` sets the tasks per run of
//! the `noop-*` scenarios.
//!
//! # Reading the table
//!
//! One row per pool and figure: the median over the repetitions, the min..max
//! around it, and the ratio of that median to the scenario's baseline median
//! (the row marked `baseline`). The pool under test's row gives its target
//! and whether it is met. For costs (ns, bytes, seconds) lower is better, so
//! the target is an upper bound; for `cpu-2-arbiters` the figure is tasks/s,
//! higher is better, and the ratio is the speed-up. The last line counts the
//! targets met. Only release figures mean anything: a debug build mostly
//! measures how much unoptimised code each design runs.

mod args;
mod baselines;
mod drive;
mod memory_probe;
mod report;
mod scenarios;
mod subject;

use std::process;
use std::time::Instant;

use args::{Mode, Settings, USAGE};
use report::Table;
use scenarios::Bench;

fn main() {
    let mode = args::parse(std::env::args().skip(1)).unwrap_or_else(|error| fail(&error));
    match mode {
        Mode::Bench(settings) => bench(settings),
        Mode::MemoryProbe { probe, count } => memory_probe::run(probe, count),
    }
}

/// Runs the scenarios the settings select and prints the table.
fn bench(settings: Settings) {
    let selected = scenarios::select(settings.only.as_deref()).unwrap_or_else(|error| fail(&error));
    let start = Instant::now();
    // Before anything else starts a thread that could slow the measurement.
    let spin_iterations = scenarios::calibrate_spin();
    report::print_preamble(&settings, spin_iterations);
    #[cfg(feature = "metrics")]
    record_metrics();
    if settings.untimed {
        subject::untimed();
        println!("the pool under test does not time its tasks (--untimed)");
    }
    let bench = Bench::new(settings, spin_iterations);

    let mut table = Table::start();
    for scenario in selected {
        for row in scenario.run(&bench) {
            table.print(&row);
        }
    }
    table.finish(start.elapsed());
}

/// Built with the `metrics` feature, the pool under test records into a
/// Prometheus recorder, as a service that exports its metrics would: the
/// figures then include what metrics cost. Histograms are drained once a
/// second, as the exporter's own upkeep would.
#[cfg(feature = "metrics")]
fn record_metrics() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap_or_else(|error| fail(&format!("no metrics recorder: {error}")));
    println!("metrics: recorded into a Prometheus recorder (feature `metrics`)");
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            handle.run_upkeep();
        }
    });
}

fn fail(error: &str) -> ! {
    eprintln!("{error}\n{USAGE}");
    process::exit(2);
}
