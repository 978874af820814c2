//! The supervisor's inbox for the hot path: jobs from pool handles, and what
//! workers report.
//!
//! An actix message costs two allocations (its envelope and its queue node);
//! these channels keep their messages in blocks that they reuse, so a task's
//! trip through the pool allocates nothing here. The supervisor owns the
//! receiving ends and reads them in its own context, so it is still the one
//! place that handles what arrives.
//!
//! Reports are read as they come. Workers send them all through one channel,
//! so that a worker's exit can never overtake the result it sent before it.
//! Jobs are read only when a worker is free to take one (or the pool is
//! stopping, to hand them back): until then the channel is the queue, and a
//! waiting task is stored once, not copied into a second queue.
//!
//! A message to the supervisor's mailbox can arrive while what was sent before
//! it still waits in the inbox. A stats request reads the reports in first,
//! and counts the jobs still waiting; a status query, a stop and a drain read
//! the jobs in too ([`Supervisor::catch_up`]), so that they see every task
//! submitted before them. A job admitted on another thread while a stop is
//! under way is caught by the gate: a stop reports only once every admitted
//! job has come in and been handed back.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use actix::ActorFuture;
use tokio::sync::mpsc;

use super::Supervisor;
use crate::job::Job;
use crate::task::Task;
use crate::worker::Attempt;

/// Messages read from the inbox in one go before other work of the
/// supervisor's (its mailbox, its timers) gets a turn.
const BATCH: usize = 256;

/// What workers report to the supervisor through its inbox.
pub(crate) enum Inbound<T: Task> {
    /// A worker finished an attempt.
    Done {
        slot: usize,
        job: Job<T>,
        result: Attempt<T>,
    },
    /// A worker made its state and can take tasks.
    Ready { slot: usize, generation: u32 },
    /// A worker could not make its state, and is stopping.
    Failed {
        slot: usize,
        generation: u32,
        error: String,
    },
    /// A worker is gone (it quit, or was dropped with its arbiter).
    Exited { slot: usize, generation: u32 },
}

/// The sending end of a supervisor's inbox.
pub(crate) struct Inbox<T: Task> {
    jobs: mpsc::UnboundedSender<Job<T>>,
    reports: mpsc::UnboundedSender<Inbound<T>>,
}

impl<T: Task> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Inbox {
            jobs: self.jobs.clone(),
            reports: self.reports.clone(),
        }
    }
}

impl<T: Task> Inbox<T> {
    /// A new inbox, and the end its supervisor reads.
    pub(crate) fn new() -> (Self, InboxReader<T>) {
        let (jobs, jobs_rx) = mpsc::unbounded_channel();
        let (reports, reports_rx) = mpsc::unbounded_channel();
        let reader = InboxReader {
            jobs: jobs_rx,
            reports: reports_rx,
            waker: None,
        };
        (Inbox { jobs, reports }, reader)
    }

    /// Sends an accepted job, whose permit is held. If the supervisor is gone
    /// the job is dropped here, and hands its task back to its handle.
    pub(crate) fn submit(&self, job: Job<T>) {
        let _ = self.jobs.send(job);
    }

    /// Sends a worker's report. If the supervisor is gone there is nobody to
    /// tell; a job inside hands its task back as it drops.
    pub(crate) fn report(&self, message: Inbound<T>) {
        let _ = self.reports.send(message);
    }
}

/// The supervisor's end of its inbox. Each channel reports itself closed once
/// every [`Inbox`] is dropped.
pub(crate) struct InboxReader<T: Task> {
    jobs: mpsc::UnboundedReceiver<Job<T>>,
    reports: mpsc::UnboundedReceiver<Inbound<T>>,
    /// Wakes [`ReadInbox`], after a worker freed up outside it.
    waker: Option<Waker>,
}

impl<T: Task> InboxReader<T> {
    pub(super) fn has_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Jobs waiting in the inbox: accepted, and queued as much as those in
    /// the supervisor's own queue.
    pub(super) fn jobs_waiting(&self) -> usize {
        self.jobs.len()
    }
}

/// The supervisor's standing task: reads its inbox, a batch per turn, for as
/// long as anyone can send to it.
pub(super) struct ReadInbox;

impl<T: Task> ActorFuture<Supervisor<T>> for ReadInbox {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        supervisor: &mut Supervisor<T>,
        ctx: &mut actix::Context<Supervisor<T>>,
        task: &mut Context<'_>,
    ) -> Poll<()> {
        let waker = &mut supervisor.inbound.waker;
        if !waker.as_ref().is_some_and(|w| w.will_wake(task.waker())) {
            *waker = Some(task.waker().clone());
        }
        for _ in 0..BATCH {
            let report = supervisor.inbound.reports.poll_recv(task);
            if let Poll::Ready(Some(message)) = report {
                supervisor.receive(message, ctx);
                continue;
            }
            // Not looked at (so not woken for) while no worker could take a
            // job: a worker that frees up sends a report, which wakes this.
            let job = if supervisor.takes_jobs() {
                supervisor.inbound.jobs.poll_recv(task)
            } else {
                Poll::Pending
            };
            match (report, job) {
                (_, Poll::Ready(Some(job))) => supervisor.accept(job),
                (Poll::Ready(None), Poll::Ready(None)) => return Poll::Ready(()),
                _ => return Poll::Pending,
            }
        }
        // More is waiting: come back after the mailbox and timers had a turn.
        task.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Task> Supervisor<T> {
    /// Handles the reports already in the inbox, before answering a message
    /// that must see them (a stats request).
    pub(super) fn catch_up_reports(&mut self, ctx: &mut actix::Context<Self>) {
        // Only what is there now: workers on other arbiters may keep sending.
        for _ in 0..self.inbound.reports.len() {
            match self.inbound.reports.try_recv() {
                Ok(message) => self.receive(message, ctx),
                Err(_) => break,
            }
        }
        // A report read here may have freed a worker while `ReadInbox` was
        // not watching for jobs; let it look again.
        if let Some(waker) = &self.inbound.waker {
            waker.wake_by_ref();
        }
    }

    /// Handles everything already in the inbox, reports and jobs, before
    /// answering a message that must see every job (a status query, a stop).
    pub(super) fn catch_up(&mut self, ctx: &mut actix::Context<Self>) {
        self.catch_up_reports(ctx);
        for _ in 0..self.inbound.jobs.len() {
            match self.inbound.jobs.try_recv() {
                Ok(job) => self.accept(job),
                Err(_) => break,
            }
        }
    }

    /// The next job waiting in the inbox; it counts as submitted from here on.
    pub(super) fn next_submitted(&mut self) -> Option<Job<T>> {
        let job = self.inbound.jobs.try_recv().ok()?;
        self.counts.submitted += 1;
        Some(job)
    }
}
