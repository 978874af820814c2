//! Resizing a pool at run time: growing starts new slots that take queued
//! tasks at once (which frees places for waiting submitters); shrinking
//! retires workers without a task first and busy ones after their task, never
//! losing or rerunning one; round-robin goes over the slots in service; stats
//! and events tell the change (ARCHITECTURE.md, rules 1 and 2).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_workerpool::{
    BuildError, MAX_WORKERS, Outcome, Pool, PoolBuilder, PoolEvent, Resize, ResizeError, Resized,
    Stats, Task, TaskContext, WorkerState,
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

#[actix_rt::test]
async fn a_draining_pool_refuses_to_resize() {
    let mut lab = Lab::new();
    let pool = pool_of(1);
    let (busy, release) = lab.occupy(&pool, 0).await;
    let drain = common::drain_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    assert_eq!(pool.resize(4).await, Err(ResizeError::Stopped));
    release.release();
    assert_eq!(completed_on(busy).await, (0, 0));
    within_60s(drain).await.unwrap().unwrap();
    assert_eq!(pool.stats().await.unwrap().size, 1);
}

#[actix_rt::test]
async fn a_size_above_the_limit_is_refused() {
    let pool = pool_of(2);
    let too_many = MAX_WORKERS + 1;
    assert_eq!(
        pool.resize(too_many).await,
        Err(ResizeError::TooManyWorkers { max: MAX_WORKERS })
    );
    assert_eq!(pool.stats().await.unwrap().size, 2);
    let refused = Pool::<Probe>::builder().workers(too_many).build();
    assert_eq!(
        refused.unwrap_err(),
        BuildError::TooManyWorkers { max: MAX_WORKERS }
    );
}

#[actix_rt::test]
async fn a_retired_slot_cut_off_by_a_shutdown_deadline_is_retired_too() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let pool = pool_of(2);
    let mut events = Events::subscribe(&pool).await;
    let (_first, _keep_first) = lab.occupy(&pool, 0).await;
    let (_second, _keep_second) = lab.occupy(&pool, 1).await;
    // Both busy: slot 1, the highest, retires once its task ends, which the
    // stop's deadline brings about.
    pool.resize(1).await.unwrap();
    let report = pool.stop_within(Duration::from_millis(50)).await.unwrap();
    assert_eq!(report.aborted.len(), 2);
    assert_eq!(retired(&mut events, 1).await, BTreeSet::from([1]));
}

#[actix_rt::test]
async fn a_slot_retired_in_its_backoff_and_brought_back_waits_its_own_backoff() {
    tokio::time::pause();
    // Slot 1's state fails to start while `failing` says so.
    let failing = Arc::new(AtomicBool::new(false));
    let starts: Arc<Mutex<Vec<(usize, tokio::time::Instant)>>> = Arc::default();
    let (fails, started) = (failing.clone(), starts.clone());
    let pool = Pool::<Probe>::builder_with_state(move |slot| {
        started
            .lock()
            .unwrap()
            .push((slot, tokio::time::Instant::now()));
        if slot == 1 && fails.load(Ordering::SeqCst) {
            return Err("no state");
        }
        Ok(())
    })
    .workers(2)
    .restart_backoff(Duration::from_secs(10), Duration::from_secs(100))
    .restart_jitter(actix_workerpool::Jitter::None)
    .build()
    .unwrap();
    let mut events = Events::subscribe(&pool).await;
    all_idle(&pool).await;
    failing.store(true, Ordering::SeqCst);
    pool.resize(1).await.unwrap();
    retired(&mut events, 1).await;
    // Back, slot 1 fails to start: a first backoff of 10 s begins ...
    pool.resize(2).await.unwrap();
    restarted(&mut events, 1).await;
    // ... it is retired within it, and brought back at once: its fresh
    // worker fails too, and waits a backoff of its own, begun now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    pool.resize(1).await.unwrap();
    retired(&mut events, 1).await;
    pool.resize(2).await.unwrap();
    restarted(&mut events, 1).await;
    let backoff_began = tokio::time::Instant::now();
    failing.store(false, Ordering::SeqCst);
    all_idle(&pool).await;
    let last_start = starts.lock().unwrap().last().copied().unwrap();
    assert_eq!(last_start.0, 1);
    assert!(
        last_start.1 >= backoff_began + Duration::from_secs(10),
        "slot 1 started {:?} into its backoff of 10 s: the first backoff's timer started it",
        last_start.1 - backoff_began
    );
}

async fn restarted(events: &mut Events, slot: usize) {
    within_60s(
        events.until(|e| matches!(e, PoolEvent::WorkerRestarted { worker, .. } if *worker == slot)),
    )
    .await;
}

/// Waits for `go`, then blocks its thread until `unblock`, if it has them;
/// reports its slot. Only a task that blocks has a timeout.
struct Blocks {
    go: Option<futures::channel::oneshot::Receiver<()>>,
    unblock: Option<std::sync::mpsc::Receiver<()>>,
}

impl Task for Blocks {
    type Output = usize;
    type Error = ();
    type State = ();

    fn timeout(&self) -> Option<Duration> {
        self.unblock.as_ref().map(|_| Duration::from_millis(200))
    }

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<usize, ()> {
        if let Some(go) = self.go.take() {
            let _ = go.await;
        }
        if let Some(unblock) = &self.unblock {
            let _ = unblock.recv();
        }
        Ok(cx.worker())
    }
}

#[actix_rt::test]
async fn a_retired_worker_stuck_on_its_thread_takes_the_idle_workers_there_off_it() {
    let pool = Pool::<Blocks>::builder()
        .workers(4)
        .arbiters(2)
        .stuck_grace(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    within_60s(async {
        while pool
            .stats()
            .await
            .unwrap()
            .workers
            .iter()
            .any(|w| w.state != WorkerState::Idle)
        {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    // Slots 0 and 2 run on one arbiter, 1 and 3 on the other. Slot 3 will
    // block its thread; slots 0 and 2 are kept busy.
    let held = |go| Blocks {
        go: Some(go),
        unblock: None,
    };
    let mut releases = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let (release, go) = futures::channel::oneshot::channel();
        handles.push(pool.try_submit(held(go)).unwrap());
        releases.push(release);
    }
    let (go, go_rx) = futures::channel::oneshot::channel();
    let (unblock, unblock_rx) = std::sync::mpsc::channel();
    let blocker = pool
        .try_submit(Blocks {
            go: Some(go_rx),
            unblock: Some(unblock_rx),
        })
        .unwrap();
    within_60s(async {
        while pool.stats().await.unwrap().in_flight < 4 {
            actix_rt::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    // Every slot busy: slot 3, the highest, retires after its task.
    pool.resize(3).await.unwrap();
    // Slot 1 goes idle, on the thread slot 3 is about to block.
    let _ = releases.remove(1).send(());
    assert_eq!(
        within_60s(handles.remove(1)).await.unwrap().output(),
        Some(1)
    );
    go.send(()).unwrap();
    within_60s(events.until(|e| matches!(e, PoolEvent::WorkerStuck { worker: 3, .. }))).await;

    // Slot 1's worker moved to a thread that is not blocked: a task given
    // to it now runs while slot 3's thread still blocks.
    let quick = pool
        .try_submit(Blocks {
            go: None,
            unblock: None,
        })
        .unwrap();
    let ran_on = within_60s(quick).await.unwrap().output();
    unblock.send(()).unwrap();
    assert_eq!(ran_on, Some(1));
    assert!(matches!(blocker.await.unwrap(), Outcome::TimedOut { .. }));
    drop(releases);
}

#[actix_rt::test]
async fn a_drain_runs_the_retry_of_a_task_whose_retired_worker_has_quit() {
    tokio::time::pause();
    let mut lab = Lab::new();
    let pool = Pool::<Probe>::builder()
        .workers(2)
        .retry(common::one_retry_after(Duration::from_secs(1)))
        .build()
        .unwrap();
    let (first, release_first) = lab.occupy(&pool, 0).await;
    let (failing, release_failing) = lab.held_then_fails(1);
    let failing = pool.try_submit(failing).unwrap();
    assert_eq!(lab.started().await.worker, 1);
    // Slot 1 retires after its task, which will fail and want a retry.
    pool.resize(1).await.unwrap();
    let drain = common::drain_later(&pool);
    while !pool.is_closed() {
        actix_rt::task::yield_now().await;
    }
    release_first.release();
    assert_eq!(completed_on(first).await, (0, 0));
    release_failing.release();
    // The retry runs on slot 0, which the drain kept for it.
    match within_60s(failing).await.unwrap() {
        Outcome::Failed { attempts, .. } => assert_eq!(attempts, 2),
        other => panic!("expected Failed after 2 attempts, got {other:?}"),
    }
    let report = within_60s(drain).await.unwrap().unwrap();
    assert!(report.not_run.is_empty(), "{report:?}");
    let stats = pool.stats().await.unwrap();
    assert_eq!((stats.failed, stats.waiting_retry), (1, 0));
    assert!(stats.balances(), "{stats:?}");
}
