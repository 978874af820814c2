//! The two Go worker pools this crate grows out of, replayed (the README's
//! "From Go's worker pools" maps their API to this one).
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
//! 5. Retries: the e-mail example, 20 sends that fail 30% of the time, retried
//!    with exponential backoff off the workers.
//!
//! Every section prints the counters, which always add up.
//!
//! Sections 4 and 5 make tasks panic, hang and fail on purpose, so the output
//! has panic lines and log lines at error (and, with `RUST_LOG`, warn) level:
//! each section says beforehand which to expect. The demo checks what it
//! shows as it goes and ends with a summary; CI runs it, so it exits with
//! status 1 if the pool did anything other than what the demo expects.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_workerpool::{
    Jitter, Outcome, OutcomeKind, Pool, PoolEvent, RetryPolicy, Stats, StopReason, Task,
    TaskContext,
};

/// The marker in the message of every panic this demo causes on purpose: the
/// panic hook tells those apart from a real one.
const ON_PURPOSE: &str = "(on purpose)";

/// A task that works for a while: the Go pools' demos use `time.Sleep`.
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

/// What the demo expects, checked as it goes: a pool that misbehaves must
/// fail the demo (CI runs it), not only print something odd.
#[derive(Default)]
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    /// Counts `what` as passed if `ok`; otherwise says so at once, where it
    /// happened, and keeps it for the summary.
    fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.passed += 1;
        } else {
            let what = what.into();
            println!("   UNEXPECTED: {what}");
            self.failed.push(what);
        }
    }

    /// Every snapshot must add up, whatever happened before it.
    fn balances(&mut self, section: &str, stats: &Stats) {
        self.expect(
            stats.balances(),
            format!("{section}: the counters do not add up: {stats:?}"),
        );
    }
}

#[actix_rt::main]
async fn main() -> ExitCode {
    // Errors only by default: the events printed below tell the story;
    // RUST_LOG=actix_workerpool=debug shows every task.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("actix_workerpool=error"),
    )
    .init();
    // The pool catches task panics, but Rust's panic hook still prints each one
    // (with a backtrace if RUST_BACKTRACE is set); one line is enough for the
    // panics caused on purpose. Any other panic is a real one: it gets the
    // default report, location and all.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<&str>().copied();
        match message {
            Some(message) if message.contains(ON_PURPOSE) => {
                println!("   panic hook: {message:?} (expected: the pool catches it)")
            }
            _ => default_hook(info),
        }
    }));

    println!(
        "The Go worker-pool scenarios, replayed on actix-workerpool (the README's
\"From Go's worker pools\" maps the Go API to this one).

Sections 4 and 5 make tasks panic, hang and fail ON PURPOSE, to show what the
pool does about it. Expect lines from Rust's panic hook and log lines marked
ERROR there (and WARN ones, with RUST_LOG=actix_workerpool=warn): each section
says beforehand which ones, and why. The summary at the end says whether
everything behaved as expected.

Each section ends with the pool's counters (\"stats\"): every task submitted
is counted once, as completed, failed, panicked, timed out, not run (handed
back), queued, in flight or waiting to retry, so the sum always matches the
tasks submitted (\"balanced\"). \"per worker\" is how many attempts each
worker ran: round-robin spreads them evenly."
    );
    let mut checks = Checks::default();

    println!("\n== 1. batch: 100 tasks x 100 ms (Go: NewPool(tasks, n).Run())");
    println!("   Expected: every task completes; twice the workers, about half the time.");
    for workers in [5, 10] {
        batch(workers, &mut checks).await;
    }

    println!("\n== 2. background: tasks arrive every 30 ms, 2 workers, then Stop");
    println!(
        "   Expected: the tasks that run when Stop comes finish; those still queued\n   \
         come back unrun, inside their outcome; a submit after Stop is refused."
    );
    background_then_stop(&mut checks).await;

    println!("\n== 3. drain: 12 tasks x 50 ms on 3 workers, then Drain");
    println!("   Expected: all 12 complete before the pool stops; nothing is handed back.");
    drain(&mut checks).await;

    println!("\n== 4. supervision: a panic, a hang, a crash loop");
    println!(
        "   Expected: 5 tasks on 3 workers. The 2nd panics on purpose: the panic hook\n   \
         prints a line, the pool catches the panic, the task's outcome says it\n   \
         panicked, and its worker is restarted with fresh state. The 4th hangs on\n   \
         purpose and is timed out after 200 ms. The other 3 complete. With\n   \
         RUST_LOG=actix_workerpool=warn, the pool logs the panic, the restart and\n   \
         the timeout as WARN lines. Lines that start with \"event:\" are the\n   \
         pool's events (`pool.subscribe`), as an application would see them."
    );
    supervision(&mut checks).await;
    crash_loop(&mut checks).await;

    println!("\n== 5. retries: 20 e-mails, 30% of sends fail, 3 workers, buffer 10");
    println!(
        "   Expected: about 30% of sends fail on purpose (the same ones every run);\n   \
         each failure is tried again after a backoff, up to 3 attempts in all, and\n   \
         an e-mail whose 3 attempts all fail is given up on. With\n   \
         RUST_LOG=actix_workerpool=warn the pool logs each failure as a WARN line:\n   \
         expected too."
    );
    emails(&mut checks).await;

    summary(&checks)
}

/// The last word: whether everything above went as each section said.
fn summary(checks: &Checks) -> ExitCode {
    println!("\n== Summary");
    if checks.failed.is_empty() {
        println!(
            "All {} checks passed: the pool behaved as expected. Every panic, hang,\n\
             failure, restart and ERROR or WARN line above came from a task that\n\
             misbehaved on purpose, and the pool handled each one.",
            checks.passed
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "{} of {} checks FAILED: the pool did not behave as this demo expects.",
            checks.failed.len(),
            checks.failed.len() + checks.passed
        );
        for failure in &checks.failed {
            println!("   - {failure}");
        }
        ExitCode::FAILURE
    }
}

async fn batch(workers: usize, checks: &mut Checks) {
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
    checks.expect(
        completed == 100,
        format!("batch on {workers} workers: {completed}/100 completed"),
    );
    pool.drain().await.unwrap();
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.balances("batch", &stats);
}

async fn background_then_stop(checks: &mut Checks) {
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
    checks.expect(
        report.reason == StopReason::Stopped,
        format!("background: stopped because {}", report.reason),
    );
    let (mut completed, mut handed_back) = (0, 0);
    for handle in handles {
        let id = handle.id();
        match handle.await.unwrap() {
            Outcome::Completed { output, .. } => {
                completed += 1;
                println!("   {id}: completed (work {output})")
            }
            Outcome::NotRun { task, .. } => {
                handed_back += 1;
                println!("   {id}: handed back, work {} never ran", task.id)
            }
            other => {
                println!("   {id}: {other:?}");
                checks.expect(false, format!("background: {id} ended {other:?}"));
            }
        }
    }
    checks.expect(
        completed + handed_back == 10 && handed_back == report.not_run.len(),
        format!(
            "background: {completed} completed and {handed_back} handed back, of 10; \
             the stop reported {} handed back",
            report.not_run.len()
        ),
    );
    match pool.submit(job(99, 100)).await {
        Err(refused) => {
            let why = refused.to_string();
            println!(
                "   a submit after stop: refused ({why}), work {} handed back",
                refused.into_inner().id
            )
        }
        Ok(handle) => checks.expect(
            false,
            format!(
                "background: a submit after stop was accepted as {}",
                handle.id()
            ),
        ),
    }
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.balances("background", &stats);
}

async fn drain(checks: &mut Checks) {
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
    checks.expect(
        report.reason == StopReason::Drained && report.not_run.is_empty(),
        format!(
            "drain: {} with {} handed back",
            report.reason,
            report.not_run.len()
        ),
    );
    let mut completed = 0;
    for handle in handles {
        if let Outcome::Completed { .. } = handle.await.unwrap() {
            completed += 1;
        }
    }
    let after = pool.try_submit(job(12, 50));
    match &after {
        Err(refused) => {
            println!("   {completed}/12 completed; a submit now is refused ({refused})")
        }
        Ok(handle) => println!(
            "   {completed}/12 completed; a submit now: accepted as {}",
            handle.id()
        ),
    }
    checks.expect(completed == 12, format!("drain: {completed}/12 completed"));
    checks.expect(
        after.is_err(),
        "drain: a submit after the drain was accepted",
    );
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.balances("drain", &stats);
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

async fn supervision(checks: &mut Checks) {
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
    let kinds: Vec<_> = outcomes.iter().map(Outcome::kind).collect();
    checks.expect(
        kinds
            == [
                OutcomeKind::Completed,
                OutcomeKind::Panicked,
                OutcomeKind::Completed,
                OutcomeKind::TimedOut,
                OutcomeKind::Completed,
            ],
        format!("supervision: outcomes {kinds:?}"),
    );
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
    let completed = after
        .iter()
        .filter(|o| matches!(o, Outcome::Completed { .. }))
        .count();
    println!("   after the restart, 3 more tasks: {completed} completed");
    checks.expect(
        completed == 3,
        format!("supervision: {completed}/3 completed after the restart"),
    );
    pool.drain().await.unwrap();
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.expect(
        stats.panicked == 1 && stats.timed_out == 1 && stats.restarts == 1,
        format!(
            "supervision: {} panicked, {} timed out, {} restarts (expected 1 each)",
            stats.panicked, stats.timed_out, stats.restarts
        ),
    );
    checks.balances("supervision", &stats);
}

async fn crash_loop(checks: &mut Checks) {
    let pool = Pool::builder_with_state(|_slot| Ok::<u32, String>(0))
        .workers(2)
        .restart_limit(3, Duration::from_secs(10))
        .restart_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .build()
        .unwrap();
    pool.subscribe(EventPrinter.start().recipient())
        .await
        .unwrap();
    println!(
        "\n   Next, a crash loop: 8 tasks on 2 workers, all panicking on purpose, and at\n   \
         most 3 restarts allowed within 10 s. Expected: a panic hook line per panic,\n   \
         3 restarts, then the pool gives up on the 4th: it stops cleanly, hands\n   \
         back the tasks it had not run, and logs why as an ERROR line (\"worker\n   \
         pool stopping, gave up: ...\"; with RUST_LOG, a WARN line per panic and\n   \
         restart as well). That is how a crash loop should end."
    );
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
            other => {
                println!("   {other:?}");
                checks.expect(false, format!("crash loop: a task ended {other:?}"));
            }
        }
    }
    println!(
        "   stopped ({}): {panicked} panicked, {handed_back} handed back unrun",
        report.reason
    );
    checks.expect(
        matches!(report.reason, StopReason::RestartLimit { restarts: 3, .. }),
        format!("crash loop: stopped because {}", report.reason),
    );
    // The limit is passed at the 4th panic; a 5th may already be running on
    // the other worker by then.
    checks.expect(
        panicked >= 4 && panicked + handed_back == 8 && handed_back == report.not_run.len(),
        format!(
            "crash loop: {panicked} panicked and {handed_back} handed back, of 8; \
             the stop reported {} handed back",
            report.not_run.len()
        ),
    );
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.expect(
        stats.restarts <= 3,
        format!(
            "crash loop: {} restarts, past the limit of 3",
            stats.restarts
        ),
    );
    checks.balances("crash loop", &stats);
}

/// An e-mail send that fails 30% of the time, as in the Go pool's e-mail example.
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

async fn emails(checks: &mut Checks) {
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
    let mut retries = 0;
    for outcome in outcomes {
        retries += u64::from(outcome.attempts().saturating_sub(1));
        match outcome {
            Outcome::Completed { attempts, .. } if (1..=3).contains(&attempts) => {
                sent_after[attempts as usize] += 1
            }
            Outcome::Failed { error, attempts: 3 } => gave_up.push(format!("{error} (3 attempts)")),
            other => {
                println!("   {other:?}");
                checks.expect(false, format!("retries: an e-mail ended {other:?}"));
            }
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
    for failure in &gave_up {
        println!("   gave up: {failure}");
    }
    checks.expect(
        sent as usize + gave_up.len() == 20,
        format!("retries: {sent} sent and {} given up, of 20", gave_up.len()),
    );
    pool.drain().await.unwrap();
    let stats = pool.stats().await.unwrap();
    print_stats("  ", &stats);
    checks.expect(
        stats.retries == retries,
        format!(
            "retries: the pool counted {} retries, the outcomes {retries}",
            stats.retries
        ),
    );
    checks.balances("retries", &stats);
}
