//! The subscribers to a pool's events.

use actix::Recipient;

use crate::stats::PoolEvent;

#[derive(Default)]
pub(super) struct Subscribers {
    list: Vec<Recipient<PoolEvent>>,
}

impl Subscribers {
    pub(super) fn add(&mut self, subscriber: Recipient<PoolEvent>) {
        self.list.push(subscriber);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sends an event to every live subscriber; the event is only made when
    /// there is one. `do_send` never waits on a slow subscriber.
    #[inline]
    pub(super) fn emit(&mut self, make: impl FnOnce() -> PoolEvent) {
        if self.list.is_empty() {
            return;
        }
        self.list.retain(Recipient::connected);
        let event = make();
        for subscriber in &self.list {
            subscriber.do_send(event.clone());
        }
    }
}
