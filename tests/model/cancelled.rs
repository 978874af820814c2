//! The rules for the tasks that cancels are asked for: a `TaskCancelled` event
//! ends a task that was asked to be cancelled, its running attempt cut off
//! or ended by itself; and once the pool settles, each answer that took
//! effect against the task's event, each outcome against the answers, and
//! the events against `Stats::cancelled`.

use std::sync::atomic::Ordering;

use actix_workerpool::{Cancellation, OutcomeKind, Stats, TaskId};
use tokio::time::Instant;

use crate::check::{Check, ensure};
use crate::commands::End;
use crate::reference::{CancelSeen, Model, Phase};

/// What the `TaskCancelled` event of a task whose cancel answered `answer`
/// (one that took effect) says.
fn event_of(answer: Cancellation) -> Option<CancelSeen> {
    Some(match answer {
        Cancellation::Queued => CancelSeen {
            attempts: 0,
            worker: None,
        },
        Cancellation::WaitingRetry { attempts } => CancelSeen {
            attempts,
            worker: None,
        },
        Cancellation::Running { worker, attempts } => CancelSeen {
            attempts,
            worker: Some(worker),
        },
        _ => return None,
    })
}

impl Model {
    /// `TaskCancelled`: a task that was asked to be cancelled ends, once,
    /// with the attempts seen. A running attempt is over: cut off (it was
    /// waiting), or ended by itself as the cancel came in a way the policy
    /// retries, and not retried. A worker whose attempt was cut off goes on
    /// without a restart; one whose attempt panicked is replaced, as after
    /// any panic.
    pub(crate) fn on_task_cancelled(&mut self, task: TaskId, attempts: u32) -> Check {
        let index = self.index_of(task)?;
        let phase = self.phase;
        let t = &self.tasks[index];
        let label = t.label;
        ensure!(t.cancel_asked, "no cancel was asked for task {label}");
        ensure!(t.ended.is_none(), "a second outcome, after {:?}", t.ended);
        ensure!(
            attempts == t.attempts,
            "it says {attempts} attempts, {} were seen",
            t.attempts
        );
        let mut panicked = false;
        let worker = match t.running {
            Some(started) => {
                panicked = self.cut_off_or_retried(index)?;
                let slot = &mut self.slots[started.worker];
                ensure!(
                    slot.busy == Some(task),
                    "worker {} was running {:?}, not {task}",
                    started.worker,
                    slot.busy
                );
                slot.busy = None;
                slot.tasks_run += 1;
                if !panicked {
                    slot.consecutive = 0;
                    self.may_take_last(started.worker);
                }
                Some(started.worker)
            }
            None => {
                ensure!(
                    phase != Phase::Stopping,
                    "a task that was not running was cancelled after the stop \
                     (the stop should have handed it back)"
                );
                ensure!(
                    (t.attempts == 0) == t.retry.is_none(),
                    "cancelled after {} attempts, waiting for a retry: {:?}",
                    t.attempts,
                    t.retry
                );
                None
            }
        };
        let t = &mut self.tasks[index];
        t.running = None;
        t.retry = None;
        t.ended = Some(OutcomeKind::Cancelled);
        t.cancelled = Some(CancelSeen { attempts, worker });
        self.cancelled += 1;
        if let (true, Some(worker)) = (panicked, worker) {
            self.on_panic(worker, label);
        }
        Ok(())
    }

    /// Task `index`, cancelled as it ran its last attempt: that attempt was
    /// cut off, or ended by itself as the cancel came in a way its policy
    /// retries (and the retry is not made). Whether it panicked.
    ///
    /// An attempt can be cut off as it is handed out, before any of its code
    /// runs (then `run` was never called: it counts all the same), or while
    /// it waits; one that was released in this very instant, with the
    /// cancel, may not have seen its release yet. An attempt whose code ran
    /// and that does not wait ended on its first poll (a panic, say, taken
    /// by a worker just as the cancel came): by itself.
    fn cut_off_or_retried(&self, index: usize) -> Result<bool, String> {
        let t = &self.tasks[index];
        let (runs, attempts) = (t.runs.load(Ordering::SeqCst), t.attempts);
        if runs + 1 == attempts {
            return Ok(false);
        }
        ensure!(
            runs == attempts,
            "attempt {attempts} was cancelled as it ran, but the task ran {runs} times"
        );
        let ends = self.possible_ends(index);
        let released_now = self.released.get(&t.label) == Some(&Instant::now());
        let waits = ends.is_empty() || ends.contains(&End::TimedOut) || released_now;
        let retried = ends.iter().any(|end| self.setup.retries(*end, attempts));
        ensure!(
            waits || retried,
            "attempt {attempts} ({:?}) may end {ends:?}: it could neither be cut off \
             nor be retried, yet it was cancelled as it ran",
            t.kind.act(attempts)
        );
        // A panic ends the task (`TaskPanicked`) unless the policy retries it.
        Ok(ends == [End::Panicked] && self.setup.retries(End::Panicked, attempts))
    }

    /// The rules for cancels, once the pool has settled: a task ends
    /// `Cancelled` exactly when one of its cancels took effect, and then its
    /// `TaskCancelled` event says what the answer said (a task taken out of
    /// the queue never started; one cut off ran its last attempt on the
    /// worker named); no attempt starts after an outcome; the events match
    /// the counter.
    pub(crate) fn check_cancels(&self, stats: &Stats) -> Check {
        for t in &self.tasks {
            let label = t.label;
            let took = t.took_effect();
            if let Some((kind, _)) = t.outcome {
                ensure!(
                    (kind == OutcomeKind::Cancelled) == took.is_some(),
                    "task {label} ended {kind:?}, but its cancels answered {:?}",
                    t.cancels
                );
                ensure!(
                    t.runs_fit(),
                    "task {label} ran {} times, {} attempts seen: one started after it ended",
                    t.runs.load(Ordering::SeqCst),
                    t.attempts
                );
            }
            let expected = took.and_then(event_of);
            ensure!(
                t.cancelled == expected,
                "task {label}: its cancels answered {:?}, so its event should say {expected:?}, \
                 but it says {:?}",
                t.cancels,
                t.cancelled
            );
        }
        ensure!(
            self.cancelled == stats.cancelled,
            "{} TaskCancelled events seen, but {stats:?}",
            self.cancelled
        );
        Ok(())
    }
}
