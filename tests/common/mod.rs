//! A scripted task for the integration tests: it reports where it ran, and does
//! what its script says (complete, fail, panic, or hold until released).
#![allow(dead_code)]

use actix_workerpool::{Task, TaskContext, TaskKey};
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

/// What a probe does when it runs.
pub enum Script {
    Complete,
    Fail,
    Panic,
    /// Runs until the matching [`Release`] is used (or dropped).
    Hold(oneshot::Receiver<()>),
    /// Runs until released, then panics.
    HoldThenPanic(oneshot::Receiver<()>),
    /// Runs until released, then fails; fails at once on later attempts.
    HoldThenFail(Option<oneshot::Receiver<()>>),
}

/// Where and how a probe started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub label: u32,
    pub worker: usize,
    pub attempt: u32,
}

pub struct Probe {
    pub label: u32,
    script: Script,
    events: mpsc::UnboundedSender<Started>,
    key: Option<TaskKey>,
}

impl Probe {
    /// The probe, with a key: it runs after every probe with the same key
    /// submitted before it has ended.
    pub fn keyed(self, key: u64) -> Probe {
        Probe {
            key: Some(TaskKey::new(key)),
            ..self
        }
    }
}

/// Lets a held probe finish.
pub struct Release(oneshot::Sender<()>);

impl Release {
    pub fn release(self) {
        let _ = self.0.send(());
    }
}

impl Task for Probe {
    /// (label, worker that ran it)
    type Output = (u32, usize);
    type Error = String;
    type State = ();

    fn key(&self) -> Option<TaskKey> {
        self.key
    }

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<(u32, usize), String> {
        let _ = self.events.unbounded_send(Started {
            label: self.label,
            worker: cx.worker(),
            attempt: cx.attempt(),
        });
        match &mut self.script {
            Script::Complete => Ok((self.label, cx.worker())),
            Script::Fail => Err(format!("probe {} failed", self.label)),
            Script::Panic => panic!("probe {} panicked", self.label),
            Script::Hold(release) => {
                let _ = release.await;
                Ok((self.label, cx.worker()))
            }
            Script::HoldThenPanic(release) => {
                let _ = release.await;
                panic!("probe {} panicked", self.label)
            }
            Script::HoldThenFail(release) => {
                if let Some(release) = release.take() {
                    let _ = release.await;
                }
                Err(format!("probe {} failed", self.label))
            }
        }
    }
}

/// Makes probes and hears when they start.
pub struct Lab {
    tx: mpsc::UnboundedSender<Started>,
    rx: mpsc::UnboundedReceiver<Started>,
}

impl Lab {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded();
        Lab { tx, rx }
    }

    pub fn probe(&self, label: u32, script: Script) -> Probe {
        Probe {
            label,
            script,
            events: self.tx.clone(),
            key: None,
        }
    }

    pub fn completes(&self, label: u32) -> Probe {
        self.probe(label, Script::Complete)
    }

    pub fn fails(&self, label: u32) -> Probe {
        self.probe(label, Script::Fail)
    }

    pub fn panics(&self, label: u32) -> Probe {
        self.probe(label, Script::Panic)
    }

    /// A probe that runs until released.
    pub fn held(&self, label: u32) -> (Probe, Release) {
        let (tx, rx) = oneshot::channel();
        (self.probe(label, Script::Hold(rx)), Release(tx))
    }

    /// A probe that runs until released, then fails (and fails again at
    /// once on any later attempt).
    pub fn held_then_fails(&self, label: u32) -> (Probe, Release) {
        let (tx, rx) = oneshot::channel();
        (
            self.probe(label, Script::HoldThenFail(Some(rx))),
            Release(tx),
        )
    }

    /// A probe that runs until released, then panics.
    pub fn held_then_panics(&self, label: u32) -> (Probe, Release) {
        let (tx, rx) = oneshot::channel();
        (self.probe(label, Script::HoldThenPanic(rx)), Release(tx))
    }

    /// Submits a probe that runs until released and waits until it has
    /// started: a worker is now busy, for as long as the test wants.
    pub async fn occupy(
        &mut self,
        pool: &actix_workerpool::Pool<Probe>,
        label: u32,
    ) -> (actix_workerpool::TaskHandle<Probe>, Release) {
        let (probe, release) = self.held(label);
        let handle = pool.try_submit(probe).expect("the pool has room");
        self.started().await;
        (handle, release)
    }

    /// A pool of one worker, busy until released, and a queue of one, full,
    /// built from `builder`.
    pub async fn full_pool(
        &mut self,
        builder: actix_workerpool::PoolBuilder<Probe>,
    ) -> (actix_workerpool::Pool<Probe>, Release) {
        let pool = builder.workers(1).queue_capacity(1).build().unwrap();
        let (_running, release) = self.occupy(&pool, 0).await;
        pool.try_submit(self.completes(1)).unwrap();
        (pool, release)
    }

    /// Waits for the next probe to start.
    pub async fn started(&mut self) -> Started {
        self.rx.next().await.expect("the lab holds a sender")
    }

    /// The starts heard so far that nobody has waited for.
    pub fn drain_started(&mut self) -> Vec<Started> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }
}

/// Hears a pool's events, through a real subscriber actor.
pub struct Events {
    rx: mpsc::UnboundedReceiver<actix_workerpool::PoolEvent>,
}

struct Forward(mpsc::UnboundedSender<actix_workerpool::PoolEvent>);

impl actix::Actor for Forward {
    type Context = actix::Context<Self>;
}

impl actix::Handler<actix_workerpool::PoolEvent> for Forward {
    type Result = ();

    fn handle(&mut self, event: actix_workerpool::PoolEvent, _: &mut Self::Context) {
        let _ = self.0.unbounded_send(event);
    }
}

impl Events {
    pub async fn subscribe<T: Task>(pool: &actix_workerpool::Pool<T>) -> Events {
        use actix::Actor;
        let (tx, rx) = mpsc::unbounded();
        let forward = Forward(tx).start();
        pool.subscribe(forward.recipient()).await.unwrap();
        Events { rx }
    }

    pub async fn next(&mut self) -> actix_workerpool::PoolEvent {
        self.rx
            .next()
            .await
            .expect("the subscriber lives as long as the pool")
    }

    /// Skips events until one matches.
    pub async fn until(
        &mut self,
        wanted: impl Fn(&actix_workerpool::PoolEvent) -> bool,
    ) -> actix_workerpool::PoolEvent {
        loop {
            let event = self.next().await;
            if wanted(&event) {
                return event;
            }
        }
    }

    /// The events heard so far that nobody has waited for.
    pub fn so_far(&mut self) -> Vec<actix_workerpool::PoolEvent> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }
}

/// Submits a task (waiting for room) and waits for its outcome.
pub async fn outcome_of<T: Task>(
    pool: &actix_workerpool::Pool<T>,
    task: T,
) -> actix_workerpool::Outcome<T> {
    let handle = pool.submit(task).await.expect("the pool accepts the task");
    handle.await.expect("the outcome arrives")
}

type StopAnswer = Result<actix_workerpool::StopReport, actix_workerpool::PoolGone>;

/// Starts a stop in the background: it answers only once every worker is gone,
/// and the test has work to do meanwhile.
pub fn stop_later<T: Task>(
    pool: &actix_workerpool::Pool<T>,
) -> actix_rt::task::JoinHandle<StopAnswer> {
    let pool = pool.clone();
    actix_rt::spawn(async move { pool.stop().await })
}

/// Starts a drain in the background (see [`stop_later`]).
pub fn drain_later<T: Task>(
    pool: &actix_workerpool::Pool<T>,
) -> actix_rt::task::JoinHandle<StopAnswer> {
    let pool = pool.clone();
    actix_rt::spawn(async move { pool.drain().await })
}

/// Fails the test, rather than hanging it, if `work` takes longer than 60 s
/// (real time: not for tests on the paused clock).
pub async fn within_60s<F: std::future::Future>(work: F) -> F::Output {
    actix_rt::time::timeout(std::time::Duration::from_secs(60), work)
        .await
        .expect("the pool should have answered long before")
}

/// A policy of one retry, after exactly `delay` (no jitter).
pub fn one_retry_after(delay: std::time::Duration) -> actix_workerpool::RetryPolicy {
    actix_workerpool::RetryPolicy::builder()
        .max_attempts(2)
        .base_delay(delay)
        .jitter(actix_workerpool::Jitter::None)
        .build()
        .expect("a valid retry policy")
}
