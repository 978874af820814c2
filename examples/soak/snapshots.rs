//! The snapshot task: every ~100 ms, a `pool.stats()` snapshot checked
//! against the promises every snapshot keeps, and an RSS sample.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_workerpool::{Pool, PoolGone};
use futures::channel::oneshot;

use crate::Settings;
use crate::drive::{EXAMPLES, Shared};
use crate::plan::SoakTask;
use crate::report::{self, RssSample};

/// How often the snapshot task looks at the pool.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

/// What the snapshot task saw.
#[derive(Default)]
pub struct Snapshots {
    pub taken: u64,
    pub failures: Vec<String>,
    pub samples: Vec<RssSample>,
}

/// Every `SNAPSHOT_EVERY` until `stop` fires: checks a `stats()` snapshot
/// and samples RSS.
pub async fn snapshots(
    pool: Pool<SoakTask>,
    shared: Arc<Shared>,
    settings: Settings,
    started: Instant,
    mut stop: oneshot::Receiver<()>,
) -> Snapshots {
    let mut seen = Snapshots::default();
    let mut last_submitted = 0;
    let mut ticks = actix_rt::time::interval(SNAPSHOT_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        seen.samples.push(RssSample {
            at: started.elapsed(),
            done: shared.done.load(Ordering::Relaxed),
            rss: report::rss_bytes().unwrap_or(0),
        });
        let stats = match pool.stats().await {
            Ok(stats) => stats,
            Err(PoolGone) => {
                seen.failures.push("stats(): PoolGone while running".into());
                continue;
            }
        };
        seen.taken += 1;
        let mut fail = |what: String| {
            if seen.failures.len() < EXAMPLES {
                seen.failures.push(what);
            }
        };
        if !stats.balances() {
            fail(format!(
                "snapshot {}: does not balance: {stats:?}",
                seen.taken
            ));
        }
        if stats.queued > settings.queue {
            fail(format!(
                "snapshot {}: queued {} > capacity {}",
                seen.taken, stats.queued, settings.queue
            ));
        }
        if stats.in_flight > settings.workers {
            fail(format!(
                "snapshot {}: in_flight {} > workers {}",
                seen.taken, stats.in_flight, settings.workers
            ));
        }
        if stats.submitted < last_submitted {
            fail(format!(
                "snapshot {}: submitted went down, {last_submitted} -> {}",
                seen.taken, stats.submitted
            ));
        }
        last_submitted = stats.submitted;
    }
    seen
}
