//! The worker slots: what each one holds, kept in step with the idle set and
//! the count of live slots. A slot's state changes only through
//! `Slots::update` (or `take_idle`), which also tells the backlog whether any
//! worker is idle: busy workers take jobs from it only while none is.
//!
//! A resize takes slots out of service (retires them) or brings them in; a
//! slot keeps its number for the pool's life, so that events and snapshots
//! name the same slot throughout, and a retired slot is the first brought
//! back.

use std::sync::Arc;

use super::backlog::{Backlog, Bar};
use super::deadlines::Watch;
use super::idle::IdleSet;
use super::placement::ArbiterId;
use crate::stats::WorkerState;
use crate::task::{Task, TaskId};
use crate::worker::WorkerLink;

pub(super) enum SlotState<T: Task> {
    /// Its worker is making its state.
    Starting(WorkerLink<T>),
    Idle(WorkerLink<T>),
    /// Running the task with this id.
    Busy(WorkerLink<T>, TaskId),
    /// Waiting out the restart backoff, with no worker.
    Backoff,
    /// Told to quit; `task` is the one it is still finishing, if any.
    Quitting {
        worker: WorkerLink<T>,
        task: Option<TaskId>,
    },
    /// No worker, and none coming.
    Gone,
}

pub(super) struct Slot<T: Task> {
    state: SlotState<T>,
    pub(super) generation: u32,
    /// The deadline of the attempt its worker runs, if it has one.
    pub(super) watch: Option<Watch<T>>,
    /// Watched attempts booked on the current worker, to number the next.
    pub(super) watched: u64,
    /// The dedicated arbiter the current worker was started on, if any.
    pub(super) arbiter: Option<ArbiterId>,
    pub(super) tasks_run: u64,
    pub(super) restarts: u64,
    /// Times its worker was found stuck past a deadline, and replaced.
    pub(super) stuck: u64,
    /// Restarts in a row, reset by an attempt that ends without a panic.
    pub(super) consecutive_restarts: u32,
    /// Taken out of service by a resize: no worker is started in it.
    retired: bool,
}

pub(super) struct Slots<T: Task> {
    slots: Vec<Slot<T>>,
    idle: IdleSet,
    live: usize,
    /// Slots not retired.
    in_service: usize,
    backlog: Arc<Backlog<T>>,
}

impl<T: Task> Slots<T> {
    /// `n` slots, all `Gone` until a worker is started in each.
    pub(super) fn new(n: usize, backlog: Arc<Backlog<T>>) -> Self {
        Slots {
            slots: (0..n).map(|_| Slot::empty()).collect(),
            idle: IdleSet::new(n),
            live: 0,
            in_service: n,
            backlog,
        }
    }

    /// Every slot, retired ones included.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Slots in service: the pool's size.
    pub(super) fn in_service(&self) -> usize {
        self.in_service
    }

    pub(super) fn is_retired(&self, slot: usize) -> bool {
        self.slots[slot].retired
    }

    /// Brings `n` more slots into service, each still without a worker:
    /// retired slots whose worker has gone first (lowest first), then new
    /// ones. A retired slot whose worker still finishes its last task stays
    /// retired: a new slot gets a worker at once.
    pub(super) fn grow(&mut self, n: usize) -> Vec<usize> {
        let mut grown: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.retired && matches!(slot.state, SlotState::Gone))
            .map(|(index, _)| index)
            .take(n)
            .collect();
        for &slot in &grown {
            let entry = &mut self.slots[slot];
            entry.retired = false;
            // A fresh start: its old worker's crashes are not this one's.
            entry.consecutive_restarts = 0;
        }
        while grown.len() < n {
            grown.push(self.slots.len());
            self.slots.push(Slot::empty());
        }
        self.idle.grow(self.slots.len());
        self.in_service += n;
        grown
    }

    /// Takes `n` slots out of service: those whose worker holds no task
    /// first (none, or one restarting, starting or idle), then busy ones;
    /// the highest first among equals. Returns them; their workers are
    /// still to be told.
    pub(super) fn shrink(&mut self, n: usize) -> Vec<usize> {
        let mut candidates: Vec<usize> = (0..self.slots.len())
            .filter(|&slot| !self.slots[slot].retired)
            .collect();
        candidates.sort_by_key(|&slot| {
            let busy = self.slots[slot].state.task().is_some();
            (busy, std::cmp::Reverse(slot))
        });
        candidates.truncate(n);
        for &slot in &candidates {
            self.slots[slot].retired = true;
        }
        self.in_service -= candidates.len();
        candidates
    }

    /// Whether the worker of a retired slot still runs a task.
    pub(super) fn retiring_with_task(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| slot.retired && slot.state.task().is_some())
    }

    /// The slots a snapshot lists: up to the last one in service or with a
    /// worker still.
    pub(super) fn listed(&self) -> impl Iterator<Item = &Slot<T>> {
        let listed = self
            .slots
            .iter()
            .rposition(|slot| !slot.retired || !matches!(slot.state, SlotState::Gone))
            .map_or(0, |last| last + 1);
        self.slots[..listed].iter()
    }

    /// Slots that have, or will have, a worker.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    pub(super) fn get(&self, slot: usize) -> &Slot<T> {
        &self.slots[slot]
    }

    pub(super) fn get_mut(&mut self, slot: usize) -> &mut Slot<T> {
        &mut self.slots[slot]
    }

    /// Puts a slot in the state `next` makes of its current one. Every change
    /// of state goes through here, so the idle set and the live count follow.
    pub(super) fn update(&mut self, slot: usize, next: impl FnOnce(SlotState<T>) -> SlotState<T>) {
        let entry = &mut self.slots[slot];
        let old = std::mem::replace(&mut entry.state, SlotState::Gone);
        let was_gone = matches!(old, SlotState::Gone);
        entry.state = next(old);
        let none_idle_before = self.idle.is_empty();
        if matches!(entry.state, SlotState::Idle(_)) {
            self.idle.insert(slot);
        } else {
            self.idle.remove(slot);
        }
        match (was_gone, matches!(entry.state, SlotState::Gone)) {
            (true, false) => self.live += 1,
            (false, true) => self.live -= 1,
            _ => {}
        }
        self.tell_backlog(none_idle_before);
    }

    /// The busy worker in `slot` runs `task` now, which it took itself;
    /// `false` (and no change) if the slot is not busy.
    pub(super) fn moves_on(&mut self, slot: usize, task: TaskId) -> bool {
        match &mut self.slots[slot].state {
            SlotState::Busy(_, running) => {
                *running = task;
                true
            }
            _ => false,
        }
    }

    pub(super) fn set(&mut self, slot: usize, state: SlotState<T>) {
        self.update(slot, |_| state);
    }

    /// The slot running the task with this id, if one is.
    pub(super) fn running(&self, id: TaskId) -> Option<usize> {
        self.slots.iter().position(|slot| match slot.state {
            SlotState::Busy(_, task) => task == id,
            SlotState::Quitting { task, .. } => task == Some(id),
            _ => false,
        })
    }

    /// Whether any worker is in the middle of a take from the backlog (see
    /// `Backlog::pull_shared`). Only workers with a line can be: a slot
    /// without one has no worker, or one given up on, which takes nothing more.
    pub(super) fn taking(&self) -> bool {
        self.slots
            .iter()
            .any(|slot| slot.state.worker().is_some_and(WorkerLink::is_taking))
    }

    pub(super) fn has_idle(&self) -> bool {
        !self.idle.is_empty()
    }

    /// The next idle slot in round-robin order, now busy with `task`, and its
    /// worker.
    pub(super) fn take_idle(&mut self, task: TaskId) -> Option<(usize, &WorkerLink<T>)> {
        let slot = self.idle.take_next()?;
        self.tell_backlog(false);
        let entry = &mut self.slots[slot];
        entry.state = match std::mem::replace(&mut entry.state, SlotState::Gone) {
            SlotState::Idle(worker) => SlotState::Busy(worker, task),
            // The idle set holds exactly the slots in `Idle`, so this keeps the
            // state as it was should that ever not hold.
            other => other,
        };
        match &entry.state {
            SlotState::Busy(worker, _) => Some((slot, worker)),
            _ => None,
        }
    }

    /// Raises or lowers the backlog's idle bar if the idle set turned empty,
    /// or stopped being so. Only on those changes: the bar is shared with
    /// workers on other threads.
    fn tell_backlog(&self, none_idle_before: bool) {
        let none_idle = self.idle.is_empty();
        if none_idle != none_idle_before {
            self.backlog.bar(Bar::Idle, !none_idle);
        }
    }
}

impl<T: Task> Slot<T> {
    fn empty() -> Self {
        Slot {
            state: SlotState::Gone,
            generation: 0,
            watch: None,
            watched: 0,
            arbiter: None,
            tasks_run: 0,
            restarts: 0,
            stuck: 0,
            consecutive_restarts: 0,
            retired: false,
        }
    }

    pub(super) fn state(&self) -> &SlotState<T> {
        &self.state
    }

    /// What the slot does, as a snapshot tells it.
    pub(super) fn public(&self) -> WorkerState {
        match self.state {
            SlotState::Gone if self.retired => WorkerState::Retired,
            ref state => state.public(),
        }
    }
}

impl<T: Task> SlotState<T> {
    /// The line to the slot's worker, while it has one.
    pub(super) fn worker(&self) -> Option<&WorkerLink<T>> {
        match self {
            SlotState::Starting(worker)
            | SlotState::Idle(worker)
            | SlotState::Busy(worker, _)
            | SlotState::Quitting { worker, .. } => Some(worker),
            SlotState::Backoff | SlotState::Gone => None,
        }
    }

    /// What the slot does, as a snapshot tells it.
    pub(super) fn public(&self) -> WorkerState {
        match self {
            SlotState::Starting(_) => WorkerState::Starting,
            SlotState::Idle(_) => WorkerState::Idle,
            SlotState::Busy(_, task) => WorkerState::Busy { task: *task },
            SlotState::Backoff => WorkerState::Restarting,
            SlotState::Quitting { task, .. } => WorkerState::Quitting { task: *task },
            SlotState::Gone => WorkerState::Stopped,
        }
    }

    /// The task the slot's worker runs, if any.
    pub(super) fn task(&self) -> Option<TaskId> {
        match self {
            SlotState::Busy(_, id) => Some(*id),
            SlotState::Quitting { task, .. } => *task,
            _ => None,
        }
    }
}
