//! Resizing: asking for a size (alone, or right behind a stop that is not
//! decided yet) and the answer each phase calls for; the slots the model
//! keeps in step from the `Resized` and `WorkerRetired` events (growth
//! brings retired slots whose worker has gone back first, lowest first, then
//! appends; a shrink retires slots holding no task first, then busy ones,
//! highest first among equals); and, once the pool settles, what `Stats`
//! says of them.
//!
//! A retired slot takes no task from the queue and gets no worker: not after
//! a panic in its last task, nor after a backoff it was waiting out. Its
//! worker finishes the task in hand and quits; `WorkerRetired` says when it
//! is gone (at once for a slot that had no worker). With workers on other
//! threads, one that was in the middle of a take from the backlog as it was
//! told to quit runs that task too (`SlotModel::last_take`); on one arbiter
//! a resize comes only once the pool has settled, and no worker is taking.

use actix_workerpool::{PoolEvent, ResizeError, Resized, Stats, TaskId, WorkerState};

use crate::check::{Check, bounded, ensure};
use crate::reference::{Model, Phase, SlotModel};

/// The slot an event names, if it names one.
fn named_slot(event: &PoolEvent) -> Option<usize> {
    match event {
        PoolEvent::TaskStarted { worker, .. }
        | PoolEvent::TaskCompleted { worker, .. }
        | PoolEvent::TaskFailed { worker, .. }
        | PoolEvent::TaskTimedOut { worker, .. }
        | PoolEvent::TaskPanicked { worker, .. }
        | PoolEvent::Retrying { worker, .. }
        | PoolEvent::WorkerRestarted { worker, .. }
        | PoolEvent::WorkerRetired { worker } => Some(*worker),
        _ => None,
    }
}

/// The task a slot's entry in a snapshot says its worker holds.
fn task_of(state: WorkerState) -> Option<TaskId> {
    match state {
        WorkerState::Busy { task } => Some(task),
        WorkerState::Quitting { task } => task,
        _ => None,
    }
}

impl Model {
    /// Slots in service, as the events tell them.
    pub(crate) fn in_service(&self) -> usize {
        self.slots.iter().filter(|s| !s.retired).count()
    }

    /// The slots a snapshot lists: up to the last one in service or whose
    /// worker has not gone yet.
    pub(crate) fn listed(&self) -> usize {
        self.slots
            .iter()
            .rposition(|s| !s.retired || !s.gone)
            .map_or(0, |last| last + 1)
    }

    /// `Command::Resize` (`after_stop`: `StopAndResize`, a stop sent just
    /// before): asks for `n` slots and checks the answer. It is refused for
    /// 0, and once a stop or a drain is asked for (decided or not).
    pub(crate) async fn resize(&mut self, n: usize, after_stop: bool) -> Check {
        let expected = if n == 0 {
            Err(ResizeError::ZeroWorkers)
        } else if after_stop || self.stop_asked || self.phase != Phase::Running {
            Err(ResizeError::Stopped)
        } else {
            Ok(Resized {
                from: self.size,
                to: n,
            })
        };
        let answer = bounded(
            self.threads,
            "pool.resize()",
            Box::pin(self.pool.resize(n)),
            false,
        )
        .await?;
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!(
                "{:?} resize to {n}: {answer:?}",
                self.step_start - self.origin
            );
        }
        ensure!(
            answer == expected,
            "resize to {n} answered {answer:?}, expected {expected:?} ({:?}, stop asked: {})",
            self.phase,
            self.stop_asked
        );
        if let Ok(resized) = answer {
            self.size = resized.to;
            // No event for a size the pool has already.
            if resized.from != resized.to {
                self.resizes.push_back(resized);
            }
        }
        Ok(())
    }

    /// Every event that names a slot names one the pool has (events come in
    /// order: a grown slot's after its `Resized`).
    pub(crate) fn check_slot_event(&self, event: &PoolEvent) -> Check {
        if let Some(slot) = named_slot(event) {
            ensure!(
                slot < self.slots.len(),
                "slot {slot} named, but the pool has {} slots",
                self.slots.len()
            );
        }
        Ok(())
    }

    /// `Resized`: one per accepted resize, in order, from the size in service
    /// as the events tell it; the model's slots follow.
    pub(crate) fn on_resized(&mut self, from: usize, to: usize) -> Check {
        let asked = self
            .resizes
            .pop_front()
            .ok_or("a Resized event, but no resize was accepted")?;
        ensure!(
            asked == Resized { from, to },
            "the resize answered {asked:?}"
        );
        ensure!(
            from == self.in_service(),
            "resized from {from}, but {} slots are in service",
            self.in_service()
        );
        ensure!(self.phase != Phase::Stopping, "resized after the stop");
        if to > from {
            self.grow(to - from);
        } else {
            self.shrink(from - to);
        }
        Ok(())
    }

    /// Brings `n` slots into service: retired slots whose worker has gone
    /// first, lowest first, then new ones. Each starts a worker at once, with
    /// no backoff; a slot keeps its counters, but not its restarts in a row.
    fn grow(&mut self, n: usize) {
        let mut brought = 0;
        for slot in self.slots.iter_mut().filter(|s| s.retired && s.gone) {
            if brought == n {
                break;
            }
            slot.retired = false;
            slot.gone = false;
            slot.back = None;
            // A fresh start: the old worker's crashes in a row are not its.
            slot.consecutive = 0;
            brought += 1;
        }
        for _ in brought..n {
            self.slots.push(SlotModel::default());
        }
    }

    /// Retires `n` slots in service: those holding no task first, then busy
    /// ones, the highest first among equals. A slot in its restart backoff
    /// gets no fresh worker.
    fn shrink(&mut self, n: usize) {
        let mut candidates: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].retired)
            .collect();
        candidates.sort_by_key(|&i| (self.slots[i].busy.is_some(), std::cmp::Reverse(i)));
        for &i in candidates.iter().take(n) {
            let slot = &mut self.slots[i];
            slot.retired = true;
            slot.gone = false;
            slot.back = None;
            slot.last_take = self.threads && slot.busy.is_some();
        }
    }

    /// `WorkerRetired`: a retired slot's worker is gone, once, and only once
    /// it holds no task; always after the `Resized` that retired the slot,
    /// even for a slot that had no worker as it was retired (see the
    /// regression `a_slot_retired_in_its_backoff_is_said_retired_after_the_resize`).
    pub(crate) fn on_worker_retired(&mut self, worker: usize) -> Check {
        let slot = &mut self.slots[worker];
        ensure!(
            slot.retired,
            "slot {worker} is in service (no Resized retired it yet)"
        );
        ensure!(!slot.gone, "slot {worker} was retired already");
        ensure!(
            slot.busy.is_none(),
            "slot {worker} still runs {:?}",
            slot.busy
        );
        slot.gone = true;
        slot.last_take = false;
        Ok(())
    }

    /// The attempt on `worker` is over, ending in a way that lets its worker
    /// go on (not a panic): a retired slot's worker may have taken its last
    /// task in the same report (see `SlotModel::last_take`).
    pub(crate) fn may_take_last(&mut self, worker: usize) {
        let slot = &mut self.slots[worker];
        if slot.retired && std::mem::take(&mut slot.last_take) {
            self.take_after = Some(worker);
        }
    }

    /// A first attempt started on a retired slot: only the last task its
    /// worker took as it was told to quit, reported with the end of the
    /// attempt before (`last`: the slot the event before allowed that for).
    pub(crate) fn check_started_on(
        &self,
        worker: usize,
        attempt: u32,
        last: Option<usize>,
    ) -> Check {
        if self.slots[worker].retired {
            ensure!(
                last == Some(worker) && attempt == 1,
                "attempt {attempt} started on retired slot {worker}"
            );
        }
        Ok(())
    }

    /// The slots, once the pool has settled: the size, the slots listed, and
    /// each one's state against what the events told. A retired slot whose
    /// worker holds no task has no worker left (on other threads,
    /// eventually).
    pub(crate) fn check_slots(&self, stats: &Stats) -> Check {
        ensure!(
            self.resizes.is_empty(),
            "resizes {:?} answered, but no Resized event came",
            self.resizes
        );
        ensure!(
            stats.size == self.in_service() && stats.size == self.size,
            "{} slots in service seen (the last resize set {}), but {stats:?}",
            self.in_service(),
            self.size
        );
        ensure!(
            stats.workers.len() == self.listed(),
            "{} slots should be listed: {stats:?}",
            self.listed()
        );
        for (i, (slot, counted)) in self.slots.iter().zip(&stats.workers).enumerate() {
            let state = counted.state;
            ensure!(
                task_of(state) == slot.busy,
                "slot {i} runs {:?}, but it says {state:?}",
                slot.busy
            );
            ensure!(
                !slot.retired || slot.gone || slot.busy.is_some(),
                "retired slot {i} holds no task, yet its worker has not gone: {state:?}"
            );
            let fits = match (slot.retired, slot.gone) {
                (true, true) => state == WorkerState::Retired,
                (true, false) => matches!(state, WorkerState::Quitting { .. }),
                (false, _) if self.phase == Phase::Running => matches!(
                    state,
                    WorkerState::Starting
                        | WorkerState::Idle
                        | WorkerState::Busy { .. }
                        | WorkerState::Restarting
                ),
                (false, _) => state != WorkerState::Retired,
            };
            ensure!(
                fits,
                "slot {i} (retired: {}, its worker gone: {}) says {state:?} while {:?}",
                slot.retired,
                slot.gone,
                self.phase
            );
        }
        Ok(())
    }
}
