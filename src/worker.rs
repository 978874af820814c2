//! The worker actor: makes its state, runs one task at a time, and reports how
//! each attempt went.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix::prelude::*;
use futures::FutureExt;

use crate::config::StateFactory;
use crate::job::Job;
use crate::supervisor::{Done, Supervisor, WorkerExited, WorkerFailed, WorkerReady};
use crate::task::{Task, TaskContext};

/// Runs one task on this worker.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Run<T: Task>(pub(crate) Job<T>);

/// The quit channel: finish the task in hand, then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Quit;

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
    pub(crate) supervisor: Addr<Supervisor<T>>,
    pub(crate) state: StateFactory<T::State>,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Worker<T: Task> {
    seat: Seat<T>,
    /// Lent to the running task's future, and back when it ends; `None` until
    /// the state is made.
    cx: Option<TaskContext<T::State>>,
}

impl<T: Task> Worker<T> {
    pub(crate) fn new(seat: Seat<T>) -> Self {
        Worker { seat, cx: None }
    }
}

// The worker state is moved in and out of each attempt's future, never pinned.
impl<T: Task> Unpin for Worker<T> {}

impl<T: Task> Actor for Worker<T> {
    type Context = Context<Self>;

    /// Makes the worker's state here, on the worker's own arbiter; a factory
    /// that fails or panics is reported, and the worker stops.
    fn started(&mut self, ctx: &mut Self::Context) {
        let Seat {
            slot, generation, ..
        } = self.seat;
        let made = std::panic::catch_unwind(AssertUnwindSafe(|| (self.seat.state)(slot)));
        let failure = match made {
            Ok(Ok(state)) => {
                self.cx = Some(TaskContext::new(slot, state));
                self.seat
                    .supervisor
                    .do_send(WorkerReady { slot, generation });
                return;
            }
            Ok(Err(error)) => error,
            Err(payload) => format!("panicked: {}", panic_message(payload.as_ref())),
        };
        self.seat.supervisor.do_send(WorkerFailed {
            slot,
            generation,
            error: failure,
        });
        ctx.stop();
    }
}

/// The seat reports the worker's exit when it is dropped, not `stopped`: an
/// actor dropped with its arbiter is never told it stopped, and a worker sent
/// to an arbiter that stops before making it is never made at all; the seat
/// goes in either case, and the supervisor hears of it.
impl<T: Task> Drop for Seat<T> {
    fn drop(&mut self) {
        self.supervisor.do_send(WorkerExited {
            slot: self.slot,
            generation: self.generation,
        });
    }
}

impl<T: Task> Handler<Run<T>> for Worker<T> {
    type Result = ();

    fn handle(&mut self, Run(mut job): Run<T>, ctx: &mut Self::Context) {
        let mut cx = self
            .cx
            .take()
            .expect("a worker is sent tasks only once ready, and one at a time");
        let pool_timeout = self.seat.timeout;
        let attempt = async move {
            let result = run_attempt(&mut job, &mut cx, pool_timeout).await;
            (job, cx, result)
        };
        // `wait`, not `spawn`: the mailbox (and so a `Quit`) waits until the task
        // in hand is done, which is exactly the quit channel's promise.
        ctx.wait(
            attempt
                .into_actor(self)
                .map(|(job, cx, result), worker, _| {
                    worker.cx = Some(cx);
                    worker.seat.supervisor.do_send(Done {
                        slot: worker.seat.slot,
                        job,
                        result,
                    });
                }),
        );
    }
}

impl<T: Task> Handler<Quit> for Worker<T> {
    type Result = ();

    fn handle(&mut self, _: Quit, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Runs one attempt, turning a panic anywhere in the task (even in the call that
/// makes its future) into `Attempt::Panicked`, and a deadline passed into
/// `Attempt::TimedOut` (the task's future is dropped).
async fn run_attempt<T: Task>(
    job: &mut Job<T>,
    cx: &mut TaskContext<T::State>,
    pool_timeout: Option<Duration>,
) -> Attempt<T> {
    let id = job.id();
    let (task, attempt) = job.start_attempt();
    cx.begin(id, attempt);
    let timeout = match std::panic::catch_unwind(AssertUnwindSafe(|| task.timeout())) {
        Ok(own) => own.or(pool_timeout),
        Err(payload) => return Attempt::Panicked(panic_message(payload.as_ref())),
    };
    let run = AssertUnwindSafe(async { task.run(cx).await }).catch_unwind();
    let caught = match timeout {
        Some(limit) => match actix_rt::time::timeout(limit, run).await {
            Ok(caught) => caught,
            Err(_elapsed) => return Attempt::TimedOut,
        },
        None => run.await,
    };
    match caught {
        Ok(result) => Attempt::Returned(result),
        Err(payload) => Attempt::Panicked(panic_message(payload.as_ref())),
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        assert_eq!(panic_message(&"boom"), "boom");
        assert_eq!(panic_message(&String::from("bang")), "bang");
        assert!(panic_message(&42u8).contains("not a string"));
    }
}
