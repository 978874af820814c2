//! Restart backoff with jitter: slots whose workers crash together wait
//! different delays before their fresh workers start, so that they do not
//! restart (and crash again) in lockstep; each delay stays in the jitter's
//! range of the backoff. Paused time: the delays are the clock's.

mod common;

use std::time::Duration;

use actix_workerpool::{FnTask, Jitter, Pool, PoolBuilder, PoolEvent};
use common::Events;

type Boom = FnTask<u32, fn(u32) -> std::future::Ready<Result<u32, ()>>>;

fn boom(n: u32) -> std::future::Ready<Result<u32, ()>> {
    panic!("task {n} crashes its worker")
}

const SLOTS: u32 = 8;

/// The delays of the restarts of `SLOTS` workers that crash at once.
async fn delays_of_a_crash_together(builder: PoolBuilder<Boom>) -> Vec<Duration> {
    tokio::time::pause();
    let pool = builder
        .workers(SLOTS as usize)
        .restart_backoff(Duration::from_secs(8), Duration::from_secs(60))
        .build()
        .unwrap();
    let mut events = Events::subscribe(&pool).await;
    let handles: Vec<_> = (0..SLOTS)
        .map(|n| {
            pool.try_submit(FnTask::new(n, boom as fn(u32) -> _))
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let mut delays = Vec::new();
    while delays.len() < SLOTS as usize {
        if let PoolEvent::WorkerRestarted { delay, .. } = events
            .until(|e| matches!(e, PoolEvent::WorkerRestarted { .. }))
            .await
        {
            delays.push(delay);
        }
    }
    delays
}

#[actix_rt::test]
async fn slots_that_crash_together_restart_at_different_moments_within_the_backoff() {
    // Equal jitter by default: half the backoff, plus up to the other half.
    let delays = delays_of_a_crash_together(Pool::builder()).await;
    for delay in &delays {
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(8)).contains(delay),
            "{delays:?}"
        );
    }
    let mut distinct = delays.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 1, "every slot waited the same: {delays:?}");
}

#[actix_rt::test]
async fn without_jitter_every_slot_waits_the_backoff_exactly() {
    let builder = Pool::builder().restart_jitter(Jitter::None);
    let delays = delays_of_a_crash_together(builder).await;
    assert_eq!(delays, vec![Duration::from_secs(8); SLOTS as usize]);
}

#[actix_rt::test]
async fn full_jitter_waits_anywhere_up_to_the_backoff() {
    let builder = Pool::builder().restart_jitter(Jitter::Full);
    let delays = delays_of_a_crash_together(builder).await;
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(8)),
        "{delays:?}"
    );
    let first = delays[0];
    assert!(delays.iter().any(|d| *d != first), "no jitter: {delays:?}");
}
