//! The supervisor's message handlers: each hands over to a method that says
//! what the message means.

use actix::prelude::*;
use log::debug;

use super::{HandlesDropped, Inbound, Supervisor};
use crate::error::{SubmitError, TrySubmitError};
use crate::gate::Refusal;
use crate::job::{Job, TaskHandle};
use crate::messages::{
    Drain, GetStats, GetStatus, Stop, StopReport, Submit, SubmitAndReport, Subscribe, TaskReport,
    TrySubmit, WhenStopped,
};
use crate::outcome::StopReason;
use crate::task::Task;

impl<T: Task> Supervisor<T> {
    /// Handles one message from the inbox.
    pub(super) fn receive(&mut self, message: Inbound<T>, ctx: &mut Context<Self>) {
        match message {
            Inbound::Done {
                slot,
                job,
                result,
                next,
            } => self.finish_attempt(slot, job, result, next, ctx),
            Inbound::Ready { slot, generation } => {
                if self.is_current(slot, generation) {
                    self.worker_ready(slot);
                }
            }
            Inbound::Failed {
                slot,
                generation,
                error,
            } => {
                if self.is_current(slot, generation) {
                    self.worker_failed(slot, error, ctx);
                }
            }
            Inbound::Exited { slot, generation } => {
                if self.is_current(slot, generation) {
                    self.worker_exited(slot, ctx);
                }
            }
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
                self.enqueue(job);
                Ok(handle)
            }
            Err(Refusal::Full) => Err(TrySubmitError::Full(task)),
            Err(Refusal::Closed) => Err(TrySubmitError::Stopped(task)),
        }
    }
}

impl<T: Task> Handler<Submit<T>> for Supervisor<T> {
    type Result = ResponseFuture<Result<TaskHandle<T>, SubmitError<T>>>;

    fn handle(&mut self, Submit(task): Submit<T>, _: &mut Self::Context) -> Self::Result {
        let gate = self.gate.clone();
        let backlog = self.inbound.backlog().clone();
        Box::pin(async move { crate::pool::submit_to(&gate, &backlog, task).await })
    }
}

impl<T: Task> Handler<Stop> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        self.catch_up(ctx);
        let answer = self.when_stopped();
        self.begin_stop(StopReason::Stopped);
        answer
    }
}

impl<T: Task> Handler<Drain> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) -> Self::Result {
        self.catch_up(ctx);
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

    fn handle(&mut self, _: GetStats, ctx: &mut Self::Context) -> Self::Result {
        self.catch_up_reports(ctx);
        MessageResult(self.stats())
    }
}

impl<T: Task> Handler<SubmitAndReport<T>> for Supervisor<T> {
    type Result = Option<crate::task::TaskId>;

    fn handle(&mut self, msg: SubmitAndReport<T>, _: &mut Self::Context) -> Self::Result {
        let SubmitAndReport { task, report_to } = msg;
        match self.gate.try_admit() {
            Ok(id) => {
                self.enqueue(Job::reporting(id, task, report_to));
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

    fn handle(&mut self, GetStatus(id): GetStatus, ctx: &mut Self::Context) -> Self::Result {
        self.catch_up(ctx);
        MessageResult(self.status_of(id))
    }
}
