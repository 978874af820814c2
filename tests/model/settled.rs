//! The rules once the pool has settled: outcomes, ids, counters, admission,
//! dispatch (due retries included), restarts against the limit, and the stop
//! answers.

use std::collections::HashMap;

use actix_workerpool::{OutcomeKind, StopReport};
use tokio::time::Instant;

use crate::TICK;
use crate::check::{Check, ensure};
use crate::commands::End;
use crate::reference::{GaveUp, Model, Phase};

impl Model {
    /// The rules, once the pool has settled.
    pub(crate) fn check_settled(&self) -> Check {
        let now = Instant::now();
        let stats = &self.settled;

        // Every accepted task: its events and its handle agree, and it fits its kind.
        let mut outcomes: HashMap<OutcomeKind, u64> = HashMap::new();
        let (mut unresolved, mut running, mut between) = (0, 0, 0);
        let mut overdue_retry = None;
        for (index, t) in self.tasks.iter().enumerate() {
            let label = t.label;
            ensure!(
                t.ended == t.outcome.map(|o| o.0),
                "task {label}: its events say {:?}, its handle {:?}",
                t.ended,
                t.outcome
            );
            ensure!(
                t.ended_reason == t.outcome_reason,
                "task {label}: handed back with {:?} by the events, {:?} by the handle",
                t.ended_reason,
                t.outcome_reason
            );
            match (t.outcome, t.running, t.retry) {
                (Some((kind, _)), _, _) => *outcomes.entry(kind).or_default() += 1,
                (None, Some(started), _) => {
                    unresolved += 1;
                    running += 1;
                    // Only an attempt that waits for its release or its
                    // timeout may still run, and not past the timeout.
                    let ends = self.possible_ends(index);
                    let may_run = ends.is_empty() || ends == [End::TimedOut];
                    ensure!(
                        may_run,
                        "task {label} (attempt {} of {:?}, released: {}) is still running",
                        t.attempts,
                        t.kind,
                        self.is_released(label)
                    );
                    if let Some(timeout) = self.timeout {
                        ensure!(
                            now < started.by + timeout + TICK,
                            "task {label} started by {:?} ago and has not timed out",
                            now - started.by
                        );
                    }
                }
                (None, None, Some(wait)) => {
                    unresolved += 1;
                    between += 1;
                    if now >= wait.latest() {
                        overdue_retry = Some(label);
                    }
                }
                (None, None, None) => unresolved += 1,
            }
            if let (Some((OutcomeKind::TimedOut, seen)), Some(started), Some(timeout)) =
                (t.outcome, t.last_start, self.timeout)
            {
                ensure!(
                    seen >= started.after + timeout,
                    "task {label} timed out within {:?} of its start",
                    seen - started.after
                );
            }
        }
        // Ids are given on admission, in order, from 0: no gaps, no repeats.
        let mut numbers: Vec<u64> = self.ids.keys().map(|id| id.as_u64()).collect();
        numbers.sort_unstable();
        ensure!(
            numbers.iter().copied().eq(0..self.tasks.len() as u64),
            "task ids are not 0..{}: {numbers:?}",
            self.tasks.len()
        );

        // The counters match what was seen.
        let count = |kind| outcomes.get(&kind).copied().unwrap_or(0);
        let seen = (
            self.tasks.len() as u64,
            count(OutcomeKind::Completed),
            count(OutcomeKind::Failed),
            count(OutcomeKind::Panicked),
            count(OutcomeKind::TimedOut),
            count(OutcomeKind::NotRun),
            count(OutcomeKind::Cancelled),
            unresolved,
            running,
            between,
            self.retries,
        );
        let counted = (
            stats.submitted,
            stats.completed,
            stats.failed,
            stats.panicked,
            stats.timed_out,
            stats.not_run,
            stats.cancelled,
            (stats.queued + stats.in_flight + stats.waiting_retry) as u64,
            stats.in_flight as u64,
            stats.waiting_retry as u64,
            stats.retries,
        );
        ensure!(
            seen == counted,
            "seen (accepted, completed, failed, panicked, timed out, not run, cancelled, \
             unfinished, running, between attempts, retries) = {seen:?}, but {stats:?}"
        );
        self.check_cancels(stats)?;
        for (i, (slot, counted)) in self.slots.iter().zip(&stats.workers).enumerate() {
            ensure!(
                slot.tasks_run == counted.tasks_run && slot.restarts == counted.restarts,
                "worker {i}: {} tasks run and {} restarts seen, but {counted:?}",
                slot.tasks_run,
                slot.restarts
            );
        }
        let busy = self.slots.iter().filter(|s| s.busy.is_some()).count();
        ensure!(
            busy == stats.in_flight,
            "{busy} busy workers seen, but {stats:?}"
        );
        self.check_slots(stats)?;

        // Admission.
        let closed = self.pool.is_closed();
        ensure!(
            closed == (self.phase != Phase::Running),
            "is_closed() = {closed} while {:?}",
            self.phase
        );
        ensure!(
            self.waiting.is_empty() || (!closed && stats.queued >= self.setup.queue_capacity),
            "a submit still waits, but the pool is closed or has room: {stats:?}"
        );

        // Dispatch: nothing waits in the queue, and no retry that is due
        // waits, while a worker in service could take it (a retired one
        // takes nothing); but a task behind an older one with its key waits
        // for its key, not for a worker (see `keys.rs`).
        ensure!(
            self.phase != Phase::Stopping || (stats.queued == 0 && overdue_retry.is_none()),
            "tasks still queued or due for a retry after the stop: {stats:?}"
        );
        let behind = self.behind_keys();
        if stats.queued > behind || overdue_retry.is_some() {
            for (i, slot) in self.slots.iter().enumerate().filter(|(_, s)| !s.retired) {
                let restarting = slot.back.is_some_and(|(_, latest)| now < latest + TICK);
                ensure!(
                    slot.busy.is_some() || restarting,
                    "worker {i} is neither busy nor restarting, yet tasks are queued \
                     ({behind} of them behind their key; or task {overdue_retry:?} is due \
                     for a retry): {stats:?}"
                );
            }
        }
        ensure!(
            self.phase != Phase::Stopping || stats.waiting_retry == 0,
            "tasks still wait for a retry after the stop: {stats:?}"
        );

        // Restarts: every panic that calls for one restarts its worker (right
        // after its event), until one goes past the limit: then the
        // supervisor gives up.
        ensure!(
            stats.restarts == self.restarts,
            "{} restarts seen, {} counted",
            self.restarts,
            stats.restarts
        );
        if let Some(expected) = self.expect_restart {
            ensure!(
                expected.optional,
                "worker {} was not restarted after its panic",
                expected.worker
            );
        }
        let gave_up = self.stopping.iter().any(|r| self.is_restart_limit(r));
        match self.gave_up {
            GaveUp::Yes => ensure!(
                gave_up,
                "a panic went past the restart limit of {}, yet the supervisor did not give up \
                 (it stopped for {:?})",
                self.setup.restart_limit,
                self.stopping
            ),
            GaveUp::No => ensure!(!gave_up, "the supervisor gave up, unasked"),
            GaveUp::Maybe => {}
        }

        // Stop and drain answer once every worker is gone, all with one report.
        let answered: Vec<&StopReport> = self
            .calls
            .iter()
            .filter_map(|c| c.report.as_ref())
            .collect();
        if let Some(first) = answered.first() {
            ensure!(
                answered.iter().all(|r| r == first),
                "stop/drain answered differently: {answered:?}"
            );
            ensure!(
                self.calls.iter().all(|c| c.report.is_some()),
                "a stop/drain is unanswered although another one answered"
            );
            ensure!(
                stats.queued == 0
                    && stats.in_flight == 0
                    && stats.waiting_retry == 0
                    && self.phase != Phase::Running,
                "answered {first:?} while {:?}: {stats:?}",
                self.phase
            );
            ensure!(
                Some(&first.reason) == self.stopping.last() && first.not_run == self.not_run,
                "answered {first:?}, but the events say {:?}, handed back {:?}",
                self.stopping,
                self.not_run
            );
        } else if !self.calls.is_empty() {
            let all_back = self
                .slots
                .iter()
                .all(|s| s.back.is_none_or(|(_, latest)| now >= latest + TICK));
            let done = match self.phase {
                Phase::Running => false,
                Phase::Stopping => stats.in_flight == 0,
                Phase::Draining => {
                    stats.queued == 0
                        && stats.in_flight == 0
                        && stats.waiting_retry == 0
                        && all_back
                }
            };
            ensure!(
                !done,
                "nothing is left to run while {:?}, yet no stop/drain has answered: {stats:?}",
                self.phase
            );
        }
        Ok(())
    }
}
