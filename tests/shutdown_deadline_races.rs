//! A shutdown's deadline that passes while a worker on another thread is in
//! the middle of taking the next job from the backlog: the stop still
//! answers, and both the attempt that was cut off and the job that was being
//! taken end `Aborted`, named in the report and counted once.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use actix_workerpool::{
    Outcome, Pool, PoolEvent, StopReason, StopReport, Task, TaskContext, TaskHandle, TaskId,
};
use common::Events;

const DEADLINE: Duration = Duration::from_millis(50);

enum Kind {
    /// Blocks its thread until released.
    First(Mutex<mpsc::Receiver<()>>),
    /// Its `timeout()`, which the worker asks while it takes the job, blocks
    /// the first time until released.
    Second {
        asked: Arc<AtomicBool>,
        answer: Mutex<mpsc::Receiver<()>>,
    },
}

struct Job(Kind);

impl Task for Job {
    type Output = u32;
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, ()> {
        match &self.0 {
            Kind::First(gate) => {
                let _ = gate.lock().unwrap().recv();
                Ok(1)
            }
            Kind::Second { .. } => Ok(2),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        if let Kind::Second { asked, answer } = &self.0
            && !asked.swap(true, Ordering::SeqCst)
        {
            // Bounded, as every wait in these tests (a dropped sender ends it too).
            let _ = answer.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
        None
    }
}

/// One worker, on an arbiter of its own.
fn pool() -> Pool<Job> {
    Pool::builder().workers(1).arbiters(1).build().unwrap()
}

/// Runs the first job, queues the second, lets the first return, and waits
/// until the worker, taking the second, is inside its `timeout()`. Gives
/// both handles and the key that lets the worker's take go on.
async fn mid_take(pool: &Pool<Job>) -> (TaskHandle<Job>, TaskHandle<Job>, mpsc::Sender<()>) {
    let (release_first, gate) = mpsc::channel();
    let first = pool
        .submit(Job(Kind::First(Mutex::new(gate))))
        .await
        .unwrap();
    while pool.stats().await.unwrap().in_flight == 0 {
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    let asked = Arc::new(AtomicBool::new(false));
    let (end_take, answer) = mpsc::channel();
    let second = Job(Kind::Second {
        asked: asked.clone(),
        answer: Mutex::new(answer),
    });
    let second = pool.submit(second).await.unwrap();
    release_first.send(()).unwrap();
    while !asked.load(Ordering::SeqCst) {
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    (first, second, end_take)
}

/// Runs `shutdown` (a stop or drain with `DEADLINE`) against a worker in the
/// middle of a take, letting the take go on only once the deadline has cut
/// off the running attempt; gives the shutdown's answer.
async fn shutdown_mid_take(
    pool: &Pool<Job>,
    shutdown: impl Future<Output = Result<StopReport, actix_workerpool::PoolGone>>,
    end_take: mpsc::Sender<()>,
) -> StopReport {
    let deadline_passed = async {
        while pool.stats().await.unwrap().aborted == 0 {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
        end_take.send(()).unwrap();
    };
    let (report, ()) = futures::future::join(shutdown, deadline_passed).await;
    report.expect("the supervisor answers")
}

/// Both tasks end `Aborted`, the report names both, and the counters balance.
async fn assert_both_aborted(
    pool: &Pool<Job>,
    report: &StopReport,
    first: TaskHandle<Job>,
    second: TaskHandle<Job>,
) -> (TaskId, TaskId) {
    let ids = (first.id(), second.id());
    let mut aborted = report.aborted.clone();
    aborted.sort();
    assert_eq!(aborted, [ids.0, ids.1], "{report:?}");
    assert!(report.finished.is_empty(), "{report:?}");
    assert!(report.not_run.is_empty(), "{report:?}");
    let first = first.await.unwrap();
    assert!(
        matches!(first, Outcome::Aborted { attempts: 1, .. }),
        "{first:?}"
    );
    let second = second.await.unwrap();
    assert!(
        matches!(second, Outcome::Aborted { attempts: 0, .. }),
        "the second never started: {second:?}"
    );
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (
            stats.submitted,
            stats.aborted,
            stats.queued,
            stats.in_flight
        ),
        (2, 2, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.completed, 0, "{stats:?}");
    assert!(stats.balances(), "{stats:?}");
    ids
}

/// `stop_within`: the attempt cut off and the job being taken both end
/// `Aborted`, both named in the report, and the counters balance.
#[actix_rt::test]
async fn stop_within_whose_deadline_passes_while_a_worker_takes_a_job_aborts_both_and_answers() {
    common::within_60s(async {
        let pool = pool();
        let (first, second, end_take) = mid_take(&pool).await;
        let report = shutdown_mid_take(&pool, pool.stop_within(DEADLINE), end_take).await;
        assert_eq!(report.reason, StopReason::Stopped);
        assert_both_aborted(&pool, &report, first, second).await;
    })
    .await;
}

/// `drain_within`: as for `stop_within`, with the drain's reason.
#[actix_rt::test]
async fn drain_within_whose_deadline_passes_while_a_worker_takes_a_job_aborts_both_and_answers() {
    common::within_60s(async {
        let pool = pool();
        let (first, second, end_take) = mid_take(&pool).await;
        let report = shutdown_mid_take(&pool, pool.drain_within(DEADLINE), end_take).await;
        assert_eq!(report.reason, StopReason::Drained);
        assert_both_aborted(&pool, &report, first, second).await;
    })
    .await;
}

/// The deadline decides the stop: `SupervisorStopping` is emitted once, and
/// the job being taken is never reported started, only aborted.
#[actix_rt::test]
async fn a_stop_decided_by_its_deadline_during_a_take_says_it_stops_and_starts_nothing_more() {
    common::within_60s(async {
        let pool = pool();
        let mut events = Events::subscribe(&pool).await;
        let (first, second, end_take) = mid_take(&pool).await;
        let report = shutdown_mid_take(&pool, pool.stop_within(DEADLINE), end_take).await;
        let (first, second) = assert_both_aborted(&pool, &report, first, second).await;

        let mut heard = Vec::new();
        loop {
            let event = events.next().await;
            let last = matches!(event, PoolEvent::TaskAborted { task, .. } if task == second);
            heard.push(event);
            if last {
                break;
            }
        }
        heard.extend(events.so_far());

        let stopping: Vec<_> = heard
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, PoolEvent::SupervisorStopping { .. }))
            .collect();
        assert_eq!(stopping.len(), 1, "{heard:?}");
        let (stopping_at, stopping) = stopping[0];
        assert_eq!(
            stopping,
            &PoolEvent::SupervisorStopping {
                reason: StopReason::Stopped
            }
        );
        let started: Vec<_> = heard
            .iter()
            .enumerate()
            .filter_map(|(at, e)| match e {
                PoolEvent::TaskStarted { task, attempt, .. } => Some((at, *task, *attempt)),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 1, "only the first ever started: {heard:?}");
        let (started_at, task, attempt) = started[0];
        assert_eq!((task, attempt), (first, 1));
        assert!(started_at < stopping_at, "{heard:?}");
        let aborted: Vec<_> = heard
            .iter()
            .enumerate()
            .filter_map(|(at, e)| match e {
                PoolEvent::TaskAborted { task, worker: 0 } => Some((at, *task)),
                _ => None,
            })
            .collect();
        assert_eq!(aborted.len(), 2, "{heard:?}");
        assert!(aborted.iter().all(|&(at, _)| at > stopping_at), "{heard:?}");
        assert_eq!((aborted[0].1, aborted[1].1), (first, second), "{heard:?}");
        assert!(
            !heard.iter().any(|e| matches!(
                e,
                PoolEvent::TaskCompleted { .. } | PoolEvent::TaskNotRun { .. }
            )),
            "{heard:?}"
        );
    })
    .await;
}
