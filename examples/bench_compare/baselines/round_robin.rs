//! (c) Plain actix actors fed round-robin with `Addr::send`: the least an
//! actix user could write instead of a pool, with no queue, supervision or
//! outcome bookkeeping.

use std::cell::Cell;
use std::future::Future;

use actix::{Actor, Addr, Context, Handler, Message};
use futures::FutureExt;

use super::TaskResult;
use crate::drive::WINDOW;
use crate::report::Label;

/// This pool, as the table names it.
pub const LABEL: Label = Label {
    tag: "c",
    name: "actix round-robin over Addr::send",
};

struct NoopActor;

impl Actor for NoopActor {
    type Context = Context<Self>;
}

struct NoopMsg;

impl Message for NoopMsg {
    type Result = TaskResult;
}

impl Handler<NoopMsg> for NoopActor {
    type Result = TaskResult;

    fn handle(&mut self, _msg: NoopMsg, _ctx: &mut Self::Context) -> TaskResult {
        Ok(())
    }
}

/// A fixed set of actors, each sent the next message in turn. Dropping it
/// drops the last addresses, which stops the actors.
pub struct RoundRobin {
    actors: Vec<Addr<NoopActor>>,
    next: Cell<usize>,
}

impl RoundRobin {
    /// Starts `actors` actors on the current arbiter. Must run inside the
    /// actix `System`.
    pub fn start(actors: usize) -> Self {
        let actors = (0..actors)
            .map(|_| {
                NoopActor::create(|ctx| {
                    // The default mailbox holds 16 messages; past that, `send`
                    // parks the message inside the request future, and it is
                    // only delivered once the submitter awaits that request,
                    // which would throttle this design to far less than the
                    // window.
                    ctx.set_mailbox_capacity(WINDOW);
                    NoopActor
                })
            })
            .collect();
        RoundRobin {
            actors,
            next: Cell::new(0),
        }
    }

    /// Sends a no-op to the next actor in turn and returns a future of
    /// whether it completed.
    pub fn send(&self) -> impl Future<Output = bool> + use<> {
        let i = self.next.get();
        self.next.set((i + 1) % self.actors.len());
        self.actors[i]
            .send(NoopMsg)
            .map(|result| matches!(result, Ok(Ok(()))))
    }
}
