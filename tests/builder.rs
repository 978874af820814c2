//! DESIGN rule 6 at build time: every refusal is a typed error, never a panic.

use actix_workerpool::{BuildError, FnTask, Pool};

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
