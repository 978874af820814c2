//! The deterministic plan: what every attempt of every task does, decided by a
//! hash of (seed, task index, attempt), and the outcome each task must end in,
//! worked out in advance by replaying the retry rules over that plan.

use std::time::Duration;

use actix_workerpool::{Jitter, OutcomeKind, RetryPolicy, Task, TaskContext};

/// Every planned panic's message starts with this; the panic hook stays
/// silent for them.
pub const MARKER: &str = "soak: planned panic";

/// The timeout of an attempt planned to hang (`Task::timeout`).
pub const TASK_TIMEOUT: Duration = Duration::from_millis(20);

/// The timeout of every other attempt: one that no attempt comes near however
/// loaded the machine, so that which attempts time out is the plan's doing,
/// never the machine's speed (a result at or past its deadline counts as
/// timed out).
const GENEROUS_TIMEOUT: Duration = Duration::from_secs(600);

/// What one attempt does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Returns `Ok`, after the pause.
    Complete(Pause),
    /// Returns `Err`: retryable, or permanent (`is_retryable` says no).
    Fail { permanent: bool },
    /// Panics.
    Panic,
    /// Never ends by itself: only its timeout ends it.
    Hang,
}

/// How long a completing attempt takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    None,
    Yield,
    Sleep1ms,
}

/// splitmix64's finaliser: a small, good, seedable hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, index: u64, salt: u64) -> u64 {
    mix(mix(seed ^ mix(index)) ^ salt)
}

/// What attempt `attempt` (from 1) of task `index` does. Per mille, first
/// attempts: 700 complete, 150 fail (retryable), 50 fail (permanent), 50
/// panic, 50 hang; later attempts: 500, 150, 100, 50, 200.
pub fn action(seed: u64, index: u64, attempt: u32) -> Action {
    let h = hash(seed, index, u64::from(attempt));
    let roll = h % 1000;
    let bounds: [u64; 4] = if attempt <= 1 {
        [700, 850, 900, 950]
    } else {
        [500, 650, 750, 800]
    };
    if roll < bounds[0] {
        let pause = match (h >> 32) % 100 {
            0..=89 => Pause::None,
            90..=97 => Pause::Yield,
            _ => Pause::Sleep1ms,
        };
        Action::Complete(pause)
    } else if roll < bounds[1] {
        Action::Fail { permanent: false }
    } else if roll < bounds[2] {
        Action::Fail { permanent: true }
    } else if roll < bounds[3] {
        Action::Panic
    } else {
        Action::Hang
    }
}

/// Whether task `index` brings its own retry policy (about 1 in 10).
pub fn has_own_policy(seed: u64, index: u64) -> bool {
    hash(seed, index, 0xA11CE).is_multiple_of(10)
}

/// The pool's policy: 2 attempts, panics not retried.
pub fn pool_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(1))
        .factor(2.0)
        .max_delay(Duration::from_millis(10))
        .jitter(Jitter::Full)
        .build()
        .expect("a valid policy")
}

/// The tasks' own policy: 3 attempts, panics retried too.
pub fn own_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(1))
        .factor(2.0)
        .max_delay(Duration::from_millis(10))
        .jitter(Jitter::Equal)
        .retry_panics(true)
        .build()
        .expect("a valid policy")
}

/// The outcome kinds this program counts, `Other` for any it does not know.
pub const KINDS: [&str; 6] = [
    "Completed",
    "Failed",
    "Panicked",
    "TimedOut",
    "NotRun",
    "other",
];
pub const COMPLETED: usize = 0;
pub const FAILED: usize = 1;
pub const PANICKED: usize = 2;
pub const TIMED_OUT: usize = 3;
pub const NOT_RUN: usize = 4;
pub const OTHER: usize = 5;

/// The column of `kind` in [`KINDS`].
pub fn kind_index(kind: OutcomeKind) -> usize {
    #[allow(unreachable_patterns)] // for a variant added later
    match kind {
        OutcomeKind::Completed => COMPLETED,
        OutcomeKind::Failed => FAILED,
        OutcomeKind::Panicked => PANICKED,
        OutcomeKind::TimedOut => TIMED_OUT,
        OutcomeKind::NotRun => NOT_RUN,
        _ => OTHER,
    }
}

/// How task `index` must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Its outcome's column in [`KINDS`].
    pub kind: usize,
    /// The attempts its outcome reports.
    pub attempts: u32,
    /// How many of those attempts panicked (each one restarts a worker).
    pub panics: u32,
}

/// Replays the retry rules over the plan: an attempt that completes, fails
/// permanently, or panics without panics being retried ends the task, as does
/// the last attempt the policy allows; a retryable error or a timeout (or a
/// panic, under the tasks' own policy) earns another attempt.
pub fn expected(seed: u64, index: u64) -> Expected {
    let policy = if has_own_policy(seed, index) {
        own_policy()
    } else {
        pool_policy()
    };
    let mut panics = 0;
    let mut attempt = 1;
    loop {
        let (kind, retryable) = match action(seed, index, attempt) {
            Action::Complete(_) => (COMPLETED, false),
            Action::Fail { permanent } => (FAILED, !permanent),
            Action::Panic => {
                panics += 1;
                (PANICKED, policy.retries_panics())
            }
            Action::Hang => (TIMED_OUT, true),
        };
        if !retryable || !policy.allows_another(attempt) {
            return Expected {
                kind,
                attempts: attempt,
                panics,
            };
        }
        attempt += 1;
    }
}

/// What a completed task returns.
pub fn output(index: u64) -> u64 {
    index ^ 0x5EED_0000_0000_0000
}

/// The message of a planned panic.
pub fn panic_message(index: u64, attempt: u32) -> String {
    format!("{MARKER}: task {index} attempt {attempt}")
}

/// A task of the soak: its index in the plan decides everything it does.
#[derive(Debug)]
pub struct SoakTask {
    pub seed: u64,
    pub index: u64,
    /// Attempts begun so far, for `timeout` to know which attempt is next.
    pub attempts_begun: u32,
}

/// What a failing attempt returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoakError {
    /// The plan said fail.
    Planned {
        index: u64,
        attempt: u32,
        permanent: bool,
    },
    /// A hanging attempt woke up: its timeout never fired.
    Overslept { index: u64, attempt: u32 },
    /// The worker's state was not the one its slot's factory makes.
    WrongState { worker: usize, state: usize },
}

impl Task for SoakTask {
    type Output = u64;
    type Error = SoakError;
    /// The slot the worker was made for, by the state factory.
    type State = usize;

    async fn run(&mut self, cx: &mut TaskContext<usize>) -> Result<u64, SoakError> {
        let (index, attempt) = (self.index, cx.attempt());
        self.attempts_begun = attempt;
        if *cx.state() != cx.worker() {
            return Err(SoakError::WrongState {
                worker: cx.worker(),
                state: *cx.state(),
            });
        }
        match action(self.seed, index, attempt) {
            Action::Complete(pause) => {
                match pause {
                    Pause::None => {}
                    Pause::Yield => tokio::task::yield_now().await,
                    Pause::Sleep1ms => actix_rt::time::sleep(Duration::from_millis(1)).await,
                }
                Ok(output(index))
            }
            Action::Fail { permanent } => Err(SoakError::Planned {
                index,
                attempt,
                permanent,
            }),
            Action::Panic => panic!("{}", panic_message(index, attempt)),
            Action::Hang => {
                std::future::pending::<()>().await;
                Err(SoakError::Overslept { index, attempt })
            }
        }
    }

    /// Asked before each attempt: short for an attempt planned to hang, so
    /// that it times out; out of reach for every other.
    fn timeout(&self) -> Option<Duration> {
        let next = self.attempts_begun + 1;
        Some(match action(self.seed, self.index, next) {
            Action::Hang => TASK_TIMEOUT,
            _ => GENEROUS_TIMEOUT,
        })
    }

    fn is_retryable(&self, error: &SoakError) -> bool {
        matches!(
            error,
            SoakError::Planned {
                permanent: false,
                ..
            }
        )
    }

    fn retry_policy(&self) -> Option<RetryPolicy> {
        has_own_policy(self.seed, self.index).then(own_policy)
    }
}

/// What the whole plan adds up to for tasks `0..tasks`.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Tasks per outcome column.
    pub kinds: [u64; KINDS.len()],
    /// Attempts, all tasks together.
    pub attempts: u64,
    /// Retries scheduled: attempts after the first.
    pub retries: u64,
    /// Attempts that panicked: worker restarts.
    pub panics: u64,
    /// Tasks with their own retry policy.
    pub own_policy: u64,
}

pub fn totals(seed: u64, tasks: u64) -> Totals {
    let mut totals = Totals::default();
    for index in 0..tasks {
        let e = expected(seed, index);
        totals.kinds[e.kind] += 1;
        totals.attempts += u64::from(e.attempts);
        totals.retries += u64::from(e.attempts - 1);
        totals.panics += u64::from(e.panics);
        totals.own_policy += u64::from(has_own_policy(seed, index));
    }
    totals
}
