//! Cancels: asking for them (by handle, by id, both at once; of a task that
//! has ended, of an id never given out, in the same instant as a release)
//! and the rules for their answers as they come (`cancelled.rs` has those
//! for the tasks they cancel).
//!
//! A cancel is awaited where it is asked, within its step, and its answer
//! must come in the very instant it was asked for: nothing it waits for
//! (its worker's report of the cut-off) needs time to pass. What the pool
//! reported meanwhile is taken in at once, without yielding, so the handle
//! is read as it was when the answer came: a cancel that took effect answers
//! only once the task's handle resolved `Cancelled`, and an `Ended` only
//! once it resolved at all. What needs the events, which reach the model a
//! moment late through a subscriber actor, is checked once the pool settles
//! (`cancelled.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use actix_workerpool::{Cancellation, OutcomeKind, PoolGone, TaskId};
use futures::FutureExt;
use futures::channel::oneshot;
use tokio::time::Instant;

use crate::check::{Check, bounded, ensure};
use crate::commands::{Order, Way, Whom};
use crate::reference::{Model, Tracked};

/// The answers of a cancel (two, for `Way::Both`), still to come.
type Answers<'a> = Pin<Box<dyn Future<Output = Vec<Result<Cancellation, PoolGone>>> + 'a>>;

/// The attempts made by a task whose cancel took effect, as its answer
/// names them (none for a task taken out of the queue); `None` if the
/// cancel took no effect.
pub(crate) fn attempts_named(answer: Cancellation) -> Option<u32> {
    match answer {
        Cancellation::Queued => Some(0),
        Cancellation::WaitingRetry { attempts } | Cancellation::Running { attempts, .. } => {
            Some(attempts)
        }
        _ => None,
    }
}

impl Model {
    /// `Command::Cancel`: cancels `whom`, if there is such a task.
    pub(crate) async fn cancel(&mut self, whom: Whom, way: Way) -> Check {
        match self.whom(whom) {
            Some(index) => self.cancel_task(index, way, None).await,
            None => Ok(()),
        }
    }

    /// Releases a held task and cancels `whom` before anything runs, in
    /// `order`; returns the released task and its attempt if it was running
    /// (as `release` does). With nothing to release, nothing races the
    /// cancel, and none is asked for.
    pub(crate) async fn release_and_cancel(
        &mut self,
        i: usize,
        whom: Whom,
        way: Way,
        order: Order,
    ) -> Result<Option<(usize, u32)>, String> {
        let Some((label, release)) = self.take_hold(i) else {
            return Ok(None);
        };
        let in_hand = self.in_hand(label);
        match self.whom(whom) {
            Some(index) => self.cancel_task(index, way, Some((release, order))).await?,
            None => {
                let _ = release.send(());
            }
        }
        Ok(in_hand)
    }

    /// A cancel of an id the pool never gave out: it must answer `Unknown`.
    pub(crate) async fn cancel_unknown(&mut self, past: u64) -> Check {
        // Ids are given out in order, from 0; a submit waiting for room may
        // be given one meanwhile.
        let given = (self.tasks.len() + self.waiting.len()) as u64;
        let id = TaskId::from(given.saturating_add(past));
        let asked = Instant::now();
        let cancel = Box::pin(self.pool.cancel(id));
        let answer = bounded(self.threads, "pool.cancel()", cancel, false)
            .await?
            .map_err(|_| format!("pool.cancel({id}): the pool is gone"))?;
        self.trace(&format!("{id} (never given out)"), &[answer]);
        ensure!(
            answer == Cancellation::Unknown,
            "a cancel of {id}, an id the pool never gave out, answered {answer:?}"
        );
        ensure!(
            Instant::now() == asked,
            "a cancel of {id} answered after {:?} of virtual time",
            Instant::now() - asked
        );
        Ok(())
    }

    /// With `MODEL_TRACE`: a cancel's answers.
    fn trace(&self, what: &str, answers: &[Cancellation]) {
        if std::env::var_os("MODEL_TRACE").is_some() {
            let at = Instant::now() - self.origin;
            eprintln!("{at:?} cancel of {what}: {answers:?}");
        }
    }

    /// The accepted task a cancel is for, if there is one.
    fn whom(&self, whom: Whom) -> Option<usize> {
        let tasks = &self.tasks;
        let nth = |i: usize, wanted: fn(&Tracked) -> bool| {
            let picked: Vec<usize> = (0..tasks.len()).filter(|&n| wanted(&tasks[n])).collect();
            (!picked.is_empty()).then(|| picked[i % picked.len()])
        };
        match whom {
            Whom::Live(i) => nth(i, |t| t.outcome.is_none()).or_else(|| nth(i, |_| true)),
            Whom::Any(i) => nth(i, |_| true),
            Whom::NextQueued => tasks.iter().position(|t| {
                t.attempts == 0 && t.running.is_none() && t.ended.is_none() && t.outcome.is_none()
            }),
            Whom::Released => {
                let label = self.last_released?;
                tasks.iter().position(|t| t.label == label)
            }
        }
    }

    /// Cancels task `index` the `way` asked, with a `race`: a release sent
    /// in the same instant, before or after the cancel. Waits for the answer
    /// (or both), takes in what came meanwhile, and checks the answers
    /// against the task's handle.
    async fn cancel_task(
        &mut self,
        index: usize,
        way: Way,
        race: Option<(oneshot::Sender<()>, Order)>,
    ) -> Check {
        let asked = Instant::now();
        let threads = self.threads;
        let foreseen = (race.is_none() && !threads).then(|| self.foreseen(index));
        self.tasks[index].cancel_asked = true;
        let handle = &self.tasks[index].handle;
        let (id, pool) = (handle.id(), &self.pool);
        let (what, mut cancel): (_, Answers<'_>) = match way {
            Way::Handle => (
                "handle.cancel()",
                Box::pin(async { vec![handle.cancel().await] }),
            ),
            Way::Id => (
                "pool.cancel()",
                Box::pin(async { vec![pool.cancel(id).await] }),
            ),
            Way::Both => (
                "two cancels at once",
                Box::pin(async {
                    let (first, second) = futures::join!(handle.cancel(), pool.cancel(id));
                    vec![first, second]
                }),
            ),
        };
        // A cancel is sent on its first poll, and read by the supervisor only
        // once this task yields: a release sent after that poll still comes
        // in the same instant, but after the cancel.
        let mut early = None;
        if let Some((release, order)) = race {
            if order == Order::CancelFirst {
                early = (&mut cancel).now_or_never();
            }
            let _ = release.send(());
        }
        let answers = match early {
            Some(answers) => {
                drop(cancel);
                answers
            }
            None => bounded(threads, what, cancel, false).await?,
        };
        let label = self.tasks[index].label;
        let answers: Vec<Cancellation> = answers
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|_| format!("a cancel of task {label} ({id}): the pool is gone"))?;
        self.trace(&format!("task {label} ({id})"), &answers);
        ensure!(
            Instant::now() == asked,
            "a cancel of task {label} answered {answers:?} after {:?} of virtual time",
            Instant::now() - asked
        );
        self.tasks[index].cancels.extend_from_slice(&answers);
        self.take_in()?;
        self.check_answers(index, &answers)?;
        // Of two at once, the one that did not take effect found it ended.
        let answer = answers.iter().copied().find(Cancellation::took_effect);
        let answer = answer.unwrap_or(Cancellation::Ended);
        if let Some(foreseen) = foreseen {
            ensure!(
                foreseen.contains(&answer),
                "a cancel of task {label} answered {answers:?}, expected {foreseen:?}: {:?}",
                self.tasks[index]
            );
        }
        Ok(())
    }

    /// What a cancel of task `index` may answer, with nothing racing it, on
    /// one arbiter, where the pool settled is exactly as the model knows it:
    /// every attempt still running waits, for its release or its timeout.
    fn foreseen(&self, index: usize) -> Vec<Cancellation> {
        let t = &self.tasks[index];
        if t.outcome.is_some() {
            return vec![Cancellation::Ended];
        }
        if let Some(started) = t.running {
            let running = Cancellation::Running {
                worker: started.worker,
                attempts: t.attempts,
            };
            // From its deadline on (its timer may not have fired yet), the
            // attempt may time out as the cut-off comes, the worker looking
            // at its timer first; a timeout the policy does not retry stands.
            let due = self
                .timeout
                .is_some_and(|timeout| Instant::now() >= started.after + timeout);
            return if due {
                vec![running, Cancellation::Ended]
            } else {
                vec![running]
            };
        }
        if t.retry.is_some() {
            return vec![Cancellation::WaitingRetry {
                attempts: t.attempts,
            }];
        }
        vec![Cancellation::Queued]
    }

    /// The answers just come for task `index`, its handle read since.
    fn check_answers(&self, index: usize, answers: &[Cancellation]) -> Check {
        let t = &self.tasks[index];
        let label = t.label;
        let outcome = t.outcome.map(|o| o.0);
        let runs = t.runs.load(Ordering::SeqCst);
        let took = t.cancels.iter().filter(|a| a.took_effect()).count();
        ensure!(
            took <= 1,
            "task {label}: more than one cancel took effect: {:?}",
            t.cancels
        );
        for &answer in answers {
            if let Some(attempts) = attempts_named(answer) {
                ensure!(
                    outcome == Some(OutcomeKind::Cancelled),
                    "task {label}: a cancel answered {answer:?}, but its handle has {outcome:?}"
                );
                ensure!(
                    (attempts == 0) == (answer == Cancellation::Queued),
                    "task {label}: a cancel answered {answer:?}"
                );
                // `run` is called once per attempt, one cut off included,
                // unless it was cut off as it was handed out.
                let cut_off = matches!(answer, Cancellation::Running { .. });
                ensure!(
                    runs == attempts || (cut_off && runs + 1 == attempts),
                    "task {label}: a cancel answered {answer:?}, but the task ran {runs} times"
                );
            } else if answer == Cancellation::Ended {
                ensure!(
                    outcome.is_some(),
                    "task {label}: a cancel answered Ended, but its handle has no outcome"
                );
                // A cancel after one that took effect finds the task ended.
                ensure!(
                    outcome != Some(OutcomeKind::Cancelled) || took == 1,
                    "task {label}: a cancel answered Ended, yet the task ended Cancelled: {:?}",
                    t.cancels
                );
            } else {
                return Err(format!(
                    "task {label}, an id the pool gave out: a cancel answered {answer:?}"
                ));
            }
        }
        Ok(())
    }
}
