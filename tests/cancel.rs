//! Cancelling a task by its handle, by the pool and by the `Cancel` message:
//! a queued task or one waiting for a retry is taken out and comes back; a
//! running one has its attempt's future dropped and comes back, its worker
//! free at once; a finished one is left as it ended. Each cancel says which of
//! these it did, and the counters add up (ARCHITECTURE.md, rules 1 and 2).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::Actor;
use actix_workerpool::{
    Cancel, Cancellation, FnTask, Jitter, Outcome, Pool, PoolEvent, RetryPolicy, SubmitAndReport,
    TaskReport,
};
use common::{Events, Lab, Probe};
use futures::StreamExt;
use futures::channel::mpsc;

fn one_worker() -> Pool<Probe> {
    Pool::<Probe>::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn a_queued_task_cancelled_never_runs_and_comes_back_with_its_place_freed() {
    let mut lab = Lab::new();
    let pool = one_worker();
    let (_running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    pool.try_submit(lab.completes(2)).unwrap();
    // The queue is full ...
    assert!(pool.try_submit(lab.completes(9)).is_err());

    assert_eq!(queued.cancel().await.unwrap(), Cancellation::Queued);
    match queued.await.unwrap() {
        Outcome::Cancelled { task, attempts } => assert_eq!((task.label, attempts), (1, 0)),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    // ... and the cancelled task's place is free again.
    let third = pool.try_submit(lab.completes(3)).unwrap();
    release.release();
    assert_eq!(third.await.unwrap().output(), Some((3, 0)));
    let ran: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    assert_eq!(ran, [2, 3], "the cancelled task never started");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.cancelled, stats.completed, stats.queued), (1, 3, 0));
    assert!(stats.balances(), "{stats:?}");
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// With a flag, runs until dropped, and sets the flag then; without, answers 7.
async fn forever_or_seven(flag: Option<Arc<AtomicBool>>) -> Result<u32, ()> {
    match flag {
        Some(flag) => {
            let _guard = SetOnDrop(flag);
            std::future::pending().await
        }
        None => Ok(7),
    }
}

#[actix_rt::test]
async fn a_running_task_cancelled_has_its_future_dropped_and_its_worker_is_free_at_once() {
    let dropped = Arc::new(AtomicBool::new(false));
    let pool = Pool::builder().workers(1).build().unwrap();
    let forever = FnTask::new(Some(dropped.clone()), forever_or_seven);
    let running = pool.submit(forever).await.unwrap();
    while pool.stats().await.unwrap().in_flight == 0 {
        actix_rt::task::yield_now().await;
    }

    assert_eq!(
        running.cancel().await.unwrap(),
        Cancellation::Running {
            worker: 0,
            attempts: 1
        }
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the attempt's future still exists"
    );
    match running.await.unwrap() {
        Outcome::Cancelled { task, attempts } => {
            assert_eq!(attempts, 1);
            let flag = task.data().as_ref().expect("the task that ran came back");
            assert!(Arc::ptr_eq(flag, &dropped));
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    // The same worker runs the next task at once, without a restart.
    let next = pool
        .submit(FnTask::new(None, forever_or_seven))
        .await
        .unwrap();
    assert_eq!(next.await.unwrap().output(), Some(7));
    let stats = pool.stats().await.unwrap();
    assert_eq!(
        (stats.cancelled, stats.restarts, stats.in_flight),
        (1, 0, 0)
    );
    assert_eq!(stats.workers[0].tasks_run, 2);
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn a_task_waiting_for_a_retry_is_cancelled_without_another_attempt() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let retry = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_secs(60))
        .max_delay(Duration::from_secs(60))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let pool = Pool::<Probe>::builder()
        .workers(1)
        .retry(retry)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let handle = pool.submit(lab.fails(1)).await.unwrap();
    events
        .until(|e| matches!(e, PoolEvent::Retrying { .. }))
        .await;

    assert_eq!(
        handle.cancel().await.unwrap(),
        Cancellation::WaitingRetry { attempts: 1 }
    );
    match handle.await.unwrap() {
        Outcome::Cancelled { task, attempts } => assert_eq!((task.label, attempts), (1, 1)),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    // The retry's time comes and goes: nothing runs.
    tokio::time::sleep(Duration::from_secs(120)).await;
    let stats = pool.stats().await.unwrap();
    assert_eq!(lab.drain_started().len(), 1, "one attempt only");
    assert_eq!(
        (stats.cancelled, stats.failed, stats.waiting_retry),
        (1, 0, 0)
    );
    assert!(stats.balances(), "{stats:?}");
    let cancelled = events
        .until(|e| matches!(e, PoolEvent::TaskCancelled { .. }))
        .await;
    assert!(matches!(
        cancelled,
        PoolEvent::TaskCancelled { attempts: 1, .. }
    ));
}

#[actix_rt::test]
async fn cancelling_a_finished_task_changes_nothing() {
    let lab = Lab::new();
    let pool = one_worker();
    let handle = pool.submit(lab.completes(1)).await.unwrap();
    // Wait for the end without giving the handle up: by reference.
    let mut handle = handle;
    let outcome = (&mut handle).await.unwrap();
    assert_eq!(outcome.output(), Some((1, 0)));
    assert_eq!(handle.cancel().await.unwrap(), Cancellation::Ended);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.completed, stats.cancelled), (1, 0));
}

#[actix_rt::test]
async fn a_second_cancel_finds_the_task_ended() {
    let mut lab = Lab::new();
    let pool = one_worker();
    let (_running, _release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    let (first, second) = futures::join!(queued.cancel(), queued.cancel());
    let mut answers = [first.unwrap(), second.unwrap()];
    answers.sort_by_key(|a| a.took_effect());
    assert_eq!(answers, [Cancellation::Ended, Cancellation::Queued]);
    assert_eq!(queued.cancel().await.unwrap(), Cancellation::Ended);
    assert!(matches!(
        queued.await.unwrap(),
        Outcome::Cancelled { attempts: 0, .. }
    ));
    assert_eq!(pool.stats().await.unwrap().cancelled, 1);
}

#[actix_rt::test]
async fn the_pool_and_the_cancel_message_cancel_by_id() {
    let mut lab = Lab::new();
    let pool = one_worker();
    let (_running, _release) = lab.occupy(&pool, 0).await;
    let first = pool.try_submit(lab.completes(1)).unwrap();
    let second = pool.try_submit(lab.completes(2)).unwrap();

    assert_eq!(pool.cancel(first.id()).await.unwrap(), Cancellation::Queued);
    let by_message = pool.addr().send(Cancel(second.id())).await.unwrap();
    assert_eq!(by_message, Cancellation::Queued);
    assert!(matches!(first.await.unwrap(), Outcome::Cancelled { .. }));
    assert!(matches!(second.await.unwrap(), Outcome::Cancelled { .. }));
    // An id the pool never gave out.
    let made_up = actix_workerpool::TaskId::from(1_000_000);
    assert_eq!(pool.cancel(made_up).await.unwrap(), Cancellation::Unknown);
}

/// Hears a reporting task's outcome.
struct Reports(mpsc::UnboundedSender<TaskReport<Probe>>);

impl Actor for Reports {
    type Context = actix::Context<Self>;
}

impl actix::Handler<TaskReport<Probe>> for Reports {
    type Result = ();

    fn handle(&mut self, report: TaskReport<Probe>, _: &mut Self::Context) {
        let _ = self.0.unbounded_send(report);
    }
}

#[actix_rt::test]
async fn a_cancelled_task_that_reports_to_an_actor_comes_back_in_its_report() {
    let mut lab = Lab::new();
    let pool = one_worker();
    let (_running, _release) = lab.occupy(&pool, 0).await;
    let (tx, mut reports) = mpsc::unbounded();
    let report_to = Reports(tx).start().recipient();
    let id = pool
        .addr()
        .send(SubmitAndReport {
            task: lab.completes(1),
            report_to,
        })
        .await
        .unwrap()
        .expect("accepted");
    assert_eq!(pool.cancel(id).await.unwrap(), Cancellation::Queued);
    match reports.next().await.unwrap() {
        TaskReport::Finished {
            id: reported,
            outcome: Outcome::Cancelled { task, attempts: 0 },
        } => assert_eq!((reported, task.label), (id, 1)),
        other => panic!("expected a cancelled report, got {other:?}"),
    }
}

#[actix_rt::test]
async fn a_handle_of_a_task_handed_back_by_a_stop_finds_it_ended() {
    let mut lab = Lab::new();
    let pool = one_worker();
    let (_running, release) = lab.occupy(&pool, 0).await;
    let mut queued = pool.try_submit(lab.completes(1)).unwrap();
    let stopping = actix_rt::spawn({
        let pool = pool.clone();
        async move { pool.stop().await }
    });
    let outcome = (&mut queued).await.unwrap();
    assert!(matches!(outcome, Outcome::NotRun { .. }));
    assert_eq!(queued.cancel().await.unwrap(), Cancellation::Ended);
    release.release();
    stopping.await.unwrap().unwrap();
}

/// Workers on two other arbiters take queued tasks themselves while each
/// task is cancelled just after the next one is submitted: whatever each
/// cancel says it did is what the task's handle says, and the counters agree
/// with both.
#[actix_rt::test]
async fn cancels_racing_workers_on_other_arbiters_agree_with_the_outcomes() {
    const TASKS: usize = 2_000;
    let pool = Pool::builder()
        .workers(4)
        .queue_capacity(64)
        .arbiters(2)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    let mut answers = std::collections::HashMap::new();
    for n in 0..TASKS {
        let task = FnTask::new(n, |n: usize| async move {
            if n.is_multiple_of(3) {
                // Some tasks wait, so that cancels find them running.
                actix_rt::time::sleep(Duration::from_micros(200)).await;
            }
            Ok::<_, ()>(n)
        });
        handles.push(pool.submit(task).await.unwrap());
        // Tasks 0, 4, 8, ... by their handle, just submitted; tasks 2, 6,
        // 10, ... by id, a few submissions later, when a worker may be in
        // the middle of taking one (and a finished one must be looked for).
        let (target, answer) = match n % 4 {
            1 => (n - 1, handles[n - 1].cancel().await),
            3 if n >= 5 => (n - 5, pool.cancel(handles[n - 5].id()).await),
            _ => continue,
        };
        answers.insert(target, answer.unwrap());
    }
    let mut seen = std::collections::BTreeMap::<&str, u64>::new();
    for (n, handle) in handles.into_iter().enumerate() {
        let outcome = handle.await.unwrap();
        let kind = match (answers.remove(&n), &outcome) {
            (None, Outcome::Completed { .. }) => "not cancelled",
            (Some(Cancellation::Ended), Outcome::Completed { .. }) => "ended",
            (Some(Cancellation::Queued), Outcome::Cancelled { attempts: 0, .. }) => "queued",
            (
                Some(Cancellation::Running { attempts: 1, .. }),
                Outcome::Cancelled { attempts: 1, .. },
            ) => "running",
            (answer, outcome) => panic!("task {n}: {answer:?} but {outcome:?}"),
        };
        *seen.entry(kind).or_default() += 1;
    }
    let stats = pool.stats().await.unwrap();
    let took_effect = seen.get("queued").unwrap_or(&0) + seen.get("running").unwrap_or(&0);
    assert_eq!(stats.cancelled, took_effect);
    assert_eq!(stats.completed + stats.cancelled, TASKS as u64);
    assert!(stats.balances(), "{stats:?}");
    eprintln!("cancels: {seen:?}");
}

#[actix_rt::test]
async fn a_task_cancelled_as_it_is_handed_to_a_worker_never_runs_its_code() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    // A side effect at once (a mail sent, a row written), then a wait.
    let task = FnTask::new(started.clone(), |flag: Arc<AtomicBool>| async move {
        flag.store(true, Ordering::SeqCst);
        std::future::pending::<Result<(), ()>>().await
    });
    let handle = pool.submit(task).await.unwrap();
    // Nothing has run yet: the submit did not yield.
    assert!(!started.load(Ordering::SeqCst));
    let answer = handle.cancel().await.unwrap();
    assert!(
        matches!(answer, Cancellation::Queued | Cancellation::Running { .. }),
        "{answer:?}"
    );
    assert!(matches!(handle.await.unwrap(), Outcome::Cancelled { .. }));
    assert!(!started.load(Ordering::SeqCst), "its code ran ({answer:?})");
}

#[actix_rt::test]
async fn a_handle_cancels_before_its_supervisor_has_started_on_its_arbiter() {
    let arbiter = actix_rt::Arbiter::new();
    // The arbiter's thread is busy for a moment: the supervisor starts late.
    let (busy, free) = std::sync::mpsc::channel::<()>();
    arbiter.spawn(async move {
        let _ = free.recv();
    });
    let pool = Pool::builder()
        .workers(1)
        .arbiter(arbiter.handle())
        .build()
        .unwrap();
    let handle = pool
        .submit(FnTask::new(1, forever_or_seven_of))
        .await
        .unwrap();
    let cancelling = actix_rt::spawn(async move {
        let answer = handle.cancel().await;
        (answer, handle.await)
    });
    drop(busy);
    let (answer, outcome) = cancelling.await.unwrap();
    assert!(answer.unwrap().took_effect(), "the pool was never gone");
    assert!(matches!(outcome.unwrap(), Outcome::Cancelled { .. }));
    arbiter.stop();
}

/// Runs until dropped.
async fn forever_or_seven_of(_: u32) -> Result<u32, ()> {
    std::future::pending().await
}

/// Blocks its thread on its first attempt until the test lets it go.
struct Blocker {
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl actix_workerpool::Task for Blocker {
    type Output = u32;
    type Error = ();
    type State = ();

    async fn run(&mut self, cx: &mut actix_workerpool::TaskContext<()>) -> Result<u32, ()> {
        if cx.attempt() == 1 {
            let _ = self.gate.lock().unwrap().recv();
        }
        Ok(cx.attempt())
    }
}

/// A drain waits for a retry that a blocked thread owes; cancelling that
/// retry leaves nothing to wait for, and the drain ends.
#[actix_rt::test]
async fn a_drain_ends_once_the_retry_it_waited_for_is_cancelled() {
    let retry = RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let pool = Pool::builder()
        .workers(1)
        .arbiters(1)
        .task_timeout(Duration::from_millis(50))
        .stuck_grace(Duration::from_millis(50))
        .retry(retry)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let (release, gate) = std::sync::mpsc::channel();
    let task = Blocker {
        gate: std::sync::Mutex::new(gate),
    };
    let handle = pool.submit(task).await.unwrap();
    // Given up on as stuck, with a retry owed once the thread comes back.
    events
        .until(|e| matches!(e, PoolEvent::WorkerStuck { .. }))
        .await;
    let draining = actix_rt::spawn({
        let pool = pool.clone();
        async move { pool.drain().await }
    });
    let answer = pool.cancel(handle.id());
    let release_after = async {
        // Let the drain and the cancel reach the supervisor first.
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        release.send(()).unwrap();
    };
    let (answer, ()) = futures::join!(answer, release_after);
    assert_eq!(answer.unwrap(), Cancellation::WaitingRetry { attempts: 1 });
    assert!(matches!(handle.await.unwrap(), Outcome::Cancelled { .. }));
    let drained = actix_rt::time::timeout(Duration::from_secs(10), draining).await;
    let report = drained.expect("the drain never ended").unwrap().unwrap();
    assert!(report.not_run.is_empty());
}
