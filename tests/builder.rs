//! ARCHITECTURE.md, The promise, rule 7, at build time: every refusal is a
//! typed error, never a panic.

use std::time::Duration;

use actix_workerpool::{BuildError, FnTask, MAX_WORKERS, Pool};

type Noop = FnTask<(), fn(()) -> std::future::Ready<Result<(), ()>>>;

#[actix_rt::test]
async fn zero_workers_are_refused() {
    let err = Pool::<Noop>::builder().workers(0).build().unwrap_err();
    assert_eq!(err, BuildError::ZeroWorkers);
}

#[actix_rt::test]
async fn a_zero_queue_capacity_is_refused() {
    let err = Pool::<Noop>::builder()
        .queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroCapacity);
}

#[actix_rt::test]
async fn a_zero_restart_window_is_refused() {
    let err = Pool::<Noop>::builder()
        .restart_limit(3, Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroRestartWindow);
}

#[actix_rt::test]
async fn a_restart_backoff_whose_base_exceeds_its_cap_is_refused() {
    let (base, max) = (Duration::from_secs(2), Duration::from_secs(1));
    let err = Pool::<Noop>::builder()
        .restart_backoff(base, max)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::RestartBackoff { base, max });
}

#[actix_rt::test]
async fn zero_dedicated_arbiters_are_refused() {
    let err = Pool::<Noop>::builder().arbiters(0).build().unwrap_err();
    assert_eq!(err, BuildError::ZeroArbiters);
}

#[actix_rt::test]
async fn more_dedicated_arbiters_than_a_pool_can_have_workers_are_refused() {
    for arbiters in [MAX_WORKERS + 1, usize::MAX] {
        let err = Pool::<Noop>::builder()
            .arbiters(arbiters)
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::TooManyArbiters { max: MAX_WORKERS });
    }
}

#[actix_rt::test]
async fn a_zero_restart_limit_is_allowed_it_means_give_up_at_once() {
    let pool = Pool::<Noop>::builder()
        .restart_limit(0, Duration::from_secs(1))
        .build();
    assert!(pool.is_ok());
}

#[test]
fn building_outside_an_actix_system_is_refused() {
    let err = Pool::<Noop>::builder().build().unwrap_err();
    assert_eq!(err, BuildError::NoArbiter);
    assert!(err.to_string().contains("System"));
}

#[actix_rt::test]
async fn valid_settings_build_a_pool_with_that_many_workers() {
    let pool = Pool::<Noop>::builder()
        .workers(7)
        .queue_capacity(1)
        .build()
        .unwrap();
    assert_eq!(pool.stats().await.unwrap().workers.len(), 7);
}
