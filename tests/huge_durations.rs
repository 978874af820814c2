//! Durations too long to add to a clock reading (a task's timeout, the stuck
//! grace), up to `Duration::MAX`: the pool neither panics nor loses track of
//! the deadlines it still has to keep.

mod common;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use actix_workerpool::{Outcome, Pool, Task, TaskContext};

/// Longer than any clock reading can be moved on by, short of
/// `Duration::MAX`.
const TOO_LONG_FOR_A_CLOCK: Duration = Duration::from_secs(u64::MAX / 2);

/// About 99 years: short enough to be kept as a deadline, far beyond any test.
const NINETY_NINE_YEARS: Duration = Duration::from_secs(99 * 365 * 24 * 3600);

enum Run {
    /// Completes at once.
    Done,
    /// Never completes, but leaves its thread free.
    Forever,
    /// Blocks its thread until released.
    Blocks(Mutex<mpsc::Receiver<()>>),
}

struct Timed {
    timeout: Option<Duration>,
    run: Run,
}

impl Timed {
    fn done(timeout: Duration) -> Timed {
        Timed {
            timeout: Some(timeout),
            run: Run::Done,
        }
    }
}

impl Task for Timed {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        match &self.run {
            Run::Done => Ok(()),
            Run::Forever => std::future::pending().await,
            Run::Blocks(gate) => {
                let _ = gate.lock().unwrap().recv();
                Ok(())
            }
        }
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// Tasks whose own timeout is `Duration::MAX`, too long for a clock
/// reading, or about a century, complete, and the supervisor lives on.
#[actix_rt::test]
async fn a_task_timeout_of_duration_max_or_too_long_for_a_clock_lets_the_task_complete() {
    common::within_60s(async {
        let pool = Pool::builder().workers(1).build().unwrap();
        for timeout in [Duration::MAX, TOO_LONG_FOR_A_CLOCK, NINETY_NINE_YEARS] {
            let outcome = common::outcome_of(&pool, Timed::done(timeout)).await;
            assert!(
                matches!(outcome, Outcome::Completed { attempts: 1, .. }),
                "a timeout of {timeout:?}: {outcome:?}"
            );
        }
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!(stats.completed, 3, "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        pool.drain().await.unwrap();
    })
    .await;
}

/// A stuck grace of `Duration::MAX`: a task with a timeout completes, and
/// one that waits past its timeout still ends `TimedOut`.
#[actix_rt::test]
async fn a_stuck_grace_of_duration_max_lets_tasks_complete_and_still_times_out_those_that_wait() {
    common::within_60s(async {
        let pool = Pool::builder()
            .workers(1)
            .stuck_grace(Duration::MAX)
            .build()
            .unwrap();
        let outcome = common::outcome_of(&pool, Timed::done(Duration::from_secs(1))).await;
        assert!(
            matches!(outcome, Outcome::Completed { attempts: 1, .. }),
            "{outcome:?}"
        );
        // The worker keeps the deadline of a task that leaves its thread free.
        let forever = Timed {
            timeout: Some(Duration::from_millis(20)),
            run: Run::Forever,
        };
        let outcome = common::outcome_of(&pool, forever).await;
        assert!(
            matches!(outcome, Outcome::TimedOut { attempts: 1 }),
            "{outcome:?}"
        );
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!((stats.completed, stats.timed_out), (1, 1), "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        pool.drain().await.unwrap();
    })
    .await;
}

/// After tasks with huge timeouts, a task that blocks its thread past a
/// short one is still ended `TimedOut` by the supervisor, its worker stuck.
#[actix_rt::test]
async fn a_worker_stuck_after_tasks_with_huge_timeouts_is_still_noticed_and_its_task_timed_out() {
    common::within_60s(async {
        let pool = Pool::builder()
            .workers(1)
            .arbiters(1)
            .stuck_grace(Duration::from_millis(50))
            .build()
            .unwrap();
        for timeout in [TOO_LONG_FOR_A_CLOCK, Duration::MAX, NINETY_NINE_YEARS] {
            let outcome = common::outcome_of(&pool, Timed::done(timeout)).await;
            assert!(
                matches!(outcome, Outcome::Completed { attempts: 1, .. }),
                "a timeout of {timeout:?}: {outcome:?}"
            );
        }

        let (release, gate) = mpsc::channel();
        let blocks = Timed {
            timeout: Some(Duration::from_millis(50)),
            run: Run::Blocks(Mutex::new(gate)),
        };
        // The thread stays blocked until the end: only the supervisor can end it.
        let outcome = common::outcome_of(&pool, blocks).await;
        assert!(
            matches!(outcome, Outcome::TimedOut { attempts: 1 }),
            "{outcome:?}"
        );
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!(
            (stats.completed, stats.timed_out, stats.stuck),
            (3, 1, 1),
            "{stats:?}"
        );
        assert!(stats.balances(), "{stats:?}");
        release.send(()).unwrap();
    })
    .await;
}
