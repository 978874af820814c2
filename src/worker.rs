//! The worker actor: runs one task at a time and reports how it went.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use actix::prelude::*;
use futures::FutureExt;

use crate::job::Job;
use crate::supervisor::{Done, Supervisor, WorkerExited};
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
}

pub(crate) struct Worker<T: Task> {
    slot: usize,
    supervisor: Addr<Supervisor<T>>,
    /// Lent to the running task's future, and back when it ends.
    cx: Option<TaskContext<T::State>>,
}

impl<T: Task> Worker<T> {
    pub(crate) fn new(slot: usize, supervisor: Addr<Supervisor<T>>, state: T::State) -> Self {
        Worker {
            slot,
            supervisor,
            cx: Some(TaskContext::new(slot, state)),
        }
    }
}

// The worker state is moved in and out of each attempt's future, never pinned.
impl<T: Task> Unpin for Worker<T> {}

impl<T: Task> Actor for Worker<T> {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        self.supervisor.do_send(WorkerExited { slot: self.slot });
    }
}

impl<T: Task> Handler<Run<T>> for Worker<T> {
    type Result = ();

    fn handle(&mut self, Run(mut job): Run<T>, ctx: &mut Self::Context) {
        let mut cx = self
            .cx
            .take()
            .expect("a worker's mailbox waits while it runs a task");
        let attempt = async move {
            let result = run_attempt(&mut job, &mut cx).await;
            (job, cx, result)
        };
        // `wait`, not `spawn`: the mailbox (and so a `Quit`) waits until the task
        // in hand is done, which is exactly the quit channel's promise.
        ctx.wait(
            attempt
                .into_actor(self)
                .map(|(job, cx, result), worker, _| {
                    worker.cx = Some(cx);
                    worker.supervisor.do_send(Done {
                        slot: worker.slot,
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
/// makes its future) into `Attempt::Panicked`.
async fn run_attempt<T: Task>(job: &mut Job<T>, cx: &mut TaskContext<T::State>) -> Attempt<T> {
    let id = job.id();
    let (task, attempt) = job.start_attempt();
    cx.begin(id, attempt);
    let run = AssertUnwindSafe(async { task.run(cx).await });
    match run.catch_unwind().await {
        Ok(result) => Attempt::Returned(result),
        Err(payload) => Attempt::Panicked(panic_message(payload.as_ref())),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
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
