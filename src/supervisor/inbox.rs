//! The supervisor's inbox for the hot path: jobs from pool handles, and what
//! workers report.
//!
//! An actix message costs two allocations (its envelope and its queue node);
//! this channel keeps its messages in blocks that it reuses, so a task's trip
//! through the pool allocates nothing here. The supervisor owns the receiving
//! end and reads it in its own context, so it is still the one place that
//! handles what arrives. Workers report through the same channel as their
//! tasks' results, so that a worker's exit can never overtake the result it
//! sent before it.
//!
//! A message to the supervisor's mailbox (a stats request, a stop) can arrive
//! while jobs sent before it still wait in the inbox; the handlers of such
//! messages read the inbox first ([`Supervisor::catch_up`]), so that they see
//! every task submitted before they were sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix::ActorFuture;
use tokio::sync::mpsc;

use super::Supervisor;
use crate::job::Job;
use crate::task::Task;
use crate::worker::Attempt;

/// Messages read from the inbox in one go before other work of the
/// supervisor's (its mailbox, its timers) gets a turn.
const BATCH: usize = 256;

/// What reaches the supervisor through its inbox.
pub(crate) enum Inbound<T: Task> {
    /// An accepted job, sent by a pool handle that already holds its permit.
    Job(Job<T>),
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
pub(crate) struct Inbox<T: Task>(mpsc::UnboundedSender<Inbound<T>>);

impl<T: Task> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Inbox(self.0.clone())
    }
}

impl<T: Task> Inbox<T> {
    /// A new inbox, and the end its supervisor reads.
    pub(crate) fn new() -> (Self, InboxReader<T>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Inbox(tx), InboxReader(rx))
    }

    /// Sends `message`. If the supervisor is gone the message is dropped, and a
    /// job inside it hands its task back to its handle as it drops.
    pub(crate) fn send(&self, message: Inbound<T>) {
        let _ = self.0.send(message);
    }
}

/// The supervisor's end of its inbox. It reports the inbox closed once every
/// [`Inbox`] is dropped.
pub(crate) struct InboxReader<T: Task>(mpsc::UnboundedReceiver<Inbound<T>>);

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
        for _ in 0..BATCH {
            match supervisor.inbound.0.poll_recv(task) {
                Poll::Ready(Some(message)) => supervisor.receive(message, ctx),
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        // More is waiting: come back after the mailbox and timers had a turn.
        task.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Task> Supervisor<T> {
    /// Handles everything already in the inbox, before answering a message
    /// that must see it (a stats request, a status query, a stop).
    pub(super) fn catch_up(&mut self, ctx: &mut actix::Context<Self>) {
        // Only what is there now: workers on other arbiters may keep sending.
        for _ in 0..self.inbound.0.len() {
            match self.inbound.0.try_recv() {
                Ok(message) => self.receive(message, ctx),
                Err(_) => break,
            }
        }
    }
}
