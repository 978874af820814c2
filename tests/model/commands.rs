//! What a case is made of: the task kinds, the commands and the pool setup,
//! and the proptest strategies that generate them.

use std::fmt;
use std::time::Duration;

use actix_workerpool::OutcomeKind;
use proptest::prelude::*;

/// What a task does when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Completes,
    Fails,
    Panics,
    /// Waits until released (or times out).
    Held,
    /// Sleeps past the pool's timeout.
    Sleeps,
    /// Never ends by itself: only the timeout ends it.
    Forever,
}

impl Kind {
    /// Whether a task of this kind may end this way.
    pub(crate) fn may_end(self, outcome: OutcomeKind) -> bool {
        use OutcomeKind as O;
        outcome == O::NotRun
            || match self {
                Kind::Completes => outcome == O::Completed,
                Kind::Fails => outcome == O::Failed,
                Kind::Panics => outcome == O::Panicked,
                Kind::Held => matches!(outcome, O::Completed | O::TimedOut),
                Kind::Sleeps | Kind::Forever => outcome == O::TimedOut,
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
    /// Releases the i-th (modulo) held task not yet released.
    Release(usize),
    /// Lets virtual time pass.
    Advance(Ms),
    /// `pool.stop()`, spawned: it answers once every worker is gone.
    Stop,
    /// `pool.drain()`, spawned.
    Drain,
    /// A few snapshots in a row, between yields.
    Snapshot,
}

#[derive(Clone, Debug)]
pub(crate) struct Setup {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) backoff_base: Ms,
    pub(crate) backoff_max: Ms,
    pub(crate) restart_limit: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) setup: Setup,
    pub(crate) commands: Vec<Command>,
}

pub(crate) fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        30 => Just(Kind::Completes),
        12 => Just(Kind::Fails),
        14 => Just(Kind::Panics),
        25 => Just(Kind::Held),
        10 => Just(Kind::Sleeps),
        8 => Just(Kind::Forever),
    ]
}

pub(crate) fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        30 => kind().prop_map(Command::TrySubmit),
        10 => kind().prop_map(Command::Submit),
        14 => (0..8usize).prop_map(Command::Release),
        18 => prop_oneof![1..=10u64, 95..=105u64, 1..=250u64]
            .prop_map(|ms| Command::Advance(Ms(ms))),
        6 => Just(Command::Snapshot),
        3 => Just(Command::Stop),
        3 => Just(Command::Drain),
    ]
}

pub(crate) fn setup() -> impl Strategy<Value = Setup> {
    (
        1..=3usize,
        1..=4usize,
        1..=4u64,
        0..=4u64,
        prop_oneof![1 => 0..=1u32, 3 => 2..=8u32],
    )
        .prop_map(
            |(workers, queue_capacity, base, extra, restart_limit)| Setup {
                workers,
                queue_capacity,
                backoff_base: Ms(base),
                backoff_max: Ms(base + extra),
                restart_limit,
            },
        )
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
    (setup(), prop::collection::vec(command(), 1..=25))
        .prop_map(|(setup, commands)| Case { setup, commands })
}
