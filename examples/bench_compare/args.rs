//! The command line: what this process is to do, and how much of it.

use crate::memory_probe::Probe;

/// How to call the bench; printed with every command-line error.
pub const USAGE: &str =
    "usage: bench_compare [--quick] [--untimed] [--tasks N] [--reps N] [--only SCENARIO]";

/// What this process was started for.
#[derive(Debug)]
pub enum Mode {
    /// Run the scenarios and print the table.
    Bench(Settings),
    /// Be a child of the `memory` scenario: queue `count` tasks in one pool,
    /// print the bytes each cost, and exit. Not in [`USAGE`]: only the bench
    /// itself starts such a process.
    MemoryProbe { probe: Probe, count: usize },
}

/// How much work a bench run does.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Smaller sizes and fewer repetitions, for a smoke run.
    pub quick: bool,
    /// Repetitions asked for on the command line, if any.
    reps: Option<usize>,
    /// Tasks per run of the no-op scenarios, if the command line set it.
    pub tasks: Option<usize>,
    /// The one scenario to run, if the command line named one.
    pub only: Option<String>,
    /// The pool under test does not time its tasks (`latency(false)`).
    pub untimed: bool,
}

impl Settings {
    /// Timed repetitions of each scenario.
    pub fn reps(&self) -> usize {
        self.reps.unwrap_or(if self.quick { 3 } else { 5 })
    }

    /// Timed repetitions of a scenario whose every run lasts seconds: one in
    /// quick mode, unless `--reps` says otherwise.
    pub fn slow_reps(&self) -> usize {
        self.reps.unwrap_or(if self.quick { 1 } else { 5 })
    }

    /// `full` in a full run, `quick` in a quick one.
    pub fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// Reads the arguments (without the program name).
///
/// # Errors
///
/// A message naming the first argument that makes no sense.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut settings = Settings {
        quick: false,
        reps: None,
        tasks: None,
        only: None,
        untimed: false,
    };
    let mut probe = None;
    let mut count = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `--quick` only changes the defaults, so `--quick --reps 9` means what it says.
            "--quick" => settings.quick = true,
            "--untimed" => settings.untimed = true,
            "--tasks" => settings.tasks = Some(positive(args.next(), "--tasks")?),
            "--reps" => settings.reps = Some(positive(args.next(), "--reps")?),
            "--only" => settings.only = Some(args.next().ok_or("--only needs a scenario name")?),
            "--memory-probe" => probe = Some(probe_flag(args.next())?),
            "--count" => count = Some(positive(args.next(), "--count")?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    match (probe, count) {
        (None, None) => Ok(Mode::Bench(settings)),
        (Some(probe), Some(count)) => Ok(Mode::MemoryProbe { probe, count }),
        _ => Err("--memory-probe and --count go together".to_owned()),
    }
}

fn positive(value: Option<String>, flag: &str) -> Result<usize, String> {
    match value.as_deref().map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => Ok(n),
        _ => Err(format!("{flag} needs a positive whole number")),
    }
}

fn probe_flag(value: Option<String>) -> Result<Probe, String> {
    value
        .as_deref()
        .and_then(Probe::from_flag)
        .ok_or_else(|| "--memory-probe needs a pool: a or b1".to_owned())
}
