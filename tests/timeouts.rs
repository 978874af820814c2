//! Per-task timeouts: an attempt past its deadline is cancelled and ends
//! `TimedOut`, and its worker is free at once. Time is paused: an hour-long
//! sleep passes in no time.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_workerpool::{BuildError, FnTask, Outcome, Pool, Task, TaskContext};

/// Sleeps, unless its own timeout cuts it short; notes if its future is dropped.
struct Sleeper {
    sleep: Duration,
    own_timeout: Option<Duration>,
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Sleeper {
    fn new(sleep: Duration) -> Self {
        Sleeper {
            sleep,
            own_timeout: None,
            dropped: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Task for Sleeper {
    type Output = usize;
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<usize, Infallible> {
        let _guard = SetOnDrop(self.dropped.clone());
        actix_rt::time::sleep(self.sleep).await;
        std::mem::forget(_guard);
        Ok(cx.worker())
    }

    fn timeout(&self) -> Option<Duration> {
        self.own_timeout
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[actix_rt::test]
async fn a_task_past_its_timeout_ends_timed_out_and_frees_its_worker() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let slow = Sleeper::new(HOUR);
    let dropped = slow.dropped.clone();
    let outcome = pool.submit(slow).await.unwrap().await.unwrap();
    assert!(
        matches!(outcome, Outcome::TimedOut { attempts: 1 }),
        "{outcome:?}"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out future was dropped"
    );

    let quick = pool
        .submit(Sleeper::new(Duration::from_millis(10)))
        .await
        .unwrap();
    assert_eq!(
        quick.await.unwrap().output(),
        Some(0),
        "the same worker runs the next task"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.timed_out, stats.completed, stats.restarts),
        (1, 1, 0)
    );
    assert!(stats.balances());
}

#[actix_rt::test]
async fn a_tasks_own_timeout_overrides_the_pools() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(HOUR * 2)
        .build()
        .unwrap();
    let mut strict = Sleeper::new(Duration::from_secs(5));
    strict.own_timeout = Some(Duration::from_secs(1));
    let outcome = pool.submit(strict).await.unwrap().await.unwrap();
    assert!(matches!(outcome, Outcome::TimedOut { .. }));

    let mut lenient = Sleeper::new(HOUR);
    lenient.own_timeout = Some(HOUR * 3);
    let outcome = pool.submit(lenient).await.unwrap().await.unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
}

#[actix_rt::test]
async fn without_a_timeout_a_slow_task_runs_to_its_end() {
    tokio::time::pause();
    let pool = Pool::builder().workers(1).build().unwrap();
    let outcome = pool
        .submit(Sleeper::new(HOUR * 24))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Completed { .. }));
}

#[actix_rt::test]
async fn a_zero_pool_timeout_is_refused() {
    let err = Pool::<Sleeper>::builder()
        .task_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroTimeout);
}

#[actix_rt::test]
async fn a_hanging_task_cannot_hold_a_drain_forever() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(2)
        .task_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let hang = pool
        .submit(FnTask::new((), |()| async {
            std::future::pending::<Result<(), ()>>().await
        }))
        .await
        .unwrap();
    let report = pool.drain().await.unwrap();
    assert!(report.not_run.is_empty());
    assert!(matches!(hang.await.unwrap(), Outcome::TimedOut { .. }));
}

/// The time of an attempt counts from when its worker begins it, not from
/// when it was handed out: here B waits for its thread while A blocks it for
/// longer than B's own timeout, and still completes.
#[actix_rt::test]
async fn an_attempts_time_starts_when_its_worker_begins_it() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let a = Blocks {
        block: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
    };
    let b = Blocks {
        block: Duration::ZERO,
        timeout: Duration::from_millis(20),
    };
    let (a, b) = (pool.try_submit(a).unwrap(), pool.try_submit(b).unwrap());
    assert!(matches!(a.await.unwrap(), Outcome::Completed { .. }));
    assert!(matches!(b.await.unwrap(), Outcome::Completed { .. }));
}

/// Blocks its thread for `block`, with a timeout of its own.
struct Blocks {
    block: Duration,
    timeout: Duration,
}

impl Task for Blocks {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        std::thread::sleep(self.block);
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }
}
