//! How a rule fails a case: the `ensure!` macro, the `Check` result, and the
//! guard that turns a hang into a failure.

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;

use crate::SAFETY;

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

pub(crate) use ensure;

pub(crate) type Check = Result<(), String>;

/// How long (in real time) a wait on workers on other threads may take.
const REAL_LIMIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the case if it takes too long: a hang is a bug to
/// report.
///
/// With every worker on this thread (`threads` false), the limit is
/// [`SAFETY`] of virtual time, and the paused clock jumps ahead whenever
/// nothing can run (to the next timer: a retry, a backoff, a timeout).
///
/// With workers on other threads, the runtime must never park while they
/// work (the clock would jump, and fire timers early), so `fut` is polled
/// between yields and short real pauses, for at most [`REAL_LIMIT`] of real
/// time; with `advance`, virtual time moves on by 1 ms now and then while
/// `fut` is not ready, as the paused clock would (retry delays and restart
/// backoffs are all a few milliseconds).
pub(crate) async fn bounded<F: Future + Unpin>(
    threads: bool,
    what: &str,
    mut fut: F,
    advance: bool,
) -> Result<F::Output, String> {
    if !threads {
        return tokio::time::timeout(SAFETY, fut)
            .await
            .map_err(|_| format!("hang: {what} did not finish within {SAFETY:?} of virtual time"));
    }
    let started = std::time::Instant::now();
    let mut round = 0u32;
    loop {
        if let Some(output) = (&mut fut).now_or_never() {
            return Ok(output);
        }
        round += 1;
        for _ in 0..8 {
            actix_rt::task::yield_now().await;
        }
        if let Some(output) = (&mut fut).now_or_never() {
            return Ok(output);
        }
        if advance && round.is_multiple_of(4) {
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        if round < 16 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
        if started.elapsed() > REAL_LIMIT {
            return Err(format!(
                "hang: {what} did not finish within {REAL_LIMIT:?} of real time"
            ));
        }
    }
}
