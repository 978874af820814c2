//! How a rule fails a case: the `ensure!` macro, the `Check` result, and the
//! guard that turns a hang into a failure.

use std::future::Future;

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

/// Awaits `fut`, failing the case if it takes longer than [`SAFETY`] of virtual
/// time: a hang is a bug to report.
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> Result<F::Output, String> {
    tokio::time::timeout(SAFETY, fut)
        .await
        .map_err(|_| format!("hang: {what} did not finish within {SAFETY:?} of virtual time"))
}
