//! The task under test: a labelled probe that does what its [`Kind`] says.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_workerpool::{Task, TaskContext};
use futures::channel::oneshot;

use crate::SLEEP;
use crate::commands::Kind;

/// The task under test: labelled, so that a task handed back can be recognised.
pub(crate) struct Probe {
    pub(crate) label: u32,
    pub(crate) kind: Kind,
    pub(crate) hold: Option<oneshot::Receiver<()>>,
    /// How many times `run` was called.
    pub(crate) runs: Arc<AtomicU32>,
}

impl Task for Probe {
    type Output = u32;
    type Error = u32;
    type State = ();

    async fn run(&mut self, _cx: &mut TaskContext<()>) -> Result<u32, u32> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match self.kind {
            Kind::Completes => Ok(self.label),
            Kind::Fails => Err(self.label),
            Kind::Panics => panic!("{}", panic_message(self.label)),
            Kind::Held => {
                if let Some(release) = self.hold.as_mut() {
                    let _ = release.await;
                }
                Ok(self.label)
            }
            Kind::Sleeps => {
                actix_rt::time::sleep(SLEEP).await;
                Ok(self.label)
            }
            Kind::Forever => std::future::pending().await,
        }
    }
}

pub(crate) fn panic_message(label: u32) -> String {
    format!("task {label} panics")
}
