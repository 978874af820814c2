//! ARCHITECTURE.md, The promise, rule 3: idle workers take consecutive tasks in
//! turn; busy ones are skipped.

mod common;

use actix_workerpool::Pool;
use common::Lab;

#[actix_rt::test]
async fn idle_workers_take_consecutive_tasks_in_turn() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(4).build().unwrap();
    let mut ran_on = Vec::new();
    for label in 0..9 {
        let handle = pool.submit(lab.completes(label)).await.unwrap();
        let (_, worker) = handle.await.unwrap().output().unwrap();
        ran_on.push(worker);
    }
    assert_eq!(ran_on, [0, 1, 2, 3, 0, 1, 2, 3, 0]);
}

#[actix_rt::test]
async fn a_burst_spreads_over_all_workers_in_slot_order() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(3).build().unwrap();
    let mut releases = Vec::new();
    for label in 0..3 {
        let (probe, release) = lab.held(label);
        pool.try_submit(probe).unwrap();
        releases.push(release);
    }
    let mut starts = Vec::new();
    for _ in 0..3 {
        let s = lab.started().await;
        starts.push((s.label, s.worker));
    }
    starts.sort();
    assert_eq!(starts, [(0, 0), (1, 1), (2, 2)]);
    releases.into_iter().for_each(common::Release::release);
    pool.drain().await.unwrap();
}

#[actix_rt::test]
async fn a_busy_worker_is_skipped_not_waited_on() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(3).build().unwrap();
    let (held, release) = lab.held(100);
    let held = pool.submit(held).await.unwrap();
    assert_eq!(lab.started().await.worker, 0);

    let mut ran_on = Vec::new();
    for label in 0..4 {
        let (_, worker) = common::outcome_of(&pool, lab.completes(label))
            .await
            .output()
            .unwrap();
        ran_on.push(worker);
    }
    // Worker 0 holds task 100 the whole time: its turns pass to 1 and 2.
    assert_eq!(ran_on, [1, 2, 1, 2]);

    release.release();
    assert_eq!(held.await.unwrap().output(), Some((100, 0)));
    // Free again, worker 0 gets its turn when the cursor comes round.
    let (_, worker) = common::outcome_of(&pool, lab.completes(4))
        .await
        .output()
        .unwrap();
    assert_eq!(worker, 0);
}

#[actix_rt::test]
async fn per_worker_counts_show_the_even_spread() {
    let lab = Lab::new();
    let pool = Pool::builder().workers(4).build().unwrap();
    for label in 0..12 {
        common::outcome_of(&pool, lab.completes(label)).await;
    }
    let stats = pool.stats().await.unwrap();
    let per_worker: Vec<u64> = stats.workers.iter().map(|w| w.tasks_run).collect();
    assert_eq!(per_worker, [3, 3, 3, 3]);
}

#[actix_rt::test]
async fn an_idle_worker_goes_before_one_that_just_finished() {
    let mut lab = Lab::new();
    let pool = Pool::builder().workers(2).build().unwrap();
    // Worker 0 finishes its task just as six more arrive; worker 1 is idle.
    let (held, release) = lab.occupy(&pool, 100).await;
    release.release();
    let handles: Vec<_> = (0..6)
        .map(|label| pool.try_submit(lab.completes(label)).unwrap())
        .collect();
    let mut ran_on = Vec::new();
    for handle in handles {
        ran_on.push(handle.await.unwrap().output().unwrap().1);
    }
    held.await.unwrap();
    assert_eq!(ran_on[0], 1, "tasks ran on {ran_on:?}");
    assert!(ran_on.contains(&0), "tasks ran on {ran_on:?}");
}
