//! Workers on other arbiters take waiting tasks themselves, on their own
//! threads; the supervisor still books every task exactly once, and its
//! counters add up at every snapshot (ARCHITECTURE.md, The promise, rule 2).

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use actix_workerpool::{OutcomeKind, Pool, TaskStatus, TrySubmitError};
use common::{Lab, Probe};

const TASKS: u32 = 4_000;

/// Fails the test, rather than hanging it, if `work` takes longer than 60 s.
async fn within_60s<F: std::future::Future>(work: F) -> F::Output {
    actix_rt::time::timeout(Duration::from_secs(60), work)
        .await
        .expect("the pool should have answered long before")
}

fn pool_on_two_arbiters() -> Pool<Probe> {
    Pool::builder()
        .workers(4)
        .arbiters(2)
        .queue_capacity(64)
        .build()
        .unwrap()
}

#[actix_rt::test]
async fn counters_add_up_while_workers_on_other_threads_take_tasks() {
    let lab = Lab::new();
    let pool = pool_on_two_arbiters();
    within_60s(async {
        let mut handles = Vec::new();
        let mut last_submitted = 0;
        for label in 0..TASKS {
            handles.push(pool.submit(lab.completes(label)).await.unwrap());
            if label % 50 == 49 {
                let stats = pool.stats().await.unwrap();
                assert!(stats.balances(), "{stats:?}");
                // Every task whose submit has returned is counted, even one
                // a worker has taken and not yet reported.
                assert!(stats.submitted >= u64::from(label + 1), "{stats:?}");
                assert!(stats.submitted >= last_submitted, "{stats:?}");
                last_submitted = stats.submitted;
            }
        }
        let mut seen = HashSet::new();
        for handle in handles {
            let outcome = handle.await.unwrap();
            assert_eq!(outcome.kind(), OutcomeKind::Completed);
            let (label, _worker) = outcome.output().unwrap();
            assert!(seen.insert(label), "task {label} reported twice");
        }
        assert_eq!(seen.len(), TASKS as usize);

        let stats = pool.stats().await.unwrap();
        assert_eq!(
            (
                stats.submitted,
                stats.completed,
                stats.queued,
                stats.in_flight
            ),
            (u64::from(TASKS), u64::from(TASKS), 0, 0)
        );
        let tasks_run: u64 = stats.workers.iter().map(|w| w.tasks_run).sum();
        assert_eq!(tasks_run, u64::from(TASKS));
        pool.drain().await.unwrap();
    })
    .await;
}

#[actix_rt::test]
async fn a_stop_under_load_accounts_for_every_task() {
    let lab = Lab::new();
    let pool = pool_on_two_arbiters();
    within_60s(async {
        let mut handles = Vec::new();
        for label in 0..TASKS {
            match pool.try_submit(lab.completes(label)) {
                Ok(handle) => handles.push(handle),
                Err(TrySubmitError::Full(_)) => actix_rt::task::yield_now().await,
                Err(refused) => panic!("refused before the stop: {refused}"),
            }
            if label == TASKS / 2 {
                break;
            }
        }
        let report = pool.stop().await.unwrap();
        let mut not_run = HashSet::new();
        let mut completed = 0;
        for handle in handles {
            let id = handle.id();
            match handle.await.unwrap().kind() {
                OutcomeKind::Completed => completed += 1,
                OutcomeKind::NotRun => {
                    not_run.insert(id);
                }
                other => panic!("{id}: {other:?}"),
            }
        }
        let reported: HashSet<_> = report.not_run.iter().copied().collect();
        assert_eq!(reported, not_run);
        let stats = pool.stats().await.unwrap();
        assert!(stats.balances(), "{stats:?}");
        assert_eq!(stats.completed, completed);
        assert_eq!(stats.not_run, not_run.len() as u64);
        assert_eq!((stats.queued, stats.in_flight), (0, 0));
    })
    .await;
}

/// A waker that, when woken, says so and then holds its thread for a while.
struct SlowWaker(Arc<AtomicBool>);

impl Wake for SlowWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[actix_rt::test]
async fn a_task_a_worker_on_another_thread_took_reads_as_running() {
    let mut lab = Lab::new();
    let pool = Pool::builder()
        .workers(1)
        .arbiters(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (held, release) = lab.occupy(&pool, 0).await;
    // Waits in the backlog, and fills the queue; then runs until released.
    let (next, release_next) = lab.held(1);
    let waiting = pool.try_submit(next).unwrap();
    // A submit parked for room; the permit `waiting` gives back once the
    // supervisor has booked it as running wakes this, and holds that thread.
    let woken = Arc::new(AtomicBool::new(false));
    let waker = Waker::from(Arc::new(SlowWaker(woken.clone())));
    let mut parked = Box::pin(pool.submit(lab.completes(2)));
    let poll = parked.as_mut().poll(&mut Context::from_waker(&waker));
    assert!(poll.is_pending());

    release.release();
    within_60s(async {
        while !woken.load(Ordering::SeqCst) {
            actix_rt::task::yield_now().await;
        }
    })
    .await;
    let status = pool.status(waiting.id()).await.unwrap();
    assert_eq!(status, TaskStatus::Running { worker: 0 });
    release_next.release();
    held.await.unwrap();
    waiting.await.unwrap();
    drop(parked);
}

/// Every snapshot is a consistent cut, even while submitters on two other
/// threads race workers on two more: no more queued than the queue holds, no
/// more running than there are workers, and the identity holds.
#[actix_rt::test]
async fn every_snapshot_is_a_consistent_cut_under_concurrent_submitters() {
    const CAPACITY: usize = 8;
    const WORKERS: usize = 4;
    const PER_SUBMITTER: u32 = 3_000;
    let lab = Lab::new();
    let pool: Pool<Probe> = Pool::builder()
        .workers(WORKERS)
        .arbiters(2)
        .queue_capacity(CAPACITY)
        .build()
        .unwrap();
    within_60s(async {
        let mut submitters = Vec::new();
        let mut threads = Vec::new();
        for s in 0..2u32 {
            let arbiter = actix_rt::Arbiter::new();
            let (done, finished) = futures::channel::oneshot::channel();
            let pool = pool.clone();
            let probes: Vec<Probe> = (0..PER_SUBMITTER)
                .map(|i| lab.completes(s * PER_SUBMITTER + i))
                .collect();
            arbiter.spawn(async move {
                let mut handles = Vec::new();
                for probe in probes {
                    handles.push(pool.submit(probe).await.unwrap());
                }
                for handle in handles {
                    handle.await.unwrap();
                }
                let _ = done.send(());
            });
            submitters.push(finished);
            threads.push(arbiter);
        }
        let all_done = futures::future::join_all(submitters);
        let mut all_done = std::pin::pin!(all_done);
        let mut snapshots = 0;
        loop {
            let stats = pool.stats().await.unwrap();
            snapshots += 1;
            assert!(stats.balances(), "{stats:?}");
            assert!(stats.queued <= CAPACITY, "snapshot {snapshots}: {stats:?}");
            assert!(
                stats.in_flight <= WORKERS,
                "snapshot {snapshots}: {stats:?}"
            );
            if futures::poll!(all_done.as_mut()).is_ready() {
                break;
            }
        }
        let stats = pool.stats().await.unwrap();
        assert_eq!(stats.completed, u64::from(2 * PER_SUBMITTER), "{stats:?}");
        for arbiter in threads {
            arbiter.stop();
        }
        pool.drain().await.unwrap();
    })
    .await;
}
