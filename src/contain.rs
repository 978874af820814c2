//! Containment of user code: every call the pool makes into code a user wrote
//! goes through here, so that a panic in it is caught, logged, and never takes
//! the supervisor (or a worker) down.
//!
//! A panic in a supervisor's own code, or in code it calls while handling a
//! message, kills the actor: its queue, its counters and every task it holds
//! would go with it. So each place below catches panics around the user's
//! code, and keeps the task's outcome on its way to the handle.
//!
//! | user code | called from | if it panics |
//! |---|---|---|
//! | `Task::run`, and the future it returns (polled and dropped) | worker | the attempt ends [`Panicked`](crate::Outcome::Panicked); the worker is replaced |
//! | `Task::timeout` | supervisor (a task it hands out), worker (a task it takes itself) | as a panic in `run` |
//! | `Task::is_retryable` | supervisor (`Job::is_retryable`) | counts as "no" |
//! | `Task::retry_policy` | supervisor; worker (a task with a timeout it takes itself) | counts as no policy of its own |
//! | `Task::key` | whoever submits the task (`Job::new`) | logged; the task runs without a key |
//! | `Debug` of a task's error | supervisor (log lines, `TaskFailed` events, `DeadReason::Failed`) | the text says it panicked |
//! | `Drop` of a task, its output or its error | supervisor, as a task's outcome goes out ([`Job`](crate::job)) | logged; the outcome still reaches the handle |
//! | `Drop` of what a closed lane still held | whoever closes it | logged |
//! | the state factory | worker, when it starts | a failed start: the slot restarts |
//! | `Drop` of the worker state | worker, when it ends | logged; the worker's exit is still reported |
//! | a [`TaskReport`](crate::TaskReport) recipient | actix delivers to it; its mailbox may drop the report | the drop is contained as above |
//! | `Drop` of a refused task (`TrySubmit` sent with `do_send`, `SubmitAndReport` to a stopped actor, a `Submit` whose sender left, an evicting submit given up while the supervisor held its task) | supervisor | logged |
//! | the dead-letter closure, and `Drop` of a dead letter a stopped sink's mailbox refuses ([`dead_letters`](crate::dead_letters)) | supervisor | logged; the task's outcome went out before |
//! | a `tracing` subscriber, making, entering and dropping an attempt's span (feature `tracing`) | worker | no span for that attempt; entered inside the attempt's own catch, as `run` |
//!
//! The application's logger and `tracing` subscriber, called for the pool's
//! own log lines and events, are not contained: a logger that panics fails
//! every program that logs, and the pool could not report it anywhere.
//!
//! One place is out of reach: a `Submit`, `TrySubmit` or `SubmitAndReport`
//! message whose sender gave up before the supervisor handled it is dropped
//! by actix itself, task and all, inside the supervisor's context; a panic in
//! that task's `Drop` stops the supervisor. Tasks whose `Drop` may panic are
//! safest submitted through [`Pool`](crate::Pool).
//!
//! Event subscribers run in actors of their own: a panic there stops that
//! actor (not the pool), and the pool drops it from its list.
//!
//! A new call into user code goes through [`contain`] or [`drop_contained`],
//! and gets a row here.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`, a call into user code; a panic in it is logged with `what` (what
/// was being called) and gives `None`.
pub(crate) fn contain<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    // The pool's own state is not touched by `f` in any way that a panic
    // midway could leave broken: every caller hands `f` only user values.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            log::error!("{what} panicked: {}", panic_message(payload.as_ref()));
            forget_payload(payload);
            None
        }
    }
}

/// Runs `f`, a call into user code; a panic in it gives the panic's message.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = panic_message(payload.as_ref());
        forget_payload(payload);
        message
    })
}

/// Drops `value`, a user value whose `Drop` may panic.
pub(crate) fn drop_contained<V>(what: &str, value: V) {
    if std::mem::needs_drop::<V>() {
        contain(what, move || drop(value));
    }
}

/// The `Debug` text of a user value; if its `Debug` panics, a text that says so.
pub(crate) fn debug_text(value: &dyn std::fmt::Debug) -> String {
    contain("Debug of a task's error", || format!("{value:?}"))
        .unwrap_or_else(|| "<its Debug panicked>".to_owned())
}

/// The message of a panic: its text for `&str` and `String` payloads.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}

/// Lets go of a panic's payload. A payload is any value `panic_any` was given,
/// and its `Drop` is user code too: should it panic in turn, that second
/// payload is leaked rather than dropped, so that this ends.
pub(crate) fn forget_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        log::error!("a panic's payload panicked as it was dropped; it is leaked");
        std::mem::forget(second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }

    impl std::fmt::Debug for Bomb {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("no text")
        }
    }

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let text = |p: Box<dyn Any + Send>| panic_message(p.as_ref());
        assert_eq!(text(Box::new("boom")), "boom");
        assert_eq!(text(Box::new(String::from("bang"))), "bang");
        assert!(text(Box::new(42u8)).contains("not a string"));
    }

    #[test]
    fn a_panic_in_contained_code_gives_none() {
        assert_eq!(contain("test", || 7), Some(7));
        assert_eq!(contain("test", || -> u8 { panic!("inside") }), None);
    }

    #[test]
    fn a_value_whose_drop_panics_is_dropped_without_unwinding_further() {
        drop_contained("test", Bomb);
    }

    #[test]
    fn a_debug_that_panics_gives_a_text_that_says_so() {
        let value = std::mem::ManuallyDrop::new(Bomb);
        assert_eq!(debug_text(&*value), "<its Debug panicked>");
    }

    #[test]
    fn a_payload_whose_drop_panics_is_leaked_not_unwound() {
        let payload = catch_unwind(|| std::panic::panic_any(Bomb)).unwrap_err();
        forget_payload(payload);
    }
}
