//! Another actor hands tasks to the supervisor through its `Addr` and hears
//! every outcome as a message to itself, without awaiting in a handler.

mod common;

use std::collections::HashSet;

use actix::prelude::*;
use actix_workerpool::{Outcome, Pool, SubmitAndReport, TaskId, TaskReport, TrySubmitError};
use common::{Lab, Probe};
use futures::StreamExt;
use futures::channel::mpsc;

/// Sends its tasks to the pool when it starts, and passes every report on.
struct Dispatcher {
    pool: Addr<actix_workerpool::Supervisor<Probe>>,
    tasks: Vec<Probe>,
    reports: mpsc::UnboundedSender<TaskReport<Probe>>,
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for task in self.tasks.drain(..) {
            self.pool.do_send(SubmitAndReport {
                task,
                report_to: ctx.address().recipient(),
            });
        }
    }
}

impl Handler<TaskReport<Probe>> for Dispatcher {
    type Result = ();

    fn handle(&mut self, report: TaskReport<Probe>, _: &mut Context<Self>) {
        let _ = self.reports.unbounded_send(report);
    }
}

#[actix_rt::test]
async fn every_outcome_arrives_at_the_named_recipient_exactly_once() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    // Once this has run, the worker is up: what follows is deterministic.
    common::outcome_of(&pool, lab.completes(100)).await;
    lab.started().await;

    let (held, release) = lab.held(0);
    let tasks = vec![
        held,
        lab.fails(1),
        lab.panics(2),
        lab.completes(3),
        lab.completes(4),
    ];
    let (tx, reports) = mpsc::unbounded();
    Dispatcher {
        pool: pool.addr(),
        tasks,
        reports: tx,
    }
    .start();

    lab.started().await; // task 0 holds the only worker; 1 and 2 fill the queue
    release.release();
    let reports: Vec<_> = reports.take(5).collect().await;

    let mut labels = Vec::new();
    let mut finished_ids = HashSet::<TaskId>::new();
    for report in reports {
        match report {
            TaskReport::Finished { id, outcome } => {
                assert!(finished_ids.insert(id), "{id} reported twice");
                labels.push(match outcome {
                    Outcome::Completed {
                        output: (label, _), ..
                    } => label,
                    Outcome::Failed { error, .. } => {
                        assert_eq!(error, "probe 1 failed");
                        1
                    }
                    Outcome::Panicked { message, .. } => {
                        assert_eq!(message, "probe 2 panicked");
                        2
                    }
                    other => panic!("unexpected {other:?}"),
                });
            }
            TaskReport::Refused(TrySubmitError::Full(task)) => labels.push(task.label),
            TaskReport::Refused(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    labels.sort();
    assert_eq!(labels, [0, 1, 2, 3, 4], "each task accounted for once");
    assert_eq!(finished_ids.len(), 3, "tasks 3 and 4 found the queue full");

    let stats = pool.stats().await.unwrap();
    assert_eq!(
        stats.submitted, 4,
        "the warm-up task and the three accepted"
    );
    assert!(stats.balances());
}

#[actix_rt::test]
async fn a_stopped_pool_refuses_with_the_task_inside() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    pool.stop().await.unwrap();
    let (tx, mut reports) = mpsc::unbounded();
    Dispatcher {
        pool: pool.addr(),
        tasks: vec![lab.completes(9)],
        reports: tx,
    }
    .start();
    match reports.next().await.unwrap() {
        TaskReport::Refused(TrySubmitError::Stopped(task)) => assert_eq!(task.label, 9),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[actix_rt::test]
async fn the_submitting_actor_can_learn_the_id_by_asking() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let (tx, mut reports) = mpsc::unbounded();
    let me = Dispatcher {
        pool: pool.addr(),
        tasks: Vec::new(),
        reports: tx,
    }
    .start();
    let id = pool
        .addr()
        .send(SubmitAndReport {
            task: lab.completes(5),
            report_to: me.recipient(),
        })
        .await
        .unwrap()
        .expect("accepted");
    match reports.next().await.unwrap() {
        TaskReport::Finished {
            id: reported,
            outcome,
        } => {
            assert_eq!(reported, id);
            assert_eq!(outcome.output(), Some((5, 0)));
        }
        other => panic!("unexpected {other:?}"),
    }
}
