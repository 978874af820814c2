//! One phase of the soak: a pool, its submitters, the snapshot task, and the
//! checks on what they saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_rt::Arbiter;
use actix_workerpool::{Outcome, Pool, PoolGone, StopReason, TaskHandle};
use futures::channel::oneshot;

use crate::Settings;
use crate::plan::{self, COMPLETED, FAILED, KINDS, NOT_RUN, PANICKED, SoakTask, TIMED_OUT};
use crate::report::{self, PhaseReport};
use crate::snapshots;

/// Planned panics the hook has silenced, this phase.
pub static PLANNED_PANICS: AtomicU64 = AtomicU64::new(0);
/// Outcomes received this phase, for the global timeout's message.
pub static DONE: AtomicU64 = AtomicU64::new(0);

/// Mismatches described in full, per submitter.
pub const EXAMPLES: usize = 5;

/// A set of `u64`s below a bound, shared between threads.
struct Bits(Vec<AtomicU64>);

impl Bits {
    fn new(len: u64) -> Self {
        Bits((0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    /// Adds `n`; `false` if it was already in (or out of range).
    fn insert(&self, n: u64) -> bool {
        let Some(word) = self.0.get((n / 64) as usize) else {
            return false;
        };
        let bit = 1 << (n % 64);
        word.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

/// What every submitter shares.
pub struct Shared {
    seed: u64,
    tasks: u64,
    /// Ids the pool handed out, each at most once, all below `tasks`.
    ids: Bits,
    /// Ids whose handle resolved.
    resolved: Bits,
    /// Outcomes received, all submitters together.
    pub done: AtomicU64,
    /// RSS when the first 10% of the tasks had their outcome; 0 until then.
    rss_at_tenth: AtomicU64,
    /// Errors seen about ids (duplicates, out of range).
    id_errors: AtomicU64,
}

/// What one submitter saw.
#[derive(Default)]
struct Tally {
    kinds: [u64; KINDS.len()],
    mismatches: u64,
    examples: Vec<String>,
    refused: u64,
    gone: u64,
}

impl Tally {
    fn mismatch(&mut self, what: String) {
        self.mismatches += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(what);
        }
    }

    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            *mine += theirs;
        }
        self.mismatches += other.mismatches;
        self.refused += other.refused;
        self.gone += other.gone;
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

/// Submits tasks `first, first + stride, ...` below `shared.tasks`, keeping at
/// most `window` handles pending (awaiting the oldest before submitting more),
/// and checks every outcome against the plan.
async fn submitter(
    pool: Pool<SoakTask>,
    shared: Arc<Shared>,
    first: u64,
    stride: u64,
    window: usize,
) -> Tally {
    let mut tally = Tally::default();
    let mut pending: VecDeque<(u64, TaskHandle<SoakTask>)> = VecDeque::with_capacity(window);
    let mut index = first;
    while index < shared.tasks {
        if pending.len() >= window {
            let (index, handle) = pending.pop_front().expect("the window is full");
            settle(&shared, &mut tally, index, handle).await;
        }
        let task = SoakTask {
            seed: shared.seed,
            index,
            attempts_begun: 0,
        };
        match pool.submit(task).await {
            Ok(handle) => {
                if !shared.ids.insert(handle.id().as_u64()) {
                    shared.id_errors.fetch_add(1, Ordering::Relaxed);
                    tally.mismatch(format!(
                        "task {index}: id {} given twice, or not below {}",
                        handle.id(),
                        shared.tasks
                    ));
                }
                pending.push_back((index, handle));
            }
            Err(refused) => {
                tally.refused += 1;
                tally.mismatch(format!(
                    "task {}: submit refused",
                    refused.into_inner().index
                ));
            }
        }
        index += stride;
    }
    while let Some((index, handle)) = pending.pop_front() {
        settle(&shared, &mut tally, index, handle).await;
    }
    tally
}

/// Awaits one handle and checks its outcome: the kind and attempts the plan
/// predicts, and a payload that names this very task.
async fn settle(shared: &Shared, tally: &mut Tally, index: u64, handle: TaskHandle<SoakTask>) {
    let id = handle.id();
    let outcome = handle.await;
    let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
    DONE.store(done, Ordering::Relaxed);
    if done == shared.tasks.div_ceil(10) {
        shared
            .rss_at_tenth
            .store(report::rss_bytes().unwrap_or(0), Ordering::Relaxed);
    }
    if !shared.resolved.insert(id.as_u64()) {
        shared.id_errors.fetch_add(1, Ordering::Relaxed);
        tally.mismatch(format!("task {index}: {id} resolved twice"));
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(PoolGone) => {
            tally.gone += 1;
            tally.mismatch(format!("task {index} ({id}): handle says PoolGone"));
            return;
        }
    };
    let kind = plan::kind_index(outcome.kind());
    tally.kinds[kind] += 1;
    let expected = plan::expected(shared.seed, index);
    let attempts = outcome.attempts();
    let payload_ok = match &outcome {
        Outcome::Completed { output, .. } => *output == plan::output(index),
        Outcome::Failed { error, .. } => match plan::action(shared.seed, index, attempts) {
            plan::Action::Fail { permanent } => {
                *error
                    == plan::SoakError::Planned {
                        index,
                        attempt: attempts,
                        permanent,
                    }
            }
            _ => false,
        },
        Outcome::Panicked { message, .. } => *message == plan::panic_message(index, attempts),
        Outcome::TimedOut { .. } => true,
        Outcome::NotRun { task, .. } => task.index == index,
        #[allow(unreachable_patterns)] // for a variant added later
        _ => false,
    };
    if kind != expected.kind || attempts != expected.attempts || !payload_ok {
        tally.mismatch(format!(
            "task {index} ({id}): expected {} after {} attempt(s), got {outcome:?}",
            KINDS[expected.kind], expected.attempts
        ));
    }
}

/// Runs the whole plan through one pool, on `arbiters` worker arbiters (none:
/// the supervisor's), and checks everything it can see.
pub async fn phase(name: &'static str, arbiters: Option<usize>, settings: Settings) -> PhaseReport {
    PLANNED_PANICS.store(0, Ordering::Relaxed);
    DONE.store(0, Ordering::Relaxed);
    let totals = plan::totals(settings.seed, settings.tasks);
    let shared = Arc::new(Shared {
        seed: settings.seed,
        tasks: settings.tasks,
        ids: Bits::new(settings.tasks),
        resolved: Bits::new(settings.tasks),
        done: AtomicU64::new(0),
        rss_at_tenth: AtomicU64::new(0),
        id_errors: AtomicU64::new(0),
    });
    let rss_start = report::rss_bytes().unwrap_or(0);
    let started = Instant::now();

    let mut builder = Pool::builder_with_state(Ok::<usize, String>)
        .workers(settings.workers)
        .queue_capacity(settings.queue)
        .retry(plan::pool_policy())
        .restart_limit(u32::MAX, Duration::from_secs(1))
        .restart_backoff(Duration::from_millis(1), Duration::from_millis(4));
    if let Some(arbiters) = arbiters {
        builder = builder.arbiters(arbiters);
    }
    let pool = builder.build().expect("valid settings");

    let (stop_snapshots, stop) = oneshot::channel();
    let snapshot_task = actix_rt::spawn(snapshots::snapshots(
        pool.clone(),
        shared.clone(),
        settings,
        started,
        stop,
    ));

    // Half the submitters here, on the supervisor's arbiter; the other half
    // on an arbiter of their own, submitting from another thread.
    let remote = Arbiter::new();
    let stride = settings.submitters as u64;
    let mut local = Vec::new();
    let mut remote_results = Vec::new();
    for first in 0..stride {
        let run = submitter(pool.clone(), shared.clone(), first, stride, settings.window);
        if first % 2 == 0 {
            local.push(run);
        } else {
            let (tx, rx) = oneshot::channel();
            remote.spawn(async move {
                let _ = tx.send(run.await);
            });
            remote_results.push(rx);
        }
    }
    let mut tally = Tally::default();
    for local_tally in futures::future::join_all(local).await {
        tally.merge(local_tally);
    }
    let mut failures = Vec::new();
    for rx in remote_results {
        match rx.await {
            Ok(remote_tally) => tally.merge(remote_tally),
            Err(_) => failures.push("a remote submitter died".to_string()),
        }
    }
    remote.stop();

    // Every handle has resolved: the counters must show every task finished.
    let final_stats = pool.stats().await;
    let _ = stop_snapshots.send(());
    let seen = snapshot_task.await.unwrap_or_default();
    let drained = pool.drain().await;
    drop(pool);
    let wall = started.elapsed();
    let rss_end = report::rss_bytes().unwrap_or(0);

    // The checks.
    if tally.kinds != totals.kinds {
        failures.push("outcome counts differ from the plan (see the table)".into());
    }
    if tally.mismatches > 0 {
        failures.push(format!(
            "{} task(s) ended otherwise than planned, e.g.:",
            tally.mismatches
        ));
        failures.extend(tally.examples.iter().map(|e| format!("  {e}")));
    }
    let (ids, resolved) = (shared.ids.count(), shared.resolved.count());
    if ids != settings.tasks || resolved != settings.tasks {
        failures.push(format!(
            "{} tasks, but {ids} distinct ids given and {resolved} resolved",
            settings.tasks
        ));
    }
    match final_stats {
        Ok(s) => {
            let got = [s.completed, s.failed, s.panicked, s.timed_out, s.not_run];
            let want = [COMPLETED, FAILED, PANICKED, TIMED_OUT, NOT_RUN].map(|k| totals.kinds[k]);
            let attempts: u64 = s.workers.iter().map(|w| w.tasks_run).sum();
            let checks = [
                ("balances", u64::from(s.balances()), 1),
                ("submitted", s.submitted, settings.tasks),
                ("queued", s.queued as u64, 0),
                ("in_flight", s.in_flight as u64, 0),
                ("waiting_retry", s.waiting_retry as u64, 0),
                ("retries", s.retries, totals.retries),
                ("restarts", s.restarts, totals.panics),
                ("sum of workers' tasks_run", attempts, totals.attempts),
                ("workers", s.workers.len() as u64, settings.workers as u64),
            ];
            for (what, got, want) in checks {
                if got != want {
                    failures.push(format!("final stats: {what} is {got}, expected {want}"));
                }
            }
            if got != want {
                failures.push(format!(
                    "final stats: outcome counters {got:?}, expected {want:?}"
                ));
            }
            if failures.iter().any(|f| f.starts_with("final stats")) {
                // All of it but the per-worker list, for the fields not checked here.
                let all = format!("{s:?}");
                let cut = all.find(", workers: [").unwrap_or(all.len());
                failures.push(format!("final stats were: {} }}", &all[..cut]));
            }
        }
        Err(PoolGone) => failures.push("final stats(): PoolGone".into()),
    }
    match drained {
        Ok(report) if report.reason == StopReason::Drained && report.not_run.is_empty() => {}
        Ok(report) => failures.push(format!("drain: {report:?}")),
        Err(PoolGone) => failures.push("drain(): PoolGone".into()),
    }
    if seen.taken == 0 {
        failures.push("no snapshot taken".into());
    }
    failures.extend(seen.failures.iter().cloned());
    let planned_panics = PLANNED_PANICS.load(Ordering::Relaxed);
    if planned_panics != totals.panics {
        failures.push(format!(
            "the panic hook saw {planned_panics} planned panics, the plan has {}",
            totals.panics
        ));
    }
    let rss_tenth = shared.rss_at_tenth.load(Ordering::Relaxed);
    let rss_peak = seen
        .samples
        .iter()
        .map(|s| s.rss)
        .chain([rss_start, rss_tenth, rss_end])
        .max()
        .unwrap_or(0);
    if rss_tenth == 0 || rss_end == 0 {
        failures.push("RSS could not be read (/proc/self/status)".into());
    } else if rss_end > rss_tenth + settings.rss_slack {
        failures.push(format!(
            "RSS grew: {} MiB at 10% of the tasks, {} MiB at the end (allowed: +{} MiB)",
            report::mib(rss_tenth),
            report::mib(rss_end),
            report::mib(settings.rss_slack)
        ));
    }

    PhaseReport {
        name,
        tasks: settings.tasks,
        workers: settings.workers,
        expected: totals.kinds,
        got: tally.kinds,
        retries: totals.retries,
        own_policy: totals.own_policy,
        snapshots: seen.taken,
        rss_start,
        rss_tenth,
        rss_peak,
        rss_end,
        samples: seen.samples,
        wall,
        failures,
    }
}
