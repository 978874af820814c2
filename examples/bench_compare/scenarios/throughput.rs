//! Streams of no-op tasks: what dispatch costs per task, pool against pool.
//!
//! One submitter keeps at most [`WINDOW`] tasks in flight (see
//! [`drive::stream`]); every task is a no-op, so all that is measured is the
//! machinery around it.

use std::time::Duration;

use actix_workerpool::Pool;

use super::{Bench, interleave};
use crate::baselines::NoopJob;
use crate::baselines::local_channel::{self, LocalChannelPool};
use crate::baselines::round_robin::{self, RoundRobin};
use crate::baselines::threaded_channel::{self, ThreadedChannelPool};
use crate::drive::{self, WINDOW};
use crate::report::{Label, Row, Summary, Target, Unit, compare};
use crate::subject::{self, KeyedNoop, Noop, Placement};

/// 4 workers on the submitter's thread, against every baseline.
pub const NOOP_4: &str = "noop-4";
/// 64 workers on the submitter's thread, against (b1) with 64 readers.
pub const NOOP_64: &str = "noop-64";
/// 4 workers spread over 2 arbiters, against (b2).
pub const NOOP_2_ARBITERS: &str = "noop-2-arbiters";
/// Keyed no-op tasks (64 keys in turn), 4 workers, against the same pool
/// with tasks without a key.
pub const KEYED_4: &str = "keyed-4";

/// How many keys [`KEYED_4`]'s tasks take in turn: enough that the four
/// workers always have a key free.
const KEYS: u64 = 64;

/// Runs [`NOOP_4`]: target (a) <= 0.9x (b1).
pub fn noop_4(bench: &Bench) -> Vec<Row> {
    let contenders = vec![
        Contender::subject(bench, 4, Placement::Local),
        Contender::local_channel(bench, 4),
        Contender::threaded_channel(bench, 4),
        Contender::round_robin(bench, 4),
    ];
    race(
        bench,
        NOOP_4,
        tasks(bench, 200_000, 20_000),
        contenders,
        Target::AtMost(0.9),
    )
}

/// Runs [`NOOP_64`]: target (a) <= 0.9x (b1).
pub fn noop_64(bench: &Bench) -> Vec<Row> {
    let contenders = vec![
        Contender::subject(bench, 64, Placement::Local),
        Contender::local_channel(bench, 64),
    ];
    race(
        bench,
        NOOP_64,
        tasks(bench, 200_000, 20_000),
        contenders,
        Target::AtMost(0.9),
    )
}

/// Runs [`NOOP_2_ARBITERS`]: target (a) <= 1.5x (b2).
pub fn noop_2_arbiters(bench: &Bench) -> Vec<Row> {
    let contenders = vec![
        Contender::subject(bench, 4, Placement::Arbiters(2)),
        Contender::threaded_channel(bench, 4),
    ];
    let tasks = tasks(bench, 100_000, 10_000);
    race(
        bench,
        NOOP_2_ARBITERS,
        tasks,
        contenders,
        Target::AtMost(1.5),
    )
}

/// Runs [`KEYED_4`]: what a key costs per task. Target (a-k) <= 4x (a),
/// the same pool with tasks without a key: a keyed task takes three messages
/// (in, to a worker, its report) where an unkeyed one under load takes one.
pub fn keyed_4(bench: &Bench) -> Vec<Row> {
    let contenders = vec![
        Contender::keyed_subject(bench, 4),
        Contender::subject(bench, 4, Placement::Local),
    ];
    race(
        bench,
        KEYED_4,
        tasks(bench, 100_000, 10_000),
        contenders,
        Target::AtMost(4.0),
    )
}

/// Tasks per run: `--tasks` if given, else the scenario's own size.
fn tasks(bench: &Bench, full: usize, quick: usize) -> usize {
    bench
        .settings
        .tasks
        .unwrap_or_else(|| bench.settings.size(full, quick))
}

/// Streams `tasks` tasks through every contender, interleaved, and compares
/// their ns/task: the first is the pool under test, the second the baseline.
fn race(
    bench: &Bench,
    scenario: &str,
    tasks: usize,
    contenders: Vec<Contender>,
    target: Target,
) -> Vec<Row> {
    let samples = interleave(bench.settings.reps(), &contenders, |contender| {
        contender.stream(bench, tasks).as_nanos() as f64 / tasks as f64
    });
    let figures: Vec<(Label, Summary)> = contenders
        .iter()
        .zip(&samples)
        .map(|(contender, samples)| (contender.label(), Summary::of(samples)))
        .collect();
    for contender in contenders {
        contender.shut_down(bench);
    }
    compare(scenario, Unit::NsPerTask, &figures, 1, target)
}

/// One of the pools a stream scenario compares.
enum Contender {
    Subject(Pool<Noop>),
    KeyedSubject(Pool<KeyedNoop>),
    LocalChannel(LocalChannelPool<NoopJob>),
    ThreadedChannel(ThreadedChannelPool),
    RoundRobin(RoundRobin),
}

impl Contender {
    fn subject(bench: &Bench, workers: usize, placement: Placement) -> Self {
        // A queue as long as the window: `try_submit` then never finds it full.
        let pool = bench
            .system
            .block_on(async { subject::start(workers, placement, WINDOW) });
        Contender::Subject(pool)
    }

    fn keyed_subject(bench: &Bench, workers: usize) -> Self {
        let pool = bench
            .system
            .block_on(async { subject::start(workers, Placement::Local, WINDOW) });
        Contender::KeyedSubject(pool)
    }

    fn local_channel(bench: &Bench, readers: usize) -> Self {
        // As long as the window, so that `try_send` never finds it full.
        let pool = bench
            .system
            .block_on(async { LocalChannelPool::start(readers, WINDOW) });
        Contender::LocalChannel(pool)
    }

    fn threaded_channel(bench: &Bench, readers: usize) -> Self {
        let pool = ThreadedChannelPool::start(&bench.threaded, readers, WINDOW);
        Contender::ThreadedChannel(pool)
    }

    fn round_robin(bench: &Bench, actors: usize) -> Self {
        let pool = bench.system.block_on(async { RoundRobin::start(actors) });
        Contender::RoundRobin(pool)
    }

    fn label(&self) -> Label {
        match self {
            Contender::Subject(_) => subject::LABEL,
            Contender::KeyedSubject(_) => subject::KEYED_LABEL,
            Contender::LocalChannel(_) => local_channel::LABEL,
            Contender::ThreadedChannel(_) => threaded_channel::LABEL,
            Contender::RoundRobin(_) => round_robin::LABEL,
        }
    }

    /// Streams `tasks` no-op tasks through this pool; returns the time taken.
    fn stream(&self, bench: &Bench, tasks: usize) -> Duration {
        match self {
            Contender::Subject(pool) => bench
                .system
                .block_on(drive::stream(tasks, || subject::try_submit(pool, Noop))),
            Contender::KeyedSubject(pool) => {
                let mut next = 0;
                bench.system.block_on(drive::stream(tasks, || {
                    next += 1;
                    subject::try_submit(pool, KeyedNoop(next % KEYS))
                }))
            }
            Contender::LocalChannel(pool) => bench
                .system
                .block_on(drive::stream(tasks, || NoopJob::try_send(pool.jobs()))),
            Contender::ThreadedChannel(pool) => pool.stream(&bench.threaded, tasks),
            Contender::RoundRobin(pool) => {
                bench.system.block_on(drive::stream(tasks, || pool.send()))
            }
        }
    }

    /// Stops the pool, so that nothing of it runs in the next scenario.
    fn shut_down(self, bench: &Bench) {
        match self {
            Contender::Subject(pool) => bench.system.block_on(subject::shut_down(pool)),
            Contender::KeyedSubject(pool) => bench.system.block_on(subject::shut_down(pool)),
            // Dropping the submitting end closes the channel or the
            // mailboxes, which ends the readers or the actors; those on this
            // thread end once the System runs again, so let it run a little.
            Contender::LocalChannel(_) | Contender::RoundRobin(_) => {
                bench.system.block_on(super::settle());
            }
            Contender::ThreadedChannel(_) => {}
        }
    }
}
