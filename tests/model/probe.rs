//! The task under test: a labelled probe that does, on each attempt, what its
//! [`Kind`] says for that attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_workerpool::{Task, TaskContext, TaskKey};
use futures::channel::oneshot;

use crate::SLEEP;
use crate::commands::{Act, Kind};

/// The task under test: labelled, so that a task handed back can be recognised.
pub(crate) struct Probe {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
    /// A held task's release; it outlives an attempt that times out, so a
    /// later attempt waits on it again (or finds it released).
    pub(crate) hold: Option<oneshot::Receiver<()>>,
    /// How many times `run` was called.
    pub(crate) runs: Arc<AtomicU32>,
    /// Its key, if it has one (see `keys.rs`).
    pub(crate) key: Option<u64>,
}

impl Task for Probe {
    type Output = u32;
    type Error = u32;
    type State = ();

    fn key(&self) -> Option<TaskKey> {
        self.key.map(TaskKey::new)
    }

    async fn run(&mut self, cx: &mut TaskContext<()>) -> Result<u32, u32> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match self.kind.act(cx.attempt()) {
            Act::Complete => Ok(self.label),
            Act::Fail => Err(self.label),
            Act::Panic => panic!("{}", panic_message(self.label)),
            act @ (Act::Hold | Act::HoldThenFail | Act::HoldThenPanic) => {
                if let Some(release) = self.hold.as_mut() {
                    // Once released (or its sender dropped), this is ready at
                    // once, on every later attempt too.
                    let _ = release.await;
                }
                match act {
                    Act::Hold => Ok(self.label),
                    Act::HoldThenFail => Err(self.label),
                    _ => panic!("{}", panic_message(self.label)),
                }
            }
            Act::Sleep => {
                actix_rt::time::sleep(SLEEP).await;
                Ok(self.label)
            }
            Act::Hang => std::future::pending().await,
        }
    }
}

pub(crate) fn panic_message(label: u32) -> String {
    format!("task {label} panics")
}
