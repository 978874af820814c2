//! Where workers run: on the supervisor's arbiter (the default), or spread over
//! dedicated arbiters that the pool owns.

use actix_rt::{Arbiter, ArbiterHandle};

pub(super) struct Placement {
    arbiters: Vec<Arbiter>,
}

impl Placement {
    /// `Some(k)`: k dedicated arbiters, started now; `None`: none.
    pub(super) fn new(dedicated: Option<usize>) -> Self {
        let arbiters = (0..dedicated.unwrap_or(0))
            .map(|_| Arbiter::new())
            .collect();
        Placement { arbiters }
    }

    /// The arbiter for `slot`'s worker, or `None` for the current one. An
    /// arbiter that has stopped (taking its worker with it) is replaced.
    pub(super) fn arbiter_for(&mut self, slot: usize) -> Option<ArbiterHandle> {
        if self.arbiters.is_empty() {
            return None;
        }
        let index = slot % self.arbiters.len();
        // `spawn` fails only once the arbiter's event loop is gone.
        if !self.arbiters[index].spawn(async {}) {
            log::warn!("arbiter {index} of the pool has stopped; starting a new one");
            self.arbiters[index] = Arbiter::new();
        }
        Some(self.arbiters[index].handle())
    }

    /// Stops the dedicated arbiters (their workers have quit by now).
    pub(super) fn stop(&mut self) {
        for arbiter in self.arbiters.drain(..) {
            arbiter.stop();
        }
    }
}
