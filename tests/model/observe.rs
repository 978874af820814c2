//! Taking in what the pool reports until it settles: snapshots, outcomes,
//! accepted submits and stop answers, each checked as it comes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_workerpool::{Outcome, OutcomeKind, PoolGone, Stats, SubmitError, TaskHandle};
use futures::FutureExt;
use tokio::time::Instant;

use crate::check::{Check, bounded, ensure};
use crate::commands::Kind;
use crate::probe::{Probe, panic_message};
use crate::reference::{Model, Waiter};

impl Model {
    /// A snapshot, taken at any moment: it must balance, and no counter goes down.
    pub(crate) async fn snapshot(&mut self) -> Result<Stats, String> {
        let stats = bounded("pool.stats()", self.pool.stats())
            .await?
            .map_err(|_| "pool.stats(): the pool is gone".to_string())?;
        let (workers, capacity) = (self.setup.workers, self.setup.queue_capacity);
        ensure!(stats.balances(), "the counters do not balance: {stats:?}");
        ensure!(
            stats.waiting_retry == 0 && stats.retries == 0,
            "retries in a pool without a retry policy: {stats:?}"
        );
        ensure!(
            stats.in_flight <= workers && stats.queued <= capacity,
            "more in flight than workers or queued than capacity: {stats:?}"
        );
        ensure!(
            stats.workers.len() == workers,
            "{} worker entries: {stats:?}",
            stats.workers.len()
        );
        let last = &self.last;
        let went_down = stats.submitted < last.submitted
            || stats.completed < last.completed
            || stats.failed < last.failed
            || stats.panicked < last.panicked
            || stats.timed_out < last.timed_out
            || stats.not_run < last.not_run
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

    /// Yields until nothing changes any more (two quiet rounds in a row), taking
    /// in events, outcomes, accepted submits and stop answers as they come; then
    /// checks everything.
    pub(crate) async fn settle(&mut self) -> Check {
        let mut previous: Option<Stats> = None;
        let mut quiet = 0;
        for _ in 0..500 {
            for _ in 0..8 {
                actix_rt::task::yield_now().await;
            }
            // Waiters first: a task's events can only follow its acceptance.
            let mut progress = self.poll_waiters()?;
            progress |= self.take_events()?;
            progress |= self.poll_handles()?;
            progress |= self.poll_calls()?;
            let stats = self.snapshot().await?;
            progress |= previous.as_ref() != Some(&stats);
            previous = Some(stats);
            if progress {
                quiet = 0;
            } else {
                quiet += 1;
                if quiet == 2 {
                    self.settled = previous.take().unwrap_or_default();
                    return self.check_settled();
                }
            }
        }
        Err("the pool never settled: it kept changing for 500 rounds".into())
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
            label, kind, runs, ..
        } = waiter;
        match answer.map_err(|e| format!("a waiting submit panicked: {e}"))? {
            Ok(handle) => self.accept(label, kind, runs, handle),
            Err(SubmitError(back)) => {
                ensure!(
                    self.pool.is_closed(),
                    "a waiting submit of {label} was refused by an open pool"
                );
                self.refused(back, label, kind, &runs)
            }
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
            let Some(handle) = self.tasks[index].handle.as_mut() else {
                continue;
            };
            if let Some(outcome) = handle.now_or_never() {
                progress = true;
                self.tasks[index].handle = None;
                self.on_outcome(index, outcome)?;
            }
        }
        Ok(progress)
    }

    /// What a handle delivered: it must fit the task.
    fn on_outcome(&mut self, index: usize, outcome: Result<Outcome<Probe>, PoolGone>) -> Check {
        let released = self.released.contains(&self.tasks[index].label);
        let t = &mut self.tasks[index];
        let label = t.label;
        let outcome = outcome.map_err(|_| format!("task {label}: its handle says PoolGone"))?;
        let kind = outcome.kind();
        ensure!(
            t.kind.may_end(kind),
            "task {label} ({:?}) ended {outcome:?}",
            t.kind
        );
        let runs = t.runs.load(Ordering::SeqCst);
        let expected_runs = u32::from(kind != OutcomeKind::NotRun);
        ensure!(
            runs == expected_runs && outcome.attempts() == expected_runs,
            "task {label} ended {outcome:?} after {runs} runs"
        );
        match outcome {
            Outcome::Completed { output, .. } => {
                ensure!(output == label, "task {label} completed with {output}");
                ensure!(
                    t.kind != Kind::Held || released,
                    "held task {label} completed without being released"
                );
            }
            Outcome::Failed { error, .. } => {
                ensure!(error == label, "task {label} failed with {error}")
            }
            Outcome::Panicked { ref message, .. } => ensure!(
                *message == panic_message(label),
                "task {label} panicked with {message:?}"
            ),
            Outcome::TimedOut { .. } => ensure!(
                !released,
                "held task {label} timed out although it was released"
            ),
            Outcome::NotRun {
                task,
                reason,
                attempts,
            } => {
                // Retries are not modelled: a task handed back ran at most
                // the attempt its worker was dropped in.
                ensure!(
                    attempts <= 1,
                    "task {label} handed back after {attempts} attempts"
                );
                ensure!(
                    task.label == label
                        && task.kind == t.kind
                        && Arc::ptr_eq(&task.runs, &t.runs)
                        && (t.kind == Kind::Held) == task.hold.is_some(),
                    "task {label} was handed back as task {} ({:?})",
                    task.label,
                    task.kind
                );
                t.outcome_reason = Some(reason);
            }
        }
        t.outcome = Some((kind, Instant::now()));
        Ok(())
    }

    fn take_events(&mut self) -> Result<bool, String> {
        let events = self.events.so_far();
        let progress = !events.is_empty();
        for event in events {
            self.on_event(&event)
                .map_err(|e| format!("event {event:?}: {e}"))?;
        }
        Ok(progress)
    }
}
