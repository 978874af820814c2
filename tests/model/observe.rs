//! Taking in what the pool reports until it settles: snapshots, outcomes,
//! accepted submits and stop answers, each checked as it comes; and asking
//! it where each task is.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_workerpool::{
    Outcome, PoolGone, Stats, SubmitError, TaskHandle, TaskStatus, WorkerState,
};
use futures::FutureExt;
use tokio::time::Instant;

use crate::check::{Check, bounded, ensure};
use crate::commands::End;
use crate::probe::{Probe, panic_message};
use crate::reference::{Model, Tracked, Waiter};

/// How long (in real time) settling may wait for workers on other threads.
const SETTLE_REAL: std::time::Duration = std::time::Duration::from_secs(5);

impl Model {
    /// A snapshot, taken at any moment: it must balance, and no counter goes down.
    pub(crate) async fn snapshot(&mut self) -> Result<Stats, String> {
        let stats = bounded(
            self.threads,
            "pool.stats()",
            Box::pin(self.pool.stats()),
            false,
        )
        .await?
        .map_err(|_| "pool.stats(): the pool is gone".to_string())?;
        let capacity = self.setup.queue_capacity;
        ensure!(stats.balances(), "the counters do not balance: {stats:?}");
        // The identity spelled out, so that it holds even should `balances`
        // or `finished` leave an outcome out (`cancelled`, the newest).
        let outcomes = [
            stats.completed,
            stats.failed,
            stats.panicked,
            stats.timed_out,
            stats.aborted,
            stats.cancelled,
            stats.not_run,
        ];
        let unfinished = (stats.queued + stats.in_flight + stats.waiting_retry) as u64;
        ensure!(
            stats.finished() == outcomes.iter().sum::<u64>()
                && stats.submitted == stats.finished() + unfinished,
            "submitted != the outcomes + queued + in flight + waiting for a retry: {stats:?}"
        );
        if self.setup.retry.is_none() {
            ensure!(
                stats.waiting_retry == 0 && stats.retries == 0,
                "retries in a pool without a retry policy: {stats:?}"
            );
        }
        ensure!(
            stats.queued <= capacity,
            "more queued than the capacity ({capacity}): {stats:?}"
        );
        // Slots keep their numbers: every slot in service is listed, and so
        // is every worker that holds a task (retiring ones after a shrink
        // included, so in flight may exceed the size for a while).
        let holding = stats
            .workers
            .iter()
            .filter(|w| {
                matches!(
                    w.state,
                    WorkerState::Busy { .. } | WorkerState::Quitting { task: Some(_) }
                )
            })
            .count();
        ensure!(
            stats.in_flight <= stats.workers.len() && stats.in_flight == holding,
            "{} in flight, {holding} of {} listed workers hold a task: {stats:?}",
            stats.in_flight,
            stats.workers.len()
        );
        ensure!(
            stats.size == self.size && stats.size <= stats.workers.len(),
            "the last resize set {} slots in service: {stats:?}",
            self.size
        );
        let last = &self.last;
        let went_down = stats.submitted < last.submitted
            || stats.completed < last.completed
            || stats.failed < last.failed
            || stats.panicked < last.panicked
            || stats.timed_out < last.timed_out
            || stats.not_run < last.not_run
            || stats.cancelled < last.cancelled
            || stats.retries < last.retries
            || stats.restarts < last.restarts
            || stats
                .workers
                .iter()
                .zip(&last.workers)
                .any(|(now, before)| {
                    now.tasks_run < before.tasks_run || now.restarts < before.restarts
                });
        ensure!(
            !went_down,
            "a counter went down: from {last:?} to {stats:?}"
        );
        self.last = stats.clone();
        Ok(stats)
    }

    /// Asks the pool where each task is; it must say what the model says.
    /// (A status query reads the backlog into the supervisor's own queue, so
    /// it also drives the path where workers find jobs held there.)
    pub(crate) async fn check_statuses(&mut self) -> Check {
        let mut ids: Vec<_> = self.ids.iter().map(|(id, index)| (*index, *id)).collect();
        ids.sort_unstable();
        for (index, id) in ids {
            let t = &self.tasks[index];
            let expected = if t.ended.is_some() {
                TaskStatus::Unknown
            } else if let Some(started) = t.running {
                TaskStatus::Running {
                    worker: started.worker,
                }
            } else if t.retry.is_some() {
                TaskStatus::WaitingRetry {
                    attempts: t.attempts,
                }
            } else {
                TaskStatus::Queued
            };
            let status = bounded(
                false,
                "pool.status()",
                Box::pin(self.pool.status(id)),
                false,
            )
            .await?
            .map_err(|_| "pool.status(): the pool is gone".to_string())?;
            ensure!(
                status == expected,
                "task {} ({id}): status {status:?}, expected {expected:?} ({t:?})",
                t.label
            );
        }
        Ok(())
    }

    /// Yields until nothing changes any more (two quiet rounds in a row), taking
    /// in events, outcomes, accepted submits and stop answers as they come; then
    /// checks everything.
    ///
    /// With workers on other threads, a quiet moment may only mean that a
    /// worker has not been scheduled yet; so there the rules of a settled pool
    /// must hold *eventually*: a quiet moment that breaks one makes the model
    /// wait on (real time, bounded by [`SETTLE_REAL`]) until one keeps them,
    /// and a case fails only if none does in time. Virtual time does not move
    /// meanwhile. This is the one latitude of the two-arbiter variant in
    /// settling; every event and every snapshot is still checked exactly as
    /// it comes.
    pub(crate) async fn settle(&mut self) -> Check {
        let mut previous: Option<Stats> = None;
        let mut quiet = 0;
        let started = std::time::Instant::now();
        let mut round = 0u32;
        // With workers on other threads: the last rule a quiet moment broke.
        let mut broken: Option<String> = None;
        loop {
            round += 1;
            for _ in 0..8 {
                actix_rt::task::yield_now().await;
            }
            if self.threads {
                pause_real(round);
            }
            let mut progress = self.take_in()?;
            let stats = self.snapshot().await?;
            progress |= previous.as_ref() != Some(&stats);
            previous = Some(stats);
            if progress {
                quiet = 0;
            } else {
                quiet += 1;
                if quiet == 2 {
                    self.settled = previous.clone().unwrap_or_default();
                    let checked = self.check_settled();
                    match checked {
                        Ok(()) => return Ok(()),
                        Err(why) if !self.threads || started.elapsed() > SETTLE_REAL => {
                            return Err(why);
                        }
                        Err(why) => {
                            broken = Some(why);
                            quiet = 0;
                        }
                    }
                }
            }
            if !self.threads && round >= 500 {
                return Err("the pool never settled: it kept changing for 500 rounds".into());
            }
            if self.threads && started.elapsed() > SETTLE_REAL {
                return Err(match broken {
                    Some(why) => why,
                    None => format!(
                        "the pool never settled: it kept changing for {SETTLE_REAL:?} (real time)"
                    ),
                });
            }
        }
    }

    /// Takes in, without yielding, what the pool has reported so far:
    /// accepted submits, events, outcomes and stop answers. Whether any came.
    pub(crate) fn take_in(&mut self) -> Result<bool, String> {
        // Waiters first: a task's events can only follow its acceptance.
        let mut progress = self.poll_waiters()?;
        progress |= self.take_events()?;
        progress |= self.poll_handles()?;
        progress |= self.poll_calls()?;
        Ok(progress)
    }

    fn poll_waiters(&mut self) -> Result<bool, String> {
        let mut progress = false;
        let mut i = 0;
        while i < self.waiting.len() {
            let Some(answer) = (&mut self.waiting[i].join).now_or_never() else {
                i += 1;
                continue;
            };
            progress = true;
            let waiter = self.waiting.remove(i);
            self.on_waiter_answer(waiter, answer)?;
        }
        Ok(progress)
    }

    pub(crate) fn on_waiter_answer(
        &mut self,
        waiter: Waiter,
        answer: Result<Result<TaskHandle<Probe>, SubmitError<Probe>>, actix_rt::task::JoinError>,
    ) -> Check {
        let Waiter {
            label,
            kind,
            key,
            runs,
            ..
        } = waiter;
        match answer.map_err(|e| format!("a waiting submit panicked: {e}"))? {
            Ok(handle) => self.accept(label, kind, key, runs, handle),
            Err(SubmitError::Stopped(back)) => {
                ensure!(
                    self.pool.is_closed(),
                    "a waiting submit of {label} was refused by an open pool"
                );
                self.refused(back, label, kind, key, &runs)
            }
            // The model's pools wait for room (`Overflow::Block`).
            Err(refused) => Err(format!("a waiting submit of {label} refused: {refused:?}")),
        }
    }

    fn poll_calls(&mut self) -> Result<bool, String> {
        let mut progress = false;
        for index in 0..self.calls.len() {
            if self.calls[index].report.is_some() {
                continue;
            }
            if let Some(answer) = (&mut self.calls[index].join).now_or_never() {
                progress = true;
                self.record_answer(index, answer)?;
            }
        }
        Ok(progress)
    }

    fn poll_handles(&mut self) -> Result<bool, String> {
        let mut progress = false;
        for index in 0..self.tasks.len() {
            let t = &mut self.tasks[index];
            if t.outcome.is_some() {
                continue;
            }
            if let Some(outcome) = (&mut t.handle).now_or_never() {
                progress = true;
                self.on_outcome(index, outcome)?;
            }
        }
        Ok(progress)
    }

    /// What a handle delivered: it must fit what the task's last attempt did,
    /// and carry the number of attempts made.
    fn on_outcome(&mut self, index: usize, outcome: Result<Outcome<Probe>, PoolGone>) -> Check {
        let released = self.is_released(self.tasks[index].label);
        let last_ends = self.possible_ends(index);
        let t = &mut self.tasks[index];
        let label = t.label;
        let outcome = outcome.map_err(|_| format!("task {label}: its handle says PoolGone"))?;
        let kind = outcome.kind();
        // Attempts made, as the events tell them; `run` was called once per
        // attempt (see `Tracked::runs_fit` for the one exception).
        let made = t.attempts;
        let runs = t.runs.load(Ordering::SeqCst);
        ensure!(
            t.runs_fit() && outcome.attempts() == made,
            "task {label} ended {outcome:?} after {runs} runs and {made} attempts seen"
        );
        let fits = |end: End| made > 0 && last_ends.contains(&end);
        match outcome {
            Outcome::Completed { output, .. } => {
                ensure!(
                    fits(End::Completed),
                    "task {label} ({:?}) completed on attempt {made}",
                    t.kind
                );
                ensure!(output == label, "task {label} completed with {output}");
                ensure!(
                    !t.kind.holds() || released,
                    "held task {label} completed without being released"
                );
            }
            Outcome::Failed { error, .. } => {
                ensure!(
                    fits(End::Failed),
                    "task {label} ({:?}) failed on attempt {made}",
                    t.kind
                );
                ensure!(error == label, "task {label} failed with {error}")
            }
            Outcome::Panicked { ref message, .. } => {
                ensure!(
                    fits(End::Panicked),
                    "task {label} ({:?}) panicked on attempt {made}",
                    t.kind
                );
                ensure!(
                    *message == panic_message(label),
                    "task {label} panicked with {message:?}"
                )
            }
            Outcome::TimedOut { .. } => ensure!(
                fits(End::TimedOut),
                "task {label} ({:?}, released: {released}) timed out on attempt {made}",
                t.kind
            ),
            Outcome::NotRun { task, reason, .. } => {
                ensure!(
                    comes_back_whole(t, &task),
                    "task {label} was handed back as task {} ({:?})",
                    task.label,
                    task.kind
                );
                t.outcome_reason = Some(reason);
            }
            // Whether a cancel that took effect agrees is checked with its
            // answer (see `cancels.rs`); here, only that one was asked for.
            Outcome::Cancelled { task, .. } => {
                ensure!(
                    t.cancel_asked,
                    "task {label} was cancelled, but no cancel was asked for it"
                );
                ensure!(
                    comes_back_whole(t, &task),
                    "task {label} came back cancelled as task {} ({:?})",
                    task.label,
                    task.kind
                );
            }
            // The model asks for no shutdown deadline, so no other outcome
            // (an aborted attempt) may come.
            #[allow(unreachable_patterns)]
            other => {
                return Err(format!(
                    "task {label}: an outcome the model does not know: {other:?}"
                ));
            }
        }
        t.outcome = Some((kind, Instant::now()));
        Ok(())
    }

    fn take_events(&mut self) -> Result<bool, String> {
        let events = self.events.so_far();
        let progress = !events.is_empty();
        for event in events {
            if std::env::var_os("MODEL_TRACE").is_some() {
                eprintln!("{:?} {event:?}", Instant::now() - self.origin);
            }
            self.on_event(&event)
                .map_err(|e| format!("event {event:?}: {e}"))?;
        }
        Ok(progress)
    }
}

/// Whether a task handed back (unrun, or cancelled) is the one tracked as
/// `t`, with all its parts.
fn comes_back_whole(t: &Tracked, task: &Probe) -> bool {
    task.label == t.label
        && task.kind == t.kind
        && task.key == t.key
        && Arc::ptr_eq(&task.runs, &t.runs)
        && t.kind.holds() == task.hold.is_some()
}

/// Gives workers on other threads a moment: a yield of this thread at first,
/// short sleeps once settling takes longer. Never parks the runtime, so
/// virtual time does not jump.
fn pause_real(round: u32) {
    if round < 16 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(100));
    }
}
