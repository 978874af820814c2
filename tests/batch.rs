//! The Go `NewPool(tasks, n).Run()`: a batch, outcomes in input order.

mod common;

use actix_workerpool::{Outcome, Pool, StopReason};
use common::Lab;

#[actix_rt::test]
async fn batch_outcomes_come_back_in_input_order() {
    let lab = Lab::new();
    let pool = Pool::builder()
        .workers(3)
        .queue_capacity(4)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..25)
        .map(|l| {
            if l % 4 == 3 {
                lab.fails(l)
            } else {
                lab.completes(l)
            }
        })
        .collect();

    let outcomes = pool.run_all(tasks).await.unwrap();
    assert_eq!(outcomes.len(), 25);
    for (label, outcome) in (0..).zip(outcomes) {
        match outcome {
            Outcome::Completed {
                output: (ran, _),
                attempts,
            } => {
                assert_eq!((ran, attempts), (label, 1));
            }
            Outcome::Failed { error, attempts } => {
                assert_eq!(label % 4, 3);
                assert_eq!(error, format!("probe {label} failed"));
                assert_eq!(attempts, 1);
            }
            other => panic!("task {label}: unexpected {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn failed_tasks_carry_their_error_to_the_handle() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(1).build().unwrap();
    let outcome = common::outcome_of(&pool, lab.fails(9)).await;
    assert!(
        matches!(outcome, Outcome::Failed { ref error, attempts: 1 } if error == "probe 9 failed")
    );
}

#[actix_rt::test]
async fn a_batch_on_a_stopped_pool_hands_every_task_back_in_order() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    pool.stop().await.unwrap();
    let outcomes = pool
        .run_all((0..3).map(|l| lab.completes(l)))
        .await
        .unwrap();
    let labels: Vec<_> = outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::NotRun {
                task,
                reason: StopReason::Stopped,
                attempts: 0,
            } => task.label,
            other => panic!("expected NotRun, got {other:?}"),
        })
        .collect();
    assert_eq!(labels, [0, 1, 2]);
}
