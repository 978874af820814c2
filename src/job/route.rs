//! How a task's handle finds its pool's supervisor, to cancel the task.
//!
//! A handle could hold the supervisor's address, but then every task would
//! pay for it: an actix address costs two allocations and a shared count to
//! clone, and even a weak reference is a count that every submitter writes.
//! Cancels are rare; tasks are not. So a handle holds only its pool's route,
//! a number, and the supervisor's weak address is looked up under it when a
//! cancel is asked for. The route opens as the supervisor gets its address,
//! before it starts, and closes when the pool's backlog, which the
//! supervisor and every pool handle share, is dropped ([`OpenRoute`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix::{Recipient, WeakRecipient};

use crate::messages::Cancel;

/// The routes open now. Taken only to open, close or look up a route: never
/// on a task's way through the pool.
static ROUTES: Mutex<BTreeMap<u64, WeakRecipient<Cancel>>> = Mutex::new(BTreeMap::new());

static NEXT: AtomicU64 = AtomicU64::new(0);

fn routes() -> MutexGuard<'static, BTreeMap<u64, WeakRecipient<Cancel>>> {
    // Nothing panics while holding the lock; should anything ever, the map
    // is still whole.
    ROUTES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pool's route: what a handle holds to reach its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route(u64);

impl Route {
    /// A route of its own for a new pool, not open yet.
    pub(crate) fn new() -> Self {
        Route(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Opens the route to `supervisor`, until the returned value is dropped.
    pub(crate) fn open(self, supervisor: WeakRecipient<Cancel>) -> OpenRoute {
        routes().insert(self.0, supervisor);
        OpenRoute(self)
    }

    /// The supervisor, if it is still there.
    pub(crate) fn supervisor(self) -> Option<Recipient<Cancel>> {
        routes().get(&self.0).and_then(WeakRecipient::upgrade)
    }
}

/// An open route, closed when this is dropped.
#[derive(Debug)]
pub(crate) struct OpenRoute(Route);

impl Drop for OpenRoute {
    fn drop(&mut self) {
        routes().remove(&self.0.0);
    }
}

#[cfg(test)]
mod tests {
    use actix::prelude::*;

    use super::*;
    use crate::messages::Cancellation;

    struct Answers;

    impl Actor for Answers {
        type Context = Context<Self>;
    }

    impl Handler<Cancel> for Answers {
        type Result = MessageResult<Cancel>;

        fn handle(&mut self, _: Cancel, _: &mut Self::Context) -> Self::Result {
            MessageResult(Cancellation::Unknown)
        }
    }

    #[actix_rt::test]
    async fn a_route_leads_to_its_supervisor_while_open_and_nowhere_after() {
        let route = Route::new();
        assert!(route.supervisor().is_none(), "not open yet");
        let addr = Answers.start();
        let open = route.open(addr.clone().recipient().downgrade());
        let supervisor = route.supervisor().expect("open");
        let answer = supervisor.send(Cancel(crate::TaskId(0))).await.unwrap();
        assert_eq!(answer, Cancellation::Unknown);
        assert_ne!(Route::new(), route, "every pool has a route of its own");
        drop(open);
        assert!(route.supervisor().is_none(), "closed");
    }
}
