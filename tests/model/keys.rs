//! Per-key order (`Task::key`): tasks with the same key run one at a time, in
//! submission order (by id: the model is the one submitter), while tasks with
//! other keys, or none, run in parallel as usual.
//!
//! A task holds its key from its key's turn to its final outcome, retries
//! included: a task that started and has not ended (running, or waiting for
//! a retry) holds back every other task with its key. The pool gives the
//! turn to the next task only once the job of the last one has gone, after
//! its terminal event (`TaskCompleted`, `TaskFailed`, `TaskPanicked`,
//! `TaskTimedOut`, `TaskCancelled`, `TaskNotRun`), so the events tell the
//! rules exactly, on one arbiter and on two:
//!
//! - an attempt of a keyed task starts only while every other task with its
//!   key has ended, or is younger and has not started: no two tasks with one
//!   key hold it at once, and first attempts come in id order;
//! - a task waiting for its first attempt behind an older task with its key
//!   that has not ended waits legitimately, though a worker is idle: it
//!   counts as queued (and its status says `Queued`), but the dispatch rule
//!   (`settled.rs`) leaves it out;
//! - on one arbiter, a keyed task's first attempt starts only while no
//!   older task waits for its first attempt free to go (one without a key,
//!   or whose key has no older task left): a keyed task whose key came free
//!   goes behind the tasks submitted before it, and ahead of the keyed ones
//!   after it (tasks without a key keep their order among themselves too).
//!   Tasks without a key may overtake an older keyed task: a keyed task
//!   reaches the supervisor as an actix message, while a worker may take a
//!   younger task without a key from the backlog before that message is
//!   read; the pool promises no order there. One latitude: a key that came
//!   free in this very step may not have been given on yet (the pool passes
//!   a key on between messages, and a worker that reports the end of the
//!   last task with the key may have taken the next task from the backlog
//!   in the same report).

use crate::check::{Check, ensure};
use crate::reference::{Model, Tracked};

/// A task's id, as a number: ids are given out in submission order.
fn id_of(t: &Tracked) -> u64 {
    t.handle.id().as_u64()
}

impl Model {
    /// A step begins: notes which tasks have ended so far (see
    /// [`Model::free_before_step`]).
    pub(crate) fn mark_step(&mut self) {
        for t in &mut self.tasks {
            t.ended_before_step = t.ended.is_some();
        }
    }

    /// Whether task `index` waits for its first attempt: accepted, not
    /// started, not ended.
    fn waits_first(&self, index: usize) -> bool {
        let t = &self.tasks[index];
        t.attempts == 0 && t.running.is_none() && t.ended.is_none()
    }

    /// The other tasks with the key of task `index` (none if it has no key).
    fn same_key(&self, index: usize) -> impl Iterator<Item = &Tracked> {
        let key = self.tasks[index].key;
        self.tasks
            .iter()
            .enumerate()
            .filter(move |(n, t)| key.is_some() && *n != index && t.key == key)
            .map(|(_, t)| t)
    }

    /// Whether task `index` waits behind its key: an older task with its key
    /// has not ended (it holds the key, or waits for it itself).
    pub(crate) fn behind_its_key(&self, index: usize) -> bool {
        let id = id_of(&self.tasks[index]);
        self.same_key(index)
            .any(|u| id_of(u) < id && u.ended.is_none())
    }

    /// Whether task `index`, waiting for its first attempt, was free to go
    /// (no older task with its key left) since before this step began.
    fn free_before_step(&self, index: usize) -> bool {
        let id = id_of(&self.tasks[index]);
        !self
            .same_key(index)
            .any(|u| id_of(u) < id && !u.ended_before_step)
    }

    /// Tasks waiting for their first attempt behind their key: queued, but
    /// not for a worker to take.
    pub(crate) fn behind_keys(&self) -> usize {
        (0..self.tasks.len())
            .filter(|&n| self.waits_first(n) && self.behind_its_key(n))
            .count()
    }

    /// `TaskStarted` of attempt `attempt` of task `index` (before the model
    /// counts it): if it has a key, every other task with that key has
    /// ended, or is younger and has not started. On one arbiter, a first
    /// attempt overtakes no older task free to go (a task without a key
    /// only none without a key: see the module docs).
    pub(crate) fn check_key_on_start(&self, index: usize, attempt: u32) -> Check {
        let t = &self.tasks[index];
        let (label, id) = (t.label, id_of(t));
        for u in self.same_key(index) {
            if u.ended.is_some() {
                continue;
            }
            ensure!(
                u.attempts == 0,
                "task {label} (key {:?}) started attempt {attempt} while task {} with its key \
                 holds it (attempt {}, {})",
                t.key,
                u.label,
                u.attempts,
                if u.running.is_some() {
                    "running"
                } else {
                    "waiting for a retry"
                }
            );
            ensure!(
                id_of(u) > id,
                "task {label} (key {:?}, id {id}) started attempt {attempt} before the older \
                 task {} (id {}) with its key",
                t.key,
                u.label,
                id_of(u)
            );
        }
        if attempt == 1 && !self.threads {
            let overtaken = (0..self.tasks.len()).find(|&n| {
                id_of(&self.tasks[n]) < id
                    && (t.key.is_some() || self.tasks[n].key.is_none())
                    && self.waits_first(n)
                    && !self.behind_its_key(n)
                    && self.free_before_step(n)
            });
            if let Some(n) = overtaken {
                let u = &self.tasks[n];
                return Err(format!(
                    "task {label} (key {:?}, id {id}) started its first attempt before the \
                     older task {} (key {:?}, id {}), free to go since before this step",
                    t.key,
                    u.label,
                    u.key,
                    id_of(u)
                ));
            }
        }
        Ok(())
    }
}
