//! Driving the real pool: building it, running each command and checking its
//! direct answer (admission, refusals, releases, stop and drain calls; cancels
//! are `cancels.rs`'s, statuses `observe.rs`'s).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_workerpool::{
    Jitter, Pool, PoolGone, Stats, StopReason, StopReport, SubmitError, TaskHandle, TrySubmitError,
};
use futures::FutureExt;
use futures::channel::oneshot;
use tokio::time::Instant;

use crate::check::{Check, bounded, ensure};
use crate::commands::{Command, Kind, Setup};
use crate::common::Events;
use crate::probe::Probe;
use crate::reference::{Call, GaveUp, Model, Phase, SlotModel, Tracked, Waiter};
use crate::{TIMEOUT, WINDOW};

impl Model {
    pub(crate) async fn start(setup: Setup) -> Result<Model, String> {
        let threads = setup.arbiters.is_some();
        // On dedicated arbiters the pool has no timeout: their threads keep
        // real time while this one keeps paused time (see `main.rs`).
        let timeout = (!threads).then_some(TIMEOUT);
        let mut builder = Pool::<Probe>::builder()
            .workers(setup.workers)
            .queue_capacity(setup.queue_capacity)
            .restart_limit(setup.restart_limit, WINDOW)
            .restart_backoff(setup.backoff_base.duration(), setup.backoff_max.duration())
            // Every delay known exactly, and every run of a case the same:
            // the jitter itself is `tests/restart_jitter.rs`'s.
            .restart_jitter(Jitter::None);
        if let Some(timeout) = timeout {
            builder = builder.task_timeout(timeout);
        }
        if let Some(retry) = setup.retry {
            builder = builder.retry(retry.policy());
        }
        if let Some(arbiters) = setup.arbiters {
            builder = builder.arbiters(arbiters);
        }
        let pool = builder.build().map_err(|e| format!("build: {e}"))?;
        let events = bounded(
            threads,
            "subscribe",
            Box::pin(Events::subscribe(&pool)),
            false,
        )
        .await?;
        let size = setup.workers;
        let mut model = Model {
            slots: (0..size).map(|_| SlotModel::default()).collect(),
            setup,
            timeout,
            threads,
            pool,
            events,
            tasks: Vec::new(),
            ids: HashMap::new(),
            holds: Vec::new(),
            released: HashMap::new(),
            waiting: Vec::new(),
            calls: Vec::new(),
            phase: Phase::Running,
            stop_asked: false,
            stopping: Vec::new(),
            not_run: Vec::new(),
            gave_up: GaveUp::No,
            expect_restart: None,
            restarts: 0,
            retries: 0,
            size,
            resizes: VecDeque::new(),
            take_after: None,
            cancelled: 0,
            last_released: None,
            next_label: 0,
            step_start: Instant::now(),
            origin: Instant::now(),
            last: Stats::default(),
            settled: Stats::default(),
        };
        model.settle().await?;
        Ok(model)
    }

    pub(crate) async fn step(&mut self, command: &Command) -> Check {
        self.step_start = Instant::now();
        self.mark_step();
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("{:?} step {command:?}", self.step_start - self.origin);
        }
        let phase_before = self.phase;
        let finished_before = self.calls.iter().any(|c| c.report.is_some());
        let stopping_before = self.stopping.len();
        let mut in_hand = None;
        match *command {
            Command::Submit(kind) => self.submit(kind, None)?,
            Command::TrySubmit(kind) => self.try_submit(kind, None)?,
            Command::SubmitKeyed(kind, key) => self.submit(kind, Some(key))?,
            Command::TrySubmitKeyed(kind, key) => self.try_submit(kind, Some(key))?,
            Command::Release(i) => in_hand = self.release(i),
            Command::Cancel(whom, way) => self.cancel(whom, way).await?,
            Command::ReleaseAndCancel(i, whom, way, order) => {
                in_hand = self.release_and_cancel(i, whom, way, order).await?;
            }
            Command::CancelUnknown(past) => self.cancel_unknown(past).await?,
            Command::Advance(ms) => self.advance(ms.duration()).await,
            Command::Stop => self.call("stop"),
            Command::Resize(n) => self.resize(n, false).await?,
            Command::StopAndResize(n) => {
                self.call_sent("stop", true);
                self.resize(n, true).await?;
            }
            Command::Drain => self.call("drain"),
            Command::Snapshot => {
                if !self.threads {
                    self.check_statuses().await?;
                }
                for _ in 0..4 {
                    self.snapshot().await?;
                    actix_rt::task::yield_now().await;
                }
            }
        }
        // Mid-flight: the supervisor's counters balance between any two messages.
        self.snapshot().await?;
        self.settle().await?;

        // A held task released while running ends its attempt at once: how
        // (completed, or timed out at its deadline) its events were checked for.
        if let Some((index, attempt)) = in_hand {
            let t = &self.tasks[index];
            ensure!(
                t.running.is_none() || t.attempts > attempt,
                "task {} was released while running attempt {attempt}, which still runs: {t:?}",
                t.label,
            );
        }
        let new = &self.stopping[stopping_before..];
        let expected: &[StopReason] = match command {
            Command::Stop | Command::StopAndResize(_)
                if phase_before == Phase::Running
                    || (phase_before == Phase::Draining && !finished_before) =>
            {
                &[StopReason::Stopped]
            }
            Command::Drain if phase_before == Phase::Running => &[StopReason::Drained],
            Command::Stop | Command::StopAndResize(_) | Command::Drain => &[],
            _ => {
                ensure!(
                    new.len() <= 1 && new.iter().all(|r| self.is_restart_limit(r)),
                    "the supervisor began to stop unasked: {new:?}"
                );
                new
            }
        };
        ensure!(
            new == expected,
            "the supervisor reported stopping with {new:?}, expected {expected:?}"
        );
        Ok(())
    }

    /// Lets virtual time pass. On one arbiter the paused clock jumps from
    /// timer to timer while the runtime idles; with workers on other threads
    /// the clock moves a millisecond at a time instead, with a moment for
    /// them in between, so that it never jumps past work they are doing.
    async fn advance(&mut self, by: Duration) {
        if !self.threads {
            tokio::time::sleep(by).await;
            return;
        }
        let ms = by.as_millis() as u64;
        for _ in 0..ms {
            tokio::time::advance(Duration::from_millis(1)).await;
            for _ in 0..4 {
                actix_rt::task::yield_now().await;
            }
            std::thread::yield_now();
        }
    }

    /// Releases every held task, drains, lets virtual time run until everything
    /// has ended, and checks that every accepted task had exactly one outcome.
    pub(crate) async fn finish(&mut self) -> Check {
        self.step_start = Instant::now();
        self.mark_step();
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!("{:?} finish", self.step_start - self.origin);
        }
        for (label, release) in self.holds.drain(..) {
            self.released.insert(label, self.step_start);
            let _ = release.send(());
        }
        self.call("final drain");
        for index in 0..self.calls.len() {
            if self.calls[index].report.is_none() {
                let what = format!("{} (call {index})", self.calls[index].what);
                let answer =
                    bounded(self.threads, &what, &mut self.calls[index].join, true).await?;
                self.record_answer(index, answer)?;
            }
        }
        while let Some(mut waiter) = self.waiting.pop() {
            let answer = bounded(self.threads, "a waiting submit", &mut waiter.join, true).await?;
            self.on_waiter_answer(waiter, answer)?;
        }
        self.settle().await?;

        for t in &self.tasks {
            ensure!(
                t.outcome.is_some(),
                "task {} ({:?}) never got an outcome: {:?}",
                t.label,
                t.kind,
                t
            );
        }
        ensure!(self.waiting.is_empty(), "a submit is still waiting");
        let stats = &self.settled;
        ensure!(
            stats.queued == 0 && stats.in_flight == 0 && stats.waiting_retry == 0,
            "the pool stopped with tasks left: {stats:?}"
        );
        ensure!(
            stats.submitted == self.tasks.len() as u64 && stats.finished() == stats.submitted,
            "{} tasks accepted, but {stats:?}",
            self.tasks.len()
        );
        let first = self.calls[0]
            .report
            .clone()
            .ok_or("the first stop/drain never answered")?;
        let watched = bounded(
            self.threads,
            "pool.stopped()",
            Box::pin(self.pool.stopped()),
            true,
        )
        .await?
        .map_err(|_| "pool.stopped(): the pool is gone")?;
        ensure!(
            watched == first,
            "pool.stopped() says {watched:?}, the stop answers {first:?}"
        );
        let (probe, label, _) = self.probe(Kind::Completes, None);
        match self.pool.try_submit(probe) {
            Err(TrySubmitError::Stopped(back)) => {
                ensure!(back.label == label, "a refused task came back changed")
            }
            other => return Err(format!("try_submit after the drain: {other:?}")),
        }
        Ok(())
    }

    fn probe(&mut self, kind: Kind, key: Option<u64>) -> (Probe, u32, Arc<AtomicU32>) {
        let label = self.next_label;
        self.next_label += 1;
        let hold = kind.holds().then(|| {
            let (release, hold) = oneshot::channel();
            self.holds.push((label, release));
            hold
        });
        let runs = Arc::new(AtomicU32::new(0));
        let probe = Probe {
            label,
            kind,
            hold,
            runs: runs.clone(),
            key,
        };
        (probe, label, runs)
    }

    /// Whether the queue had room when the pool last settled (then the gate's
    /// count equals the queue's length: nothing is in the supervisor's mailbox;
    /// due retries hold no place in it).
    fn room(&self) -> bool {
        self.settled.queued < self.setup.queue_capacity
    }

    fn try_submit(&mut self, kind: Kind, key: Option<u64>) -> Check {
        let (probe, label, runs) = self.probe(kind, key);
        let (closed, room) = (self.phase != Phase::Running, self.room());
        match self.pool.try_submit(probe) {
            Ok(handle) => {
                ensure!(!closed, "try_submit accepted {label} from a closed pool");
                ensure!(room, "try_submit accepted {label} into a full queue");
                self.accept(label, kind, key, runs, handle)
            }
            Err(TrySubmitError::Full(back)) => {
                ensure!(
                    !closed && !room,
                    "try_submit refused {label} as Full (closed: {closed}, room: {room})"
                );
                self.refused(back, label, kind, key, &runs)
            }
            Err(TrySubmitError::Stopped(back)) => {
                ensure!(
                    closed,
                    "try_submit refused {label} as Stopped from an open pool"
                );
                self.refused(back, label, kind, key, &runs)
            }
        }
    }

    fn submit(&mut self, kind: Kind, key: Option<u64>) -> Check {
        let (probe, label, runs) = self.probe(kind, key);
        let closed = self.phase != Phase::Running;
        if !closed && !self.room() {
            let pool = self.pool.clone();
            let join = actix_rt::spawn(async move { pool.submit(probe).await });
            self.waiting.push(Waiter {
                label,
                kind,
                key,
                runs,
                join,
            });
            return Ok(());
        }
        match self.pool.submit(probe).now_or_never() {
            None => Err(format!(
                "submit of {label} waited although the queue had room or the pool was closed"
            )),
            Some(Ok(handle)) => {
                ensure!(!closed, "submit accepted {label} from a closed pool");
                self.accept(label, kind, key, runs, handle)
            }
            Some(Err(SubmitError::Stopped(back))) => {
                ensure!(closed, "submit refused {label} from an open pool");
                self.refused(back, label, kind, key, &runs)
            }
            // The model's pools wait for room (`Overflow::Block`).
            Some(Err(refused)) => Err(format!("submit of {label} refused: {refused:?}")),
        }
    }

    pub(crate) fn accept(
        &mut self,
        label: u32,
        kind: Kind,
        key: Option<u64>,
        runs: Arc<AtomicU32>,
        handle: TaskHandle<Probe>,
    ) -> Check {
        let id = handle.id();
        ensure!(
            !self.ids.contains_key(&id),
            "{id} was given to two tasks (the second: {label})"
        );
        self.ids.insert(id, self.tasks.len());
        self.tasks
            .push(Tracked::new(label, kind, key, runs, handle));
        Ok(())
    }

    /// A refused task must come back as it went in, unrun.
    pub(crate) fn refused(
        &mut self,
        back: Probe,
        label: u32,
        kind: Kind,
        key: Option<u64>,
        runs: &Arc<AtomicU32>,
    ) -> Check {
        ensure!(
            back.label == label
                && back.kind == kind
                && back.key == key
                && Arc::ptr_eq(&back.runs, runs),
            "refused task {label} came back as task {} ({:?})",
            back.label,
            back.kind
        );
        ensure!(runs.load(Ordering::SeqCst) == 0, "refused task {label} ran");
        ensure!(
            kind.holds() == back.hold.is_some(),
            "refused task {label} came back without its parts"
        );
        self.holds.retain(|(l, _)| *l != label);
        Ok(())
    }

    /// Releases a held task; returns it and its attempt if it was running
    /// (then that attempt must end in this very step).
    fn release(&mut self, i: usize) -> Option<(usize, u32)> {
        let (label, release) = self.take_hold(i)?;
        let _ = release.send(());
        self.in_hand(label)
    }

    /// Takes the i-th (modulo) held task not yet released out of the holds,
    /// released as of now: the caller releases it, in this instant.
    pub(crate) fn take_hold(&mut self, i: usize) -> Option<(u32, oneshot::Sender<()>)> {
        if self.holds.is_empty() {
            return None;
        }
        let (label, release) = self.holds.remove(i % self.holds.len());
        self.released.insert(label, Instant::now());
        self.last_released = Some(label);
        Some((label, release))
    }

    /// The task labelled `label` and its attempt, if it runs one.
    pub(crate) fn in_hand(&self, label: u32) -> Option<(usize, u32)> {
        let index = self
            .tasks
            .iter()
            .position(|t| t.label == label && t.running.is_some() && t.ended.is_none())?;
        Some((index, self.tasks[index].attempts))
    }

    fn call(&mut self, what: &'static str) {
        self.call_sent(what, false);
    }

    /// `call`, the message sent at once (`sent`: polled once before it is
    /// spawned), so that whatever is asked next reaches the supervisor after it.
    pub(crate) fn call_sent(&mut self, what: &'static str, sent: bool) {
        let pool = self.pool.clone();
        let drain = what != "stop";
        if !drain && self.phase != Phase::Stopping {
            self.stop_asked = true;
        }
        let mut answer = Box::pin(async move {
            if drain {
                pool.drain().await
            } else {
                pool.stop().await
            }
        });
        let early = if sent {
            (&mut answer).now_or_never()
        } else {
            None
        };
        let join = match early {
            Some(report) => actix_rt::spawn(async move { report }),
            None => actix_rt::spawn(answer),
        };
        self.calls.push(Call {
            what,
            join,
            report: None,
        });
    }

    pub(crate) fn record_answer(
        &mut self,
        index: usize,
        answer: Result<Result<StopReport, PoolGone>, actix_rt::task::JoinError>,
    ) -> Check {
        let call = &mut self.calls[index];
        let report = answer
            .map_err(|e| format!("{} panicked: {e}", call.what))?
            .map_err(|_| format!("{}: the pool is gone", call.what))?;
        call.report = Some(report);
        Ok(())
    }
}
