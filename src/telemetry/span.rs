//! The span each attempt runs in (feature `tracing`): the task's own
//! `tracing` calls, in `run` and in its future, nest under it.

use crate::task::TaskId;

/// The span of one attempt; nothing without the `tracing` feature, or while
/// no `tracing` subscriber has been set: a span nobody can see would still
/// be sent to `log` (`tracing`'s fallback), a line per attempt.
///
/// A subscriber is the application's code: making and dropping the span
/// are contained, as every call into user code is (`contain.rs`), and
/// entering it happens inside the attempt's own `catch_unwind`.
pub(crate) struct AttemptSpan {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl AttemptSpan {
    /// A span named `task`, at INFO level, with the pool's name (no such
    /// field for a pool without one), the task's id, the attempt (from 1)
    /// and the worker slot.
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(pool: Option<&str>, task: TaskId, attempt: u32, worker: usize) -> Self {
        // While no subscriber has been set, `tracing` would send even a span
        // nobody sees to `log`; `has_been_set` is how its own macros know.
        #[cfg(feature = "tracing")]
        let span = tracing::dispatcher::has_been_set()
            .then(|| {
                crate::contain::contain("a tracing subscriber's new span", || {
                    tracing::info_span!("task", pool, task = task.as_u64(), attempt, worker)
                })
            })
            .flatten();
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// Runs `work` inside the span.
    #[inline(always)]
    pub(crate) fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            return span.in_scope(work);
        }
        work()
    }
}

#[cfg(feature = "tracing")]
impl Drop for AttemptSpan {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            crate::contain::drop_contained("Drop of an attempt's span", span);
        }
    }
}
