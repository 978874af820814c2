//! Resizing a pool at run time: growing starts new slots that take queued
//! tasks at once (which frees places for waiting submitters); shrinking
//! retires workers without a task first and busy ones after their task, never
//! losing or rerunning one; round-robin goes over the slots in service; stats
//! and events tell the change (ARCHITECTURE.md, rules 1 and 2).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use actix_workerpool::{
    Outcome, Pool, PoolBuilder, PoolEvent, Resize, ResizeError, Resized, Stats, WorkerState,
};
use common::{Events, Lab, Probe, Release, within_60s};

fn pool_of(workers: usize) -> Pool<Probe> {
    pool_from(Pool::builder(), workers)
}

fn pool_from(builder: PoolBuilder<Probe>, workers: usize) -> Pool<Probe> {
    builder.workers(workers).queue_capacity(8).build().unwrap()
}

fn states(stats: &Stats) -> Vec<WorkerState> {
    stats.workers.iter().map(|w| w.state).collect()
}

/// Waits until every slot in service has an idle worker (fresh workers make
/// their state first).
async fn all_idle(pool: &Pool<Probe>) -> Stats {
    within_60s(async {
        loop {
            let stats = pool.stats().await.unwrap();
            let idle = states(&stats)
                .iter()
                .filter(|s| **s == WorkerState::Idle)
                .count();
            if idle == stats.size {
                return stats;
            }
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// Waits for `n` `WorkerRetired` events; the slots they name.
async fn retired(events: &mut Events, n: usize) -> BTreeSet<usize> {
    let mut slots = BTreeSet::new();
    while slots.len() < n {
        if let PoolEvent::WorkerRetired { worker } = within_60s(events.next()).await {
            slots.insert(worker);
        }
    }
    slots
}

async fn completed_on(handle: actix_workerpool::TaskHandle<Probe>) -> (u32, usize) {
    match handle.await.unwrap() {
        Outcome::Completed { output, .. } => output,
        other => panic!("expected Completed, got {other:?}"),
    }
}

#[actix_rt::test]
async fn growing_gives_queued_tasks_to_the_new_slots_at_once() {
    let mut lab = Lab::new();
    let pool = pool_of(1);
    let (first, release_first) = lab.occupy(&pool, 0).await;
    let (one, release_one) = lab.held(1);
    let (two, release_two) = lab.held(2);
    let one = pool.try_submit(one).unwrap();
    let two = pool.try_submit(two).unwrap();

    assert_eq!(pool.resize(3).await.unwrap(), Resized { from: 1, to: 3 });
    // Both start while the first task still holds slot 0.
    let slots: BTreeSet<usize> = [lab.started().await, lab.started().await]
        .iter()
        .map(|s| s.worker)
        .collect();
    assert_eq!(slots, BTreeSet::from([1, 2]));
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.size, stats.workers.len()), (3, 3));
    assert_eq!((stats.in_flight, stats.queued), (3, 0));

    for release in [release_first, release_one, release_two] {
        release.release();
    }
    assert_eq!(completed_on(first).await, (0, 0));
    assert!(matches!(completed_on(one).await, (1, 1 | 2)));
    assert!(matches!(completed_on(two).await, (2, 1 | 2)));
}

#[actix_rt::test]
async fn growing_wakes_a_submitter_waiting_for_room() {
    let mut lab = Lab::new();
    let (pool, release) = lab.full_pool(Pool::builder()).await;
    let mut waiting = Box::pin(pool.submit(lab.completes(2)));
    assert!(
        futures::poll!(waiting.as_mut()).is_pending(),
        "the queue is full"
    );

    pool.resize(2).await.unwrap();
    // The new slot takes the queued task, whose place goes to the submitter,
    // while the first task still runs.
    let handle = within_60s(waiting)
        .await
        .expect("accepted once there is room");
    assert_eq!(completed_on(handle).await, (2, 1));
    release.release();
}

#[actix_rt::test]
async fn shrinking_retires_idle_workers_first() {
    let mut lab = Lab::new();
    let pool = pool_of(4);
    let mut events = Events::subscribe(&pool).await;
    let mut held = Vec::new();
    for label in 0..4 {
        held.push(lab.occupy(&pool, label).await);
    }
    // Slots 0 and 1 go idle; 2 and 3 stay busy.
    let mut busy = held.split_off(2);
    for (handle, release) in held {
        release.release();
        handle.await.unwrap();
    }

    assert_eq!(pool.resize(2).await.unwrap(), Resized { from: 4, to: 2 });
    assert_eq!(retired(&mut events, 2).await, BTreeSet::from([0, 1]));
    let stats = pool.stats().await.unwrap();
    let (task2, task3) = (busy[0].0.id(), busy[1].0.id());
    assert_eq!(stats.size, 2);
    assert_eq!(
        states(&stats),
        [
            WorkerState::Retired,
            WorkerState::Retired,
            WorkerState::Busy { task: task2 },
            WorkerState::Busy { task: task3 },
        ]
    );
    let (handle, release) = busy.remove(0);
    release.release();
    assert_eq!(completed_on(handle).await, (2, 2));
    // New tasks go to the slots in service only.
    for label in 10..14 {
        let handle = pool.try_submit(lab.completes(label)).unwrap();
        assert_eq!(completed_on(handle).await, (label, 2));
    }
    drop(busy);
}

/// Four busy workers, four tasks queued behind them, and the pool shrinks to
/// two: the two retiring workers finish their task and take no other.
async fn shrink_while_busy(builder: PoolBuilder<Probe>) {
    let mut lab = Lab::new();
    let pool = pool_from(builder, 4);
    let mut events = Events::subscribe(&pool).await;
    // Every worker ready, so that task i goes to slot i.
    all_idle(&pool).await;
    let mut held: Vec<(_, Release)> = Vec::new();
    for label in 0..4 {
        held.push(lab.occupy(&pool, label).await);
    }
    let queued: Vec<_> = (10..14)
        .map(|label| pool.try_submit(lab.completes(label)).unwrap())
        .collect();

    assert_eq!(pool.resize(2).await.unwrap(), Resized { from: 4, to: 2 });
    let stats = pool.stats().await.unwrap();
    // Busy slots retire from the highest down.
    let (task2, task3) = (held[2].0.id(), held[3].0.id());
    assert_eq!(
        states(&stats)[2..],
        [
            WorkerState::Quitting { task: Some(task2) },
            WorkerState::Quitting { task: Some(task3) },
        ]
    );
    assert_eq!((stats.size, stats.queued), (2, 4));

    // The retiring workers finish first, while the others still hold theirs.
    let (kept, retiring) = {
        let mut held = held;
        let retiring = held.split_off(2);
        (held, retiring)
    };
    for (label, (handle, release)) in (2..).zip(retiring) {
        release.release();
        assert_eq!(completed_on(handle).await, (label, label as usize));
    }
    assert_eq!(retired(&mut events, 2).await, BTreeSet::from([2, 3]));
    for (label, (handle, release)) in (0..).zip(kept) {
        release.release();
        assert_eq!(completed_on(handle).await, (label, label as usize));
    }
    for (label, handle) in (10..).zip(queued) {
        let (ran, slot) = completed_on(handle).await;
        assert_eq!(ran, label);
        assert!(slot < 2, "task {label} ran on retired slot {slot}");
    }
    let mut labels: Vec<u32> = lab.drain_started().iter().map(|s| s.label).collect();
    labels.sort();
    assert_eq!(labels, [10, 11, 12, 13], "every queued task ran once");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.completed, stats.restarts), (8, 0));
    assert_eq!(
        stats.workers.len(),
        2,
        "retired slots at the end are not listed"
    );
    assert!(stats.balances(), "{stats:?}");
}

#[actix_rt::test]
async fn shrinking_lets_busy_workers_finish_their_task_then_retires_them() {
    shrink_while_busy(Pool::builder()).await;
}

#[actix_rt::test]
async fn shrinking_retires_busy_workers_on_other_arbiters_after_their_task() {
    shrink_while_busy(Pool::builder().arbiters(2)).await;
}

#[actix_rt::test]
async fn round_robin_goes_over_the_slots_in_service_in_turn() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let mut events = Events::subscribe(&pool).await;
    pool.resize(4).await.unwrap();
    all_idle(&pool).await;
    let mut held = Vec::new();
    let mut slots = Vec::new();
    for label in 0..4 {
        let (probe, release) = lab.held(label);
        held.push((pool.try_submit(probe).unwrap(), release));
        slots.push(lab.started().await.worker);
    }
    assert_eq!(slots, [0, 1, 2, 3], "one task on each slot, in turn");
    for (handle, release) in held {
        release.release();
        handle.await.unwrap();
    }

    // Shrunk back, the turn goes over slots 0 and 1 only.
    pool.resize(2).await.unwrap();
    assert_eq!(retired(&mut events, 2).await, BTreeSet::from([2, 3]));
    let mut held = Vec::new();
    for label in 10..14 {
        let (probe, release) = lab.held(label);
        held.push((pool.try_submit(probe).unwrap(), release));
    }
    let slots = [lab.started().await.worker, lab.started().await.worker];
    assert_eq!(slots, [0, 1]);
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.in_flight, stats.queued), (2, 2));
    for (handle, release) in held {
        release.release();
        let (_, slot) = completed_on(handle).await;
        assert!(slot < 2, "ran on retired slot {slot}");
    }
}

#[actix_rt::test]
async fn growing_again_brings_retired_slots_back_into_service() {
    let mut lab = Lab::new();
    let pool = pool_of(4);
    let mut events = Events::subscribe(&pool).await;
    pool.resize(1).await.unwrap();
    assert_eq!(retired(&mut events, 3).await, BTreeSet::from([1, 2, 3]));
    assert_eq!(pool.stats().await.unwrap().workers.len(), 1);

    assert_eq!(pool.resize(3).await.unwrap(), Resized { from: 1, to: 3 });
    let stats = all_idle(&pool).await;
    assert_eq!(stats.workers.len(), 3, "slots 1 and 2 serve again");
    let mut held = Vec::new();
    let mut slots = BTreeSet::new();
    for label in 0..3 {
        let (probe, release) = lab.held(label);
        held.push((pool.try_submit(probe).unwrap(), release));
        slots.insert(lab.started().await.worker);
    }
    assert_eq!(slots, BTreeSet::from([0, 1, 2]));
    for (handle, release) in held {
        release.release();
        completed_on(handle).await;
    }
}

#[actix_rt::test]
async fn events_tell_the_resize_and_each_retired_slot() {
    let pool = pool_of(3);
    let mut events = Events::subscribe(&pool).await;
    pool.resize(5).await.unwrap();
    pool.resize(2).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = within_60s(events.next()).await;
        if matches!(
            event,
            PoolEvent::Resized { .. } | PoolEvent::WorkerRetired { .. }
        ) {
            seen.push(event);
        }
    }
    assert_eq!(seen[0], PoolEvent::Resized { from: 3, to: 5 });
    assert_eq!(seen[1], PoolEvent::Resized { from: 5, to: 2 });
    let slots: BTreeSet<usize> = seen[2..]
        .iter()
        .map(|e| match e {
            PoolEvent::WorkerRetired { worker } => *worker,
            other => panic!("expected WorkerRetired, got {other:?}"),
        })
        .collect();
    assert_eq!(slots, BTreeSet::from([2, 3, 4]));
    assert_eq!(pool.stats().await.unwrap().size, 2);
}

#[actix_rt::test]
async fn a_retiring_worker_whose_task_panics_is_not_replaced() {
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let mut events = Events::subscribe(&pool).await;
    let (_first, release_first) = lab.occupy(&pool, 0).await;
    let (panics, release) = lab.held_then_panics(1);
    let handle = pool.try_submit(panics).unwrap();
    lab.started().await;

    pool.resize(1).await.unwrap();
    release.release();
    assert!(matches!(handle.await.unwrap(), Outcome::Panicked { .. }));
    assert_eq!(retired(&mut events, 1).await, BTreeSet::from([1]));
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.panicked, stats.restarts, stats.size), (1, 0, 1));
    assert_eq!(stats.workers.len(), 1);
    release_first.release();
}

#[actix_rt::test]
async fn a_size_of_zero_is_refused_and_changes_nothing() {
    let pool = pool_of(2);
    assert_eq!(pool.resize(0).await, Err(ResizeError::ZeroWorkers));
    let answer = pool.addr().send(Resize(0)).await.unwrap();
    assert_eq!(answer, Err(ResizeError::ZeroWorkers));
    assert_eq!(pool.stats().await.unwrap().size, 2);
}

#[actix_rt::test]
async fn a_stopping_pool_refuses_to_resize() {
    let pool = pool_of(2);
    pool.stop().await.unwrap();
    assert_eq!(pool.resize(4).await, Err(ResizeError::Stopped));
}

#[actix_rt::test]
async fn the_resize_message_answers_as_the_handle_does() {
    let pool = pool_of(2);
    let answer = pool.addr().send(Resize(3)).await.unwrap();
    assert_eq!(answer, Ok(Resized { from: 2, to: 3 }));
    // The same size again changes nothing.
    assert_eq!(pool.resize(3).await, Ok(Resized { from: 3, to: 3 }));
    assert_eq!(all_idle(&pool).await.workers.len(), 3);
}

#[actix_rt::test]
async fn a_drain_after_a_shrink_finishes_every_task() {
    let mut lab = Lab::new();
    let pool = pool_of(3);
    let (busy, release) = lab.occupy(&pool, 0).await;
    let queued: Vec<_> = (1..5)
        .map(|label| pool.try_submit(lab.completes(label)).unwrap())
        .collect();
    pool.resize(1).await.unwrap();
    let drain = common::drain_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    release.release();
    let report = within_60s(drain).await.unwrap().unwrap();
    assert_eq!((report.finished.len(), report.not_run.len()), (5, 0));
    assert_eq!(completed_on(busy).await, (0, 0));
    for handle in queued {
        completed_on(handle).await;
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.completed, 5);
    assert!(stats.balances(), "{stats:?}");
}
