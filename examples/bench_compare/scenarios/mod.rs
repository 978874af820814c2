//! The scenarios, what they share (the runtimes, the settings, the way they
//! interleave repetitions), and how one is picked by name.

mod cpu;
mod memory;
mod round_trip;
mod sleep;
mod throughput;

use actix_rt::SystemRunner;
use tokio::runtime::Runtime;

use crate::args::Settings;
use crate::baselines::threaded_channel;
use crate::report::Row;

pub use cpu::calibrate_spin;

/// What every scenario runs in, made once for the whole run.
pub struct Bench {
    pub settings: Settings,
    /// The actix `System`: a current-thread runtime on this thread, where the
    /// pool under test, (b1) and (c) run, and every submitter but (b2)'s.
    pub system: SystemRunner,
    /// The 2-thread tokio runtime of (b2).
    pub threaded: Runtime,
    /// Iterations of the spin loop that take about 1 ms here.
    pub spin_iterations: u64,
}

impl Bench {
    /// Starts the runtimes.
    pub fn new(settings: Settings, spin_iterations: u64) -> Self {
        Bench {
            settings,
            system: actix_rt::System::new(),
            threaded: threaded_channel::runtime(),
            spin_iterations,
        }
    }
}

/// Runs one untimed warm-up round, then `reps` timed repetitions, each
/// running every one of `contenders` in turn (rep 1: a, b, ...; rep 2: a, b,
/// ...), so that drift in the machine's speed hits them all alike. Returns
/// the samples of each contender, in the order of `contenders`.
///
/// The warm-up keeps one-off costs (the allocator growing, queues and
/// mailboxes reaching their working size, threads waking up) out of every
/// sample.
pub fn interleave<C, T>(
    reps: usize,
    contenders: &[C],
    mut run: impl FnMut(&C) -> T,
) -> Vec<Vec<T>> {
    for contender in contenders {
        run(contender);
    }
    let mut samples: Vec<Vec<T>> = contenders
        .iter()
        .map(|_| Vec::with_capacity(reps))
        .collect();
    for _ in 0..reps {
        for (contender, samples) in contenders.iter().zip(&mut samples) {
            samples.push(run(contender));
        }
    }
    samples
}

/// Lets the tasks on the System's thread run for a moment: those woken by a
/// pool being dropped can then end before the next measurement begins.
pub async fn settle() {
    for _ in 0..8 {
        actix_rt::task::yield_now().await;
    }
}

/// One scenario of the table.
pub struct Scenario {
    /// What `--only` takes, and the first column of its rows.
    pub name: &'static str,
    run: fn(&Bench) -> Vec<Row>,
}

impl Scenario {
    /// Measures, and returns the rows to print.
    pub fn run(&self, bench: &Bench) -> Vec<Row> {
        (self.run)(bench)
    }
}

/// Every scenario, in the order they run.
pub static ALL: [Scenario; 8] = [
    Scenario {
        name: throughput::NOOP_4,
        run: throughput::noop_4,
    },
    Scenario {
        name: throughput::NOOP_64,
        run: throughput::noop_64,
    },
    Scenario {
        name: round_trip::NAME,
        run: round_trip::run,
    },
    Scenario {
        name: memory::NAME,
        run: memory::run,
    },
    Scenario {
        name: sleep::NAME,
        run: sleep::run,
    },
    Scenario {
        name: cpu::NAME,
        run: cpu::run,
    },
    Scenario {
        name: throughput::NOOP_2_ARBITERS,
        run: throughput::noop_2_arbiters,
    },
    Scenario {
        name: throughput::KEYED_4,
        run: throughput::keyed_4,
    },
];

/// The scenarios to run: the one named by `--only`, or all of them.
///
/// # Errors
///
/// If `only` names no scenario; the message lists the names.
pub fn select(only: Option<&str>) -> Result<Vec<&'static Scenario>, String> {
    let Some(name) = only else {
        return Ok(ALL.iter().collect());
    };
    match ALL.iter().find(|scenario| scenario.name == name) {
        Some(scenario) => Ok(vec![scenario]),
        None => {
            let names: Vec<_> = ALL.iter().map(|scenario| scenario.name).collect();
            Err(format!(
                "no scenario `{name}`; there are: {}",
                names.join(", ")
            ))
        }
    }
}
