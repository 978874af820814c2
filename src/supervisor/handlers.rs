//! The supervisor's message handlers: each hands over to a method that says
//! what the message means.

use std::sync::Arc;
use std::time::Duration;

use actix::dev::{MessageResponse, OneshotSender};
use actix::prelude::*;
use futures::FutureExt;
use futures::channel::oneshot;
use log::debug;

use super::{Backlog, HandlesDropped, Inbound, Supervisor};
use crate::contain::{contain, drop_contained};
use crate::error::{SubmitError, TrySubmitError};
use crate::gate::Gate;
use crate::gate::Refusal;
use crate::job::{Job, TaskHandle};
use crate::messages::{
    Cancel, Cancellation, Drain, DrainWithin, GetStats, GetStatus, Resize, Stop, StopReport,
    StopWithin, Submit, SubmitAndReport, Subscribe, TaskReport, TrySubmit, WhenStopped,
};
use crate::outcome::StopReason;
use crate::task::Task;

impl<T: Task> Supervisor<T> {
    /// Handles one message from the inbox.
    pub(super) fn receive(&mut self, message: Inbound<T>, ctx: &mut Context<Self>) {
        match message {
            Inbound::Done {
                slot,
                generation,
                job,
                result,
                ran,
                next,
            } => {
                if self.is_current(slot, generation) {
                    self.finish_attempt(slot, job, result, ran, next, ctx);
                } else {
                    self.late_report(slot, job, result, next, ctx);
                }
            }
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
                } else if let Some(Some(arbiter)) = self.let_go_of.remove(&(slot, generation)) {
                    // A worker let go of: its arbiter may stop now, if it
                    // waited only for this one.
                    self.placement.release(arbiter);
                }
            }
        }
    }
}

impl<T: Task> Handler<HandlesDropped> for Supervisor<T> {
    type Result = ();

    fn handle(&mut self, _: HandlesDropped, ctx: &mut Self::Context) {
        debug!("last pool handle dropped: draining");
        self.begin_drain();
        self.arm_shutdown_deadline(None, ctx);
    }
}

impl<T: Task> Handler<TrySubmit<T>> for Supervisor<T> {
    type Result = TrySubmitAnswer<T>;

    fn handle(&mut self, TrySubmit(task): TrySubmit<T>, _: &mut Self::Context) -> Self::Result {
        TrySubmitAnswer(match self.gate.try_admit() {
            Ok((id, permit)) => {
                let timing = self.stopwatch().accepting();
                let route = self.inbound.backlog().route();
                let (job, handle) = Job::new(id, permit, task, timing, route);
                self.enqueue(job);
                Ok(handle)
            }
            Err(Refusal::Full) => Err(TrySubmitError::Full(task)),
            Err(Refusal::Closed) => Err(TrySubmitError::Stopped(task)),
        })
    }
}

/// The answer to a [`TrySubmit`]. Nobody may take it (sent with `do_send`,
/// or its sender gone): then it is dropped here, in the supervisor, and a
/// refused task's `Drop` is user code, so it is dropped contained.
pub struct TrySubmitAnswer<T: Task>(Result<TaskHandle<T>, TrySubmitError<T>>);

impl<T: Task> MessageResponse<Supervisor<T>, TrySubmit<T>> for TrySubmitAnswer<T> {
    fn handle(self, _: &mut Context<Supervisor<T>>, tx: Option<OneshotSender<TrySubmitResult<T>>>) {
        let unsent = match tx {
            Some(tx) => tx.send(self.0).err(),
            None => Some(self.0),
        };
        drop_contained("Drop of a refused task nobody took back", unsent);
    }
}

type TrySubmitResult<T> = Result<TaskHandle<T>, TrySubmitError<T>>;

impl<T: Task> Handler<Submit<T>> for Supervisor<T> {
    type Result = SubmitAnswer<T>;

    /// Admits the task now if there is room (making some, in a pool that
    /// evicts), so that it keeps its place among the messages before and
    /// after it (keyed tasks keep their order so); else the answer waits.
    fn handle(&mut self, Submit(task): Submit<T>, ctx: &mut Self::Context) -> Self::Result {
        match self.place_making_room(ctx) {
            Ok((id, permit)) => {
                let timing = self.stopwatch().accepting();
                let route = self.inbound.backlog().route();
                let (job, handle) = Job::new(id, permit, task, timing, route);
                self.enqueue(job);
                SubmitAnswer(Answer::Now(Ok(handle)))
            }
            Err(Refusal::Closed) => SubmitAnswer(Answer::Now(Err(SubmitError::Stopped(task)))),
            Err(Refusal::Full) => SubmitAnswer(Answer::Wait {
                gate: self.gate.clone(),
                backlog: self.inbound.backlog().clone(),
                supervisor: ctx.address(),
                task,
            }),
        }
    }
}

/// The answer to a [`Submit`]: at once, or, with the queue full, once there
/// is room, and only while its sender still waits for the answer.
///
/// A `ResponseFuture` would run to its end even after the sender gave up (a
/// timeout around `send`), and admit the task later, unseen. Here the wait for
/// room races the sender's going away, and a task whose sender has gone is
/// dropped unadmitted, as `Pool::submit` drops it when its future is. A task
/// admitted after such a wait counts as submitted then.
pub struct SubmitAnswer<T: Task>(Answer<T>);

enum Answer<T: Task> {
    /// Admitted, or refused, as the message was handled.
    Now(SubmitResult<T>),
    /// The queue was full.
    Wait {
        gate: Arc<Gate>,
        backlog: Arc<Backlog<T>>,
        /// To make room, for a pool that evicts.
        supervisor: Addr<Supervisor<T>>,
        task: T,
    },
}

type SubmitResult<T> = Result<TaskHandle<T>, SubmitError<T>>;

impl<T: Task> MessageResponse<Supervisor<T>, Submit<T>> for SubmitAnswer<T> {
    fn handle(self, _: &mut Context<Supervisor<T>>, tx: Option<OneshotSender<SubmitResult<T>>>) {
        let (gate, backlog, supervisor, task) = match self.0 {
            Answer::Now(answer) => {
                let unsent = match tx {
                    Some(tx) => tx.send(answer).err(),
                    None => Some(answer),
                };
                // An admitted task runs whether anyone listens or not; a
                // refused one nobody took back is dropped here.
                drop_contained("Drop of a refused task nobody took back", unsent);
                return;
            }
            Answer::Wait {
                gate,
                backlog,
                supervisor,
                task,
            } => (gate, backlog, supervisor, task),
        };
        // `do_send`: nobody listens, so nobody can give up, nor hear a
        // refusal; admit as a waiting `submit` would, whatever the policy.
        let Some(mut tx) = tx else {
            actix_rt::spawn(async move {
                let refused = crate::pool::submit_waiting(&gate, &backlog, &supervisor, task)
                    .await
                    .err();
                drop_contained("Drop of a refused task nobody took back", refused);
            });
            return;
        };
        // A pool that rejects rather than waits answers at once.
        if gate.rejects() {
            if let Err(unsent) = tx.send(Err(SubmitError::Full(task))) {
                drop_contained("Drop of a refused task nobody took back", unsent);
            }
            return;
        }
        actix_rt::spawn(async move {
            // Admission is cancel safe: dropped when the sender goes, it has
            // taken nothing, and the task drops with it.
            let admitted = futures::select_biased! {
                answer = crate::pool::submit_waiting(&gate, &backlog, &supervisor, task).fuse() => answer,
                () = tx.closed().fuse() => return,
            };
            if let Err(unsent) = tx.send(admitted) {
                drop_contained("Drop of a refused task nobody took back", unsent);
            }
        });
    }
}

impl<T: Task> Supervisor<T> {
    /// `Stop`, with a deadline or the pool's.
    fn stop(
        &mut self,
        within: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<StopReport> {
        self.catch_up(ctx);
        let answer = self.when_stopped();
        self.begin_stop(StopReason::Stopped);
        self.arm_shutdown_deadline(within, ctx);
        self.settle_stop(ctx);
        answer
    }

    /// `Drain`, with a deadline or the pool's.
    fn drain(
        &mut self,
        within: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<StopReport> {
        self.catch_up(ctx);
        let answer = self.when_stopped();
        self.begin_drain();
        self.arm_shutdown_deadline(within, ctx);
        answer
    }
}

impl<T: Task> Handler<Stop> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) -> Self::Result {
        self.stop(None, ctx)
    }
}

impl<T: Task> Handler<StopWithin> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, StopWithin(within): StopWithin, ctx: &mut Self::Context) -> Self::Result {
        self.stop(Some(within), ctx)
    }
}

impl<T: Task> Handler<Drain> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) -> Self::Result {
        self.drain(None, ctx)
    }
}

impl<T: Task> Handler<DrainWithin> for Supervisor<T> {
    type Result = ResponseFuture<StopReport>;

    fn handle(
        &mut self,
        DrainWithin(within): DrainWithin,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        self.drain(Some(within), ctx)
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
        // So that metrics read after the answer agree with it.
        self.publish_metrics();
        MessageResult(self.stats())
    }
}

impl<T: Task> Handler<SubmitAndReport<T>> for Supervisor<T> {
    type Result = Option<crate::task::TaskId>;

    fn handle(&mut self, msg: SubmitAndReport<T>, _: &mut Self::Context) -> Self::Result {
        let SubmitAndReport { task, report_to } = msg;
        match self.gate.try_admit() {
            Ok((id, permit)) => {
                let timing = self.stopwatch().accepting();
                self.enqueue(Job::reporting(id, permit, task, report_to, timing));
                Some(id)
            }
            Err(refusal) => {
                let error = match refusal {
                    Refusal::Full => TrySubmitError::Full(task),
                    Refusal::Closed => TrySubmitError::Stopped(task),
                };
                // An actor that has stopped drops the report, and the task.
                contain("Drop of a refused task nobody took back", || {
                    report_to.do_send(TaskReport::Refused(error));
                });
                None
            }
        }
    }
}

impl<T: Task> Handler<Cancel> for Supervisor<T> {
    type Result = ResponseFuture<Cancellation>;

    fn handle(&mut self, Cancel(id): Cancel, ctx: &mut Self::Context) -> Self::Result {
        let (answer, answered) = oneshot::channel();
        self.cancel(id, answer, ctx);
        // Unanswered only if the supervisor is dropped first, which ends
        // every task it holds.
        Box::pin(async move { answered.await.unwrap_or(Cancellation::Ended) })
    }
}

impl<T: Task> Handler<GetStatus> for Supervisor<T> {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, GetStatus(id): GetStatus, ctx: &mut Self::Context) -> Self::Result {
        self.catch_up(ctx);
        MessageResult(self.status_of(id))
    }
}

impl<T: Task> Handler<Resize> for Supervisor<T> {
    type Result = MessageResult<Resize>;

    fn handle(&mut self, Resize(workers): Resize, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.resize(workers))
    }
}
