//! Measures how fast a [`Pool`] dispatches no-op tasks, two ways:
//!
//! * `dispatch`: throughput with 1, 4 and 64 workers, in tasks per second.
//!   One submitter keeps at most [`WINDOW`] tasks in flight, awaiting the
//!   oldest before submitting more; each timed call pushes `iters * BATCH`
//!   tasks through the pool in one continuous stream.
//! * `round_trip`: the latency of one task on an idle pool of
//!   [`ROUND_TRIP_WORKERS`] workers: submit it, await its outcome, repeat.
//!   Every hop of a task is paid in full, with no batching to hide it, which
//!   makes it the bench to profile the per-task path with.
//!
//! Everything runs on one actix `System` (a current-thread runtime); each
//! pool is built once, outside the timed loop.
//!
//! ```sh
//! cargo bench --bench dispatch             # about 20 s
//! cargo bench --bench dispatch -- --quick  # a few seconds, rougher figures
//! cargo bench --bench dispatch -- round_trip  # the round-trip group only
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use actix_workerpool::{Outcome, Pool, Task, TaskContext};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Worker counts to compare: a single worker, a few, and more than the
/// window can keep busy for long.
const WORKER_COUNTS: [usize; 3] = [1, 4, 64];
/// Most tasks the submitter leaves outstanding at once.
const WINDOW: usize = 1024;
/// Tasks per criterion iteration: enough that one iteration dwarfs the
/// timer's resolution, few enough that a sample stays in milliseconds.
const BATCH: u64 = 8 * 1024;
/// Idle workers waiting for each round trip's task.
const ROUND_TRIP_WORKERS: usize = 4;

/// A task that does nothing; a unit struct rather than an `FnTask`, so no
/// closure or data cost is measured.
struct Noop;

impl Task for Noop {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<(), Infallible> {
        Ok(())
    }
}

fn start_pool(workers: usize) -> Pool<Noop> {
    Pool::builder()
        .workers(workers)
        // A queue as long as the window: `try_submit` then never finds it full.
        .queue_capacity(WINDOW)
        .build()
        .expect("inside a running System, with valid settings")
}

/// Pushes `tasks` tasks through `pool`, at most [`WINDOW`] outstanding, and
/// returns the time taken. Panics unless every task completed, so that a
/// broken pool cannot report a fast time.
async fn push(pool: &Pool<Noop>, tasks: u64) -> Duration {
    let mut window = VecDeque::with_capacity(WINDOW);
    let mut completed = 0u64;
    let start = Instant::now();
    for _ in 0..tasks {
        if window.len() == WINDOW {
            let oldest = window.pop_front().expect("the window is full");
            completed += u64::from(is_completed(oldest.await));
        }
        // A task holds a queue slot only until a worker takes it, and at most
        // WINDOW tasks are outstanding, so there is always room.
        let handle = pool
            .try_submit(Noop)
            .unwrap_or_else(|e| panic!("try_submit refused a task: {e}"));
        window.push_back(handle);
    }
    for handle in window {
        completed += u64::from(is_completed(handle.await));
    }
    let elapsed = start.elapsed();
    assert_eq!(completed, tasks, "some tasks did not complete");
    elapsed
}

/// Runs `round_trips` round trips one after the other, each submitting one
/// task and awaiting its outcome before the next, and returns the time
/// taken. Panics unless every task completed.
async fn round_trips(pool: &Pool<Noop>, round_trips: u64) -> Duration {
    let mut completed = 0u64;
    let start = Instant::now();
    for _ in 0..round_trips {
        let handle = pool
            .submit(Noop)
            .await
            .unwrap_or_else(|e| panic!("submit refused a task: {e}"));
        completed += u64::from(is_completed(handle.await));
    }
    let elapsed = start.elapsed();
    assert_eq!(completed, round_trips, "some tasks did not complete");
    elapsed
}

fn is_completed<E>(outcome: Result<Outcome<Noop>, E>) -> bool {
    matches!(outcome, Ok(Outcome::Completed { .. }))
}

fn dispatch(c: &mut Criterion) {
    // One System for the whole group: its runtime outlives every `block_on`,
    // so a pool built in one call keeps running in the next.
    let system = actix_rt::System::new();
    let mut group = c.benchmark_group("dispatch");
    group
        .throughput(Throughput::Elements(BATCH))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    for workers in WORKER_COUNTS {
        // `build` needs a current arbiter, which only exists inside `block_on`.
        let pool = system.block_on(async { start_pool(workers) });
        group.bench_with_input(BenchmarkId::new("workers", workers), &pool, |b, pool| {
            b.iter_custom(|iters| system.block_on(push(pool, iters * BATCH)));
        });
        system
            .block_on(pool.drain())
            .expect("the pool's System is still running");
    }
    group.finish();
}

/// The `round_trip` group: one task at a time through an idle pool.
fn round_trip(c: &mut Criterion) {
    let system = actix_rt::System::new();
    let mut group = c.benchmark_group("round_trip");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // `build` needs a current arbiter, which only exists inside `block_on`.
    let pool = system.block_on(async { start_pool(ROUND_TRIP_WORKERS) });
    group.bench_with_input(
        BenchmarkId::new("workers", ROUND_TRIP_WORKERS),
        &pool,
        |b, pool| {
            b.iter_custom(|iters| system.block_on(round_trips(pool, iters)));
        },
    );
    system
        .block_on(pool.drain())
        .expect("the pool's System is still running");
    group.finish();
}

criterion_group!(benches, dispatch, round_trip);
criterion_main!(benches);
