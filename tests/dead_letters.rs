//! The dead-letter sink: every task that ends without success after its last
//! attempt (failed, panicked, timed out) reaches it with the task's value, so
//! that an application can keep it; tasks that succeed, or that their caller
//! gets back anyway (cancelled, handed back), do not. Delivery never holds
//! up the pool, and the handle still gets its outcome.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Actor;
use actix_workerpool::{
    DeadLetter, DeadReason, Jitter, Outcome, OutcomeKind, Pool, RetryPolicy, Task, TaskContext,
};
use futures::StreamExt;
use futures::channel::mpsc;

/// A task that does what it is told, every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Does {
    Completes,
    Fails,
    Panics,
    Hangs,
}

#[derive(Debug, PartialEq, Eq)]
struct Order {
    label: u32,
    does: Does,
}

impl Task for Order {
    type Output = u32;
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, String> {
        match self.does {
            Does::Completes => Ok(self.label),
            Does::Fails => Err(format!("order {} bounced", self.label)),
            Does::Panics => panic!("order {} crashed", self.label),
            Does::Hangs => std::future::pending().await,
        }
    }

    fn timeout(&self) -> Option<Duration> {
        (self.does == Does::Hangs).then_some(Duration::from_secs(5))
    }
}

fn order(label: u32, does: Does) -> Order {
    Order { label, does }
}

/// Keeps the dead letters it receives, in order.
struct Keep(mpsc::UnboundedSender<DeadLetter<Order>>);

impl Actor for Keep {
    type Context = actix::Context<Self>;
}

impl actix::Handler<DeadLetter<Order>> for Keep {
    type Result = ();

    fn handle(&mut self, letter: DeadLetter<Order>, _: &mut Self::Context) {
        let _ = self.0.unbounded_send(letter);
    }
}

fn two_attempts() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(Duration::from_millis(10))
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn tasks_that_end_without_success_reach_the_sink_with_their_value() {
    tokio::time::pause();
    let (tx, mut letters) = mpsc::unbounded();
    let pool = Pool::builder()
        .workers(2)
        .retry(two_attempts())
        .dead_letters(Keep(tx).start().recipient())
        .build()
        .unwrap();
    let mut kinds = Vec::new();
    for (label, does) in [
        (1, Does::Completes),
        (2, Does::Fails),
        (3, Does::Panics),
        (4, Does::Hangs),
    ] {
        let outcome = common::outcome_of(&pool, order(label, does)).await;
        kinds.push(outcome.kind());
    }
    // The handles still get their outcomes, whole.
    assert_eq!(
        kinds,
        [
            OutcomeKind::Completed,
            OutcomeKind::Failed,
            OutcomeKind::Panicked,
            OutcomeKind::TimedOut
        ]
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(letters.next().await.unwrap());
    }
    let failed = &got[0];
    assert_eq!(failed.task, order(2, Does::Fails));
    assert_eq!(
        failed.attempts, 2,
        "the letter comes after the last attempt"
    );
    assert_eq!(
        failed.reason,
        DeadReason::Failed {
            error: "\"order 2 bounced\"".to_owned()
        }
    );
    assert_eq!(failed.id.as_u64(), 1);
    // A panic is not retried (no `retry_panics`); a timeout is.
    assert_eq!(got[1].task, order(3, Does::Panics));
    assert_eq!(
        got[1].reason,
        DeadReason::Panicked {
            message: "order 3 crashed".to_owned()
        }
    );
    assert_eq!((got[2].task.label, got[2].attempts), (4, 2));
    assert_eq!(got[2].reason, DeadReason::TimedOut);
    // Nothing else: the completed task never comes.
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.dead_letters, 3);
    assert!(letters.try_recv().is_err(), "a fourth dead letter");
}

#[actix_rt::test]
async fn a_cancelled_task_never_reaches_the_sink_and_a_failed_one_does() {
    let (tx, mut letters) = mpsc::unbounded();
    let mut lab = common::Lab::new();
    let pool = Pool::<common::Probe>::builder()
        .workers(1)
        .dead_letters_with(move |letter| {
            let _ = tx.unbounded_send(letter.task.label);
        })
        .build()
        .unwrap();
    let (running, release) = lab.occupy(&pool, 0).await;
    let queued = pool.try_submit(lab.completes(1)).unwrap();
    assert!(queued.cancel().await.unwrap().took_effect());
    release.release();
    running.await.unwrap();
    // A failure now: only it comes.
    let failed = pool.submit(lab.fails(2)).await.unwrap().await.unwrap();
    assert_eq!(failed.kind(), OutcomeKind::Failed);
    assert_eq!(letters.next().await, Some(2));
    assert!(letters.try_recv().is_err());
    assert_eq!(pool.stats().await.unwrap().dead_letters, 1);
}

#[actix_rt::test]
async fn a_sink_that_is_gone_holds_nothing_up() {
    let (tx, letters) = mpsc::unbounded();
    let sink = Keep(tx).start();
    let pool = Pool::builder()
        .workers(1)
        .dead_letters(sink.clone().recipient())
        .build()
        .unwrap();
    drop(letters);
    drop(sink);
    for label in 0..20 {
        let outcome = common::outcome_of(&pool, order(label, Does::Fails)).await;
        assert!(matches!(outcome, Outcome::Failed { .. }));
    }
    let done = common::outcome_of(&pool, order(99, Does::Completes)).await;
    assert_eq!(done.output(), Some(99));
}

#[actix_rt::test]
async fn a_sink_closure_that_panics_is_contained() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = Pool::builder()
        .workers(1)
        .dead_letters_with({
            let seen = seen.clone();
            move |letter: DeadLetter<Order>| {
                seen.lock().unwrap().push(letter.task.label);
                panic!("the sink fell over");
            }
        })
        .build()
        .unwrap();
    for label in 0..3 {
        let outcome = common::outcome_of(&pool, order(label, Does::Fails)).await;
        assert!(matches!(outcome, Outcome::Failed { .. }));
    }
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.failed, stats.dead_letters), (3, 3));
}

/// Blocks its thread until the test lets it go.
struct Blocks {
    label: u32,
    gate: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Task for Blocks {
    type Output = ();
    type Error = ();
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), ()> {
        let _ = self.gate.lock().unwrap().recv();
        Ok(())
    }
}

#[actix_rt::test]
async fn a_task_timed_out_on_a_blocked_thread_reaches_the_sink_once_the_thread_gives_it_back() {
    let (tx, mut letters) = mpsc::unbounded();
    let pool = Pool::builder()
        .workers(1)
        .arbiters(1)
        .task_timeout(Duration::from_millis(50))
        .stuck_grace(Duration::from_millis(50))
        .dead_letters_with(move |letter: DeadLetter<Blocks>| {
            let _ = tx.unbounded_send((letter.task.label, letter.reason));
        })
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel();
    let task = Blocks {
        label: 7,
        gate: Mutex::new(gate),
    };
    let outcome = common::outcome_of(&pool, task).await;
    // The supervisor ended it while the thread was still blocked.
    assert!(matches!(outcome, Outcome::TimedOut { attempts: 1 }));
    assert!(
        letters.try_recv().is_err(),
        "the task is still on the blocked thread"
    );
    release.send(()).unwrap();
    assert_eq!(letters.next().await, Some((7, DeadReason::TimedOut)));
    assert_eq!(pool.stats().await.unwrap().dead_letters, 1);
}
