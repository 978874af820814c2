//! `cpu-2-arbiters`: tasks that burn about 1 ms of CPU each, on 4 workers
//! spread over 2 arbiters against the same pool on one arbiter (the
//! submitter's). On two cores the first should be nearly twice as fast: that
//! is what `.arbiters(n)` is for.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actix_workerpool::{Task, TaskContext};

use super::{Bench, interleave};
use crate::drive::{self, WINDOW};
use crate::report::{Label, Row, Summary, Target, Unit, compare};
use crate::subject::{self, Placement};

/// The scenario's name.
pub const NAME: &str = "cpu-2-arbiters";

const WORKERS: usize = 4;
const ARBITERS: usize = 2;
/// How long one task should burn the CPU.
const TASK_TIME: Duration = Duration::from_millis(1);

/// The pool under test here: spread over [`ARBITERS`] arbiters.
const SPREAD: Label = Label {
    tag: "a",
    name: "actix-workerpool, 2 arbiters",
};
/// Its baseline: the same pool with every worker on one arbiter.
const ONE_ARBITER: Label = Label {
    tag: "a/1",
    name: "actix-workerpool, 1 arbiter",
};

/// A task that burns the CPU for the given number of spin iterations.
struct Spin(u64);

impl Task for Spin {
    type Output = u64;
    type Error = std::convert::Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<u64, Self::Error> {
        Ok(spin(self.0))
    }
}

/// Arithmetic the optimiser cannot remove or shorten: `black_box` makes
/// every step's result unknown to it.
fn spin(iterations: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..iterations {
        acc = black_box(acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    acc
}

/// How many [`spin`] iterations take [`TASK_TIME`] on this machine.
///
/// Times a batch long enough to dwarf the timer's resolution, several times,
/// and keeps the fastest: on a noisy machine, slower runs are the ones that
/// were interrupted, not the true speed.
pub fn calibrate_spin() -> u64 {
    let mut batch = 10_000u64;
    while time_spin(batch) < Duration::from_millis(5) {
        batch *= 2;
    }
    let fastest = (0..5)
        .map(|_| time_spin(batch))
        .min()
        .expect("five timings");
    let per_task = batch as f64 * TASK_TIME.as_secs_f64() / fastest.as_secs_f64();
    (per_task as u64).max(1)
}

fn time_spin(iterations: u64) -> Duration {
    let start = Instant::now();
    black_box(spin(iterations));
    start.elapsed()
}

/// Runs [`NAME`]: target a speed-up of 1.8x or more from the second arbiter.
pub fn run(bench: &Bench) -> Vec<Row> {
    let tasks = bench.settings.size(400, 100);
    let pools = bench.system.block_on(async {
        [
            subject::start(WORKERS, Placement::Arbiters(ARBITERS), WINDOW),
            subject::start(WORKERS, Placement::Local, WINDOW),
        ]
    });
    let iterations = bench.spin_iterations;
    // The window is far above `tasks`: all are submitted at once.
    let samples = interleave(bench.settings.reps(), &pools, |pool| {
        let elapsed = bench.system.block_on(drive::stream(tasks, || {
            subject::try_submit(pool, Spin(iterations))
        }));
        tasks as f64 / elapsed.as_secs_f64()
    });
    for pool in pools {
        bench.system.block_on(subject::shut_down(pool));
    }

    let figures = [
        (SPREAD, Summary::of(&samples[0])),
        (ONE_ARBITER, Summary::of(&samples[1])),
    ];
    compare(
        NAME,
        Unit::TasksPerSecond,
        &figures,
        1,
        Target::AtLeast(1.8),
    )
}
