//! Several worker processes on one queue (the `durable_jobs` example, run as
//! child processes), one killed with SIGKILL; and the server itself crashing
//! and coming back mid-run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_workerpool::postgres::{DurableWorker, Enqueue, JobState, Queue};

use crate::built_example::built_example;
use crate::cluster::Cluster;

/// The `durable_jobs` example, built with the `postgres` feature: `cargo
/// test --features postgres` has built it; a run of this test binary alone
/// has cargo build it first.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| built_example("durable_jobs", &["postgres"]))
        .clone()
}

/// A worker process, and the lines it printed so far.
struct Worker {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn spawn(db: &str, args: &[&str]) -> Worker {
        let mut child = Command::new(example())
            .args(["work", db])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker process");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("its stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Worker { child, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn printed(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits (at most `limit`) for the process to exit by itself.
    fn wait(&mut self, limit: Duration) {
        let started = Instant::now();
        while self.child.try_wait().expect("its status").is_none() {
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "worker process {} did not finish within {limit:?}",
                    self.pid()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its stdout's last lines are read by the time the pipe closes.
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who sent each e-mail: `sent <n> by <pid>` lines, by `n`.
fn senders(workers: &[&Worker]) -> HashMap<u64, Vec<u32>> {
    let mut sent: HashMap<u64, Vec<u32>> = HashMap::new();
    for worker in workers {
        for line in worker.lines.lock().unwrap().iter() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["sent", n, "by", pid] = words[..] {
                sent.entry(n.parse().unwrap())
                    .or_default()
                    .push(pid.parse().unwrap());
            }
        }
    }
    sent
}

fn enqueue(db: &str, count: u64, millis: u64) {
    enqueue_with(db, count, &["--millis", &millis.to_string()]);
}

fn enqueue_with(db: &str, count: u64, options: &[&str]) {
    let status = Command::new(example())
        .args(["enqueue", db, &count.to_string()])
        .args(options)
        .stdout(Stdio::null())
        .status()
        .expect("run the enqueue command");
    assert!(status.success());
}

async fn done_count(db: &str) -> u64 {
    let queue = Queue::connect(db).await.unwrap();
    queue
        .counts("email")
        .await
        .unwrap()
        .into_iter()
        .filter(|(state, _)| *state == JobState::Done)
        .map(|(_, n)| n)
        .sum()
}

#[actix_rt::test]
async fn three_worker_processes_share_1000_jobs_each_sent_exactly_once() {
    let db = Cluster::shared().database();
    enqueue(&db, 1000, 1);
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&db, &["--workers", "2", "--until-empty"]))
        .collect();
    for worker in &mut workers {
        worker.wait(Duration::from_secs(120));
    }
    let sent = senders(&workers.iter().collect::<Vec<_>>());
    assert_eq!(sent.len(), 1000);
    assert!(
        sent.values().all(|by| by.len() == 1),
        "an e-mail sent twice"
    );
    let busy = workers.iter().filter(|worker| worker.printed() > 0).count();
    assert!(busy >= 2, "only {busy} of 3 processes sent anything");
    assert_eq!(done_count(&db).await, 1000);
}

#[actix_rt::test]
async fn a_worker_process_killed_mid_run_loses_nothing() {
    let db = Cluster::shared().database();
    enqueue(&db, 400, 20);
    let mut doomed = Worker::spawn(&db, &["--workers", "4"]);
    while doomed.printed() < 20 {
        assert!(
            doomed.child.try_wait().unwrap().is_none(),
            "the worker ended early"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Mid-run: it holds claimed and running jobs.
    doomed.child.kill().expect("SIGKILL");
    doomed.child.wait().unwrap();
    let mut survivor = Worker::spawn(&db, &["--workers", "4", "--until-empty"]);
    // Its jobs come back once their lease (10 s) expires.
    survivor.wait(Duration::from_secs(90));
    let sent = senders(&[&doomed, &survivor]);
    assert_eq!(sent.len(), 400, "an e-mail was never sent");
    for (n, by) in &sent {
        if by.len() > 1 {
            // Only what the killed process held may run twice.
            assert!(
                by.contains(&doomed.pid()),
                "e-mail {n} sent twice by {by:?}"
            );
        }
    }
    assert_eq!(done_count(&db).await, 400);
}

#[actix_rt::test]
async fn the_server_crashing_mid_run_loses_nothing_and_records_each_job_once() {
    let cluster = Cluster::start();
    let db = cluster.conninfo("postgres");
    let queue = Queue::migrate(&db).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..200 {
        let mut job = crate::work::Work::new(format!("crash {n}"));
        job.millis = 10;
        ids.push(queue.enqueue(&job, Enqueue::new()).await.unwrap());
    }
    drop(queue);
    let worker = DurableWorker::builder(&db, crate::work::pool(4))
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    while (0..200)
        .filter(|n| crate::work::runs_of(&format!("crash {n}")) > 0)
        .count()
        < 20
    {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.crash();
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    cluster.up();
    let queue = loop {
        match Queue::connect(&db).await {
            Ok(queue) => break queue,
            Err(_) => actix_rt::time::sleep(Duration::from_millis(100)).await,
        }
    };
    crate::work::until_all(&queue, &ids, JobState::Done).await;
    for n in 0..200 {
        assert!(
            crate::work::runs_of(&format!("crash {n}")) >= 1,
            "job {n} never ran"
        );
    }
    let report = worker.drain().await;
    // Each job recorded done once: by this process, under its lease.
    assert_eq!(report.recorded, 200);
}

#[actix_rt::test]
async fn a_job_that_crashes_its_worker_process_every_time_ends_dead() {
    let db = Cluster::shared().database();
    enqueue_with(&db, 1, &["--poison", "0", "--max-attempts", "2"]);
    let mut crashes = 0;
    for _ in 0..5 {
        // Each process waits for the job's lease to expire, reclaims it, and
        // claims it: it crashes, until the reclaim finds no attempt left.
        let mut worker = Worker::spawn(&db, &["--workers", "1", "--lease", "1", "--until-empty"]);
        worker.wait(Duration::from_secs(60));
        if worker.child.wait().unwrap().success() {
            break;
        }
        crashes += 1;
    }
    assert_eq!(crashes, 2);
    let queue = Queue::connect(&db).await.unwrap();
    let dead = queue.dead("email", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    crate::assert_error_mentions(&dead[0], "lease expired");
}
