//! What a case does, drawn from its seed before anything runs: a tree of
//! supervisors with misbehaving workers, and a schedule of operations.
//!
//! Everything random is decided here, so a seed replays the same plan.
//! What the plan cannot fix is the interleaving of threads: an operation
//! names its target by an index taken modulo whatever exists when it
//! runs.

use std::time::Duration;

use worker_runner::{ShutdownOrder, Strategy};

use crate::rng::Rng;

/// `Duration::MAX`: "never", in every duration setting.
pub(crate) const NEVER: Duration = Duration::MAX;

/// How deep supervisors nest (the root is depth 0).
const MAX_DEPTH: usize = 3;

/// A supervisor and what it supervises.
#[derive(Debug, Clone)]
pub(crate) struct SupSpec {
    pub(crate) kind: KindSpec,
    pub(crate) children: Vec<ChildSpec>,
}

#[derive(Debug, Clone)]
pub(crate) enum KindSpec {
    Runner(RunnerSpec),
    Engine(EngineSpec),
    Catacomb,
}

/// Which errors a runner or an engine takes as fatal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fatal {
    /// Every error (the runner's default, Go's: `is_fatal` unset).
    Every,
    /// Those whose token, mixed with `salt`, falls in one in `m`: a
    /// deterministic predicate of the error, so a nested supervisor's
    /// result may be fatal to its parent as well, or not.
    OneIn { salt: u64, m: u64 },
}

#[derive(Debug, Clone)]
pub(crate) enum RestartSpec {
    /// The runner's `restart_delay` alone.
    Delay(Duration),
    Fixed(Duration),
    Exponential {
        initial: Duration,
        max: Duration,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct RunnerSpec {
    pub(crate) restart: RestartSpec,
    pub(crate) stop_timeout: Option<Duration>,
    pub(crate) strategy: Strategy,
    pub(crate) order: ShutdownOrder,
    pub(crate) start_threads: usize,
    pub(crate) fatal: Fatal,
    /// The event hook panics after recording each event.
    pub(crate) hook_panics: bool,
    pub(crate) jitter_seed: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct EngineSpec {
    pub(crate) error_delay: Duration,
    pub(crate) bounce_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) backoff_factor: f64,
    pub(crate) backoff_reset_time: Duration,
    pub(crate) stop_timeout: Duration,
    pub(crate) fatal: Fatal,
    /// The metrics hooks panic after recording.
    pub(crate) metrics_panic: bool,
    pub(crate) jitter_seed: u64,
}

/// One supervised child: its id, how it is started, and what it is.
#[derive(Debug, Clone)]
pub(crate) struct ChildSpec {
    pub(crate) id: String,
    pub(crate) start: StartSpec,
    pub(crate) what: What,
    /// Under a catacomb: bound through `Plan::init` (else added by the
    /// work when it starts).
    pub(crate) init: bool,
    /// Under an engine: the manifold's inputs (earlier siblings).
    pub(crate) inputs: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum What {
    Leaf(LeafSpec),
    Sup(Box<SupSpec>),
}

/// How a start function (runner, engine) misbehaves, by incarnation:
/// bit `n` of a mask is the `n`-th call of this child's start function,
/// counted over the whole case (so restarted subtrees do not fail
/// forever).
#[derive(Debug, Clone, Default)]
pub(crate) struct StartSpec {
    pub(crate) fail_on: u32,
    pub(crate) panic_on: u32,
    pub(crate) block_on: u32,
    /// A call back into its own supervisor, on every call.
    pub(crate) call: Option<Call>,
    /// The start function's captured state panics when dropped.
    pub(crate) bomb: bool,
    /// Under an engine: an output value, and how its `Drop` misbehaves.
    pub(crate) output: Option<DropKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropKind {
    Quiet,
    Panic,
    /// Blocks until its gate opens.
    Slow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillKind {
    Quiet,
    /// Kills, then panics.
    Panic,
    /// Blocks until its gate opens, then kills.
    Block,
    /// Calls back into its own supervisor, then kills.
    Call(Call),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportKind {
    None,
    Plain,
    Panic,
    /// Includes its own supervisor's report.
    Own,
    /// Waits for its own supervisor (a runner's or an engine's worker),
    /// which must refuse at once: it waits for the workers it lent.
    WaitOwn,
}

#[derive(Debug, Clone)]
pub(crate) struct LeafSpec {
    /// A body on a thread of its own (else a tomb alone).
    pub(crate) threaded: bool,
    pub(crate) drop: DropKind,
    pub(crate) kill: KillKind,
    pub(crate) wait_panics: bool,
    pub(crate) report: ReportKind,
    /// Ends with an error of its own when killed.
    pub(crate) kill_error: bool,
    /// The body calls back into its supervisor as soon as it runs.
    pub(crate) body_call: Option<Call>,
}

/// A call back into the caller's own supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Start (runner), install (engine) or add (catacomb) a quiet worker.
    Add,
    /// Runner: stop a sibling (returns at once).
    StopSibling,
    /// Runner: look up its own id; engine: uninstall its own manifold.
    /// From a start function, both would wait for the caller itself.
    OwnId,
    Report,
    Kill,
    /// Catacomb: kill with an error of its own.
    KillWithError,
    Wait,
    /// Kill, then wait.
    Stop,
    /// Runner: worker names; engine, runner: `waiting_for`; catacomb:
    /// `err` and `worker_count`.
    Query,
}

impl Call {
    /// Whether the call waits for the supervisor itself (so, from one of
    /// its own threads, it must fail with a typed error at once).
    pub(crate) fn waits_for_itself(self) -> bool {
        matches!(self, Call::Wait | Call::Stop)
    }
}

/// Where a call back into a supervisor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    Start,
    Kill,
    Body,
}

/// The calls a misbehaving worker of a `kind` parent makes from `from`.
/// Left out: calls whose hang the supervisor's docs list as what it cannot
/// prevent (a catacomb worker's body waiting for its catacomb), and calls
/// that wait for a sibling (two such workers deadlock each other, as they
/// would anywhere).
fn calls(kind: &KindSpec, from: From) -> &'static [Call] {
    use Call::*;
    match (kind, from) {
        (KindSpec::Runner(_), From::Start) => {
            &[Add, StopSibling, OwnId, Report, Kill, Wait, Stop, Query]
        }
        (KindSpec::Runner(_), From::Kill) => &[Add, StopSibling, Report, Kill, Wait, Stop, Query],
        (KindSpec::Runner(_), From::Body) => &[Add, StopSibling, Report, Kill, Wait, Stop],
        (KindSpec::Engine(_), From::Start) => &[Add, OwnId, Report, Kill, Wait, Stop, Query],
        (KindSpec::Engine(_), From::Kill) => &[Add, Report, Kill, Wait, Stop, Query],
        (KindSpec::Engine(_), From::Body) => &[Add, Report, Kill, Wait, Stop],
        (KindSpec::Catacomb, From::Kill) => &[Add, Report, Kill, KillWithError, Wait, Query],
        (KindSpec::Catacomb, _) => &[],
    }
}

/// One step of the schedule. `target` picks a supervisor among those made
/// so far, `pick` a child among that supervisor's ids or a leaf among all
/// leaves made so far (both modulo their number when the step runs).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Start a new child (runner: start_worker; engine: install;
    /// catacomb: add from outside).
    Start {
        target: usize,
        child: ChildSpec,
    },
    /// Runner: stop_worker; engine: uninstall (which waits).
    Stop {
        target: usize,
        pick: usize,
    },
    /// Runner: stop_and_remove_worker (which waits, and hands over the
    /// worker's error).
    Remove {
        target: usize,
        pick: usize,
    },
    /// Runner: worker(id), which may wait.
    Lookup {
        target: usize,
        pick: usize,
    },
    Report {
        target: usize,
    },
    WaitingFor {
        target: usize,
    },
    /// Kill a supervisor (a catacomb perhaps with an error).
    Kill {
        target: usize,
        with_error: bool,
    },
    /// End a leaf: with an error, a panic in its body, or cleanly.
    End {
        pick: usize,
        how: End,
    },
    /// Tell a catacomb's work to return an error, or `Ok`.
    Work {
        target: usize,
        fail: bool,
    },
    OpenGate {
        pick: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum End {
    Error,
    Panic,
    Clean,
}

/// A whole case.
#[derive(Debug, Clone)]
pub(crate) struct CasePlan {
    pub(crate) root: SupSpec,
    pub(crate) ops: Vec<Op>,
}

/// Draws plans; names every child uniquely within the case.
pub(crate) struct Planner {
    rng: Rng,
    next_id: usize,
}

impl Planner {
    pub(crate) fn new(seed: u64) -> Self {
        Planner {
            rng: Rng::new(seed),
            next_id: 0,
        }
    }

    pub(crate) fn case(mut self) -> CasePlan {
        let root = self.sup(0);
        let n = 8 + self.rng.below(20);
        let ops = (0..n).map(|_| self.op()).collect();
        CasePlan { root, ops }
    }

    fn duration(&mut self, never_in: u64) -> Duration {
        if self.rng.chance(1, never_in) {
            NEVER
        } else {
            self.rng.pick(&[
                Duration::from_millis(1),
                Duration::from_millis(2),
                Duration::from_millis(5),
                Duration::from_millis(20),
            ])
        }
    }

    fn fatal(&mut self, runner: bool) -> Fatal {
        if runner && self.rng.chance(1, 4) {
            Fatal::Every
        } else {
            Fatal::OneIn {
                salt: self.rng.next_u64(),
                m: self.rng.pick(&[2, 4, 8, 1000]),
            }
        }
    }

    fn sup(&mut self, depth: usize) -> SupSpec {
        let kind = match self.rng.below(3) {
            0 => KindSpec::Runner(self.runner()),
            1 => KindSpec::Engine(self.engine()),
            _ => KindSpec::Catacomb,
        };
        let n = 1 + self.rng.below(4);
        let mut children: Vec<ChildSpec> = Vec::new();
        for _ in 0..n {
            let earlier: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
            let child = self.child(&kind, depth, &earlier);
            children.push(child);
        }
        SupSpec { kind, children }
    }

    fn runner(&mut self) -> RunnerSpec {
        let restart = match self.rng.below(3) {
            0 => RestartSpec::Delay(self.duration(3)),
            1 => RestartSpec::Fixed(self.duration(3)),
            _ => {
                // The runner refuses a max below the initial delay.
                let initial = self.duration(4);
                let max = self.duration(2).max(initial);
                RestartSpec::Exponential { initial, max }
            }
        };
        RunnerSpec {
            restart,
            stop_timeout: self.rng.chance(2, 3).then(|| self.duration(2)),
            strategy: self.rng.pick(&[
                Strategy::OneForOne,
                Strategy::OneForAll,
                Strategy::RestForOne,
            ]),
            order: self
                .rng
                .pick(&[ShutdownOrder::AllAtOnce, ShutdownOrder::Reverse]),
            start_threads: 1 + self.rng.below(3),
            fatal: self.fatal(true),
            hook_panics: self.rng.chance(1, 4),
            jitter_seed: self.rng.next_u64(),
        }
    }

    fn engine(&mut self) -> EngineSpec {
        EngineSpec {
            error_delay: self.duration(3),
            bounce_delay: self.duration(4),
            max_delay: if self.rng.chance(1, 4) {
                Duration::ZERO
            } else {
                self.duration(2)
            },
            backoff_factor: self.rng.pick(&[0.0, 1.0, 2.0, 1e9]),
            backoff_reset_time: self.duration(2),
            stop_timeout: if self.rng.chance(1, 4) {
                Duration::ZERO
            } else {
                self.duration(2)
            },
            fatal: self.fatal(false),
            metrics_panic: self.rng.chance(1, 4),
            jitter_seed: self.rng.next_u64(),
        }
    }

    fn mask(&mut self, chance_in: u64) -> u32 {
        let mut mask = 0;
        for bit in 0..6 {
            if self.rng.chance(1, chance_in) {
                mask |= 1 << bit;
            }
        }
        mask
    }

    fn call(&mut self, kind: &KindSpec, from: From, chance_in: u64) -> Option<Call> {
        let menu = calls(kind, from);
        (!menu.is_empty() && self.rng.chance(1, chance_in)).then(|| self.rng.pick(menu))
    }

    fn child(&mut self, parent: &KindSpec, depth: usize, earlier: &[String]) -> ChildSpec {
        let id = format!("w{}", self.next_id);
        self.next_id += 1;
        let nested = depth + 1 < MAX_DEPTH && self.rng.chance(1, 3 + depth as u64);
        let what = if nested {
            What::Sup(Box::new(self.sup(depth + 1)))
        } else {
            What::Leaf(self.leaf(parent))
        };
        let engine = matches!(parent, KindSpec::Engine(_));
        let start = StartSpec {
            fail_on: self.mask(6),
            panic_on: self.mask(10),
            block_on: self.mask(12),
            call: self.call(parent, From::Start, 5),
            bomb: self.rng.chance(1, 5),
            output: (engine && self.rng.chance(1, 2)).then(|| {
                self.rng
                    .pick(&[DropKind::Quiet, DropKind::Panic, DropKind::Slow])
            }),
        };
        let inputs = if engine {
            earlier
                .iter()
                .filter(|_| self.rng.chance(1, 3))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        ChildSpec {
            id,
            start,
            what,
            init: self.rng.chance(1, 2),
            inputs,
        }
    }

    fn leaf(&mut self, parent: &KindSpec) -> LeafSpec {
        let threaded = self.rng.chance(1, 2);
        let kill = match self.rng.below(8) {
            0 => KillKind::Panic,
            1 => KillKind::Block,
            2 | 3 => match self.call(parent, From::Kill, 1) {
                Some(call) => KillKind::Call(call),
                None => KillKind::Quiet,
            },
            _ => KillKind::Quiet,
        };
        LeafSpec {
            threaded,
            drop: self.rng.pick(&[
                DropKind::Quiet,
                DropKind::Quiet,
                DropKind::Panic,
                DropKind::Slow,
            ]),
            kill,
            wait_panics: self.rng.chance(1, 8),
            report: self.rng.pick(&[
                ReportKind::None,
                ReportKind::Plain,
                ReportKind::Panic,
                ReportKind::Own,
                ReportKind::WaitOwn,
            ]),
            kill_error: self.rng.chance(1, 4),
            body_call: if threaded {
                self.call(parent, From::Body, 6)
            } else {
                None
            },
        }
    }

    fn op(&mut self) -> Op {
        let target = self.rng.below(64);
        let pick = self.rng.below(64);
        match self.rng.below(20) {
            0..=2 => {
                // A new child of some supervisor: its kind is known only
                // when the step runs, so the menu of calls is the
                // runner's; the step leaves out what does not apply.
                let kind = KindSpec::Runner(self.runner());
                let child = self.child(&kind, MAX_DEPTH - 2, &[]);
                Op::Start { target, child }
            }
            3 | 4 => Op::Stop { target, pick },
            5 | 6 => Op::Remove { target, pick },
            7 => Op::Lookup { target, pick },
            8 | 9 => Op::Report { target },
            10 => Op::WaitingFor { target },
            11 => Op::Kill {
                target,
                with_error: self.rng.chance(1, 2),
            },
            12..=15 => Op::End {
                pick,
                how: self
                    .rng
                    .pick(&[End::Error, End::Error, End::Panic, End::Clean]),
            },
            16 => Op::Work {
                target,
                fail: self.rng.chance(1, 2),
            },
            _ => Op::OpenGate { pick },
        }
    }
}
