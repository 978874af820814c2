//! What a stuck worker's task owes those who wait for it: an actor that
//! asked for a report hears the outcome once, while the thread still blocks;
//! a drain waits for the retry a blocked thread owes its task.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use actix::prelude::*;
use actix_workerpool::{
    Outcome, Pool, RetryPolicy, StopReason, SubmitAndReport, Task, TaskContext, TaskReport,
};

/// Blocks its thread on its first attempt until released; later attempts
/// complete at once, with their attempt's number.
struct Blocks {
    gate: Mutex<mpsc::Receiver<()>>,
    dropped: Arc<AtomicBool>,
}

impl Task for Blocks {
    type Output = u32;
    type Error = ();
    type State = ();

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<u32, ()> {
        if cx.attempt() == 1 {
            let _ = self.gate.lock().unwrap().recv();
        }
        Ok(cx.attempt())
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A blocking task, the key that lets its thread go, and whether it has been
/// dropped.
fn blocks() -> (Blocks, mpsc::Sender<()>, Arc<AtomicBool>) {
    let (release, gate) = mpsc::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let task = Blocks {
        gate: Mutex::new(gate),
        dropped: dropped.clone(),
    };
    (task, release, dropped)
}

/// Two workers on arbiters of their own; attempts time out after 50 ms, and
/// a worker 50 ms past that is stuck.
fn pool(retry: RetryPolicy) -> Pool<Blocks> {
    Pool::builder()
        .workers(2)
        .arbiters(2)
        .task_timeout(Duration::from_millis(50))
        .stuck_grace(Duration::from_millis(50))
        .retry(retry)
        .build()
        .unwrap()
}

/// Forwards every report it hears.
struct Listener(futures::channel::mpsc::UnboundedSender<TaskReport<Blocks>>);

impl Actor for Listener {
    type Context = Context<Self>;
}

impl Handler<TaskReport<Blocks>> for Listener {
    type Result = ();

    fn handle(&mut self, report: TaskReport<Blocks>, _: &mut Context<Self>) {
        let _ = self.0.unbounded_send(report);
    }
}

/// Answered once every message sent to the listener before it is handled.
#[derive(Message)]
#[rtype(result = "()")]
struct Ping;

impl Handler<Ping> for Listener {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

/// A `SubmitAndReport` task whose worker gets stuck: its actor hears one
/// `Finished` with `TimedOut` while the thread blocks, and nothing after.
#[actix_rt::test]
async fn a_reporting_task_whose_worker_is_stuck_is_reported_timed_out_once_while_the_thread_blocks()
{
    common::within_60s(async {
        let pool = pool(RetryPolicy::never());
        let (tx, mut reports) = futures::channel::mpsc::unbounded();
        let listener = Listener(tx).start();
        let (task, release, dropped) = blocks();
        let id = pool
            .addr()
            .send(SubmitAndReport {
                task,
                report_to: listener.clone().recipient(),
            })
            .await
            .unwrap()
            .expect("the task is accepted");

        let report = futures::StreamExt::next(&mut reports).await.unwrap();
        match report {
            TaskReport::Finished {
                id: reported,
                outcome,
            } => {
                assert_eq!(reported, id);
                assert!(
                    matches!(outcome, Outcome::TimedOut { attempts: 1 }),
                    "{outcome:?}"
                );
            }
            other => panic!("expected Finished, got {other:?}"),
        }
        assert!(
            !dropped.load(Ordering::SeqCst),
            "the blocked thread still holds the task"
        );
        let stats = pool.stats().await.unwrap();
        assert_eq!(
            (stats.timed_out, stats.stuck, stats.in_flight),
            (1, 1, 0),
            "{stats:?}"
        );
        assert!(stats.balances(), "{stats:?}");

        // The thread comes back: its late result is discarded, unreported.
        release.send(()).unwrap();
        while !dropped.load(Ordering::SeqCst) {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        listener.send(Ping).await.unwrap();
        let more: Vec<_> = std::iter::from_fn(|| reports.try_recv().ok()).collect();
        assert!(more.is_empty(), "reported again: {more:?}");
        let stats = pool.stats().await.unwrap();
        assert_eq!(
            (stats.timed_out, stats.stuck, stats.completed),
            (1, 1, 0),
            "{stats:?}"
        );
        assert!(stats.balances(), "{stats:?}");
        pool.drain().await.unwrap();
    })
    .await;
}

/// A plain drain begun while a stuck worker's task is owed a retry waits
/// for it: the task completes on its second attempt, named in `finished`.
#[actix_rt::test]
async fn a_drain_begun_while_a_blocked_thread_owes_a_retry_waits_for_the_retry() {
    common::within_60s(async {
        let retry = common::one_retry_after(Duration::from_millis(1));
        let pool = pool(retry);
        let (task, release, _dropped) = blocks();
        let handle = pool.submit(task).await.unwrap();
        let id = handle.id();
        while pool.stats().await.unwrap().stuck == 0 {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        let stats = pool.stats().await.unwrap();
        assert_eq!((stats.waiting_retry, stats.timed_out), (1, 0), "{stats:?}");

        let drain = common::drain_later(&pool);
        while !pool.is_closed() {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
        // The retry waits for the thread, and the drain for the retry.
        assert!(!drain.is_finished(), "the drain did not wait for the retry");
        release.send(()).unwrap();

        let report = drain.await.unwrap().unwrap();
        assert_eq!(report.reason, StopReason::Drained);
        assert_eq!(report.finished, [id], "{report:?}");
        assert!(
            report.not_run.is_empty() && report.aborted.is_empty(),
            "{report:?}"
        );
        let outcome = handle.await.unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Completed {
                    output: 2,
                    attempts: 2
                }
            ),
            "{outcome:?}"
        );
        let stats = pool.stats().await.unwrap();
        assert_eq!(
            (stats.completed, stats.timed_out, stats.stuck, stats.retries),
            (1, 0, 1, 1),
            "{stats:?}"
        );
        assert!(stats.balances(), "{stats:?}");
    })
    .await;
}
