//! The model test: random, bounded sequences of commands (submit, try_submit,
//! release a held task, let virtual time pass, stop, drain, snapshot) run
//! against a real pool on the paused clock, with the pool's rules checked after
//! every step against a model of what each task may do and when.
//!
//! Each step runs its command, takes a snapshot at once (the counters balance
//! at every instant), then lets the pool settle (yields until nothing changes;
//! virtual time does not move while anything can run) and checks everything:
//! events, outcomes, counters, restarts, backoff, timeouts, stop answers. A
//! failing case is shrunk by proptest and printed with the step that broke
//! (not persisted to a regressions file: paste a printed case into a test of
//! its own to keep it).
//!
//! Retries are not modelled: the pool keeps its default policy (never), so a
//! `Retrying` event or a retry counter above zero fails the case.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod commands;
mod events;
mod observe;
mod probe;
mod reference;
mod runner;
mod settled;

use std::time::Duration;

use proptest::prelude::*;

use check::Check;
use commands::{Case, case};
use reference::Model;

/// The pool's timeout for every attempt.
const TIMEOUT: Duration = Duration::from_millis(100);
/// How long a `Sleeps` task sleeps: past the timeout.
const SLEEP: Duration = Duration::from_millis(150);
/// The restart window: longer than any case, so every restart counts.
const WINDOW: Duration = Duration::from_secs(60);
/// The safety net for anything that could hang, in virtual time.
const SAFETY: Duration = Duration::from_secs(3600);
/// Timer granularity: deadlines are rounded up to the next millisecond.
const TICK: Duration = Duration::from_millis(1);

async fn run_case(case: Case) -> Check {
    tokio::time::pause();
    let mut model = Model::start(case.setup.clone()).await?;
    for (i, command) in case.commands.iter().enumerate() {
        model
            .step(command)
            .await
            .map_err(|e| format!("step {i} ({command:?}): {e}"))?;
    }
    model.finish().await.map_err(|e| format!("at the end: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// DESIGN rules 1, 3 and 5 together: every accepted task ends in exactly one
    /// outcome that fits it, the counters always balance, refused tasks come back intact, panicking
    /// workers restart after their backoff until the limit, and every stop or
    /// drain answers, all with the same report.
    #[test]
    fn random_command_sequences_keep_the_pools_rules(case in case()) {
        if let Err(why) = actix_rt::System::new().block_on(run_case(case)) {
            return Err(TestCaseError::fail(why));
        }
    }
}
