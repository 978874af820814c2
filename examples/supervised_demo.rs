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
//! 4. Supervision: a panicking task, its worker restarted in the same slot, a
//!    task that hangs and times out, and a crash loop that ends in a clean stop.
//!
//! 5. Retries: the e-mail example, 20 sends that fail 30% of the time, retried
//!    with exponential backoff off the workers.
//!
//! Every section prints the counters, which always add up.

use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_workerpool::{Jitter, Outcome, Pool, PoolEvent, RetryPolicy, Stats, Task, TaskContext};

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
    // Errors only by default: the events printed below tell the story;
    // RUST_LOG=actix_workerpool=debug shows every task.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("actix_workerpool=error"),
    )
    .init();
    // The pool catches task panics, but Rust's panic hook still prints each one
    // (with a backtrace if RUST_BACKTRACE is set); one line is enough here.
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<&str>().unwrap_or(&"?");
        eprintln!("   (panic hook: {message})");
    }));

    println!("== 1. batch: 100 tasks x 100 ms (Go: NewPool(tasks, n).Run())");
    for workers in [5, 10] {
        batch(workers).await;
    }

    println!("\n== 2. background: tasks arrive every 30 ms, 2 workers, then Stop");
    background_then_stop().await;

    println!("\n== 3. drain: 12 tasks x 50 ms on 3 workers, then Drain");
    drain().await;

    println!("\n== 4. supervision: a panic, a hang, a crash loop");
    supervision().await;
    crash_loop().await;

    println!("\n== 5. retries: 20 e-mails, 30% of sends fail, 3 workers, buffer 10");
    emails().await;
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
    let balance = if stats.balances() {
        "balanced"
    } else {
        "UNBALANCED"
    };
    println!(
        "{indent} stats: submitted {} = completed {} + failed {} + panicked {} + timed out {} \
         + not run {} + queued {} + in flight {} + waiting to retry {} ({balance}); \
         retries {}, restarts {}; per worker {per_worker:?}",
        stats.submitted,
        stats.completed,
        stats.failed,
        stats.panicked,
        stats.timed_out,
        stats.not_run,
        stats.queued,
        stats.in_flight,
        stats.waiting_retry,
        stats.retries,
        stats.restarts,
    );
}

/// A task that misbehaves on request.
#[derive(Debug)]
enum Flaky {
    Fine(u32),
    Panics,
    Hangs,
}

impl Task for Flaky {
    type Output = u32;
    type Error = String;
    /// Each worker numbers the tasks it has run: fresh state starts at 0 again.
    type State = u32;

    async fn run(&mut self, cx: &mut TaskContext<u32>) -> Result<u32, String> {
        *cx.state_mut() += 1;
        match self {
            Flaky::Fine(n) => Ok(*n),
            Flaky::Panics => panic!("index out of bounds (on purpose)"),
            Flaky::Hangs => std::future::pending().await,
        }
    }
}

/// Prints the pool events worth seeing in a demo.
struct EventPrinter;

impl Actor for EventPrinter {
    type Context = Context<Self>;
}

impl Handler<PoolEvent> for EventPrinter {
    type Result = ();

    fn handle(&mut self, event: PoolEvent, _: &mut Self::Context) {
        match event {
            PoolEvent::WorkerRestarted {
                worker,
                reason,
                delay,
                ..
            } => {
                println!("   event: worker {worker} restarts in {delay:?} because {reason}")
            }
            PoolEvent::SupervisorStopping { reason } => {
                println!("   event: supervisor stopping: {reason}")
            }
            _ => {}
        }
    }
}

async fn supervision() {
    let pool = Pool::builder_with_state(|_slot| Ok::<u32, String>(0))
        .workers(3)
        .task_timeout(Duration::from_millis(200))
        .restart_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .build()
        .unwrap();
    pool.subscribe(EventPrinter.start().recipient())
        .await
        .unwrap();
    let tasks = vec![
        Flaky::Fine(1),
        Flaky::Panics,
        Flaky::Fine(3),
        Flaky::Hangs,
        Flaky::Fine(5),
    ];
    let outcomes = pool.run_all(tasks).await.unwrap();
    for outcome in &outcomes {
        match outcome {
            Outcome::Completed { output, .. } => println!("   completed: {output}"),
            Outcome::Panicked { message, .. } => {
                println!("   panicked: {message:?} (caught; the program goes on)")
            }
            Outcome::TimedOut { attempts } => {
                println!("   timed out after 200 ms ({attempts} attempt)")
            }
            other => println!("   {other:?}"),
        }
    }
    // Let the restarted slot come back, then show that every slot works.
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let after = pool.run_all((10..13).map(Flaky::Fine)).await.unwrap();
    println!(
        "   after the restart, 3 more tasks: {} completed",
        after
            .iter()
            .filter(|o| matches!(o, Outcome::Completed { .. }))
            .count()
    );
    pool.drain().await.unwrap();
    print_stats("  ", &pool.stats().await.unwrap());
}

async fn crash_loop() {
    let pool = Pool::builder_with_state(|_slot| Ok::<u32, String>(0))
        .workers(2)
        .restart_limit(3, Duration::from_secs(10))
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .build()
        .unwrap();
    pool.subscribe(EventPrinter.start().recipient())
        .await
        .unwrap();
    println!("   a crash loop: 8 panicking tasks, at most 3 restarts within 10 s");
    let handles: Vec<_> = (0..8)
        .map(|_| pool.try_submit(Flaky::Panics).unwrap())
        .collect();
    let report = pool.stopped().await.unwrap();
    let mut panicked = 0;
    let mut handed_back = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Outcome::Panicked { .. } => panicked += 1,
            Outcome::NotRun { .. } => handed_back += 1,
            other => println!("   {other:?}"),
        }
    }
    println!(
        "   stopped ({}): {panicked} panicked, {handed_back} handed back unrun",
        report.reason
    );
    print_stats("  ", &pool.stats().await.unwrap());
}

/// An e-mail send that fails 30% of the time, as the Go example's does.
struct SendEmail {
    to: String,
    dice: fastrand::Rng,
}

impl Task for SendEmail {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
        if self.dice.f64() < 0.3 {
            return Err(format!("SMTP timeout sending to {}", self.to));
        }
        Ok(())
    }
}

async fn emails() {
    let retry = RetryPolicy::builder()
        .max_attempts(3)
        .base_delay(Duration::from_millis(20))
        .factor(2.0)
        .max_delay(Duration::from_millis(200))
        .jitter(Jitter::Equal)
        .build()
        .unwrap();
    let pool = Pool::builder()
        .workers(3)
        .queue_capacity(10)
        .retry(retry)
        .build()
        .unwrap();
    let emails = (0..20).map(|i| SendEmail {
        to: format!("user{i}@example.com"),
        // Seeded per e-mail, so that the demo prints the same story each run.
        dice: fastrand::Rng::with_seed(i),
    });
    let started = Instant::now();
    let outcomes = pool.run_all(emails).await.unwrap();
    let mut sent_after = [0; 4];
    let mut gave_up = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Completed { attempts, .. } => sent_after[attempts as usize] += 1,
            Outcome::Failed { error, attempts } => {
                gave_up.push(format!("{error} ({attempts} attempts)"))
            }
            other => println!("   {other:?}"),
        }
    }
    let sent: u32 = sent_after.iter().sum();
    println!(
        "   sent {sent}/20 in {:.2} s: {} at the first attempt, {} at the second, {} at the third; {} gave up",
        started.elapsed().as_secs_f64(),
        sent_after[1],
        sent_after[2],
        sent_after[3],
        gave_up.len()
    );
    for failure in gave_up {
        println!("   gave up: {failure}");
    }
    pool.drain().await.unwrap();
    print_stats("  ", &pool.stats().await.unwrap());
}
