//! The supervisor's message handlers: each hands over to a method that says
//! what the message means.

use actix::prelude::*;
use log::{debug, warn};

use super::slots::SlotState;
use super::{Done, Enqueue, HandlesDropped, Supervisor, WorkerExited, WorkerFailed, WorkerReady};
use crate::error::{SubmitError, TrySubmitError};
use crate::gate::Refusal;
use crate::job::{Job, TaskHandle};
use crate::messages::{
    Drain, GetStats, GetStatus, Stop, StopReport, Submit, SubmitAndReport, Subscribe, TaskReport,
    TrySubmit, WhenStopped,
};
use crate::outcome::StopReason;
use crate::stats::RestartReason;
use crate::task::Task;

impl<T: Task> Handler<Enqueue<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, Enqueue(job): Enqueue<T>, _: &mut Self::Context) {
        self.accept(job);
    }
}

impl<T: Task> Handler<Done<T>> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, done: Done<T>, ctx: &mut Self::Context) {
        self.finish_attempt(done.slot, done.job, done.result, ctx);
    }
}

impl<T: Task> Handler<WorkerReady> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, msg: WorkerReady, _: &mut Self::Context) {
        if self.is_current(msg.slot, msg.generation) {
            self.worker_ready(msg.slot);
        }
    }
}

impl<T: Task> Handler<WorkerFailed> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, msg: WorkerFailed, ctx: &mut Self::Context) {
        if !self.is_current(msg.slot, msg.generation) {
            return;
        }
        warn!("worker {} failed to start: {}", msg.slot, msg.error);
        let mut was_starting = false;
        self.slots.update(msg.slot, |state| match state {
            SlotState::Starting(_) => {
                was_starting = true;
                SlotState::Gone
            }
            // Told to quit while starting: its exit is all that is left.
            other => other,
        });
        if was_starting {
            self.restart(msg.slot, RestartReason::StartFailed(msg.error), ctx);
        }
    }
}

impl<T: Task> Handler<WorkerExited> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, msg: WorkerExited, ctx: &mut Self::Context) {
        if self.is_current(msg.slot, msg.generation) {
            self.worker_exited(msg.slot, ctx);
        }
    }
}

impl<T: Task> Handler<HandlesDropped> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, _: HandlesDropped, _: &mut Self::Context) {
        debug!("last pool handle dropped: draining");
        self.begin_drain();
    }
}

impl<T: Task> Handler<TrySubmit<T>> for Supervisor<T> {
    type Result = Result<TaskHandle<T>, TrySubmitError<T>>;

    fn handle(&mut self, TrySubmit(task): TrySubmit<T>, _: &mut Self::Context) -> Self::Result {
        match self.gate.try_admit() {
            Ok(id) => {
                let (job, handle) = Job::new(id, task);
                self.accept(job);
                Ok(handle)
            }
            Err(Refusal::Full) => Err(TrySubmitError::Full(task)),
            Err(Refusal::Closed) => Err(TrySubmitError::Stopped(task)),
        }
    }
}

impl<T: Task> Handler<Submit<T>> for Supervisor<T> {
    type Result = ResponseFuture<Result<TaskHandle<T>, SubmitError<T>>>;

    fn handle(&mut self, Submit(task): Submit<T>, ctx: &mut Self::Context) -> Self::Result {
        let gate = self.gate.clone();
        let me = ctx.address();
        Box::pin(async move { crate::pool::submit_to(&gate, &me, task).await })
    }
}

impl<T: Task> Handler<Stop> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Stop, _: &mut Self::Context) -> Self::Result {
        let answer = self.when_stopped();
        self.begin_stop(StopReason::Stopped);
        answer
    }
}

impl<T: Task> Handler<Drain> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        let answer = self.when_stopped();
        self.begin_drain();
        answer
    }
}

impl<T: Task> Handler<WhenStopped> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: WhenStopped, _: &mut Self::Context) -> Self::Result {
        self.when_stopped()
    }
}

impl<T: Task> Handler<Subscribe> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, Subscribe(subscriber): Subscribe, _: &mut Self::Context) {
        self.subscribers.add(subscriber);
    }
}

impl<T: Task> Handler<GetStats> for Supervisor<T> {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats())
    }
}

impl<T: Task> Handler<SubmitAndReport<T>> for Supervisor<T> {
    type Result = Option<crate::task::TaskId>;

    fn handle(&mut self, msg: SubmitAndReport<T>, _: &mut Self::Context) -> Self::Result {
        let SubmitAndReport { task, report_to } = msg;
        match self.gate.try_admit() {
            Ok(id) => {
                self.accept(Job::reporting(id, task, report_to));
                Some(id)
            }
            Err(refusal) => {
                let error = match refusal {
                    Refusal::Full => TrySubmitError::Full(task),
                    Refusal::Closed => TrySubmitError::Stopped(task),
                };
                report_to.do_send(TaskReport::Refused(error));
                None
            }
        }
    }
}

impl<T: Task> Handler<GetStatus> for Supervisor<T> {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, GetStatus(id): GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status_of(id))
    }
}
