//! Per-key order: tasks with the same key (see [`Task::key`]) run one at a
//! time, in the order they were submitted.
//!
//! Keyed jobs never enter the backlog that workers take from themselves:
//! the backlog sends each one to the supervisor as an actix message
//! ([`Keyed`]), which keeps the order of one submitter's jobs. There, a job
//! whose key is free gets the key's [`Turn`] and goes to the supervisor's
//! queue, ahead of the backlog, for the next free worker; a job whose key
//! is taken waits in the key's line, holding its place in the queue (it
//! counts as queued). The turn lives in the job, and ends when the job
//! does, however it ends (an outcome, a hand-back, a cancel, a job dropped
//! with its arbiter), on whichever thread: it then tells the supervisor,
//! which gives the turn to the next job in the line. Through retries the
//! job, and so the turn, lives on: a retry holds back the tasks behind it.
//! A task whose worker is stuck holds its key until the thread gives it
//! back: it may still be running.
//!
//! Tasks without a key pay for this only with a look at their (empty)
//! extras as they are submitted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix::prelude::*;

use super::Supervisor;
use super::lane::Lane;
use crate::job::Job;
use crate::task::{Task, TaskId, TaskKey};

/// A keyed job on its way from a pool handle to the supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Keyed<T: Task>(pub(crate) Job<T>);

/// A key's turn, held by the job that has it; its end tells the supervisor.
pub(crate) struct Turn {
    key: TaskKey,
    ended: Arc<Lane<TaskKey>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.ended.push(self.key);
    }
}

/// The keys whose turn a job has, and the jobs waiting behind each.
pub(super) struct Keys<T: Task> {
    /// Per key taken: the jobs waiting for it, in the order they came.
    lines: HashMap<TaskKey, VecDeque<Job<T>>>,
    /// Jobs waiting in `lines`.
    waiting: usize,
    /// Keys whose turn ended, pushed by the turn's drop.
    ended: Arc<Lane<TaskKey>>,
}

impl<T: Task> Keys<T> {
    pub(super) fn new() -> Self {
        Keys {
            lines: HashMap::new(),
            waiting: 0,
            ended: Arc::new(Lane::new()),
        }
    }

    /// Whether no key is taken.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Jobs waiting for their key.
    pub(super) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Takes on a keyed job: `Some` with the job, which now has its key's
    /// turn, if the key was free; `None` if it waits behind another.
    pub(super) fn admit(&mut self, mut job: Job<T>, key: TaskKey) -> Option<Job<T>> {
        match self.lines.get_mut(&key) {
            Some(line) => {
                line.push_back(job);
                self.waiting += 1;
                None
            }
            None => {
                self.lines.insert(key, VecDeque::new());
                job.take_turn(self.turn(key));
                Some(job)
            }
        }
    }

    fn turn(&self, key: TaskKey) -> Turn {
        Turn {
            key,
            ended: self.ended.clone(),
        }
    }

    /// The next key whose turn has ended, or a wake-up when one does.
    pub(super) fn poll_ended(&self, cx: &mut Context<'_>) -> Poll<TaskKey> {
        self.ended.poll_pop(cx)
    }

    /// The key's turn has ended: the next job in its line, which has the
    /// turn now, if any; else the key is free.
    pub(super) fn next(&mut self, key: TaskKey) -> Option<Job<T>> {
        let line = self.lines.get_mut(&key)?;
        match line.pop_front() {
            Some(mut job) => {
                self.waiting -= 1;
                job.take_turn(self.turn(key));
                Some(job)
            }
            None => {
                self.lines.remove(&key);
                None
            }
        }
    }

    /// Takes out the waiting job with this id, if there is one (a cancel).
    pub(super) fn remove(&mut self, id: TaskId) -> Option<Job<T>> {
        for line in self.lines.values_mut() {
            if let Some(at) = line.iter().position(|job| job.id() == id) {
                self.waiting -= 1;
                return line.remove(at);
            }
        }
        None
    }

    /// The oldest job waiting for its key, if any.
    pub(super) fn oldest(&self) -> Option<TaskId> {
        self.lines
            .values()
            .filter_map(|line| line.front().map(Job::id))
            .min()
    }

    /// Whether the job with this id waits for its key.
    pub(super) fn holds(&self, id: TaskId) -> bool {
        self.lines
            .values()
            .any(|line| line.iter().any(|job| job.id() == id))
    }

    /// Takes out every waiting job (a stop hands them back), in the order
    /// they came within each key.
    pub(super) fn take_waiting(&mut self) -> Vec<Job<T>> {
        self.waiting = 0;
        let mut jobs: Vec<Job<T>> = self
            .lines
            .values_mut()
            .flat_map(|line| line.drain(..))
            .collect();
        jobs.sort_by_key(Job::id);
        jobs
    }
}

impl<T: Task> Supervisor<T> {
    /// Takes on a keyed job (see the module docs).
    pub(super) fn accept_keyed(&mut self, job: Job<T>, key: TaskKey) {
        self.counts.submitted += 1;
        // Admitted just before the gate closed: it goes straight back.
        let Some(job) = self.unless_stopping(job) else {
            return;
        };
        if let Some(job) = self.keys.admit(job, key) {
            self.queue_keyed(job);
            self.pump();
        }
    }

    /// Queues a keyed job that has its key's turn, in submission order with
    /// the rest: the jobs in the backlog come into the supervisor's queue
    /// first, since workers take nothing from the backlog while the queue
    /// holds a job, and the job goes behind those submitted before it.
    fn queue_keyed(&mut self, job: Job<T>) {
        self.read_backlog();
        self.queue.insert_in_order(job);
    }

    /// Gives the turns that ended to the next job of each key. Run between
    /// messages; nothing to do while no key is taken.
    #[inline]
    pub(super) fn settle_keys(&mut self, cx: &mut Context<'_>) {
        if self.keys.is_empty() {
            return;
        }
        let mut queued = false;
        while let Poll::Ready(key) = self.keys.poll_ended(cx) {
            let Some(job) = self.keys.next(key) else {
                continue;
            };
            if let Some(job) = self.unless_stopping(job) {
                self.queue_keyed(job);
                queued = true;
            }
        }
        if queued {
            self.pump();
        }
    }

    /// Hands back every job waiting for its key: the pool is stopping.
    pub(super) fn hand_back_keyed(&mut self, reason: &crate::outcome::StopReason) {
        if self.keys.waiting() == 0 {
            return;
        }
        for job in self.keys.take_waiting() {
            self.hand_back(job, reason.clone());
        }
    }
}

impl<T: Task> Handler<Keyed<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, Keyed(job): Keyed<T>, _: &mut Self::Context) {
        match job.key() {
            Some(key) => self.accept_keyed(job, key),
            // Not sent without a key; taken on as any job should that change.
            None => self.accept(job),
        }
    }
}
