//! A soak test of the pool's promise under load, black-box, through the
//! public API only: every accepted task ends in exactly one outcome, the one
//! its plan says, while the counters stay consistent and memory stays flat.
//!
//! ```sh
//! cargo run --release --example soak              # 1,000,000 tasks per phase
//! cargo run --release --example soak -- --quick   # 20,000 tasks per phase, for CI
//! cargo run --release --example soak -- --tasks 5000000 --seed 7
//! ```
//!
//! Every task's behaviour on every attempt is decided in advance by a hash of
//! (seed, task index, attempt number): it completes (at once, after a yield,
//! or after 1 ms), returns a retryable or a permanent error, panics, or sleeps
//! 200 ms past its 20 ms timeout (`Task::timeout`). The pool retries with 2
//! attempts (panics not retried); about 1 task in 10 brings its own policy
//! (`Task::retry_policy`: 3 attempts, panics retried). Replaying those rules
//! over the plan gives every task's outcome kind and attempt count before
//! anything runs: about 80% complete, 10% fail, 6% panic, 4% time out.
//!
//! Each of two phases (workers on the supervisor's arbiter, then spread over
//! 2 arbiters with `PoolBuilder::arbiters(2)`) runs the whole plan through a
//! fresh pool, from 4 submitters (2 on the supervisor's arbiter, 2 on an
//! arbiter of their own) that use `pool.submit` and keep at most 1,000
//! handles pending each, awaiting the oldest first. It checks:
//!
//! - each outcome: its kind and attempts are the plan's, and its payload
//!   (output, error, panic message, handed-back task) names the very task;
//! - the counts by kind equal the plan's; every id in `0..tasks` was given
//!   exactly once and resolved exactly once;
//! - every ~100 ms, a `pool.stats()` snapshot: it balances, `queued <=
//!   queue capacity`, `in_flight <= workers`, `submitted` never decreases;
//! - at the end: the counters equal the plan's (outcomes, retries, restarts,
//!   attempts run), nothing queued, in flight or waiting; the drain hands
//!   nothing back; the panic hook saw exactly the planned panics;
//! - resident memory: the RSS at the end is at most 64 MiB above the RSS when
//!   the first 10% of the tasks had ended.
//!
//! It prints a table per phase and exits with 1 on any mismatch (0 when
//! everything holds), or when the whole run passes its time limit.

mod drive;
mod plan;
mod report;
mod snapshots;

use std::process;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: soak [--quick] [--tasks N] [--workers N] [--queue N] \
[--submitters N] [--window N] [--seed N] [--time-limit SECS]";

/// The run's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub tasks: u64,
    pub workers: usize,
    pub queue: usize,
    pub submitters: usize,
    pub window: usize,
    pub seed: u64,
    pub rss_slack: u64,
    pub time_limit: Duration,
}

fn parse() -> Result<Settings, String> {
    let mut settings = Settings {
        tasks: 1_000_000,
        workers: 256,
        queue: 1024,
        submitters: 4,
        window: 1000,
        seed: 0x50A4,
        rss_slack: 64 << 20,
        time_limit: Duration::from_secs(900),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--quick" {
            settings.tasks = 20_000;
            settings.time_limit = Duration::from_secs(120);
            continue;
        }
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            process::exit(0);
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{arg}: not a number: {value}"))?;
        let positive = || {
            (number > 0)
                .then_some(number)
                .ok_or(format!("{arg} must be at least 1"))
        };
        match arg.as_str() {
            "--tasks" => settings.tasks = positive()?,
            "--workers" => settings.workers = positive()? as usize,
            "--queue" => settings.queue = positive()? as usize,
            "--submitters" => settings.submitters = positive()? as usize,
            "--window" => settings.window = positive()? as usize,
            "--seed" => settings.seed = number,
            "--time-limit" => settings.time_limit = Duration::from_secs(positive()?),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(settings)
}

/// Silences the planned panics (counting them), and lets any other through
/// to the default hook.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with(plan::MARKER)) {
            drive::PLANNED_PANICS.fetch_add(1, Ordering::Relaxed);
            return;
        }
        default(info);
    }));
}

fn main() {
    let settings = parse().unwrap_or_else(|error| {
        eprintln!("soak: {error}\n{USAGE}");
        process::exit(2)
    });
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    install_panic_hook();
    println!(
        "soak: {} tasks per phase, {} workers, queue {}, {} submitters x {} pending, seed {}",
        settings.tasks,
        settings.workers,
        settings.queue,
        settings.submitters,
        settings.window,
        settings.seed
    );
    let started = Instant::now();
    let phases = [
        ("workers on the supervisor's arbiter", None),
        ("workers on 2 arbiters", Some(2)),
    ];
    let current = std::sync::atomic::AtomicUsize::new(0);
    let run = async {
        let mut reports = Vec::new();
        for (i, (name, arbiters)) in phases.into_iter().enumerate() {
            current.store(i, Ordering::Relaxed);
            let report = drive::phase(name, arbiters, settings).await;
            report.print();
            reports.push(report);
        }
        reports
    };
    let system = actix_rt::System::new();
    let reports =
        system.block_on(async { actix_rt::time::timeout(settings.time_limit, run).await });
    let Ok(reports) = reports else {
        eprintln!(
            "\nsoak: FAILED: time limit of {:?} passed in phase \"{}\", with {} of {} outcomes in",
            settings.time_limit,
            phases[current.load(Ordering::Relaxed)].0,
            drive::DONE.load(Ordering::Relaxed),
            settings.tasks
        );
        process::exit(1);
    };
    let failed: usize = reports.iter().map(|r| r.failures.len()).sum();
    println!("\nsoak: {:.2} s in all", started.elapsed().as_secs_f64());
    if failed > 0 {
        eprintln!("soak: FAILED: {failed} check(s) did not hold (see above)");
        process::exit(1);
    }
    println!("soak: every check held");
}
