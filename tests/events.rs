//! Subscribers hear what happens, and never slow the pool down.

mod common;

use std::time::Duration;

use actix::prelude::*;
use actix_workerpool::{Pool, PoolEvent, RestartReason, StopReason, Task, TaskContext};
use common::Events;
use futures::StreamExt;
use futures::channel::mpsc;

enum Does {
    Complete,
    Fail,
    Panic,
    Hang,
}

impl Task for Does {
    type Output = ();
    type Error = &'static str;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), &'static str> {
        match self {
            Does::Complete => Ok(()),
            Does::Fail => Err("boom"),
            Does::Panic => panic!("kaboom"),
            Does::Hang => std::future::pending().await,
        }
    }
}

#[actix_rt::test]
async fn every_outcome_and_restart_is_reported_in_order() {
    tokio::time::pause();
    let pool = Pool::builder()
        .workers(1)
        .task_timeout(Duration::from_secs(1))
        .restart_backoff(Duration::ZERO, Duration::ZERO)
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let mut ids = Vec::new();
    for task in [Does::Complete, Does::Fail, Does::Panic, Does::Hang] {
        let handle = pool.submit(task).await.unwrap();
        ids.push(handle.id());
        handle.await.unwrap();
    }
    let report = pool.stop().await.unwrap();
    assert_eq!(report.reason, StopReason::Stopped);

    let seen = events.so_far();
    let expected = vec![
        PoolEvent::TaskStarted {
            task: ids[0],
            worker: 0,
            attempt: 1,
        },
        PoolEvent::TaskCompleted {
            task: ids[0],
            worker: 0,
            attempts: 1,
        },
        PoolEvent::TaskStarted {
            task: ids[1],
            worker: 0,
            attempt: 1,
        },
        PoolEvent::TaskFailed {
            task: ids[1],
            worker: 0,
            attempts: 1,
            error: "\"boom\"".into(),
        },
        PoolEvent::TaskStarted {
            task: ids[2],
            worker: 0,
            attempt: 1,
        },
        PoolEvent::TaskPanicked {
            task: ids[2],
            worker: 0,
            message: "kaboom".into(),
        },
        PoolEvent::WorkerRestarted {
            worker: 0,
            reason: RestartReason::Panicked("kaboom".into()),
            restarts: 1,
            delay: Duration::ZERO,
        },
        PoolEvent::TaskStarted {
            task: ids[3],
            worker: 0,
            attempt: 1,
        },
        PoolEvent::TaskTimedOut {
            task: ids[3],
            worker: 0,
            attempts: 1,
        },
        PoolEvent::SupervisorStopping {
            reason: StopReason::Stopped,
        },
    ];
    assert_eq!(seen, expected);
}

#[actix_rt::test]
async fn tasks_handed_back_are_reported() {
    let pool = Pool::builder().workers(1).build().unwrap();
    let mut events = Events::subscribe(&pool).await;
    let running = pool.submit(Does::Complete).await.unwrap();
    let queued = pool.try_submit(Does::Complete).unwrap();
    let queued_id = queued.id();
    pool.stop().await.unwrap();
    running.await.unwrap();
    queued.await.unwrap();
    let not_run: Vec<_> = events
        .so_far()
        .into_iter()
        .filter(|e| matches!(e, PoolEvent::TaskNotRun { .. }))
        .collect();
    assert_eq!(
        not_run,
        [PoolEvent::TaskNotRun {
            task: queued_id,
            reason: StopReason::Stopped
        }]
    );
}

/// A subscriber that stops when told to.
struct Quitter;

impl Actor for Quitter {
    type Context = Context<Self>;
}

impl Handler<PoolEvent> for Quitter {
    type Result = ();

    fn handle(&mut self, _: PoolEvent, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

#[actix_rt::test]
async fn a_subscriber_that_is_gone_does_not_stall_the_pool() {
    let pool = Pool::builder().workers(2).build().unwrap();
    pool.subscribe(Quitter.start().recipient()).await.unwrap();
    let outcomes = pool.run_all((0..50).map(|_| Does::Complete)).await.unwrap();
    assert_eq!(outcomes.len(), 50);
    assert_eq!(pool.stats().await.unwrap().completed, 50);
}

/// A subscriber on its own thread that blocks on its first event until let go,
/// then passes every event on.
struct Blocked {
    let_go: Option<std::sync::mpsc::Receiver<()>>,
    seen: mpsc::UnboundedSender<PoolEvent>,
}

impl Actor for Blocked {
    type Context = Context<Self>;
}

impl Handler<PoolEvent> for Blocked {
    type Result = ();

    fn handle(&mut self, event: PoolEvent, _: &mut Self::Context) {
        if let Some(let_go) = self.let_go.take() {
            let _ = let_go.recv();
        }
        let _ = self.seen.unbounded_send(event);
    }
}

#[actix_rt::test]
async fn a_blocked_subscriber_never_holds_up_dispatch() {
    let pool = Pool::builder().workers(2).build().unwrap();
    let (release, let_go) = std::sync::mpsc::channel();
    let (seen_tx, seen) = mpsc::unbounded();
    let arbiter = Arbiter::new();
    let blocked = Blocked::start_in_arbiter(&arbiter.handle(), move |_| Blocked {
        let_go: Some(let_go),
        seen: seen_tx,
    });
    pool.subscribe(blocked.recipient()).await.unwrap();

    // The subscriber is stuck on the first event all through this batch.
    let outcomes = pool
        .run_all((0..200).map(|_| Does::Complete))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 200);

    release.send(()).unwrap();
    let heard: Vec<_> = seen.take(400).collect().await;
    let completed = heard
        .iter()
        .filter(|e| matches!(e, PoolEvent::TaskCompleted { .. }))
        .count();
    assert_eq!(completed, 200, "nothing was lost while it was blocked");
    arbiter.stop();
}
