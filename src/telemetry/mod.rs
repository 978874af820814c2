//! What a pool tells the world about itself besides [`Stats`](crate::Stats)
//! and events: log lines (through `log`, or `tracing` with the feature), a
//! span per attempt (feature `tracing`), and metrics (feature `metrics`).
//!
//! A pool's name (see [`PoolBuilder::name`](crate::PoolBuilder::name)) goes
//! into all three.

#[cfg(not(feature = "tracing"))]
use std::fmt;

#[cfg(feature = "metrics")]
mod metrics;
mod span;

#[cfg(feature = "metrics")]
pub(crate) use metrics::{Admissions, PoolMetrics, Tally, register};
pub(crate) use span::AttemptSpan;

/// What a log line about a pool starts with: its name, if it has one.
#[cfg(not(feature = "tracing"))]
pub(crate) struct Prefix<'a>(pub(crate) Option<&'a str>);

#[cfg(not(feature = "tracing"))]
impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "pool {name}: "),
            None => Ok(()),
        }
    }
}

/// Whether a warning from here would reach anyone: asked before work that
/// only a warning needs (the text of a task's error, which is the task's
/// code). A macro, so that `log`'s filters see the caller's module. With the
/// `tracing` feature: a `tracing` subscriber that wants it or, while none
/// has been set, `log` (where `tracing` sends its events then).
macro_rules! warnings_wanted {
    () => {{
        // `has_been_set` is hidden from `tracing_core`'s docs, but `tracing`'s
        // own macros call it to choose their `log` fallback: it stays.
        #[cfg(feature = "tracing")]
        let wanted = tracing::enabled!(tracing::Level::WARN)
            || (!tracing::dispatcher::has_been_set() && log::log_enabled!(log::Level::Warn));
        #[cfg(not(feature = "tracing"))]
        let wanted = log::log_enabled!(log::Level::Warn);
        wanted
    }};
}
pub(crate) use warnings_wanted;

/// Tells of something that happened in a pool: a `log` record whose text
/// starts with the pool's name or, with the `tracing` feature, a `tracing`
/// event with the fields given and `pool`, the pool's name (no such field
/// for a pool without one); `tracing` hands it to `log` while no subscriber
/// has been set.
///
/// `tell!(warn, pool_name, { task = id.as_u64(), worker = slot }, "text {}", x)`
macro_rules! tell {
    ($level:ident, $pool:expr, { $($field:ident = $value:expr),* $(,)? }, $($message:tt)+) => {{
        #[cfg(feature = "tracing")]
        {
            let pool: Option<&str> = $pool;
            tracing::$level!(pool, $($field = $value,)* $($message)+);
        }
        #[cfg(not(feature = "tracing"))]
        {
            $(let _ = $value;)*
            log::$level!("{}{}", $crate::telemetry::Prefix($pool), format_args!($($message)+));
        }
    }};
}
pub(crate) use tell;
