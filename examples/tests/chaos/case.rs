//! What a case knows while it runs: every supervisor and leaf it made,
//! where each error should show up, and what went wrong.
//!
//! Every error the test makes carries a token, `[chaos:N]`, unique in the
//! case, so it can be recognised wherever it surfaces, even inside an
//! error the library built around it (a `Panicked` with the panic
//! message).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use worker_catacomb::Catacomb;
use worker_core::{Error, Signal, Tomb, Worker};
use worker_dependency::Engine;
use worker_runner::Runner;

use crate::gates::Gates;
use crate::plan::{Fatal, KindSpec, LeafSpec};
use crate::rng::mix;

/// The marker of every error and panic message the test makes.
pub(crate) const MARK: &str = "[chaos:";

/// A case in progress.
#[derive(Debug)]
pub(crate) struct Case {
    /// Starts every thread name of the case.
    pub(crate) prefix: String,
    tokens: AtomicU64,
    pub(crate) gates: Gates,
    pub(crate) sups: Mutex<Vec<Arc<SupRecord>>>,
    pub(crate) leaves: Mutex<Vec<Arc<LeafCore>>>,
    violations: Mutex<Vec<String>>,
    /// Calls of each child's start function so far, by child id.
    calls: Mutex<HashMap<String, u32>>,
    /// What the case exercised (printed with `CHAOS_VERBOSE`).
    pub stats: Mutex<HashMap<&'static str, usize>>,
}

impl Case {
    pub(crate) fn new(prefix: String) -> Arc<Case> {
        Arc::new(Case {
            prefix,
            tokens: AtomicU64::new(0),
            gates: Gates::default(),
            sups: Mutex::default(),
            leaves: Mutex::default(),
            violations: Mutex::default(),
            calls: Mutex::default(),
            stats: Mutex::default(),
        })
    }

    /// A fresh message `[chaos:N] <what> of <whose>`.
    pub(crate) fn message(&self, what: &str, whose: &str) -> String {
        let n = self.tokens.fetch_add(1, Ordering::SeqCst);
        format!("{MARK}{n}] {what} of {whose}")
    }

    /// A number never returned before in this case.
    pub(crate) fn fresh(&self) -> u64 {
        self.tokens.fetch_add(1, Ordering::SeqCst)
    }

    /// A fresh error.
    pub(crate) fn error(&self, what: &str, whose: &str) -> Error {
        Error::msg(self.message(what, whose))
    }

    /// Counts something the case exercised.
    pub(crate) fn count(&self, what: &'static str) {
        *self.stats.lock().unwrap().entry(what).or_default() += 1;
    }

    /// Records that a rule was broken.
    pub(crate) fn violation(&self, v: String) {
        self.violations.lock().unwrap().push(v);
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// Counts a call of `id`'s start function; returns its index.
    pub(crate) fn next_call(&self, id: &str) -> u32 {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(id.to_owned()).or_default();
        *n += 1;
        *n - 1
    }

    pub(crate) fn sup(&self, pick: usize) -> Arc<SupRecord> {
        let sups = self.sups.lock().unwrap();
        sups[pick % sups.len()].clone()
    }

    pub(crate) fn leaf(&self, pick: usize) -> Option<Arc<LeafCore>> {
        let leaves = self.leaves.lock().unwrap();
        (!leaves.is_empty()).then(|| leaves[pick % leaves.len()].clone())
    }
}

/// The token in `text`, if any (`[chaos:N]`, as a string).
pub(crate) fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let from = &rest[at..];
        match from.find(']') {
            Some(end) => {
                out.push(&from[..=end]);
                rest = &from[end..];
            }
            None => break,
        }
    }
    out
}

/// The case's own `is_fatal`: an error carrying a token picked by `fatal`.
pub(crate) fn is_fatal(fatal: Fatal, e: &Error) -> bool {
    match fatal {
        Fatal::Every => true,
        Fatal::OneIn { salt, m } => {
            let text = e.to_string();
            tokens(&text).iter().any(|t| {
                let n: u64 = t[MARK.len()..t.len() - 1].parse().unwrap_or(0);
                mix(salt, n) % m == 0
            })
        }
    }
}

/// How an owed error is recognised where it surfaces.
#[derive(Debug, Clone)]
pub(crate) enum Key {
    /// The error itself (or one that prints the same).
    Error(Error),
    /// A panic of ours, which the library wrapped: its token.
    Token(String),
}

impl Key {
    pub(crate) fn matches(&self, e: &Error) -> bool {
        match self {
            Key::Error(owed) => owed.same(e) || owed.to_string() == e.to_string(),
            Key::Token(token) => e.to_string().contains(token.as_str()),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Error(e) => write!(f, "error {e:?}"),
            Key::Token(t) => write!(f, "panic {t}"),
        }
    }
}

/// An error a supervisor must not lose: it came from its child `id`.
#[derive(Debug, Clone)]
pub(crate) struct Owed {
    pub(crate) id: String,
    pub(crate) key: Key,
}

/// A runner's `Failed` event: a child ended with `error`.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) id: String,
    pub(crate) error: Error,
    pub(crate) fatal: bool,
}

/// Where a supervisor shows the errors of its children.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    /// Runner: the failures its event hook was told of.
    pub(crate) failures: Mutex<Vec<Failure>>,
    /// Runner: what `stop_and_remove_worker` returned, by id.
    pub(crate) removals: Mutex<Vec<(String, Error)>>,
    /// Engine: what `Metrics::record_stop` was told, by manifold.
    pub(crate) stops: Mutex<Vec<(String, Option<Error>)>>,
}

/// A supervisor's handle.
#[derive(Debug, Clone)]
pub(crate) enum Handle {
    Runner(Runner),
    Engine(Engine),
    Catacomb(Catacomb),
}

impl Handle {
    pub(crate) fn worker(&self) -> &dyn Worker {
        match self {
            Handle::Runner(r) => r,
            Handle::Engine(e) => e,
            Handle::Catacomb(c) => c,
        }
    }

    pub(crate) fn dead(&self) -> Signal {
        match self {
            Handle::Runner(r) => r.dead_signal().expect("runners signal their end"),
            Handle::Engine(e) => e.dead_signal().expect("engines signal their end"),
            Handle::Catacomb(c) => c.dead(),
        }
    }

    pub(crate) fn report(&self) -> serde_json::Value {
        match self {
            Handle::Runner(r) => serde_json::to_value(r.report()),
            Handle::Engine(e) => serde_json::to_value(e.report()),
            Handle::Catacomb(c) => serde_json::to_value(c.report()),
        }
        .expect("reports serialise")
    }

    /// What the supervisor says it waits for.
    pub(crate) fn waiting_for(&self) -> String {
        match self {
            Handle::Runner(r) => format!("{:?}", r.waiting_for()),
            Handle::Engine(e) => format!("{:?}", e.waiting_for()),
            Handle::Catacomb(c) => format!("{} workers, {:?}", c.worker_count(), c.state()),
        }
    }
}

/// A child as its supervisor's record keeps it.
#[derive(Debug, Clone)]
pub(crate) enum Child {
    Leaf(Arc<LeafCore>),
    Sup(Arc<SupRecord>),
}

/// One supervisor made by the case.
#[derive(Debug)]
pub(crate) struct SupRecord {
    pub(crate) name: String,
    pub(crate) kind: KindSpec,
    /// Set once the supervisor exists (a catacomb's bound workers are made
    /// before it).
    pub(crate) handle: OnceLock<Handle>,
    pub(crate) sink: Arc<Sink>,
    /// Its children, by id, every incarnation.
    pub(crate) children: Mutex<Vec<(String, Child)>>,
    /// The ids it was given (for operations that pick one).
    pub(crate) ids: Mutex<Vec<String>>,
    /// Errors of its children known at the time (start functions that
    /// failed), besides their results.
    pub(crate) owed: Mutex<Vec<Owed>>,
    /// Catacomb: the errors it was killed with or its work returned while
    /// it could still record them (its result must then be an error).
    pub(crate) reasons: Mutex<Vec<Error>>,
    /// Refused by a catacomb that was dying: no supervisor waits for it.
    pub(crate) orphan: AtomicBool,
    /// Catacomb: tells its work what to do.
    pub(crate) work: OnceLock<crossbeam_channel::Sender<crate::build::WorkMsg>>,
}

impl SupRecord {
    pub(crate) fn new(name: String, kind: KindSpec) -> Arc<SupRecord> {
        Arc::new(SupRecord {
            name,
            kind,
            handle: OnceLock::new(),
            sink: Arc::default(),
            children: Mutex::default(),
            ids: Mutex::default(),
            owed: Mutex::default(),
            reasons: Mutex::default(),
            orphan: AtomicBool::new(false),
            work: OnceLock::new(),
        })
    }

    pub(crate) fn adopt(&self, id: &str, child: Child) {
        self.children.lock().unwrap().push((id.to_owned(), child));
    }

    pub(crate) fn owe(&self, id: &str, key: Key) {
        self.owed.lock().unwrap().push(Owed {
            id: id.to_owned(),
            key,
        });
    }

    /// The `pick`-th id it was given, if any.
    pub(crate) fn id(&self, pick: usize) -> Option<String> {
        let ids = self.ids.lock().unwrap();
        (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
    }

    /// Whether the calling thread is one of this supervisor's own (named
    /// after it by the library).
    pub(crate) fn on_own_thread(&self) -> bool {
        let current = std::thread::current();
        let thread = current.name().unwrap_or("");
        thread == self.name
            || thread
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// What the case keeps of a leaf (not the worker itself: the supervisor
/// must hold the last reference, so that its `Drop` runs there).
#[derive(Debug)]
pub(crate) struct LeafCore {
    pub(crate) name: String,
    pub(crate) spec: LeafSpec,
    /// The worker's tomb: its result is the truth about how it ended.
    pub(crate) tomb: Tomb,
    /// Threaded leaves: tells the body how to end.
    pub(crate) control: Option<crossbeam_channel::Sender<crate::plan::End>>,
    /// Messages of its panics in `kill`, `wait` and `Drop`.
    pub(crate) panics: Mutex<Vec<String>>,
    /// Refused by a catacomb that was dying.
    pub(crate) orphan: AtomicBool,
}
