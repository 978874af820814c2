//! The two Go worker pools this crate grows out of, replayed.
//!
//! ```sh
//! cargo run --example supervised_demo
//! RUST_LOG=actix_workerpool=debug cargo run --example supervised_demo   # every task
//! ```
//!
//! 1. The batch: 100 tasks of 100 ms on 5 workers (about 2.0 s), then on 10 (about 1.0 s).
//! 2. Background mode: tasks arrive over time; `stop` lets the tasks in hand
//!    finish and hands the queued ones back.
//! 3. Drain: accept nothing new, finish everything, then stop.
//! 4. The counters, which always add up.

use std::time::{Duration, Instant};

use actix_workerpool::{Outcome, Pool, Stats, Task, TaskContext};

/// A task that works for a while: the Go demos' `time.Sleep`.
#[derive(Debug)]
struct Work {
    id: u32,
    millis: u64,
}

impl Task for Work {
    type Output = u32;
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<u32, String> {
        actix_rt::time::sleep(Duration::from_millis(self.millis)).await;
        Ok(self.id)
    }
}

fn job(id: u32, millis: u64) -> Work {
    Work { id, millis }
}

#[actix_rt::main]
async fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("actix_workerpool=warn"),
    )
    .init();

    println!("== 1. batch: 100 tasks x 100 ms (Go: NewPool(tasks, n).Run())");
    for workers in [5, 10] {
        batch(workers).await;
    }

    println!("\n== 2. background: tasks arrive every 30 ms, 2 workers, then Stop");
    background_then_stop().await;

    println!("\n== 3. drain: 12 tasks x 50 ms on 3 workers, then Drain");
    drain().await;
}

async fn batch(workers: usize) {
    let pool = Pool::builder()
        .workers(workers)
        .queue_capacity(100)
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = pool.run_all((0..100).map(|id| job(id, 100))).await.unwrap();
    let elapsed = started.elapsed();
    let completed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Completed { .. }))
        .count();
    println!(
        "   {workers:>2} workers: {completed}/100 completed in {:.2} s (ideal {:.1} s)",
        elapsed.as_secs_f64(),
        100.0 * 0.1 / workers as f64
    );
    pool.drain().await.unwrap();
    print_stats("  ", &pool.stats().await.unwrap());
}

async fn background_then_stop() {
    let pool = Pool::builder()
        .workers(2)
        .queue_capacity(10)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for id in 0..10 {
        handles.push(pool.submit(job(id, 100)).await.unwrap());
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    let at_stop = pool.stats().await.unwrap();
    println!(
        "   at stop: {} running (they finish), {} queued (they come back)",
        at_stop.in_flight, at_stop.queued
    );
    let report = pool.stop().await.unwrap();
    println!(
        "   stop: {} ({} tasks handed back unrun)",
        report.reason,
        report.not_run.len()
    );
    for handle in handles {
        let id = handle.id();
        match handle.await.unwrap() {
            Outcome::Completed { output, .. } => println!("   {id}: completed (work {output})"),
            Outcome::NotRun { task, .. } => {
                println!("   {id}: handed back, work {} never ran", task.id)
            }
            other => println!("   {id}: {other:?}"),
        }
    }
    let refused = pool.submit(job(99, 100)).await.unwrap_err();
    println!(
        "   a submit after stop: refused ({refused}), work {} handed back",
        refused.0.id
    );
    print_stats("  ", &pool.stats().await.unwrap());
}

async fn drain() {
    let pool = Pool::builder()
        .workers(3)
        .queue_capacity(12)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..12)
        .map(|id| pool.try_submit(job(id, 50)).unwrap())
        .collect();
    let started = Instant::now();
    let report = pool.drain().await.unwrap();
    println!(
        "   drain: {} in {:.2} s (ideal 0.20 s), {} handed back",
        report.reason,
        started.elapsed().as_secs_f64(),
        report.not_run.len()
    );
    let mut completed = 0;
    for handle in handles {
        if let Outcome::Completed { .. } = handle.await.unwrap() {
            completed += 1;
        }
    }
    println!(
        "   {completed}/12 completed; a submit now: {:?}",
        pool.try_submit(job(12, 50)).err()
    );
    print_stats("  ", &pool.stats().await.unwrap());
}

fn print_stats(indent: &str, stats: &Stats) {
    let per_worker: Vec<_> = stats.workers.iter().map(|w| w.tasks_run).collect();
    println!(
        "{indent} stats: submitted {} = completed {} + failed {} + panicked {} + not run {} + queued {} + in flight {} ({}); per worker {per_worker:?}",
        stats.submitted,
        stats.completed,
        stats.failed,
        stats.panicked,
        stats.not_run,
        stats.queued,
        stats.in_flight,
        if stats.balances() {
            "balanced"
        } else {
            "UNBALANCED"
        },
    );
}
