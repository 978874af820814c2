//! When the actix System stops without a drain, accepted tasks still get an
//! outcome: `NotRun` with the task and `StopReason::Dropped`.

mod common;

use actix_workerpool::{Outcome, Pool, StopReason};
use common::Lab;

#[test]
fn stopping_the_system_hands_every_unfinished_task_back() {
    let system = actix_rt::System::new();
    let (running, queued, _release) = system.block_on(async {
        let mut lab = Lab::new();
        let pool = Pool::builder().workers(1).build().unwrap();
        let (running, release) = lab.occupy(&pool, 0).await;
        let queued = pool.try_submit(lab.completes(1)).unwrap();
        (running, queued, release)
    });
    // Dropping the runner drops the runtime and with it every actor and mailbox.
    drop(system);

    for (label, handle) in [(0, running), (1, queued)] {
        match futures::executor::block_on(handle).unwrap() {
            Outcome::NotRun {
                task,
                reason,
                attempts,
            } => {
                assert_eq!(task.label, label);
                assert_eq!(reason, StopReason::Dropped);
                // The running one had begun its attempt.
                assert_eq!(attempts, if label == 0 { 1 } else { 0 });
            }
            other => panic!("task {label}: expected NotRun, got {other:?}"),
        }
    }
}

#[test]
fn a_pool_whose_supervisor_is_gone_refuses_tasks_instead_of_hanging() {
    let (send_pool, pool) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix_rt::System::new();
        system.block_on(async {
            let pool = Pool::<common::Probe>::builder().workers(1).build().unwrap();
            send_pool.send(pool).unwrap();
        });
        // Dropping the runner drops the supervisor with the runtime.
    })
    .join()
    .unwrap();
    let pool = pool.recv().unwrap();
    let lab = Lab::new();

    assert!(pool.is_closed());
    let refused = pool.try_submit(lab.completes(1)).unwrap_err();
    assert_eq!(refused.into_inner().label, 1);
    let refused = futures::executor::block_on(pool.submit(lab.completes(2))).unwrap_err();
    assert_eq!(refused.into_inner().label, 2);
}
