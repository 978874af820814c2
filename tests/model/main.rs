//! The model test: random, bounded sequences of commands (submit, try_submit,
//! of tasks with a key or none, release a held task, let virtual time pass,
//! stop, drain, snapshot, cancel, resize)
//! run against a real pool on the paused clock, with the pool's rules checked
//! after every step against a model of what each task may do and when.
//!
//! Each step runs its command, takes a snapshot at once (the counters balance
//! at every instant), then lets the pool settle (yields until nothing changes;
//! virtual time does not move while anything can run) and checks everything:
//! events, outcomes, counters, restarts, backoff, timeouts, retries, stop
//! answers. A failing case is shrunk by proptest and printed with the step
//! that broke (not persisted to a regressions file: every case the model has
//! found is kept in `regressions.rs` instead, as a test of its own).
//!
//! # Retries
//!
//! A case may give the pool a retry policy (1 to 3 attempts, a base delay of
//! a few milliseconds, factor 2, a cap, no jitter, panics retried or not).
//! The model knows what each attempt of a task does (`Kind::act`): a task
//! may fail, panic or hang on its first attempt and complete on the next. From
//! that it predicts, for every attempt's end, whether the pool retries it
//! (errors and timeouts do, panics only with `retry_panics`, never past the
//! last attempt) and the exact delay (`base * 2^(n-1)`, capped). It checks
//! that a retry waits off any worker (`waiting_retry`), starts no earlier
//! than its delay allows, goes before tasks waiting for their first attempt
//! once due, that every outcome carries the number of attempts made, that a
//! stop hands a waiting task back with its attempts, and that a drain waits.
//!
//! # Cancels
//!
//! A cancel is asked for by the task's handle, by its id (`Pool::cancel`), or
//! both at once; of a task that has not ended (queued, running, waiting for a
//! retry), of any task (often one that has ended, or that a stop handed back),
//! of the next task waiting for its first attempt, or of an id the pool never
//! gave out (the very next one, or one far beyond). A race: a held task
//! released in the same instant as a cancel of it, or of the task its worker
//! may take next, the release going first or the cancel (`FailsWhenReleased`
//! tasks fail once released, so an attempt may end in a way the policy retries
//! just as the cancel comes). `cancels.rs` and `cancelled.rs` check that the
//! answer comes in the instant it was asked for, after the handle resolved;
//! that a task ends `Cancelled` exactly when one of its cancels took effect,
//! and only one ever does; that its `TaskCancelled` event names the attempts
//! the answer names (none for `Queued`) and the worker `Running` names; that no
//! attempt starts after an outcome; that `Ended` answers only a task that has
//! its outcome, and `Unknown` exactly the ids never given out; that the events
//! match `Stats::cancelled`. A worker whose attempt was cut off is not
//! restarted (the restart rules hold as they are: no panic, no restart); one
//! whose attempt panicked as the cancel came is, as after any panic. On one
//! arbiter, a cancel with nothing racing it must also answer what the model
//! foresees from the task's state.
//!
//! # Resizing
//!
//! A resize asks for 1 to 4 slots, now and then for 0, alone or right behind
//! a stop that is sent but not yet decided. `resize.rs` checks its answer
//! (`Resized { from, to }`, `ZeroWorkers`, or `Stopped` once a stop is asked
//! for, decided or not, or the pool has stopped; a drain still running may
//! be resized), and keeps the model's slots in step from the events: a
//! growth brings back retired slots whose worker has gone, lowest first,
//! then appends; a shrink retires slots holding no task first, then busy
//! ones, highest first among equals. A retired slot takes no queued task,
//! gets no restart after a panic (a held task that panics once released,
//! `PanicsWhenReleased`, lets the last task of a retiring worker panic) and
//! no worker after a backoff; its `WorkerRetired` comes once its worker
//! holds no task. Every snapshot's `size` is the last accepted resize's, and
//! its workers holding a task are
//! those in flight (retiring ones included: in flight may exceed the size);
//! once settled, the slots listed (up to the last in service or still with a
//! worker) and each one's state match the model's. The dispatch rule (no
//! task waits while a worker could take it, but one waiting for its key)
//! holds over the slots in service. A slot's `WorkerRetired` comes after
//! the `Resized` that retired it, even for a slot that had no worker.
//!
//! # Keys
//!
//! A third of the submits give their task a key (`Task::key`), from three
//! (one more often than the others), so that keyed tasks often share one.
//! `keys.rs` checks, from the events, that tasks with one key never hold it
//! at once: an attempt of a keyed task starts only while every other task
//! with its key has reached its outcome, or is younger and has not started
//! (a task waiting for a retry holds its key; whatever ends a task gives it
//! on), so first attempts of one key come in id order. A task waiting behind
//! an older one with its key counts as queued, says `Queued`, is cancelled
//! as `Queued` and handed back by a stop as any queued task is, and a drain
//! runs it; but it waits for its key, not for a worker, so the dispatch rule
//! leaves it out. On one arbiter, a keyed task's first attempt overtakes no
//! older task free to go (a keyed task whose key came free goes behind those
//! submitted before it), but for a key that came free in the same step; a
//! task without a key may overtake an older keyed task on its way to the
//! supervisor (see `keys.rs`).
//!
//! # Where the model allows latitude
//!
//! The checks are exact wherever the pool's rules are. Four places leave a
//! choice to the pool, and the model accepts either answer there, and only
//! there:
//!
//! - a held task released when its attempt's deadline may already have come
//!   (the attempt's start is known only within the step it was seen in), or
//!   exactly at its deadline: it may complete or time out (rule 9 of
//!   ARCHITECTURE.md's promise discards a result that comes after the
//!   deadline, and the worker discards one at the deadline too; its timer,
//!   rounded up to the next millisecond, may not have fired yet);
//! - a cancel racing a release (in the same instant), or coming at the
//!   attempt's deadline: the attempt may be cut off before it sees its
//!   release (or its timer), or end by itself first; and an attempt cut off
//!   as it is handed out counts, though none of its code ran (`run` was not
//!   called);
//! - a panic while a `Stop` has been asked for but not yet decided: the
//!   supervisor may be deciding already, and then it restarts nothing, so
//!   the restart may or may not follow (and a panic past the restart limit
//!   may or may not make it give up). On one arbiter a stop is decided as
//!   soon as it is handled; on two it waits for workers in the middle of a
//!   take;
//! - a key that came free (its last task ended) in the step under way: the
//!   pool gives it to the next task with the key between messages, so a
//!   younger task may start first (a worker reporting the end may have
//!   taken the next task from the backlog in the same report). Only the
//!   order of first attempts across keys is concerned; that of one key's
//!   tasks is exact.
//!
//! # Two arbiters
//!
//! A second proptest runs the same model against pools whose workers run on
//! two dedicated arbiters (`PoolBuilder::arbiters(2)`). Those threads keep
//! real time, this one paused time, and the paused clock jumps whenever this
//! runtime has nothing to do, so anything timed across threads would fire
//! early or late. There, therefore:
//!
//! - the pool has no task timeout, and no kind needs one (no `Sleeps`,
//!   `Forever`, `HangsOnce`): what a timeout would check is left to the
//!   one-arbiter model;
//! - the runtime is never left to park while workers on the other threads
//!   work: settling and waiting poll with yields and short real pauses
//!   (bounded), and `Advance` moves the clock a millisecond at a time. Retry
//!   delays and restart backoffs are the supervisor's timers, on this thread,
//!   so they are still checked exactly, in virtual time;
//! - the settled checks hold *eventually* (see `Model::settle`), within a
//!   bound of real time; the checks on every event and every snapshot are
//!   exact, as on one arbiter;
//! - task statuses are not queried (a worker on another thread may be
//!   between two reports);
//! - first attempts are not held to submission order across keys (a worker
//!   on another thread may report its take from the backlog after the
//!   supervisor has handed a younger keyed task out); within one key they
//!   are, exactly;
//! - a worker retired while busy may have been in the middle of a take from
//!   the backlog as it was told to quit: it may start that one task, reported
//!   with the end of the attempt before it, and no other.
//!
//! # Case counts
//!
//! `PROPTEST_CASES` sets the one-arbiter count (256 by default);
//! `MODEL_ARBITER_CASES` the two-arbiter count, which is otherwise half of
//! `PROPTEST_CASES` (64 by default): each such case starts two threads and
//! waits for them, several times slower than a one-arbiter case.
//! `MODEL_TRACE=1` prints every step and event of the cases run, with its
//! virtual time.

#[path = "../common/mod.rs"]
mod common;

mod cancelled;
mod cancels;
mod check;
mod commands;
mod events;
mod keys;
mod observe;
mod probe;
mod reference;
mod regressions;
mod resize;
mod runner;
mod settled;

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestError, TestRunner};

use check::Check;
use commands::{Case, case, two_arbiter_case};
use reference::Model;

/// The pool's timeout for every attempt (on one arbiter).
const TIMEOUT: Duration = Duration::from_millis(100);
/// How long a `Sleeps` task sleeps: past the timeout.
const SLEEP: Duration = Duration::from_millis(150);
/// The restart window: longer than any case, so every restart counts.
const WINDOW: Duration = Duration::from_secs(60);
/// The safety net for anything that could hang, in virtual time.
const SAFETY: Duration = Duration::from_secs(3600);
/// Timer granularity: deadlines are rounded up to the next millisecond.
const TICK: Duration = Duration::from_millis(1);

async fn run_case(case: Case) -> Check {
    tokio::time::pause();
    let mut model = Model::start(case.setup.clone()).await?;
    for (i, command) in case.commands.iter().enumerate() {
        model
            .step(command)
            .await
            .map_err(|e| format!("step {i} ({command:?}): {e}"))?;
    }
    model.finish().await.map_err(|e| format!("at the end: {e}"))
}

/// Runs one case on a fresh actix `System`. A case that takes more than a
/// second of real time (on two arbiters, settling waited long) is printed.
fn run(case: Case) -> Check {
    let started = std::time::Instant::now();
    let printed = format!("{case:?}");
    let result = actix_rt::System::new().block_on(run_case(case));
    let took = started.elapsed();
    if took > Duration::from_secs(1) {
        eprintln!("a slow case ({took:?}, {result:?}): {printed}");
    }
    result
}

fn cases_from(var: &str) -> Option<u32> {
    std::env::var(var).ok().and_then(|n| n.parse().ok())
}

fn one_arbiter_cases() -> u32 {
    cases_from("PROPTEST_CASES").unwrap_or(256)
}

/// `MODEL_ARBITER_CASES`, or half of `PROPTEST_CASES`, or 64.
fn two_arbiter_cases() -> u32 {
    cases_from("MODEL_ARBITER_CASES")
        .or_else(|| cases_from("PROPTEST_CASES").map(|n| (n / 2).max(1)))
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: one_arbiter_cases(),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// ARCHITECTURE.md, The promise, rules 1, 2 and 4 to 7 together: every
    /// accepted task ends in exactly one outcome that fits it, after the
    /// attempts its retry policy allows, the counters always balance, refused
    /// tasks come back intact, panicking workers restart after their backoff
    /// until the limit, retries wait off the workers for exactly their delay,
    /// and every stop or drain answers, all with the same report.
    #[test]
    fn random_command_sequences_keep_the_pools_rules(case in case()) {
        if let Err(why) = run(case) {
            return Err(TestCaseError::fail(why));
        }
    }
}

/// The same rules with the workers on two dedicated arbiters, where they
/// take tasks from the backlog on their own threads while the supervisor
/// decides (see the module docs for what is left out there, and why).
///
/// Run by hand rather than by `proptest!`, which would let `PROPTEST_CASES`
/// set this count too: it has its own (see [`two_arbiter_cases`]).
#[test]
fn random_command_sequences_on_two_arbiters_keep_the_pools_rules() {
    let mut config = ProptestConfig {
        max_shrink_iters: 500,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    config.cases = two_arbiter_cases();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&two_arbiter_case(), |case| {
        run(case).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => {
            panic!("Test failed: {why}.\nminimal failing input: case = {case:#?}")
        }
        Err(other) => panic!("{other}"),
    }
}
