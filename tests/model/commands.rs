//! What a case is made of: the task kinds (and what each attempt of one does),
//! the commands and the pool setup, and the proptest strategies that generate
//! them.

use std::fmt;
use std::time::Duration;

use actix_workerpool::{Jitter, RetryPolicy};
use proptest::prelude::*;

/// What a task does, attempt by attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Completes,
    Fails,
    Panics,
    /// Waits until released (or times out), on every attempt.
    Held,
    /// Waits until released (or times out), then fails, on every attempt:
    /// released as a cancel comes, its attempt may end in a way the policy
    /// retries.
    FailsWhenReleased,
    /// Waits until released (or times out), then panics, on every attempt:
    /// its worker panics when the case says, after a resize may have retired
    /// it. Only in a pool that does not retry panics
    /// (see `without_ambiguous_panics`): a cancel racing its release may cut
    /// it off or find it panicked, and the events tell which only if a
    /// panic ends the task.
    PanicsWhenReleased,
    /// Sleeps past the pool's timeout.
    Sleeps,
    /// Never ends by itself: only the timeout ends it.
    Forever,
    /// Fails on its first attempt, completes on any later one.
    FailsOnce,
    /// Panics on its first attempt, completes on any later one.
    PanicsOnce,
    /// Hangs on its first attempt (only the timeout ends it), completes on
    /// any later one.
    HangsOnce,
}

/// What one attempt of a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    Complete,
    Fail,
    Panic,
    Hold,
    HoldThenFail,
    HoldThenPanic,
    Sleep,
    Hang,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Completed,
    Failed,
    Panicked,
    TimedOut,
}

impl Kind {
    /// What attempt `attempt` (counting from 1) does.
    pub(crate) fn act(self, attempt: u32) -> Act {
        let first = attempt <= 1;
        match self {
            Kind::Completes => Act::Complete,
            Kind::Fails => Act::Fail,
            Kind::Panics => Act::Panic,
            Kind::Held => Act::Hold,
            Kind::FailsWhenReleased => Act::HoldThenFail,
            Kind::PanicsWhenReleased => Act::HoldThenPanic,
            Kind::Sleeps => Act::Sleep,
            Kind::Forever => Act::Hang,
            Kind::FailsOnce if first => Act::Fail,
            Kind::PanicsOnce if first => Act::Panic,
            Kind::HangsOnce if first => Act::Hang,
            Kind::FailsOnce | Kind::PanicsOnce | Kind::HangsOnce => Act::Complete,
        }
    }

    /// Whether it waits for a release: then it has a hold to release.
    pub(crate) fn holds(self) -> bool {
        matches!(
            self,
            Kind::Held | Kind::FailsWhenReleased | Kind::PanicsWhenReleased
        )
    }
}

/// When a held task's release came, against its attempt's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Not released (or no timeout and not released).
    No,
    /// Released before the deadline (or with no deadline at all).
    Before,
    /// Released at a moment that may be before, at or after the deadline:
    /// the attempt's start (so its deadline) is known only within a window;
    /// or exactly at the deadline, where rule 9 of ARCHITECTURE.md's promise
    /// ("a result that comes after its deadline is discarded") leaves the
    /// instant itself open (the worker discards it).
    Around,
    /// Released after the deadline (its timer may not have fired yet:
    /// timers fire on the millisecond tick after their deadline).
    After,
}

impl Act {
    /// How an attempt doing this may end, if it ends without anyone's help;
    /// `timeout`: whether the pool has one. Empty: it runs on.
    ///
    /// A held task released while its attempt runs ends at once, in the same
    /// instant (virtual time does not move until the pool settles): completed
    /// if that is before its deadline; a result after the deadline is
    /// discarded, and the attempt timed out (ARCHITECTURE.md, The promise,
    /// rule 9).
    pub(crate) fn ends(self, release: Release, timeout: bool) -> Vec<End> {
        match self {
            Act::Complete => vec![End::Completed],
            Act::Fail => vec![End::Failed],
            Act::Panic => vec![End::Panicked],
            Act::Hold | Act::HoldThenFail | Act::HoldThenPanic => {
                let released = match self {
                    Act::Hold => End::Completed,
                    Act::HoldThenFail => End::Failed,
                    _ => End::Panicked,
                };
                match release {
                    Release::Before => vec![released],
                    Release::Around => vec![released, End::TimedOut],
                    Release::After => vec![End::TimedOut],
                    Release::No if timeout => vec![End::TimedOut],
                    Release::No => vec![],
                }
            }
            // `SLEEP` is past `TIMEOUT`.
            Act::Sleep | Act::Hang if timeout => vec![End::TimedOut],
            Act::Sleep => vec![End::Completed],
            Act::Hang => vec![],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ms(pub(crate) u64);

impl fmt::Debug for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl Ms {
    pub(crate) fn duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// `pool.submit`: at once when the model knows there is room (or the pool
    /// is closed); otherwise spawned, to wait for room.
    Submit(Kind),
    TrySubmit(Kind),
    /// `Submit` of a task with a key (`TaskKey::new(k)`): see `keys.rs`.
    SubmitKeyed(Kind, u64),
    /// `TrySubmit` of a task with a key.
    TrySubmitKeyed(Kind, u64),
    /// Releases the i-th (modulo) held task not yet released.
    Release(usize),
    /// Lets virtual time pass.
    Advance(Ms),
    /// `pool.stop()`, spawned: it answers once every worker is gone.
    Stop,
    /// `pool.drain()`, spawned.
    Drain,
    /// A few snapshots in a row, between yields (and, on one arbiter, the
    /// status of every task).
    Snapshot,
    /// Cancels a task, and waits for the answer (it comes in the same
    /// instant: no virtual time passes).
    Cancel(Whom, Way),
    /// Releases the i-th (modulo) held task not yet released, as `Release`
    /// does, and cancels a task in the same instant, before anything else
    /// runs: the held task itself (its attempt ends by itself as the cancel
    /// comes), or the next task waiting for its first attempt (which the
    /// released worker may be taking as the cancel comes). With nothing to
    /// release, it asks nothing.
    ReleaseAndCancel(usize, Whom, Way, Order),
    /// `pool.cancel` of an id the pool never gave out: this many past the
    /// last one it may have given out so far (waiting submits included),
    /// saturating.
    CancelUnknown(u64),
    /// `pool.resize(n)`, and waits for the answer (see `resize.rs`).
    Resize(usize),
    /// `pool.stop()`, sent (and spawned, as `Stop`), then at once
    /// `pool.resize(n)`: the stop is asked for and not yet decided when the
    /// resize comes, which must be refused.
    StopAndResize(usize),
}

/// Which task a cancel is for. A cancel whose task does not exist (no task
/// accepted yet, none queued, none released) asks nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Whom {
    /// The i-th (modulo) accepted task with no outcome yet; of all accepted
    /// tasks if every one has its outcome.
    Live(usize),
    /// The i-th (modulo) accepted task, whatever became of it: often one
    /// that has ended (or was handed back by a stop).
    Any(usize),
    /// The first accepted task still waiting for its first attempt.
    NextQueued,
    /// The held task released last.
    Released,
}

/// Which goes first when a release races a cancel: the release (its worker
/// is woken before the supervisor reads the cancel), or the cancel, sent
/// (the supervisor asks for the cut-off before the worker sees its release).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    ReleaseFirst,
    CancelFirst,
}

/// How a cancel is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// `TaskHandle::cancel`.
    Handle,
    /// `Pool::cancel`, by the task's id.
    Id,
    /// Both at once, for the same task: at most one of them takes effect.
    Both,
}

/// The pool's retry policy: exponential backoff with factor 2 and no jitter,
/// so that every delay is known exactly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    /// Attempts in all (1: a policy that never retries, set explicitly).
    pub(crate) max_attempts: u32,
    pub(crate) base: Ms,
    pub(crate) max: Ms,
    pub(crate) retry_panics: bool,
}

impl Retry {
    pub(crate) fn policy(&self) -> RetryPolicy {
        RetryPolicy::builder()
            .max_attempts(self.max_attempts)
            .base_delay(self.base.duration())
            .factor(2.0)
            .max_delay(self.max.duration())
            .jitter(Jitter::None)
            .retry_panics(self.retry_panics)
            .build()
            .expect("a valid retry policy")
    }

    /// The delay after failure number `failures` (from 1): `base * 2^(failures
    /// - 1)`, capped at `max`, computed here in whole milliseconds.
    pub(crate) fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        Duration::from_millis((self.base.0 << doublings).min(self.max.0))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) backoff_base: Ms,
    pub(crate) backoff_max: Ms,
    pub(crate) restart_limit: u32,
    /// `None`: the pool's default policy (never retry).
    pub(crate) retry: Option<Retry>,
    /// `Some(k)`: the workers run on k dedicated arbiters (threads).
    pub(crate) arbiters: Option<usize>,
}

impl Setup {
    /// Attempts a task gets in all.
    pub(crate) fn max_attempts(&self) -> u32 {
        self.retry.map_or(1, |r| r.max_attempts)
    }

    /// Whether an attempt that ended `end` as attempt number `attempt` is
    /// retried (the pool's rules: every error retries, as do timeouts;
    /// panics only with `retry_panics`; never past `max_attempts`).
    pub(crate) fn retries(&self, end: End, attempt: u32) -> bool {
        let retryable = match end {
            End::Completed => false,
            End::Failed | End::TimedOut => true,
            End::Panicked => self.retry.is_some_and(|r| r.retry_panics),
        };
        retryable && attempt < self.max_attempts()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) setup: Setup,
    pub(crate) commands: Vec<Command>,
}

/// Kinds for a pool on one arbiter: all of them.
pub(crate) fn kind() -> BoxedStrategy<Kind> {
    prop_oneof![
        26 => Just(Kind::Completes),
        10 => Just(Kind::Fails),
        12 => Just(Kind::Panics),
        22 => Just(Kind::Held),
        8 => Just(Kind::FailsWhenReleased),
        5 => Just(Kind::PanicsWhenReleased),
        8 => Just(Kind::Sleeps),
        6 => Just(Kind::Forever),
        8 => Just(Kind::FailsOnce),
        6 => Just(Kind::PanicsOnce),
        6 => Just(Kind::HangsOnce),
    ]
    .boxed()
}

/// Kinds for a pool on dedicated arbiters: none that needs a timeout (the
/// pool there has none; see `main.rs`).
pub(crate) fn untimed_kind() -> BoxedStrategy<Kind> {
    prop_oneof![
        30 => Just(Kind::Completes),
        10 => Just(Kind::Fails),
        12 => Just(Kind::Panics),
        25 => Just(Kind::Held),
        8 => Just(Kind::FailsWhenReleased),
        5 => Just(Kind::PanicsWhenReleased),
        10 => Just(Kind::FailsOnce),
        8 => Just(Kind::PanicsOnce),
    ]
    .boxed()
}

fn order() -> impl Strategy<Value = Order> {
    prop_oneof![Just(Order::ReleaseFirst), Just(Order::CancelFirst)]
}

fn way() -> impl Strategy<Value = Way> {
    prop_oneof![4 => Just(Way::Handle), 4 => Just(Way::Id), 2 => Just(Way::Both)]
}

/// Cancels: mostly of tasks that have not ended (queued, running, waiting
/// for a retry), some of any task (often ended), some of ids never given out
/// (the very next one, or one far beyond), and some in the same instant as
/// a release.
fn cancel() -> impl Strategy<Value = Command> {
    let whom = prop_oneof![
        6 => (0..8usize).prop_map(Whom::Live),
        3 => (0..8usize).prop_map(Whom::Any),
        2 => Just(Whom::NextQueued),
        1 => Just(Whom::Released),
    ];
    let released = prop_oneof![3 => Just(Whom::Released), 2 => Just(Whom::NextQueued)];
    prop_oneof![
        10 => (whom, way()).prop_map(|(whom, way)| Command::Cancel(whom, way)),
        6 => (0..8usize, released, way(), order())
            .prop_map(|(i, whom, way, order)| Command::ReleaseAndCancel(i, whom, way, order)),
        2 => prop_oneof![0..=2u64, Just(u64::MAX)].prop_map(Command::CancelUnknown),
    ]
}

/// The sizes a resize asks for: mostly 1 to 4, now and then 0 (refused).
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 9 => 1..=4usize]
}

/// The keys of keyed tasks: few, so that tasks share them; one more often
/// than the others.
fn key() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 1 => Just(1u64), 1 => Just(2u64)]
}

fn commands_of(
    kind: BoxedStrategy<Kind>,
    advance: BoxedStrategy<u64>,
) -> impl Strategy<Value = Command> {
    // A third of the submits keyed.
    prop_oneof![
        20 => kind.clone().prop_map(Command::TrySubmit),
        10 => (kind.clone(), key()).prop_map(|(kind, key)| Command::TrySubmitKeyed(kind, key)),
        7 => kind.clone().prop_map(Command::Submit),
        4 => (kind, key()).prop_map(|(kind, key)| Command::SubmitKeyed(kind, key)),
        14 => (0..8usize).prop_map(Command::Release),
        18 => advance.prop_map(|ms| Command::Advance(Ms(ms))),
        6 => Just(Command::Snapshot),
        3 => Just(Command::Stop),
        3 => Just(Command::Drain),
        16 => cancel(),
        6 => size().prop_map(Command::Resize),
        1 => size().prop_map(Command::StopAndResize),
    ]
}

pub(crate) fn command() -> impl Strategy<Value = Command> {
    // Around the timeout (100 ms), and around retry delays and backoffs.
    let advance = prop_oneof![1..=10u64, 95..=105u64, 1..=250u64].boxed();
    commands_of(kind(), advance)
}

pub(crate) fn untimed_command() -> impl Strategy<Value = Command> {
    // Only restart backoffs and retry delays depend on time there.
    let advance = prop_oneof![1..=10u64, 1..=40u64].boxed();
    commands_of(untimed_kind(), advance)
}

pub(crate) fn retry() -> impl Strategy<Value = Option<Retry>> {
    let policy = (1..=3u32, 1..=5u64, 0..=10u64, any::<bool>()).prop_map(
        |(max_attempts, base, extra, retry_panics)| Retry {
            max_attempts,
            base: Ms(base),
            max: Ms(base + extra),
            retry_panics,
        },
    );
    prop_oneof![1 => Just(None), 3 => policy.prop_map(Some)]
}

pub(crate) fn setup(
    workers: std::ops::RangeInclusive<usize>,
    arbiters: Option<usize>,
) -> impl Strategy<Value = Setup> {
    (
        workers,
        1..=4usize,
        1..=4u64,
        0..=4u64,
        prop_oneof![1 => 0..=1u32, 3 => 2..=8u32],
        retry(),
    )
        .prop_map(
            move |(workers, queue_capacity, base, extra, restart_limit, retry)| Setup {
                workers,
                queue_capacity,
                backoff_base: Ms(base),
                backoff_max: Ms(base + extra),
                restart_limit,
                retry,
                arbiters,
            },
        )
}

/// A case as generated, but for `PanicsWhenReleased` in a pool that retries
/// panics, which becomes `FailsWhenReleased`: there, an attempt that
/// panicked as a cancel came, or around its deadline, is retried or
/// cancelled as one that failed or timed out would be, and only a restart
/// would tell the panic (which may or may not follow).
fn without_ambiguous_panics(setup: Setup, mut commands: Vec<Command>) -> Case {
    if setup.retry.is_some_and(|r| r.retry_panics) {
        for command in &mut commands {
            if let Command::Submit(kind)
            | Command::TrySubmit(kind)
            | Command::SubmitKeyed(kind, _)
            | Command::TrySubmitKeyed(kind, _) = command
                && *kind == Kind::PanicsWhenReleased
            {
                *kind = Kind::FailsWhenReleased;
            }
        }
    }
    Case { setup, commands }
}

/// A case for a pool whose workers share the test's arbiter.
pub(crate) fn case() -> impl Strategy<Value = Case> {
    (setup(1..=3, None), prop::collection::vec(command(), 1..=25))
        .prop_map(|(setup, commands)| without_ambiguous_panics(setup, commands))
}

/// A case for a pool whose workers run on two dedicated arbiters.
pub(crate) fn two_arbiter_case() -> impl Strategy<Value = Case> {
    (
        setup(2..=4, Some(2)),
        prop::collection::vec(untimed_command(), 1..=25),
    )
        .prop_map(|(setup, commands)| without_ambiguous_panics(setup, commands))
}
