//! The misbehaving worker: one type whose `kill`, `wait`, `report` and
//! `Drop` misbehave as its [`LeafSpec`] says, with or without a body
//! thread.
//!
//! Its misbehaviours keep to what a supervisor can survive: a `kill`
//! that panics or calls back still kills, and one that blocks kills once
//! its gate opens (a worker that never ends holds any supervisor, by
//! design).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crossbeam_channel::select;
use worker_core::{
    DoneCallback, Error, Report, Reporter, SharedWorker, Signal, ThreadWorker, Tomb, Worker, spawn,
};

use crate::calls::call_back;
use crate::case::{Case, LeafCore, SupRecord};
use crate::gates::Gate;
use crate::plan::{DropKind, End, From, KillKind, KindSpec, LeafSpec, ReportKind};

pub(crate) struct Leaf {
    core: Arc<LeafCore>,
    id: String,
    body: Option<ThreadWorker>,
    gate: Option<Arc<Gate>>,
    parent: Arc<SupRecord>,
    case: Arc<Case>,
}

/// Makes a leaf named `name`, child `id` of `parent`.
pub(crate) fn make(
    case: &Arc<Case>,
    parent: &Arc<SupRecord>,
    id: &str,
    name: String,
    spec: &LeafSpec,
) -> (Arc<LeafCore>, SharedWorker) {
    let gate = (spec.kill == KillKind::Block || spec.drop == DropKind::Slow)
        .then(|| case.gates.make(format!("kill or drop of {name}")));
    let (control, body) = if spec.threaded {
        let (tx, rx) = crossbeam_channel::unbounded::<End>();
        let (case, parent, id, whose) = (case.clone(), parent.clone(), id.to_owned(), name.clone());
        let (body_call, kill_error) = (spec.body_call, spec.kill_error);
        let body = spawn(name.clone(), move |tomb: &Tomb| {
            if let Some(call) = body_call {
                // A catacomb cannot tell its worker's thread from any
                // other: waiting for it there deadlocks, as documented.
                if !matches!(parent.kind, KindSpec::Catacomb) {
                    call_back(&case, &parent, &id, call, From::Body);
                }
            }
            select! {
                recv(tomb.dying()) -> _ => {
                    if kill_error {
                        Err(case.error("error when killed", &whose))
                    } else {
                        Ok(())
                    }
                }
                recv(rx) -> end => match end {
                    Ok(End::Error) => Err(case.error("body error", &whose)),
                    Ok(End::Panic) => panic!("{}", case.message("body panic", &whose)),
                    Ok(End::Clean) => Ok(()),
                    Err(_) => {
                        let _ = tomb.dying().recv();
                        Ok(())
                    }
                },
            }
        });
        (Some(tx), Some(body))
    } else {
        (None, None)
    };
    let tomb = match &body {
        Some(body) => body.tomb().clone(),
        None => Tomb::new(),
    };
    let core = Arc::new(LeafCore {
        name,
        spec: spec.clone(),
        tomb,
        control,
        panics: Mutex::default(),
        orphan: AtomicBool::new(false),
    });
    case.leaves.lock().unwrap().push(core.clone());
    let leaf = Leaf {
        core: core.clone(),
        id: id.to_owned(),
        body,
        gate,
        parent: parent.clone(),
        case: case.clone(),
    };
    (core, Arc::new(leaf))
}

/// Ends a leaf as an operation says.
pub(crate) fn end(case: &Case, leaf: &LeafCore, how: End) {
    match &leaf.control {
        Some(control) => {
            let _ = control.send(how);
        }
        None => leaf.tomb.done(match how {
            End::Clean => Ok(()),
            // No body to panic in: a plain error.
            End::Error | End::Panic => Err(case.error("error", &leaf.name)),
        }),
    }
}

impl Leaf {
    /// Panics with a fresh message, which is kept: a catacomb owes it.
    fn panic(&self, what: &'static str) -> ! {
        self.case.count(what);
        let message = self.case.message(what, &self.core.name);
        self.core.panics.lock().unwrap().push(message.clone());
        panic!("{message}");
    }
}

impl Leaf {
    /// A report that waits for its own runner or engine, which must
    /// refuse at once (a catacomb's worker reports plainly: a catacomb
    /// does not wait for its reports, so the wait would just block).
    fn wait_own(&self) -> Report {
        let runs_reports = matches!(self.parent.kind, KindSpec::Runner(_) | KindSpec::Engine(_));
        let Some(handle) = self.parent.handle.get().filter(|_| runs_reports) else {
            return Report::new(self.core.name.clone());
        };
        match handle.worker().wait() {
            Err(e) if crate::calls::is_typed_deadlock(&e) => {
                self.case.count("typed deadlock error in a report")
            }
            other => self.case.violation(format!(
                "the report of {} waited for its own supervisor {}: {other:?}, \
                 not a typed deadlock error",
                self.core.name, self.parent.name
            )),
        }
        Report::new("waited for my supervisor")
    }
}

impl Worker for Leaf {
    fn kill(&self) {
        match self.core.spec.kill {
            KillKind::Block => {
                self.case.count("kill blocked");
                self.gate.as_ref().expect("a gate").block()
            }
            KillKind::Call(call) => call_back(&self.case, &self.parent, &self.id, call, From::Kill),
            KillKind::Quiet | KillKind::Panic => {}
        }
        match &self.body {
            Some(body) => body.kill(),
            None => {
                let result = if self.core.spec.kill_error {
                    Err(self.case.error("error when killed", &self.core.name))
                } else {
                    Ok(())
                };
                self.core.tomb.kill(None);
                self.core.tomb.done(result);
            }
        }
        if self.core.spec.kill == KillKind::Panic {
            self.panic("kill panic");
        }
    }

    fn wait(&self) -> Result<(), Error> {
        let result = match &self.body {
            Some(body) => body.wait(),
            None => self.core.tomb.wait(),
        };
        if self.core.spec.wait_panics {
            self.panic("wait panic");
        }
        result
    }

    fn on_done(&self, callback: DoneCallback) -> Result<(), DoneCallback> {
        match &self.body {
            Some(body) => body.on_done(callback),
            None => Worker::on_done(&self.core.tomb, callback),
        }
    }

    fn dead_signal(&self) -> Option<Signal> {
        Some(self.core.tomb.dead())
    }

    fn reporter(&self) -> Option<&dyn Reporter> {
        (self.core.spec.report != ReportKind::None).then_some(self)
    }
}

impl Reporter for Leaf {
    fn report(&self) -> Report {
        match self.core.spec.report {
            ReportKind::Panic => panic!("{}", self.case.message("report panic", &self.core.name)),
            ReportKind::Own => match self.parent.handle.get() {
                Some(handle) => Report::new(handle.report()),
                None => Report::new("no supervisor yet"),
            },
            ReportKind::WaitOwn => self.wait_own(),
            ReportKind::None | ReportKind::Plain => Report::new(self.core.name.clone()),
        }
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        match self.core.spec.drop {
            DropKind::Panic if !std::thread::panicking() => self.panic("drop panic"),
            DropKind::Slow => {
                self.case.count("drop blocked");
                self.gate.as_ref().expect("a gate").block()
            }
            _ => {}
        }
    }
}
