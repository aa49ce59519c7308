//! Builds a plan's supervisors, and the start functions of their
//! children, misbehaving as the plan says.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, select};
use worker_catacomb::{Catacomb, Plan};
use worker_core::events::{Event, EventKind};
use worker_core::{Error, SharedWorker};
use worker_dependency::{Engine, EngineConfig, Manifold, Metrics, Outputs};
use worker_runner::{RestartPolicy, Runner, RunnerParams, SeededJitter};

use crate::case::{Case, Child, Failure, Handle, Key, Sink, SupRecord};
use crate::plan::{
    ChildSpec, DropKind, EngineSpec, From, KindSpec, RestartSpec, RunnerSpec, SupSpec, What,
};
use crate::{calls, leaf};

/// What a catacomb's work is told to do.
#[derive(Debug)]
pub(crate) enum WorkMsg {
    Fail,
    Return,
    Add(ChildSpec),
}

/// Makes the supervisor `spec` under `name`, with its children; returns
/// its record and the worker to hand to its own supervisor.
pub(crate) fn sup(
    case: &Arc<Case>,
    spec: &SupSpec,
    name: String,
) -> (Arc<SupRecord>, SharedWorker) {
    let record = SupRecord::new(name, spec.kind.clone());
    record
        .ids
        .lock()
        .unwrap()
        .extend(spec.children.iter().map(|c| c.id.clone()));
    case.sups.lock().unwrap().push(record.clone());
    let worker: SharedWorker = match &spec.kind {
        KindSpec::Runner(r) => {
            let runner = runner(&record, r);
            record.handle.set(Handle::Runner(runner.clone())).unwrap();
            for child in &spec.children {
                start_child(case, &record, child);
            }
            Arc::new(runner)
        }
        KindSpec::Engine(e) => {
            let engine = engine(&record, e);
            record.handle.set(Handle::Engine(engine.clone())).unwrap();
            let manifolds: Vec<(String, Manifold)> = spec
                .children
                .iter()
                .map(|c| (c.id.clone(), manifold(case, &record, c)))
                .collect();
            // Its handle is out already: an op may have killed it.
            if let Err(e) = engine.install_all(manifolds) {
                assert!(
                    matches!(e, worker_dependency::InstallError::ShuttingDown(_)),
                    "a new engine installs: {e:?}"
                );
            }
            Arc::new(engine)
        }
        KindSpec::Catacomb => Arc::new(catacomb(case, &record, &spec.children)),
    };
    (record, worker)
}

fn runner(record: &Arc<SupRecord>, spec: &RunnerSpec) -> Runner {
    let sink: Arc<Sink> = record.sink.clone();
    let hook_panics = spec.hook_panics;
    let mut params = RunnerParams::new(record.name.clone())
        .strategy(spec.strategy)
        .shutdown_order(spec.order)
        .start_threads(spec.start_threads)
        .jitter(SeededJitter::new(spec.jitter_seed))
        .on_event(move |e: &Event| {
            // The one place that reads the runner's events.
            if let (Some(id), EventKind::Failed { error, fatal, .. }) = (&e.worker, &e.kind) {
                sink.failures.lock().unwrap().push(Failure {
                    id: id.to_string(),
                    error: error.clone(),
                    fatal: *fatal,
                });
            }
            if hook_panics {
                panic!("{}hook] the event hook panics", crate::case::MARK);
            }
        });
    params = match spec.restart {
        RestartSpec::Delay(d) => params.restart_delay(d),
        RestartSpec::Fixed(d) => params.restart_policy(RestartPolicy::fixed(d)),
        RestartSpec::Exponential { initial, max } => {
            params.restart_policy(RestartPolicy::exponential(initial, 2.0, max))
        }
    };
    if let Some(t) = spec.stop_timeout {
        params = params.stop_timeout(t);
    }
    if let crate::plan::Fatal::OneIn { .. } = spec.fatal {
        let fatal = spec.fatal;
        params = params.is_fatal(move |e| crate::case::is_fatal(fatal, e));
    }
    Runner::new(params).expect("valid runner params")
}

/// Records what the engine says of each stop.
struct Recorder {
    sink: Arc<Sink>,
    panics: bool,
}

impl Metrics for Recorder {
    fn record_start(&self, _name: &str) {
        if self.panics {
            panic!("{}metrics] record_start panics", crate::case::MARK);
        }
    }

    fn record_stop(&self, name: &str, error: Option<&Error>) {
        self.sink
            .stops
            .lock()
            .unwrap()
            .push((name.to_owned(), error.cloned()));
        if self.panics {
            panic!("{}metrics] record_stop panics", crate::case::MARK);
        }
    }
}

fn engine(record: &Arc<SupRecord>, spec: &EngineSpec) -> Engine {
    let fatal = spec.fatal;
    let config = EngineConfig::new(record.name.clone())
        .error_delay(spec.error_delay)
        .bounce_delay(spec.bounce_delay)
        .max_delay(spec.max_delay)
        .backoff_factor(spec.backoff_factor)
        .backoff_reset_time(spec.backoff_reset_time)
        .stop_timeout(spec.stop_timeout)
        .is_fatal(move |e| crate::case::is_fatal(fatal, e))
        .jitter(SeededJitter::new(spec.jitter_seed))
        .metrics(Recorder {
            sink: record.sink.clone(),
            panics: spec.metrics_panic,
        });
    Engine::new(config).expect("valid engine config")
}

/// State a start function captures whose `Drop` panics.
struct Bomb(bool);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!(
                "{}bomb] a start function's state exploded",
                crate::case::MARK
            );
        }
    }
}

/// One call of `child`'s start function, under `parent`.
fn start(
    case: &Arc<Case>,
    parent: &Arc<SupRecord>,
    child: &ChildSpec,
) -> Result<SharedWorker, Error> {
    let n = case.next_call(&child.id);
    let bit = 1u32.checked_shl(n).unwrap_or(0);
    let whose = format!("{}/{}#{n}", parent.name, child.id);
    if child.start.block_on & bit != 0 {
        case.count("start blocked");
        case.gates.make(format!("start of {whose}")).block();
    }
    if let Some(call) = child.start.call {
        calls::call_back(case, parent, &child.id, call, From::Start);
    }
    if child.start.panic_on & bit != 0 {
        let message = case.message("start panic", &whose);
        let token = crate::case::tokens(&message)[0].to_owned();
        parent.owe(&child.id, Key::Token(token));
        case.count("start panic");
        panic!("{message}");
    }
    if child.start.fail_on & bit != 0 {
        let e = case.error("start error", &whose);
        parent.owe(&child.id, Key::Error(e.clone()));
        case.count("start error");
        return Err(e);
    }
    Ok(make_child(case, parent, child, whose).1)
}

/// Makes the child itself, and records it as `parent`'s.
fn make_child(
    case: &Arc<Case>,
    parent: &Arc<SupRecord>,
    child: &ChildSpec,
    name: String,
) -> (Child, SharedWorker) {
    let (made, worker) = match &child.what {
        What::Leaf(spec) => {
            let (core, worker) = leaf::make(case, parent, &child.id, name, spec);
            (Child::Leaf(core), worker)
        }
        What::Sup(spec) => {
            let (record, worker) = sup(case, spec, name);
            (Child::Sup(record), worker)
        }
    };
    parent.adopt(&child.id, made.clone());
    (made, worker)
}

/// Starts `child` under the runner `parent`.
pub(crate) fn start_child(case: &Arc<Case>, parent: &Arc<SupRecord>, child: &ChildSpec) {
    let Some(Handle::Runner(runner)) = parent.handle.get() else {
        unreachable!("a runner's record")
    };
    let (shared, record, spec) = (case.clone(), parent.clone(), child.clone());
    let bomb = Bomb(child.start.bomb);
    let mut started = Ok(());
    // A runner that refuses the start function (it is dying) drops it on
    // this thread, whose value it is.
    crate::ops::refused_bomb(case, || {
        started = runner.start_worker(child.id.clone(), move || {
            let _keep = &bomb;
            start(&shared, &record, &spec)
        });
    });
    if let Err(e) = started {
        let e = Error::from(e);
        if !(e.is::<worker_runner::Dying>() || e.is::<worker_core::Dead>()) {
            case.violation(format!(
                "start_worker({}) on {}: {e}",
                child.id, parent.name
            ));
        }
    }
}

/// An output value whose `Drop` misbehaves (the original only: the
/// clones handed to dependents are quiet).
#[derive(Clone)]
struct Output(Option<(DropKind, Arc<crate::gates::Gate>)>);

impl Drop for Output {
    fn drop(&mut self) {
        if let Some((kind, gate)) = self.0.take() {
            match kind {
                DropKind::Panic if !std::thread::panicking() => {
                    panic!("{}output] an output value exploded", crate::case::MARK)
                }
                DropKind::Slow => gate.block(),
                _ => {}
            }
        }
    }
}

/// The manifold of `child` under the engine `parent`.
pub(crate) fn manifold(case: &Arc<Case>, parent: &Arc<SupRecord>, child: &ChildSpec) -> Manifold {
    let (case, record, spec) = (case.clone(), parent.clone(), child.clone());
    let bomb = Bomb(child.start.bomb);
    let output = child.start.output;
    Manifold::offering(move |ctx| {
        let _keep = &bomb;
        for input in &spec.inputs {
            ctx.require(input)?;
        }
        let worker = start(&case, &record, &spec)?;
        let value = output.map(|kind| (kind, case.gates.make(format!("output of {}", spec.id))));
        Ok((worker, Outputs::new().with(Output(value))))
    })
    .inputs(child.inputs.iter())
}

/// A catacomb whose work adds the children not bound at `invoke`, then
/// waits to die or to be told to end.
fn catacomb(case: &Arc<Case>, record: &Arc<SupRecord>, children: &[ChildSpec]) -> Catacomb {
    let init: Vec<SharedWorker> = children
        .iter()
        .filter(|c| c.init)
        .map(|c| {
            let name = format!("{}/{}#{}", record.name, c.id, case.next_call(&c.id));
            make_child(case, record, c, name).1
        })
        .collect();
    let later: Vec<ChildSpec> = children.iter().filter(|c| !c.init).cloned().collect();
    let (tx, rx) = crossbeam_channel::unbounded();
    record.work.set(tx).unwrap();
    let (case, me) = (case.clone(), record.clone());
    let plan = Plan::new(record.name.clone(), move |c: &Catacomb| {
        let _ = me.handle.set(Handle::Catacomb(c.clone()));
        for child in &later {
            add(&case, &me, c, child);
        }
        work(&case, &me, c, rx)
    })
    .init(init);
    let catacomb = Catacomb::invoke(plan).expect("a catacomb starts");
    let _ = record.handle.set(Handle::Catacomb(catacomb.clone()));
    catacomb
}

fn work(
    case: &Arc<Case>,
    me: &Arc<SupRecord>,
    c: &Catacomb,
    rx: Receiver<WorkMsg>,
) -> Result<(), Error> {
    loop {
        select! {
            recv(c.dying()) -> _ => return Err(c.err_dying()),
            recv(rx) -> msg => match msg {
                Ok(WorkMsg::Fail) => {
                    let e = case.error("work error", &me.name);
                    me.reasons.lock().unwrap().push(e.clone());
                    return Err(e);
                }
                Ok(WorkMsg::Return) => return Ok(()),
                Ok(WorkMsg::Add(child)) => add(case, me, c, &child),
                Err(_) => {
                    let _ = c.dying().recv();
                    return Err(c.err_dying());
                }
            },
        }
    }
}

/// Adds a new child to the catacomb `c`; a refused child is an orphan,
/// which no supervisor waits for.
pub(crate) fn add(case: &Arc<Case>, me: &Arc<SupRecord>, c: &Catacomb, child: &ChildSpec) {
    me.ids.lock().unwrap().push(child.id.clone());
    let name = format!("{}/{}#{}", me.name, child.id, case.next_call(&child.id));
    let (made, worker) = make_child(case, me, child, name);
    if c.add(worker).is_err() {
        match made {
            Child::Leaf(l) => l.orphan.store(true, Ordering::SeqCst),
            Child::Sup(s) => s.orphan.store(true, Ordering::SeqCst),
        }
    }
}
