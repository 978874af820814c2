//! Where workers run: on the supervisor's arbiter (the default), or spread over
//! dedicated arbiters that the pool owns.
//!
//! An arbiter whose thread a stuck worker blocks is retired: a fresh one takes
//! its place for the workers started from then on, and the retired one is
//! stopped once every worker let go of on it has exited (so that each can
//! hand back what it holds), or at once if none was.
//!
//! A place whose thread the system refuses (out of threads or memory) runs
//! its workers on the supervisor's arbiter, with an error logged, until a
//! thread can be started for it: the next worker started there asks again.
//! The pool keeps its workers either way; it never panics for a thread.

use std::collections::HashMap;

use actix_rt::{Arbiter, ArbiterHandle};

/// Which of the pool's arbiters a worker was started on.
pub(super) type ArbiterId = u64;

struct Placed {
    id: ArbiterId,
    arbiter: Arbiter,
}

pub(super) struct Placement {
    /// One place per dedicated arbiter asked for: `None` while the system
    /// refuses its thread.
    arbiters: Vec<Option<Placed>>,
    next_id: ArbiterId,
    /// Workers let go of, by the arbiter they run on, still to exit.
    holds: HashMap<ArbiterId, usize>,
    /// Arbiters replaced (a worker on them was stuck), or left running when
    /// the pool stopped, until their last worker let go of exits.
    retired: HashMap<ArbiterId, Arbiter>,
    stopped: bool,
}

impl Placement {
    /// `Some(k)`: k dedicated arbiters, started now; `None`: none.
    pub(super) fn new(dedicated: Option<usize>) -> Self {
        let mut placement = Placement {
            arbiters: Vec::new(),
            next_id: 0,
            holds: HashMap::new(),
            retired: HashMap::new(),
            stopped: false,
        };
        for index in 0..dedicated.unwrap_or(0) {
            let placed = placement.fresh(index);
            placement.arbiters.push(placed);
        }
        placement
    }

    /// A new arbiter for place `index`, or `None` if the system refuses its
    /// thread.
    fn fresh(&mut self, index: usize) -> Option<Placed> {
        match Arbiter::try_new() {
            Ok(arbiter) => {
                self.next_id += 1;
                Some(Placed {
                    id: self.next_id,
                    arbiter,
                })
            }
            Err(error) => {
                log::error!(
                    "the system refused a thread for the pool's arbiter {index} ({error}); \
                     its workers run on the supervisor's arbiter until one can be started"
                );
                None
            }
        }
    }

    /// The arbiter for `slot`'s worker, or `None` for the current one. An
    /// arbiter that has stopped (taking its worker with it), or whose thread
    /// was refused, is replaced if the system gives a thread now.
    pub(super) fn arbiter_for(&mut self, slot: usize) -> Option<(ArbiterId, ArbiterHandle)> {
        if self.arbiters.is_empty() {
            return None;
        }
        let index = slot % self.arbiters.len();
        // `spawn` fails only once the arbiter's event loop is gone.
        let running = self.arbiters[index]
            .as_ref()
            .is_some_and(|placed| placed.arbiter.spawn(async {}));
        if !running {
            if self.arbiters[index].is_some() {
                log::warn!("arbiter {index} of the pool has stopped; starting a new one");
            }
            self.arbiters[index] = self.fresh(index);
        }
        let placed = self.arbiters[index].as_ref()?;
        Some((placed.id, placed.arbiter.handle()))
    }

    /// Retires arbiter `id`, whose thread a stuck worker blocks: a fresh one
    /// takes its place. Returns the index of its place (slots `s` with `s %
    /// k == index` were started there), or `None` if it was retired already.
    pub(super) fn retire(&mut self, id: ArbiterId) -> Option<(usize, usize)> {
        let index = self
            .arbiters
            .iter()
            .position(|placed| placed.as_ref().is_some_and(|placed| placed.id == id))?;
        log::warn!("arbiter {index} of the pool is blocked; a fresh one takes its place");
        let fresh = self.fresh(index);
        let blocked = std::mem::replace(&mut self.arbiters[index], fresh)?;
        self.retired.insert(blocked.id, blocked.arbiter);
        self.stop_if_unheld(blocked.id);
        Some((index, self.arbiters.len()))
    }

    /// A worker on arbiter `id` is let go of: the arbiter runs until it exits.
    pub(super) fn hold(&mut self, id: ArbiterId) {
        *self.holds.entry(id).or_default() += 1;
    }

    /// A worker let go of on arbiter `id` has exited.
    pub(super) fn release(&mut self, id: ArbiterId) {
        if let Some(count) = self.holds.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                self.holds.remove(&id);
            }
        }
        self.stop_if_unheld(id);
    }

    fn stop_if_unheld(&mut self, id: ArbiterId) {
        if self.holds.contains_key(&id) {
            return;
        }
        if let Some(arbiter) = self.retired.remove(&id) {
            arbiter.stop();
        }
    }

    /// Stops the dedicated arbiters once the pool has stopped: now for those
    /// whose workers have all quit, after the last worker let go of for the
    /// others.
    pub(super) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for placed in std::mem::take(&mut self.arbiters).into_iter().flatten() {
            self.retired.insert(placed.id, placed.arbiter);
        }
        let ids: Vec<ArbiterId> = self.retired.keys().copied().collect();
        for id in ids {
            self.stop_if_unheld(id);
        }
    }
}
