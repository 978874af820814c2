//! The jobs the supervisor holds for the next free worker: retries that are
//! due, and jobs read from the backlog before a worker was free for them (to
//! answer a status query, say). Most waiting jobs wait in the backlog itself.
//! These are older than any job in the backlog (a keyed job whose key comes
//! free is queued after the backlog is read in, in submission order), so
//! while this queue holds any, workers take no job from the backlog
//! themselves: they come back idle, and the supervisor hands them these first.
//!
//! Kept behind this small type so that dispatch does not care where waiting
//! tasks live: a broker-backed queue can replace the in-memory one here. The
//! queue grows as jobs arrive; it reserves nothing up front for its capacity
//! (admission, in the gate, is what bounds it).

use std::collections::VecDeque;
use std::sync::Arc;

use super::backlog::{Backlog, Bar};
use crate::job::Job;
use crate::task::{Task, TaskId};

pub(crate) struct TaskQueue<T: Task> {
    jobs: VecDeque<Job<T>>,
    /// How many of `jobs` are due retries: they hold no place in the queue,
    /// and the stats count them with the retries, not with the queued tasks.
    retries: usize,
    /// Told whenever this queue turns empty or stops being so.
    backlog: Arc<Backlog<T>>,
}

impl<T: Task> TaskQueue<T> {
    pub(crate) fn new(backlog: Arc<Backlog<T>>) -> Self {
        TaskQueue {
            jobs: VecDeque::new(),
            retries: 0,
            backlog,
        }
    }

    pub(crate) fn push(&mut self, job: Job<T>) {
        self.hold(&job);
        self.jobs.push_back(job);
    }

    /// Puts a job waiting for its first attempt behind those submitted
    /// before it, and ahead of those submitted after it (a keyed job whose
    /// key has come free; ids are given in submission order).
    pub(crate) fn insert_in_order(&mut self, job: Job<T>) {
        let id = job.id();
        let at = self
            .jobs
            .iter()
            .position(|queued| queued.holds_place() && queued.id() > id)
            .unwrap_or(self.jobs.len());
        self.hold(&job);
        self.jobs.insert(at, job);
    }

    /// Puts a job ahead of the others: a retry, which has waited already.
    pub(crate) fn push_front(&mut self, job: Job<T>) {
        self.hold(&job);
        self.jobs.push_front(job);
    }

    pub(crate) fn pop(&mut self) -> Option<Job<T>> {
        let job = self.jobs.pop_front()?;
        Some(self.release(job))
    }

    /// Takes out the job with this id, if it waits here (a cancel).
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Job<T>> {
        let at = self.jobs.iter().position(|job| job.id() == id)?;
        let job = self.jobs.remove(at)?;
        Some(self.release(job))
    }

    /// Books a job's leaving: the counterpart of `hold`.
    fn release(&mut self, job: Job<T>) -> Job<T> {
        if !job.holds_place() {
            self.retries -= 1;
        }
        if self.jobs.is_empty() {
            self.backlog.bar(Bar::Held, false);
        }
        job
    }

    fn hold(&mut self, job: &Job<T>) {
        if !job.holds_place() {
            self.retries += 1;
        }
        if self.jobs.is_empty() {
            self.backlog.bar(Bar::Held, true);
        }
    }

    /// The oldest job here that waits for its first attempt (holding its
    /// place), if any: jobs read early come in the order they were
    /// submitted, behind the due retries put in front.
    pub(crate) fn oldest_waiting(&self) -> Option<TaskId> {
        self.jobs
            .iter()
            .filter(|job| job.holds_place())
            .map(Job::id)
            .min()
    }

    /// The job with this id, if it waits here.
    pub(crate) fn find(&self, id: TaskId) -> Option<&Job<T>> {
        self.jobs.iter().find(|job| job.id() == id)
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Due retries waiting here for a worker.
    pub(crate) fn retries(&self) -> usize {
        self.retries
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
