//! `round-trip`: the latency of one task on an idle pool: submit it, await
//! its result, and only then submit the next. Nothing else runs, so every
//! hop of a task is paid in full, with no batching to hide it.

use actix_workerpool::Pool;

use super::{Bench, interleave};
use crate::baselines::NoopJob;
use crate::baselines::local_channel::{self, LocalChannelPool};
use crate::drive::{self, WINDOW};
use crate::report::{Label, Row, Summary, Target, Unit, compare, percentile};
use crate::subject::{self, Noop, Placement};

/// The scenario's name.
pub const NAME: &str = "round-trip";

/// Idle workers (or readers) waiting for each task.
const WORKERS: usize = 4;

/// Runs [`NAME`]: targets (a) p50 <= 1.2x (b1), p99 <= 1.5x (b1).
pub fn run(bench: &Bench) -> Vec<Row> {
    let round_trips = bench.settings.size(20_000, 2_000);
    let contenders = bench.system.block_on(async {
        [
            Contender::Subject(subject::start(WORKERS, Placement::Local, WINDOW)),
            Contender::LocalChannel(LocalChannelPool::start(WORKERS, WINDOW)),
        ]
    });
    let samples = interleave(bench.settings.reps(), &contenders, |contender| {
        Percentiles::of(&contender.round_trips(bench, round_trips))
    });

    let labels = contenders.each_ref().map(Contender::label);
    let figure = |pick: fn(&Percentiles) -> f64| -> Vec<(Label, Summary)> {
        labels
            .iter()
            .zip(&samples)
            .map(|(&label, samples)| {
                let values: Vec<f64> = samples.iter().map(pick).collect();
                (label, Summary::of(&values))
            })
            .collect()
    };
    let p50 = figure(|p| p.p50);
    let p99 = figure(|p| p.p99);
    for contender in contenders {
        contender.shut_down(bench);
    }

    let mut rows = compare("round-trip p50", Unit::Ns, &p50, 1, Target::AtMost(1.2));
    rows.extend(compare(
        "round-trip p99",
        Unit::Ns,
        &p99,
        1,
        Target::AtMost(1.5),
    ));
    rows
}

/// The percentiles of one repetition's round trips, in nanoseconds.
struct Percentiles {
    p50: f64,
    p99: f64,
}

impl Percentiles {
    fn of(sorted: &[u64]) -> Self {
        Percentiles {
            p50: percentile(sorted, 50.0) as f64,
            p99: percentile(sorted, 99.0) as f64,
        }
    }
}

/// One of the pools this scenario compares.
enum Contender {
    Subject(Pool<Noop>),
    LocalChannel(LocalChannelPool<NoopJob>),
}

impl Contender {
    fn label(&self) -> Label {
        match self {
            Contender::Subject(_) => subject::LABEL,
            Contender::LocalChannel(_) => local_channel::LABEL,
        }
    }

    /// Runs `count` round trips; returns their times in ns, sorted.
    fn round_trips(&self, bench: &Bench, count: usize) -> Vec<u64> {
        match self {
            Contender::Subject(pool) => bench
                .system
                .block_on(drive::round_trips(count, || subject::round_trip(pool))),
            Contender::LocalChannel(pool) => {
                bench.system.block_on(drive::round_trips(count, || {
                    NoopJob::round_trip(pool.jobs())
                }))
            }
        }
    }

    fn shut_down(self, bench: &Bench) {
        match self {
            Contender::Subject(pool) => bench.system.block_on(subject::shut_down(pool)),
            Contender::LocalChannel(pool) => {
                drop(pool);
                bench.system.block_on(super::settle());
            }
        }
    }
}
