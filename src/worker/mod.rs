//! A worker: makes its state, then runs the tasks its supervisor sends it, one
//! at a time, and reports how each attempt went. While tasks wait in the
//! backlog, a worker that finishes one takes the next itself, and says so in
//! its report.
//!
//! A worker is a task on its arbiter rather than an actix actor, and its
//! orders come through a line of its own ([`line`](mod@line)) rather than as actix
//! messages: it is woken once per task it is sent, and an actor would pay on
//! each wake for a look at its (unused) mailbox and for its context's
//! bookkeeping, and two allocations per message. Its loop runs each task's
//! future in place, unboxed. What made it an actor, a life of its own on an
//! arbiter, it keeps: it is spawned there, and when it ends, however it ends,
//! its seat tells the supervisor.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix_rt::ArbiterHandle;
use futures::FutureExt;

use crate::config::StateFactory;
use crate::contain::{drop_contained, forget_payload, panic_message};
use crate::job::Job;
use crate::supervisor::{Inbound, Inbox, Taken};
use crate::task::{Task, TaskContext};

mod line;

/// What a supervisor tells its worker.
enum Order<T: Task> {
    /// Run one attempt of this job.
    Run(Job<T>),
    /// The quit channel: finish the task in hand, then stop. Orders are read
    /// one at a time, so it is read only once the task in hand is done.
    Quit,
}

/// The supervisor's end of the line to one worker.
pub(crate) struct WorkerLink<T: Task>(line::Sender<Order<T>>);

impl<T: Task> WorkerLink<T> {
    /// Gives the worker a job. If the worker is gone, the job waits unread
    /// and drops with the line, handing its task back, once the supervisor
    /// lets go of the link on the worker's exit report, which accounts for it.
    pub(crate) fn run(&self, job: Job<T>) {
        self.0.send(Order::Run(job));
    }

    pub(crate) fn quit(&self) {
        self.0.send(Order::Quit);
    }

    /// Whether the worker is in the middle of a take from the backlog.
    pub(crate) fn is_taking(&self) -> bool {
        self.0.taking().load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How one attempt ended, as the worker saw it.
pub(crate) enum Attempt<T: Task> {
    Returned(Result<T::Output, T::Error>),
    Panicked(String),
    TimedOut,
}

/// What a worker needs to know about its place in the pool.
pub(crate) struct Seat<T: Task> {
    pub(crate) slot: usize,
    pub(crate) generation: u32,
    pub(crate) inbox: Inbox<T>,
    /// Whether the worker runs on its supervisor's thread.
    pub(crate) local: bool,
    pub(crate) state: StateFactory<T::State>,
    pub(crate) timeout: Option<Duration>,
}

/// The seat reports the worker's exit when it is dropped: when the worker's
/// loop ends, when its arbiter stops and drops it mid-task, and when it is
/// sent to an arbiter that has already stopped and is never started at all.
impl<T: Task> Drop for Seat<T> {
    fn drop(&mut self) {
        self.inbox.report(Inbound::Exited {
            slot: self.slot,
            generation: self.generation,
        });
    }
}

/// Starts a worker for `seat` on `arbiter`, or on the current arbiter, and
/// returns the line to it.
pub(crate) fn start<T: Task>(seat: Seat<T>, arbiter: Option<ArbiterHandle>) -> WorkerLink<T> {
    let (link, orders) = line::line();
    match arbiter {
        // The worker's future holds its state and its task's future, which
        // need not be `Send`: it is made on the arbiter's own thread.
        Some(arbiter) => {
            arbiter.spawn_fn(move || {
                actix_rt::spawn(work(seat, orders));
            });
        }
        None => {
            actix_rt::spawn(work(seat, orders));
        }
    }
    WorkerLink(link)
}

/// A worker's life: makes its state (a factory that fails or panics is
/// reported, and the worker ends), says it is ready, then serves orders.
async fn work<T: Task>(seat: Seat<T>, orders: line::Receiver<Order<T>>) {
    let Seat {
        slot, generation, ..
    } = seat;
    let error = match contain_panic(|| (seat.state)(slot)) {
        Ok(Ok(state)) => {
            seat.inbox.report(Inbound::Ready { slot, generation });
            let cx = serve(&seat, orders, TaskContext::new(slot, state)).await;
            drop_contained("Drop of a worker's state", cx);
            return;
        }
        Ok(Err(error)) => error,
        Err(message) => format!("panicked: {message}"),
    };
    seat.inbox.report(Inbound::Failed {
        slot,
        generation,
        error,
    });
}

/// The worker's loop: one attempt per `Run`, its result sent back with the
/// job, until `Quit` (or the supervisor drops the line). After each attempt
/// the worker takes the next job from the backlog itself, if one waits and
/// the supervisor lets it, and says so in the same report; it goes back to
/// its orders only when it has nothing in hand. Gives the worker's state
/// back at the end, for its owner to drop.
async fn serve<T: Task>(
    seat: &Seat<T>,
    mut orders: line::Receiver<Order<T>>,
    mut cx: TaskContext<T::State>,
) -> TaskContext<T::State> {
    while let Some(Order::Run(mut job)) = orders.recv().await {
        loop {
            let result = run_attempt(&mut job, &mut cx, seat.timeout).await;
            // A worker whose task panicked is replaced: it takes nothing more.
            let backlog = seat.inbox.backlog();
            let (mut next, take) = match result {
                Attempt::Panicked(_) => (None, None),
                _ if seat.local => (backlog.pull_local(), None),
                _ => backlog.pull_shared(orders.taking()).unzip(),
            };
            let taken = next.as_mut().map(|next| Taken {
                id: next.id(),
                permit: next.take_permit(),
            });
            seat.inbox.report(Inbound::Done {
                slot: seat.slot,
                job,
                result,
                next: taken,
            });
            // The take is over once its report is sent (see `Backlog::pull`).
            drop(take);
            let Some(next) = next else { break };
            job = next;
            // Tasks that never wait would otherwise keep this worker's thread
            // to itself for as long as the backlog lasts.
            tokio::task::consume_budget().await;
        }
    }
    cx
}

/// Runs `f`, user code, and gives the panic's message if it panics.
fn contain_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = panic_message(payload.as_ref());
        forget_payload(payload);
        message
    })
}

/// Runs one attempt, turning a panic anywhere in the task (in `timeout`, in
/// the call that makes its future, in the future, or in its `Drop`) into
/// `Attempt::Panicked`, and a deadline passed into `Attempt::TimedOut` (the
/// task's future is dropped).
async fn run_attempt<T: Task>(
    job: &mut Job<T>,
    cx: &mut TaskContext<T::State>,
    pool_timeout: Option<Duration>,
) -> Attempt<T> {
    let id = job.id();
    let (task, attempt) = job.start_attempt();
    cx.begin(id, attempt);
    let timeout = match contain_panic(|| task.timeout()) {
        Ok(own) => own.or(pool_timeout),
        Err(message) => return Attempt::Panicked(message),
    };
    // The task's future is made, polled and dropped (when it ends or times
    // out) inside `catch_unwind`, so a panic in its `Drop` is caught too.
    let caught = match timeout {
        // `async`, so that a panic in the call that makes the future is caught.
        None => AssertUnwindSafe(async { task.run(cx).await })
            .catch_unwind()
            .await
            .map(Attempt::Returned),
        Some(limit) => {
            AssertUnwindSafe(async {
                match actix_rt::time::timeout(limit, task.run(cx)).await {
                    Ok(result) => Attempt::Returned(result),
                    Err(_elapsed) => Attempt::TimedOut,
                }
            })
            .catch_unwind()
            .await
        }
    };
    match caught {
        Ok(attempt) => attempt,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            forget_payload(payload);
            Attempt::Panicked(message)
        }
    }
}
