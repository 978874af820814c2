//! The child side of the `memory` scenario: in a fresh process, hold every
//! worker of one pool busy, queue many tasks carrying a payload, and print
//! how much the resident set grew per task.
//!
//! A fresh process per measurement, so that memory one pool freed (and the
//! allocator kept) does not flatter the next one measured.

use std::convert::Infallible;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use actix_workerpool::{Pool, Task, TaskContext};
use futures::channel::oneshot;

use crate::baselines::TaskResult;
use crate::baselines::local_channel::{self, Job, LocalChannelPool};
use crate::report::Label;
use crate::subject::{self, Placement};

/// Bytes of payload every queued task carries.
const PAYLOAD: usize = 64;
/// Workers (or readers) held busy while the payload tasks queue up.
const HOLDS: usize = 4;
/// How long the probe waits for a pool to reach the state it measures in.
const PATIENCE: Duration = Duration::from_secs(60);

/// The pools whose memory the scenario measures.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// (a), the pool under test.
    Subject,
    /// (b1), the tokio channel pool on the current thread.
    LocalChannel,
}

impl Probe {
    /// Every probe, in the order the table shows them: the pool under test
    /// first, then its baseline.
    pub const ALL: [Probe; 2] = [Probe::Subject, Probe::LocalChannel];

    /// What `--memory-probe` takes for this pool.
    pub fn flag(self) -> &'static str {
        match self {
            Probe::Subject => "a",
            Probe::LocalChannel => "b1",
        }
    }

    /// The probe that `--memory-probe flag` asks for.
    pub fn from_flag(flag: &str) -> Option<Self> {
        Probe::ALL.into_iter().find(|probe| probe.flag() == flag)
    }

    /// The pool, as the table names it.
    pub fn label(self) -> Label {
        match self {
            Probe::Subject => subject::LABEL,
            Probe::LocalChannel => local_channel::LABEL,
        }
    }
}

/// Whether this system shows a process its resident set size.
pub fn is_supported() -> bool {
    resident_bytes().is_some()
}

/// Measures `probe` with `count` queued tasks, prints the bytes per task on
/// stdout and exits, without tearing the queued tasks down: that would only
/// take time.
pub fn run(probe: Probe, count: usize) -> ! {
    let system = actix_rt::System::new();
    // The measurements exit the process themselves: what they return is
    // `Infallible`, which has no value, so this match needs no arm.
    match system.block_on(async {
        match probe {
            Probe::Subject => measure_subject(count).await,
            Probe::LocalChannel => measure_local_channel(count).await,
        }
    }) {}
}

// ---------------------------------------------------------------------------
// (a)

/// What the pool under test queues: tasks that hold a worker until released,
/// and the payload tasks whose cost is measured.
enum Ballast {
    Hold(oneshot::Receiver<()>),
    Payload([u8; PAYLOAD]),
}

impl Task for Ballast {
    type Output = ();
    type Error = Infallible;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> TaskResult {
        match self {
            // Released or not, a hold ends when its sender goes.
            Ballast::Hold(release) => {
                let _ = release.await;
            }
            Ballast::Payload(bytes) => {
                black_box(bytes);
            }
        }
        Ok(())
    }
}

async fn measure_subject(count: usize) -> Infallible {
    let pool: Pool<Ballast> = subject::start(HOLDS, Placement::Local, count + HOLDS);
    let (_releases, _holds): (Vec<_>, Vec<_>) = (0..HOLDS)
        .map(|_| {
            let (release, held) = oneshot::channel::<()>();
            (release, subject::try_submit(&pool, Ballast::Hold(held)))
        })
        .unzip();
    let pool = &pool;
    wait_until("every worker to hold a task", async || {
        stats_of(pool).await.in_flight == HOLDS
    })
    .await;

    let before = resident_bytes().expect("checked by the parent");
    // The handles stay alive: they are part of what a caller pays per task.
    let mut handles = Vec::with_capacity(count);
    for _ in 0..count {
        handles.push(subject::try_submit(pool, Ballast::Payload(payload())));
    }
    wait_until("every payload task to be queued", async || {
        stats_of(pool).await.queued == count
    })
    .await;
    let after = resident_bytes().expect("checked by the parent");
    report(before, after, count)
}

async fn stats_of<T: Task>(pool: &Pool<T>) -> actix_workerpool::Stats {
    pool.stats().await.expect("the pool is running")
}

// ---------------------------------------------------------------------------
// (b1)

/// What (b1) queues: the same two kinds of work as [`Ballast`].
enum MemoryJob {
    Hold(oneshot::Receiver<()>),
    Payload([u8; PAYLOAD], oneshot::Sender<TaskResult>),
}

impl Job for MemoryJob {
    async fn run(self) {
        match self {
            MemoryJob::Hold(release) => {
                let _ = release.await;
            }
            MemoryJob::Payload(bytes, reply) => {
                black_box(bytes);
                let _ = reply.send(Ok(()));
            }
        }
    }
}

async fn measure_local_channel(count: usize) -> Infallible {
    let pool = LocalChannelPool::<MemoryJob>::start(HOLDS, count + HOLDS);
    let jobs = pool.jobs();
    let _releases: Vec<_> = (0..HOLDS)
        .map(|_| {
            let (release, held) = oneshot::channel::<()>();
            send(jobs, MemoryJob::Hold(held));
            release
        })
        .collect();
    // Once the channel is empty, every reader holds a hold.
    wait_until("every reader to hold a job", async || {
        jobs.capacity() == jobs.max_capacity()
    })
    .await;

    let before = resident_bytes().expect("checked by the parent");
    // The receivers stay alive, as (a)'s handles do.
    let mut replies = Vec::with_capacity(count);
    for _ in 0..count {
        let (reply, result) = oneshot::channel();
        send(jobs, MemoryJob::Payload(payload(), reply));
        replies.push(result);
    }
    assert_eq!(
        jobs.max_capacity() - jobs.capacity(),
        count,
        "every payload job waits in the channel"
    );
    let after = resident_bytes().expect("checked by the parent");
    report(before, after, count)
}

fn send(jobs: &tokio::sync::mpsc::Sender<MemoryJob>, job: MemoryJob) {
    if jobs.try_send(job).is_err() {
        panic!("the job channel refused a job");
    }
}

// ---------------------------------------------------------------------------
// Shared

/// A payload that is not all zeros, in case something along the way would
/// treat zeroed memory specially.
fn payload() -> [u8; PAYLOAD] {
    std::array::from_fn(|i| i as u8)
}

/// Polls `ready`, letting the System run in between, until it says yes.
///
/// # Panics
///
/// If it has not said yes after [`PATIENCE`]: the pool never reached the
/// state to be measured, and a figure taken anyway would mean nothing.
async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !ready().await {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        actix_rt::task::yield_now().await;
    }
}

/// The resident set size of this process, from `/proc/self/status` (Linux),
/// which gives it in kB whatever the page size.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kilobytes * 1024)
}

/// Prints the growth per task for the parent to read, and exits.
fn report(before: u64, after: u64, count: usize) -> ! {
    let per_task = after.saturating_sub(before) as f64 / count as f64;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{per_task}").expect("the parent reads stdout");
    stdout.flush().expect("the parent reads stdout");
    std::process::exit(0)
}
