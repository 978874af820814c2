//! Working the queue: claims, records, retries through the queue, dead
//! letters, leases, wake-ups and shutdown, with `DurableWorker`s in this
//! process (each with a pool of its own, as separate processes would have).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_workerpool::postgres::{
    Durable, DurableJob, DurableWorker, Enqueue, JobId, JobState, JobStatus, Queue,
};
use actix_workerpool::{Pool, PoolBuilder, RetryPolicy, Task, TaskContext};
use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;

/// How many times each job (by name) ran, across every test.
fn runs() -> &'static Mutex<HashMap<String, u32>> {
    static RUNS: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
    RUNS.get_or_init(Default::default)
}

/// The names of the jobs that ran, in the order they started.
fn started() -> &'static Mutex<Vec<String>> {
    static STARTED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    STARTED.get_or_init(Default::default)
}

pub(crate) fn runs_of(name: &str) -> u32 {
    runs().lock().unwrap().get(name).copied().unwrap_or(0)
}

/// A job that counts its runs, takes `millis`, and fails with `fail` (if
/// set), permanently or not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Work {
    name: String,
    pub(crate) millis: u64,
    fail: Option<String>,
    permanent: bool,
}

impl Work {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Work {
            name: name.into(),
            millis: 0,
            fail: None,
            permanent: false,
        }
    }
}

impl Task for Work {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        *runs().lock().unwrap().entry(self.name.clone()).or_default() += 1;
        started().lock().unwrap().push(self.name.clone());
        if self.millis > 0 {
            actix_rt::time::sleep(Duration::from_millis(self.millis)).await;
        }
        match &self.fail {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn is_retryable(&self, _: &String) -> bool {
        !self.permanent
    }
}

impl Durable for Work {
    const KIND: &'static str = "work";
}

/// A pool for durable `Work`, retrying after 10 ms.
pub(crate) fn pool(workers: usize) -> PoolBuilder<DurableJob<Work>> {
    let retry = RetryPolicy::builder()
        .max_attempts(1)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(10))
        .build()
        .unwrap();
    Pool::builder()
        .workers(workers)
        .queue_capacity(16)
        .retry(retry)
}

async fn setup() -> (Queue, String) {
    let db = Cluster::shared().database();
    (Queue::migrate(&db).await.expect("migrate"), db)
}

async fn worker(db: &str, workers: usize) -> DurableWorker<Work> {
    DurableWorker::builder(db, pool(workers))
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("start the durable worker")
}

/// Waits (at most 20 s) until every job in `ids` is in `state`.
pub(crate) async fn until_all(queue: &Queue, ids: &[JobId], state: JobState) -> Vec<JobStatus> {
    let started = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for id in ids {
            statuses.push(queue.status(*id).await.unwrap().expect("the job"));
        }
        if statuses.iter().all(|job| job.state == state) {
            return statuses;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "jobs not all {state:?}: {statuses:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Enqueues `count` jobs named `<prefix> <n>` that take `millis` each.
async fn enqueue_slow(queue: &Queue, prefix: &str, count: usize, millis: u64) -> Vec<JobId> {
    let mut ids = Vec::new();
    for n in 0..count {
        let mut job = Work::new(format!("{prefix} {n}"));
        job.millis = millis;
        ids.push(queue.enqueue(&job, Enqueue::new()).await.unwrap());
    }
    ids
}

/// Marks job `id` as claimed for its attempt `attempts` by a process that
/// has died since: its lease has expired.
async fn claimed_by_a_dead_process(db: &str, id: JobId, attempts: i32) {
    crate::client(db)
        .await
        .execute(
            "UPDATE workerpool.jobs SET state = 'running', attempts = $2, lease_owner = 'ghost', \
             lease_token = 1, lease_expires_at = now() - interval '1 second' WHERE id = $1",
            &[&id.0, &attempts],
        )
        .await
        .unwrap();
}

#[actix_rt::test]
async fn an_enqueued_job_runs_once_and_is_recorded_done() {
    let (queue, db) = setup().await;
    let worker = worker(&db, 2).await;
    let id = queue
        .enqueue(&Work::new("once"), Enqueue::new())
        .await
        .unwrap();
    let done = until_all(&queue, &[id], JobState::Done).await;
    assert_eq!(done[0].attempts, 1);
    assert!(done[0].finished_at.is_some());
    assert_eq!(runs_of("once"), 1);
    let report = worker.drain().await;
    assert_eq!(report.unrecorded, 0);
    assert_eq!(runs_of("once"), 1);
}

#[actix_rt::test]
async fn a_failing_job_is_retried_through_the_queue_then_dead_with_its_error() {
    let (queue, db) = setup().await;
    let worker = worker(&db, 1).await;
    let mut job = Work::new("fails thrice");
    job.fail = Some("smtp: 451 try later".into());
    let id = queue
        .enqueue(&job, Enqueue::new().max_attempts(3))
        .await
        .unwrap();
    let dead = until_all(&queue, &[id], JobState::Dead).await;
    assert_eq!(dead[0].attempts, 3);
    crate::assert_error_mentions(&dead[0], "smtp: 451");
    assert_eq!(runs_of("fails thrice"), 3);
    assert_eq!(queue.dead("work", 10).await.unwrap().len(), 1);
    worker.stop().await;
}

#[actix_rt::test]
async fn a_permanent_error_is_dead_after_one_attempt() {
    let (queue, db) = setup().await;
    let worker = worker(&db, 1).await;
    let mut job = Work::new("permanent");
    job.fail = Some("no such mailbox".into());
    job.permanent = true;
    let id = queue
        .enqueue(&job, Enqueue::new().max_attempts(5))
        .await
        .unwrap();
    let dead = until_all(&queue, &[id], JobState::Dead).await;
    assert_eq!((dead[0].attempts, runs_of("permanent")), (1, 1));
    worker.stop().await;
}

#[actix_rt::test]
async fn a_payload_that_no_longer_deserializes_goes_dead_with_that_error() {
    let (queue, db) = setup().await;
    let client = crate::client(&db).await;
    let row = client
        .query_one(
            "INSERT INTO workerpool.jobs (kind, payload, max_attempts) \
             VALUES ('work', '{\"title\": 7}', 3) RETURNING id",
            &[],
        )
        .await
        .unwrap();
    let id = JobId(row.get(0));
    let worker = worker(&db, 1).await;
    let dead = until_all(&queue, &[id], JobState::Dead).await;
    crate::assert_error_mentions(&dead[0], "does not deserialize");
    worker.stop().await;
}

#[actix_rt::test]
async fn a_new_job_wakes_an_idle_worker_without_waiting_for_a_poll() {
    let (queue, db) = setup().await;
    // The worker looks by itself only every minute (a poll, a lease
    // renewal): within `until_all`'s 20 s, only the notification can start
    // the job.
    let worker = DurableWorker::builder(&db, pool(1))
        .poll_interval(Duration::from_secs(60))
        .lease(Duration::from_secs(180))
        .start()
        .await
        .unwrap();
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let id = queue
        .enqueue(&Work::new("woken"), Enqueue::new())
        .await
        .unwrap();
    until_all(&queue, &[id], JobState::Done).await;
    worker.stop().await;
}

#[actix_rt::test]
async fn three_workers_share_300_jobs_each_done_exactly_once() {
    let (queue, db) = setup().await;
    let mut ids = Vec::new();
    for n in 0..300 {
        ids.push(
            queue
                .enqueue(&Work::new(format!("shared {n}")), Enqueue::new())
                .await
                .unwrap(),
        );
    }
    let workers = [
        worker(&db, 2).await,
        worker(&db, 2).await,
        worker(&db, 2).await,
    ];
    let done = until_all(&queue, &ids, JobState::Done).await;
    assert!(done.iter().all(|job| job.attempts == 1));
    for n in 0..300 {
        assert_eq!(runs_of(&format!("shared {n}")), 1, "job {n}");
    }
    for worker in workers {
        assert_eq!(worker.stop().await.unrecorded, 0);
    }
}

#[actix_rt::test]
async fn a_job_whose_lease_expired_is_reclaimed_and_run() {
    let (queue, db) = setup().await;
    let id = queue
        .enqueue(&Work::new("reclaimed"), Enqueue::new())
        .await
        .unwrap();
    // A process that claimed it, then died.
    claimed_by_a_dead_process(&db, id, 1).await;
    let worker = worker(&db, 1).await;
    let done = until_all(&queue, &[id], JobState::Done).await;
    assert_eq!((done[0].attempts, runs_of("reclaimed")), (2, 1));
    worker.stop().await;
}

#[actix_rt::test]
async fn a_job_whose_last_attempt_died_with_its_process_ends_dead_when_reclaimed() {
    let (queue, db) = setup().await;
    let id = queue
        .enqueue(&Work::new("poison"), Enqueue::new().max_attempts(2))
        .await
        .unwrap();
    // Its last attempt was claimed by a process that died with it.
    claimed_by_a_dead_process(&db, id, 2).await;
    let worker = worker(&db, 1).await;
    let dead = until_all(&queue, &[id], JobState::Dead).await;
    crate::assert_error_mentions(&dead[0], "lease expired");
    assert_eq!(runs_of("poison"), 0);
    worker.stop().await;
}

#[actix_rt::test]
async fn a_process_whose_lease_was_taken_over_cannot_record_its_result() {
    let (queue, db) = setup().await;
    let worker = worker(&db, 1).await;
    let mut slow = Work::new("taken over");
    slow.millis = 2000;
    let id = queue.enqueue(&slow, Enqueue::new()).await.unwrap();
    until_all(&queue, &[id], JobState::Running).await;
    // Another process reclaimed it meanwhile, under a token of its own.
    let client = crate::client(&db).await;
    client
        .execute(
            "UPDATE workerpool.jobs SET lease_owner = 'other', lease_token = 42, \
             lease_expires_at = now() + interval '1 hour' WHERE id = $1",
            &[&id.0],
        )
        .await
        .unwrap();
    while runs_of("taken over") == 0 {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let report = worker.drain().await;
    let row = client
        .query_one(
            "SELECT state, lease_token FROM workerpool.jobs WHERE id = $1",
            &[&id.0],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, Option<i64>>(1)),
        ("running".to_owned(), Some(42))
    );
    assert_eq!(report.recorded, 0);
}

#[actix_rt::test]
async fn stop_gives_back_claimed_jobs_not_started_without_counting_an_attempt() {
    let (queue, db) = setup().await;
    let ids = enqueue_slow(&queue, "stopped", 5, 1500).await;
    let worker = worker(&db, 1).await;
    until_all(&queue, &ids, JobState::Running).await;
    while (0..5).all(|n| runs_of(&format!("stopped {n}")) == 0) {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    let report = worker.stop().await;
    assert_eq!(
        (report.recorded, report.released, report.unrecorded),
        (1, 4, 0)
    );
    let mut states = HashMap::new();
    for id in &ids {
        let job = queue.status(*id).await.unwrap().unwrap();
        *states.entry((job.state, job.attempts)).or_insert(0) += 1;
    }
    assert_eq!(states.get(&(JobState::Done, 1)), Some(&1));
    assert_eq!(states.get(&(JobState::Ready, 0)), Some(&4));
}

#[actix_rt::test]
async fn drain_runs_and_records_every_job_it_claimed() {
    let (queue, db) = setup().await;
    let ids = enqueue_slow(&queue, "drained", 5, 50).await;
    let worker = worker(&db, 1).await;
    until_all(&queue, &ids, JobState::Running).await;
    let report = worker.drain().await;
    assert_eq!(
        (report.recorded, report.released, report.unrecorded),
        (5, 0, 0)
    );
    until_all(&queue, &ids, JobState::Done).await;
}

#[actix_rt::test]
async fn a_drain_longer_than_the_lease_keeps_its_jobs_which_run_once() {
    let (queue, db) = setup().await;
    let ids = enqueue_slow(&queue, "long drain", 4, 700).await;
    // One worker, 4 jobs of 0.7 s in a row: 2.8 s of draining, past the 2 s
    // lease, while another process would take up any lease that expired.
    let draining = DurableWorker::builder(&db, pool(1))
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    until_all(&queue, &ids, JobState::Running).await;
    let other = worker(&db, 2).await;
    let report = draining.drain().await;
    assert_eq!((report.recorded, report.lost, report.unrecorded), (4, 0, 0));
    until_all(&queue, &ids, JobState::Done).await;
    for n in 0..4 {
        assert_eq!(runs_of(&format!("long drain {n}")), 1, "job {n}");
    }
    assert_eq!(other.stop().await.recorded, 0);
}

#[actix_rt::test]
async fn a_pool_stopped_underneath_stops_the_claims_and_gives_jobs_back() {
    let (queue, db) = setup().await;
    let worker = worker(&db, 1).await;
    worker.pool().stop().await.unwrap();
    let id = queue
        .enqueue(&Work::new("orphan"), Enqueue::new())
        .await
        .unwrap();
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let job = queue.status(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Ready, 0));
    let report = worker.stop().await;
    assert!(
        report.released <= 1,
        "claimed and released over and over: {report:?}"
    );
    assert_eq!(runs_of("orphan"), 0);
}

/// A job that takes its worker's arbiter down with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrecker;

impl Task for Wrecker {
    type Output = ();
    type Error = String;
    type State = ();

    async fn run(&mut self, _: &mut TaskContext<()>) -> Result<(), String> {
        actix_rt::Arbiter::current().stop();
        std::future::pending().await
    }
}

impl Durable for Wrecker {
    const KIND: &'static str = "wrecker";
}

#[actix_rt::test]
async fn a_job_lost_with_its_worker_counts_its_attempt_and_ends_dead() {
    let (queue, db) = setup().await;
    let worker = DurableWorker::<Wrecker>::builder(&db, Pool::builder().workers(1).arbiters(1))
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let id = queue
        .enqueue(&Wrecker, Enqueue::new().max_attempts(2))
        .await
        .unwrap();
    let dead = until_all(&queue, &[id], JobState::Dead).await;
    assert_eq!(dead[0].attempts, 2);
    crate::assert_error_mentions(&dead[0], "lost with its worker");
    worker.stop().await;
}

#[actix_rt::test]
async fn a_stopped_worker_leaves_no_connection_open() {
    let (_queue, db) = setup().await;
    let client = crate::client(&db).await;
    let connections = || async {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = connections().await;
    for _ in 0..3 {
        worker(&db, 1).await.stop().await;
    }
    // Connections close as their tasks end, a moment after the stop.
    let started = Instant::now();
    while connections().await > before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connections left open"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test]
async fn higher_priorities_run_first_and_delayed_jobs_wait_for_their_time() {
    let (queue, db) = setup().await;
    let mut ids = Vec::new();
    for (name, priority) in [("low", -5), ("mid", 0), ("high", 5)] {
        let job = Work::new(format!("order {name}"));
        ids.push(
            queue
                .enqueue(&job, Enqueue::new().priority(priority))
                .await
                .unwrap(),
        );
    }
    let later = queue
        .enqueue(
            &Work::new("order later"),
            Enqueue::new()
                .delay(Duration::from_millis(1500))
                .priority(9),
        )
        .await
        .unwrap();
    let worker = worker(&db, 1).await;
    until_all(&queue, &ids, JobState::Done).await;
    // One worker: they start one after the other, by priority.
    let order: Vec<String> = started()
        .lock()
        .unwrap()
        .iter()
        .filter(|name| name.starts_with("order "))
        .cloned()
        .collect();
    assert_eq!(order, ["order high", "order mid", "order low"]);
    assert_eq!(
        queue.status(later).await.unwrap().unwrap().state,
        JobState::Ready
    );
    let later = until_all(&queue, &[later], JobState::Done).await;
    assert!(later[0].finished_at.unwrap() >= later[0].run_at);
    worker.stop().await;
}

#[actix_rt::test]
async fn a_worker_with_a_retention_prunes_jobs_that_ended_before_it() {
    let (queue, db) = setup().await;
    let id = queue
        .enqueue(&Work::new("pruned"), Enqueue::new())
        .await
        .unwrap();
    let worker = DurableWorker::builder(&db, pool(1))
        .lease(Duration::from_secs(1))
        .retention(Duration::from_millis(1))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    while queue.status(id).await.unwrap().is_some() {
        assert!(started.elapsed() < Duration::from_secs(20), "never pruned");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runs_of("pruned"), 1);
    worker.stop().await;
}

#[actix_rt::test]
async fn a_worker_on_an_unreachable_database_is_a_typed_error_at_start() {
    let nowhere = "host=/nonexistent-workerpool-socket-dir user=postgres dbname=x";
    match DurableWorker::builder(nowhere, pool(1)).start().await {
        Err(error @ actix_workerpool::postgres::DurableError::Connect(_)) => {
            assert!(std::error::Error::source(&error).is_some());
        }
        Err(other) => panic!("expected Connect, got {other:?}"),
        Ok(_) => panic!("started on no database"),
    }
}

#[actix_rt::test]
async fn the_pools_shutdown_deadline_cuts_a_drain_short_and_the_job_goes_back_for_another_attempt()
{
    let (queue, db) = setup().await;
    let mut slow = Work::new("cut off");
    slow.millis = 60_000;
    let id = queue.enqueue(&slow, Enqueue::new()).await.unwrap();
    let pool = pool(1).shutdown_timeout(Duration::from_millis(300));
    let worker = DurableWorker::builder(&db, pool)
        .lease(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    while runs_of("cut off") == 0 {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let report = worker.drain().await;
    assert_eq!((report.recorded, report.unrecorded), (1, 0));
    let job = queue.status(id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Ready, 1));
    crate::assert_error_mentions(&job, "shutdown's deadline");
}

#[actix_rt::test]
async fn a_durable_workers_pool_keeps_no_dead_letters_of_its_own_and_waits_for_room() {
    // Refused before any connection is made: no server needed for this one.
    let with_sink = pool(1).dead_letters_with(|_| {});
    let rejecting = pool(1).overflow(actix_workerpool::Overflow::Reject);
    for (builder, says) in [(with_sink, "dead-letter"), (rejecting, "waits for room")] {
        match DurableWorker::<Work>::builder("host=/nonexistent", builder)
            .start()
            .await
        {
            Err(actix_workerpool::postgres::DurableError::InvalidOption(message)) => {
                assert!(message.contains(says), "{message}");
            }
            Err(other) => panic!("expected InvalidOption, got {other:?}"),
            Ok(_) => panic!("started"),
        }
    }
}
