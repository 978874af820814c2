//! How fast the durable mode is, against the textbook job loop, on a
//! throwaway PostgreSQL server this program starts itself (from the installed
//! binaries, as the tests do), in one run.
//!
//! ```sh
//! cargo run --release --features postgres --example durable_bench            # 100,000 jobs, a minute or two
//! cargo run --release --features postgres --example durable_bench -- --quick # 10,000 jobs
//! ```
//!
//! 1. Enqueue rates: one job per statement (one after the other), and batches
//!    of 1,000 (`Queue::enqueue_batch`).
//! 2. Working the jobs off with 1, 2 and 4 worker processes (this program,
//!    re-run as `work`; 4 workers each): jobs per second, from the processes'
//!    start to the last job recorded done.
//! 3. The baseline: the textbook loop most job crates run, one job at a time
//!    (claim one with `FOR UPDATE SKIP LOCKED`, run it, mark it done: a round
//!    trip each), in one process.
//! 4. Enqueue-to-start latency on an idle queue: a durable worker waits; jobs
//!    are enqueued one at a time, and each notes when it starts.
//!
//! The server runs with `fsync` and synchronous commit off (as the tests' shared
//! one): the figures are the pool's and the protocol's, not the disk's.

#[path = "../tests/postgres/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_workerpool::postgres::{Durable, DurableJob, DurableWorker, Enqueue, JobState, Queue};
use actix_workerpool::{Pool, Task, TaskContext};
use serde::{Deserialize, Serialize};

/// A no-op job; `sent` (microseconds since the epoch) asks it to note how
/// long after its enqueue it started.
#[derive(Serialize, Deserialize)]
struct Noop {
    sent: Option<u64>,
}

static STARTS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

impl Task for Noop {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        if let Some(sent) = self.sent {
            let waited = Duration::from_micros(micros_now().saturating_sub(sent));
            STARTS.lock().unwrap().push(waited);
        }
        Ok(())
    }
}

impl Durable for Noop {
    const KIND: &'static str = "bench";
}

type Fallible<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Fallible {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("work") {
        let db = args
            .get(1)
            .ok_or("usage: durable_bench work <conninfo>")?
            .clone();
        return actix_rt::System::new().block_on(work(&db));
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    let jobs: usize = if quick { 10_000 } else { 100_000 };
    let server = cluster::Cluster::shared();
    actix_rt::System::new().block_on(bench(server, jobs, quick))
}

/// A worker process: works until no bench job is pending, then drains.
async fn work(db: &str) -> Fallible {
    let pool = Pool::<DurableJob<Noop>>::builder().workers(4);
    let worker = DurableWorker::builder(db, pool)
        .poll_interval(Duration::from_millis(50))
        .start()
        .await?;
    let queue = Queue::connect(db).await?;
    while pending(&queue).await? > 0 {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    worker.drain().await;
    Ok(())
}

async fn pending(queue: &Queue) -> Fallible<u64> {
    Ok(queue
        .counts(Noop::KIND)
        .await?
        .iter()
        .filter(|(state, _)| matches!(state, JobState::Ready | JobState::Running))
        .map(|(_, n)| n)
        .sum())
}

async fn bench(server: &cluster::Cluster, jobs: usize, quick: bool) -> Fallible {
    let db = server.database();
    let queue = Queue::migrate(&db).await?;
    let client = plain_client(&db).await?;
    let one_by_one = jobs / 10;
    println!(
        "durable mode: {jobs} no-op jobs on a throwaway PostgreSQL ({} run)\n",
        if quick { "quick" } else { "full" }
    );

    // 1. Enqueue rates.
    let started = Instant::now();
    for _ in 0..one_by_one {
        queue.enqueue(&Noop { sent: None }, Enqueue::new()).await?;
    }
    let single = one_by_one as f64 / started.elapsed().as_secs_f64();
    client.batch_execute("TRUNCATE workerpool.jobs").await?;
    let batch: Vec<Noop> = (0..1000).map(|_| Noop { sent: None }).collect();
    let started = Instant::now();
    for _ in 0..jobs / 1000 {
        queue.enqueue_batch(&batch, Enqueue::new()).await?;
    }
    let batched = jobs as f64 / started.elapsed().as_secs_f64();

    // 2. Worked off by 1, 2 and 4 processes.
    let mut rates = Vec::new();
    for processes in [1, 2, 4] {
        if processes > 1 {
            for _ in 0..jobs / 1000 {
                queue.enqueue_batch(&batch, Enqueue::new()).await?;
            }
        }
        let started = Instant::now();
        let children: Vec<_> = (0..processes)
            .map(|_| {
                std::process::Command::new(std::env::current_exe()?)
                    .args(["work", &db])
                    .spawn()
            })
            .collect::<Result<_, _>>()?;
        for mut child in children {
            child.wait()?;
        }
        rates.push((processes, jobs as f64 / started.elapsed().as_secs_f64()));
        client.batch_execute("TRUNCATE workerpool.jobs").await?;
    }

    // 3. The textbook loop, one job per round trip, in one process.
    let baseline_jobs = jobs / 10;
    for _ in 0..baseline_jobs / 1000 {
        queue.enqueue_batch(&batch, Enqueue::new()).await?;
    }
    let started = Instant::now();
    let mut ran = 0;
    loop {
        let claimed = client
            .query_opt(
                "UPDATE workerpool.jobs SET state = 'running', attempts = attempts + 1 \
                 WHERE id = (SELECT id FROM workerpool.jobs WHERE kind = 'bench' AND state = 'ready' \
                             ORDER BY priority DESC, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, payload",
                &[],
            )
            .await?;
        let Some(row) = claimed else { break };
        // Read, as the pool reads each job; a no-op runs nothing.
        let _job: Noop = serde_json::from_value(row.get(1))?;
        client
            .execute(
                "UPDATE workerpool.jobs SET state = 'done', finished_at = now() WHERE id = $1",
                &[&row.get::<_, i64>(0)],
            )
            .await?;
        ran += 1;
    }
    let baseline = ran as f64 / started.elapsed().as_secs_f64();
    client.batch_execute("TRUNCATE workerpool.jobs").await?;

    // 4. Enqueue-to-start latency on an idle queue.
    let pool = Pool::<DurableJob<Noop>>::builder().workers(4);
    let worker = DurableWorker::builder(&db, pool)
        .poll_interval(Duration::from_secs(1))
        .start()
        .await?;
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let samples = if quick { 50 } else { 200 };
    for n in 0..samples {
        queue
            .enqueue(
                &Noop {
                    sent: Some(micros_now()),
                },
                Enqueue::new(),
            )
            .await?;
        while STARTS.lock().unwrap().len() <= n {
            actix_rt::time::sleep(Duration::from_micros(200)).await;
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    worker.drain().await;
    let mut starts = STARTS.lock().unwrap().clone();
    starts.sort();
    let p50 = starts[starts.len() / 2];
    let p99 = starts[(starts.len() * 99 / 100).min(starts.len() - 1)];

    let one = rates[0].1;
    println!("| measure | figure | target | met |");
    println!("|---|---|---|---|");
    println!("| enqueue, one per statement | {single:.0} jobs/s | | |");
    println!("| enqueue, batches of 1,000 | {batched:.0} jobs/s | | |");
    for (processes, rate) in &rates {
        let target = if *processes == 1 {
            ">= 5,000 jobs/s; >= 3x baseline"
        } else {
            ""
        };
        let met = if *processes == 1 {
            if one >= 5000.0 && one >= 3.0 * baseline {
                "yes"
            } else {
                "no"
            }
        } else {
            ""
        };
        println!(
            "| worked off by {processes} process(es), 4 workers each | {rate:.0} jobs/s ({:.1}x baseline) | {target} | {met} |",
            rate / baseline
        );
    }
    println!("| baseline: the textbook loop, one process | {baseline:.0} jobs/s | | |");
    println!(
        "| enqueue to start, idle queue: p50 | {:.2} ms | < 5 ms | {} |",
        p50.as_secs_f64() * 1e3,
        if p50 < Duration::from_millis(5) {
            "yes"
        } else {
            "no"
        }
    );
    println!("| the same: p99 | {:.2} ms | | |", p99.as_secs_f64() * 1e3);
    Ok(())
}

async fn plain_client(db: &str) -> Fallible<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
