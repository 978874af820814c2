//! A task the pool refuses, with nobody to take it back, is dropped in the
//! supervisor: its `Drop` is user code, and a panic in it must not take the
//! supervisor (and every task it holds) down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix::prelude::*;
use actix_workerpool::{
    Outcome, Pool, SubmitAndReport, Task, TaskContext, TaskReport, TrySubmit, TrySubmitError,
};
use futures::channel::oneshot;

/// A task that may hold its worker until released, and may panic when it is
/// dropped (counting the drop first).
struct Bomb {
    hold: Option<oneshot::Receiver<()>>,
    explodes: Option<Arc<AtomicU32>>,
}

impl Bomb {
    fn harmless() -> Bomb {
        Bomb {
            hold: None,
            explodes: None,
        }
    }

    fn held() -> (Bomb, oneshot::Sender<()>) {
        let (release, hold) = oneshot::channel();
        let task = Bomb {
            hold: Some(hold),
            explodes: None,
        };
        (task, release)
    }

    fn exploding(drops: &Arc<AtomicU32>) -> Bomb {
        Bomb {
            hold: None,
            explodes: Some(drops.clone()),
        }
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if let Some(drops) = &self.explodes {
            drops.fetch_add(1, Ordering::SeqCst);
            if !std::thread::panicking() {
                panic!("the Drop of a refused task panics");
            }
        }
    }
}

impl Task for Bomb {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        if let Some(hold) = self.hold.take() {
            let _ = hold.await;
        }
        Ok(())
    }
}

/// An actor that stops as soon as it starts: reports sent to it are dropped.
struct Gone;

impl Actor for Gone {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<TaskReport<Bomb>> for Gone {
    type Result = ();

    fn handle(&mut self, _: TaskReport<Bomb>, _: &mut Context<Self>) {}
}

/// A recipient whose actor has stopped (its mailbox is closed).
async fn stopped_recipient() -> Recipient<TaskReport<Bomb>> {
    let recipient = Gone.start().recipient();
    while recipient.connected() {
        actix_rt::task::yield_now().await;
    }
    recipient
}

/// A one-worker pool with room for one queued task, its worker busy with a
/// held task and its queue full; gives the held and the queued task's
/// handles, and the key to the held one.
async fn full_pool() -> (
    Pool<Bomb>,
    actix_workerpool::TaskHandle<Bomb>,
    actix_workerpool::TaskHandle<Bomb>,
    oneshot::Sender<()>,
) {
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (task, release) = Bomb::held();
    let running = pool.try_submit(task).unwrap();
    while pool.stats().await.unwrap().in_flight == 0 {
        actix_rt::task::yield_now().await;
    }
    let queued = pool.try_submit(Bomb::harmless()).unwrap();
    assert!(
        matches!(
            pool.try_submit(Bomb::harmless()),
            Err(TrySubmitError::Full(_))
        ),
        "the queue is full"
    );
    (pool, running, queued, release)
}

/// The held and the queued task both complete once released, and the pool
/// still takes and runs a new task.
async fn assert_still_runs(
    pool: &Pool<Bomb>,
    running: actix_workerpool::TaskHandle<Bomb>,
    queued: actix_workerpool::TaskHandle<Bomb>,
    release: oneshot::Sender<()>,
) {
    release.send(()).unwrap();
    let running = running.await.unwrap();
    assert!(matches!(running, Outcome::Completed { .. }), "{running:?}");
    let queued = queued.await.unwrap();
    assert!(
        matches!(queued, Outcome::Completed { attempts: 1, .. }),
        "the queued task was lost: {queued:?}"
    );
    let later = common::outcome_of(pool, Bomb::harmless()).await;
    assert!(matches!(later, Outcome::Completed { .. }), "{later:?}");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.submitted, stats.completed), (3, 3), "{stats:?}");
    assert!(stats.balances(), "{stats:?}");
}

/// A `TrySubmit` sent with `do_send` to a full pool: the refused task's
/// panicking `Drop` leaves the queued task and later ones to complete.
#[actix_rt::test]
async fn a_try_submit_refused_by_a_full_queue_whose_drop_panics_leaves_the_pool_running() {
    common::within_60s(async {
        let drops = Arc::new(AtomicU32::new(0));
        let (pool, running, queued, release) = full_pool().await;

        // Sent with `do_send`: nobody takes the refusal back.
        pool.addr().do_send(TrySubmit(Bomb::exploding(&drops)));
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the refused task was dropped"
        );
        assert_eq!((stats.submitted, stats.queued), (2, 1), "{stats:?}");
        assert!(stats.balances(), "{stats:?}");

        assert_still_runs(&pool, running, queued, release).await;
    })
    .await;
}

/// A `TrySubmit` sent with `do_send` to a stopped pool: the supervisor
/// survives the refused task's panicking `Drop` and still answers.
#[actix_rt::test]
async fn a_try_submit_refused_by_a_stopped_pool_whose_drop_panics_leaves_the_supervisor_answering()
{
    common::within_60s(async {
        let drops = Arc::new(AtomicU32::new(0));
        let pool = Pool::builder().workers(1).build().unwrap();
        let first = pool.stop().await.unwrap();

        pool.addr().do_send(TrySubmit(Bomb::exploding(&drops)));
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the refused task was dropped"
        );
        assert_eq!(stats.submitted, 0, "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        assert_eq!(pool.stop().await.unwrap(), first);
    })
    .await;
}

/// A `SubmitAndReport` refused by a full pool, its refusal sent to an actor
/// that has stopped: the queued task and later ones still complete.
#[actix_rt::test]
async fn a_refusal_reported_to_a_stopped_actor_whose_task_drop_panics_leaves_a_full_pool_running() {
    common::within_60s(async {
        let drops = Arc::new(AtomicU32::new(0));
        let (pool, running, queued, release) = full_pool().await;
        let report_to = stopped_recipient().await;

        let answer = pool
            .addr()
            .send(SubmitAndReport {
                task: Bomb::exploding(&drops),
                report_to,
            })
            .await
            .expect("the supervisor is alive");
        assert_eq!(answer, None, "the task was refused");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the refused task was dropped"
        );
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!((stats.submitted, stats.queued), (2, 1), "{stats:?}");
        assert!(stats.balances(), "{stats:?}");

        assert_still_runs(&pool, running, queued, release).await;
    })
    .await;
}

/// A `SubmitAndReport` refused by a stopped pool, its refusal sent to an
/// actor that has stopped: the supervisor still answers.
#[actix_rt::test]
async fn a_refusal_reported_to_a_stopped_actor_by_a_stopped_pool_whose_task_drop_panics_leaves_the_supervisor_answering()
 {
    common::within_60s(async {
        let drops = Arc::new(AtomicU32::new(0));
        let pool = Pool::builder().workers(1).build().unwrap();
        let first = pool.stop().await.unwrap();
        let report_to = stopped_recipient().await;

        let answer = pool
            .addr()
            .send(SubmitAndReport {
                task: Bomb::exploding(&drops),
                report_to,
            })
            .await
            .expect("the supervisor is alive");
        assert_eq!(answer, None, "the task was refused");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the refused task was dropped"
        );
        let stats = pool.stats().await.expect("the supervisor is alive");
        assert_eq!(stats.submitted, 0, "{stats:?}");
        assert!(stats.balances(), "{stats:?}");
        assert_eq!(pool.stop().await.unwrap(), first);
    })
    .await;
}
