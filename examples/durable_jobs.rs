//! The e-mail jobs of the Go worker pool, durable: in PostgreSQL, shared by as
//! many worker processes as you start, and lost by none of them.
//!
//! ```sh
//! # once: a database (see the README's "Across processes and machines")
//! DB="host=/var/run/postgresql dbname=jobs"
//! cargo run --features postgres --example durable_jobs -- enqueue "$DB" 1000
//! cargo run --features postgres --example durable_jobs -- work "$DB"      # in two or three terminals
//! cargo run --features postgres --example durable_jobs -- status "$DB"
//! ```
//!
//! `enqueue` puts e-mails in the queue (it runs no worker); `work` runs a
//! worker process until Ctrl-C (or, with `--until-empty`, until no e-mail is
//! left to send), printing `sent <n> by <pid>` for each; `status` counts the
//! jobs by state. Kill a worker with `kill -9` while it sends: its e-mails go
//! back to the queue once their lease (10 s here) expires, and another
//! worker sends them.
//!
//! Options: `enqueue ... <count> [--fail-every k] [--millis m]
//! [--max-attempts a] [--poison p]` makes every k-th e-mail fail one attempt
//! in three (retried through the queue, up to a attempts, 5 by default),
//! each take m ms (5), and e-mail p crash its worker process every time;
//! `work ... [--workers n] [--lease s] [--until-empty]` (a lease of s
//! seconds, 10 by default).

use std::time::Duration;

use actix_workerpool::postgres::{Durable, DurableJob, DurableWorker, Enqueue, JobState, Queue};
use actix_workerpool::{Pool, RetryPolicy, Task, TaskContext};
use serde::{Deserialize, Serialize};

/// An e-mail to send: the Go pool's `Email` task, stored as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Email {
    n: u64,
    to: String,
    /// Fails, with a transient error, one attempt in three.
    flaky: bool,
    /// How long sending takes, in milliseconds.
    millis: u64,
    /// Crashes its worker process (`abort`) every time: a poison job.
    #[serde(default)]
    poison: bool,
}

impl Task for Email {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        actix_rt::time::sleep(Duration::from_millis(self.millis)).await;
        if self.poison {
            eprintln!("e-mail {} takes its process down", self.n);
            std::process::abort();
        }
        if self.flaky && fastrand::u8(..3) == 0 {
            return Err(format!("smtp: 451 try again later ({})", self.to));
        }
        println!("sent {} by {}", self.n, std::process::id());
        Ok(())
    }
}

impl Durable for Email {
    const KIND: &'static str = "email";
}

fn usage() -> ! {
    eprintln!(
        "usage: durable_jobs enqueue <conninfo> <count> [--fail-every k] [--millis m] [--max-attempts a] [--poison p]\n\
         \x20      durable_jobs work <conninfo> [--workers n] [--lease s] [--until-empty]\n\
         \x20      durable_jobs status <conninfo>"
    );
    std::process::exit(2)
}

/// The value after `--name` in `args`, parsed.
fn option<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let at = args.iter().position(|arg| arg == name)?;
    match args.get(at + 1).map(|value| value.parse()) {
        Some(Ok(value)) => Some(value),
        _ => usage(),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(command), Some(db)) = (args.first(), args.get(1)) else {
        usage()
    };
    let result = actix_rt::System::new().block_on(async {
        match command.as_str() {
            "enqueue" => enqueue(db, &args[2..]).await,
            "work" => work(db, &args[2..]).await,
            "status" => status(db).await,
            _ => usage(),
        }
    });
    if let Err(error) = result {
        eprintln!("durable_jobs: {error}");
        let mut source = std::error::Error::source(&*error);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

type Fallible<T = ()> = Result<T, Box<dyn std::error::Error>>;

async fn enqueue(db: &str, args: &[String]) -> Fallible {
    let count: u64 = args
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| usage());
    let fail_every: u64 = option(args, "--fail-every").unwrap_or(0);
    let millis: u64 = option(args, "--millis").unwrap_or(5);
    let poison: Option<u64> = option(args, "--poison");
    let max_attempts: u32 = option(args, "--max-attempts").unwrap_or(5);
    let queue = Queue::migrate(db).await?;
    for n in 0..count {
        let email = Email {
            n,
            to: format!("user{n}@example.com"),
            flaky: fail_every > 0 && n % fail_every == 0,
            millis,
            poison: poison == Some(n),
        };
        // The key makes enqueueing again while it is pending a no-op.
        queue
            .enqueue(
                &email,
                Enqueue::new()
                    .key(format!("email:{n}"))
                    .max_attempts(max_attempts),
            )
            .await?;
    }
    println!("enqueued {count} e-mails");
    Ok(())
}

async fn work(db: &str, args: &[String]) -> Fallible {
    let workers: usize = option(args, "--workers").unwrap_or(4);
    let lease: u64 = option(args, "--lease").unwrap_or(10);
    let until_empty = args.iter().any(|arg| arg == "--until-empty");
    let retry = RetryPolicy::builder()
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_secs(2))
        .build()?;
    let pool = Pool::<DurableJob<Email>>::builder()
        .workers(workers)
        .queue_capacity(32)
        .retry(retry);
    let worker = DurableWorker::builder(db, pool)
        .lease(Duration::from_secs(lease))
        .poll_interval(Duration::from_millis(200))
        .start()
        .await?;
    eprintln!(
        "worker {} started with {workers} workers",
        std::process::id()
    );
    if until_empty {
        let queue = Queue::connect(db).await?;
        while pending(&queue).await? > 0 {
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        actix_rt::signal::ctrl_c().await?;
    }
    let report = worker.drain().await;
    eprintln!("worker {} stopped: {report:?}", std::process::id());
    Ok(())
}

/// E-mails not yet done or dead.
async fn pending(queue: &Queue) -> Fallible<u64> {
    Ok(queue
        .counts("email")
        .await?
        .iter()
        .filter(|(state, _)| matches!(state, JobState::Ready | JobState::Running))
        .map(|(_, n)| n)
        .sum())
}

async fn status(db: &str) -> Fallible {
    let queue = Queue::connect(db).await?;
    for (state, count) in queue.counts("email").await? {
        println!("{state:?}: {count}");
    }
    Ok(())
}
