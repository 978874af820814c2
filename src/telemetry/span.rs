//! The span each attempt runs in (feature `tracing`): the task's own
//! `tracing` calls, in `run` and in its future, nest under it.

use crate::task::TaskId;

/// The span of one attempt; nothing without the `tracing` feature.
pub(crate) struct AttemptSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl AttemptSpan {
    /// A span named `task`, at INFO level, with the pool's name (empty for
    /// a pool without one), the task's id, the attempt (from 1) and the
    /// worker slot.
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(pool: Option<&str>, task: TaskId, attempt: u32, worker: usize) -> Self {
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "task",
                pool = pool.unwrap_or(""),
                task = task.as_u64(),
                attempt,
                worker
            ),
        }
    }

    /// Runs `work` inside the span.
    #[inline(always)]
    pub(crate) fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        {
            self.span.in_scope(work)
        }
        #[cfg(not(feature = "tracing"))]
        {
            work()
        }
    }
}
