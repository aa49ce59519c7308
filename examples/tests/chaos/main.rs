//! Seeded fault injection across nested supervisors (issue 9).
//!
//! Each case draws, from one seed, a tree of supervisors (runners,
//! engines, catacombs, nested in one another: a runner's worker may be an
//! engine whose manifold is a catacomb holding a runner) whose workers
//! misbehave in every way the crates' docs say a supervisor survives:
//! panics in `Drop`, `kill`, `wait`, `report`, start functions and
//! bodies; `kill`s, `Drop`s and start functions that block until the test
//! opens their gate; calls back into their own supervisor from a start
//! function, a `kill` or a body (start, stop, lookup, report, kill, and
//! `wait`, which must fail with a typed error at once); `Duration::MAX`
//! in every duration setting; and errors at random times. It then runs a
//! random schedule of operations on the tree (start, stop, remove, look
//! up, report, kill a nested supervisor, end a worker, open a gate),
//! kills the root, and checks, while the gates are still shut, that the
//! root answers; then opens every gate and checks that:
//!
//! - the root's `wait` returns (within 10 s: a failure timeout; nothing
//!   here waits for time to pass);
//! - every operation that waited has returned;
//! - no library thread of the case is left, exactly, when the root's
//!   `wait` has returned (but those of workers a dying catacomb refused,
//!   which no supervisor waits for, and which must end soon after);
//! - no error is lost, as [`check`] defines it for each supervisor.
//!
//! The test prints nothing when it passes. A failure names the seed of
//! the failing case and its plan; `CHAOS_SEED=<seed>` replays that case
//! (the same tree, misbehaviours and schedule; thread timing differs from
//! run to run), `CHAOS_CASES=<n>` runs more or fewer cases (default 500,
//! a few seconds in a debug build, from a seed drawn at random, or from
//! `CHAOS_SEED`). `CHAOS_VERBOSE=1` prints
//! what each case exercised; `CHAOS_STACKS=<file>` writes every thread's
//! stack to that file (with `gdb`, if installed) when something freezes.
//!
//! Why not proptest: a case is threads, and its outcome depends on their
//! timing as well as on the input, so shrinking would chase a different
//! failure on each rerun, and every shrinking step that hangs costs the
//! 10 s failure timeout. A seed and a readable plan replay a failure
//! better.

mod build;
mod calls;
mod case;
mod check;
mod gates;
mod leaf;
mod ops;
mod plan;
mod rng;

use std::sync::Once;

use crossbeam_channel::{RecvTimeoutError, bounded};
use worker_core::Worker;

use case::{Case, MARK};
use plan::Planner;

/// Keeps the test's own panics (injected on purpose) out of the output;
/// any other panic is printed as usual.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            // User code must never run on a supervisor's loop: an
            // injected panic there is a bug, and shown.
            let on_loop = std::thread::current()
                .name()
                .is_some_and(|name| name.ends_with("-loop"));
            if !message.contains(MARK) || on_loop {
                default(info);
            }
        }));
    });
}

/// Runs one case; returns what went wrong.
fn run_case(seed: u64, number: usize) -> Vec<String> {
    let plan = Planner::new(seed).case();
    let case = Case::new(format!("chaos-{number}."));
    let (root, root_worker) = build::sup(&case, &plan.root, format!("{}R", case.prefix));
    let mut pending = Vec::new();
    for op in &plan.ops {
        ops::run(&case, op, &mut pending);
    }

    // Kill the root; it answers while gates still hold kills and drops.
    let killed = root_worker.clone();
    ops::prompt(&case, "kill of the root".into(), move || killed.kill());
    let handle = root.handle.get().expect("the root exists").clone();
    ops::prompt(&case, "report of the dying root".into(), move || {
        let _ = handle.report();
        let _ = handle.waiting_for();
    });
    case.gates.open_all();

    let (tx, rx) = bounded(1);
    let waited = root_worker.clone();
    std::thread::spawn(move || {
        let _ = tx.send(waited.wait());
    });
    match rx.recv_timeout(ops::FREEZE) {
        Ok(_) => {}
        Err(RecvTimeoutError::Timeout) => {
            dump_stacks("root wait");
            case.violation(format!(
                "the root's wait did not return within {:?}; {}",
                ops::FREEZE,
                diagnosis(&case)
            ));
            return case.violations();
        }
        Err(RecvTimeoutError::Disconnected) => case.violation("the root's wait panicked".into()),
    }
    // The threads left right now; which of them are orphans' is known
    // only once every operation has returned (one may be adding a child
    // to a catacomb that is about to refuse it).
    let left = check::live_threads(&case);
    ops::finish(&case, pending);
    check::threads_joined(&case, left);
    check::orphans_gone(&case);
    check::ledger(&case);
    if std::env::var_os("CHAOS_VERBOSE").is_some() {
        let mut stats: Vec<_> = case.stats.lock().unwrap().clone().into_iter().collect();
        stats.sort();
        eprintln!("case {number} (seed {seed}): {stats:?}");
    }
    case.violations()
}

/// With `CHAOS_STACKS=<file>`, writes every thread's stack to that file
/// (a frozen call's diagnosis); needs `gdb`, and gives up after a minute.
pub(crate) fn dump_stacks(what: &str) {
    if let Some(path) = std::env::var_os("CHAOS_STACKS") {
        let Ok(out) = std::process::Command::new("timeout")
            .args([
                "60",
                "gdb",
                "-p",
                &std::process::id().to_string(),
                "-batch",
                "-ex",
                "thread apply all bt",
            ])
            .output()
        else {
            eprintln!("CHAOS_STACKS: cannot run gdb");
            return;
        };
        let mut text = format!("=== {what}\n").into_bytes();
        text.extend(out.stdout);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("CHAOS_STACKS: cannot write {path:?}: {e}");
        }
    }
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Where a hung case stands: its blocked gates and library threads.
fn diagnosis(case: &Case) -> String {
    let threads: Vec<String> = worker_core::threads::live_threads()
        .into_iter()
        .filter(|t| t.starts_with(&case.prefix))
        .collect();
    format!(
        "blocked in gates: {:?}; library threads: {threads:?}",
        case.gates.blocked()
    )
}

#[test]
fn trees_of_misbehaving_workers_end_cleanly_and_lose_no_error() {
    quiet_injected_panics();
    let seed: Option<u64> = std::env::var("CHAOS_SEED")
        .ok()
        .map(|s| s.parse().expect("CHAOS_SEED is a u64"));
    let cases: usize = std::env::var("CHAOS_CASES")
        .ok()
        .map(|s| s.parse().expect("CHAOS_CASES is a number"))
        .unwrap_or(if seed.is_some() { 1 } else { 500 });
    let base = seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        rng::mix(nanos as u64, std::process::id() as u64)
    });
    for number in 0..cases {
        let seed = base.wrapping_add(number as u64);
        let violations = std::panic::catch_unwind(|| run_case(seed, number))
            .unwrap_or_else(|p| vec![format!("the case panicked: {}", panic_message(&*p))]);
        if !violations.is_empty() {
            // Printed, not in the panic's message: a message with an
            // injected error's token would be kept quiet.
            eprintln!(
                "chaos case {number} failed; replay with CHAOS_SEED={seed}\n{}\nplan: {:#?}",
                violations.join("\n"),
                Planner::new(seed).case()
            );
            panic!("chaos case {number} failed; replay with CHAOS_SEED={seed}");
        }
    }
}
