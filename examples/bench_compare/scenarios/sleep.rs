//! `sleep-100ms`: the Go worker pools' classic, 100 tasks of 100 ms on 5
//! workers. Ideally 20 waves of 100 ms, 2.0 s; whatever the pool adds to that
//! is its overhead on tasks that wait rather than work.

use std::convert::Infallible;
use std::time::Duration;

use actix_workerpool::{Task, TaskContext};

use super::{Bench, interleave};
use crate::drive::{self, WINDOW};
use crate::report::{Label, Row, Summary, Target, Unit, compare};
use crate::subject::{self, Placement};

/// The scenario's name.
pub const NAME: &str = "sleep-100ms";

const TASKS: usize = 100;
const WORKERS: usize = 5;
const NAP: Duration = Duration::from_millis(100);

/// What the pool would take if it cost nothing: full waves of naps.
const IDEAL: Label = Label {
    tag: "ideal",
    name: "100 tasks / 5 workers x 100 ms",
};

/// A task that sleeps (on the runtime's timer, not the thread).
struct Nap;

impl Task for Nap {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<(), Infallible> {
        actix_rt::time::sleep(NAP).await;
        Ok(())
    }
}

/// Runs [`NAME`]: target (a) <= 1.015x the ideal 2.0 s.
pub fn run(bench: &Bench) -> Vec<Row> {
    let pool = bench
        .system
        .block_on(async { subject::start(WORKERS, Placement::Local, WINDOW) });
    // The window is far above TASKS: all are submitted at once.
    let samples = interleave(bench.settings.slow_reps(), &[&pool], |pool| {
        let elapsed = bench
            .system
            .block_on(drive::stream(TASKS, || subject::try_submit(pool, Nap)));
        elapsed.as_secs_f64()
    });
    bench.system.block_on(subject::shut_down(pool));

    let waves = TASKS.div_ceil(WORKERS) as f64;
    let figures = [
        (subject::LABEL, Summary::of(&samples[0])),
        (IDEAL, Summary::exact(waves * NAP.as_secs_f64())),
    ];
    compare(NAME, Unit::Seconds, &figures, 1, Target::AtMost(1.015))
}
