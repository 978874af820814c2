//! The jobs the supervisor holds for the next free worker: retries that are
//! due, and jobs read from the backlog before a worker was free for them (to
//! answer a status query, say). Most waiting jobs wait in the backlog itself.
//! These are older than any job in the backlog, so while this queue holds any,
//! workers take no job from the backlog themselves: they come back idle, and
//! the supervisor hands them these first.
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
    /// Told whenever this queue turns empty or stops being so.
    backlog: Arc<Backlog<T>>,
}

impl<T: Task> TaskQueue<T> {
    pub(crate) fn new(backlog: Arc<Backlog<T>>) -> Self {
        TaskQueue {
            jobs: VecDeque::new(),
            backlog,
        }
    }

    pub(crate) fn push(&mut self, job: Job<T>) {
        self.hold();
        self.jobs.push_back(job);
    }

    /// Puts a job ahead of the others: a retry, which has waited already.
    pub(crate) fn push_front(&mut self, job: Job<T>) {
        self.hold();
        self.jobs.push_front(job);
    }

    pub(crate) fn pop(&mut self) -> Option<Job<T>> {
        let job = self.jobs.pop_front()?;
        if self.jobs.is_empty() {
            self.backlog.bar(Bar::Held, false);
        }
        Some(job)
    }

    fn hold(&mut self) {
        if self.jobs.is_empty() {
            self.backlog.bar(Bar::Held, true);
        }
    }

    pub(crate) fn contains(&self, id: TaskId) -> bool {
        self.jobs.iter().any(|job| job.id() == id)
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}
