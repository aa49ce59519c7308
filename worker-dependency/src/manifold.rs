//! `Manifold`: what the engine needs to know to run one named worker.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::sync::Arc;

use worker_core::{Error, Passive, SharedWorker, Worker, into_shared};

use crate::Context;

/// A start function, type-erased: given the inputs, make the worker.
pub(crate) type StartFn = Arc<dyn Fn(&Context) -> Result<SharedWorker, Error> + Send + Sync>;
/// An output function, type-erased: describe what a running worker offers.
pub(crate) type OutputFn =
    Arc<dyn Fn(&SharedWorker, &mut Outputs) -> Result<(), Error> + Send + Sync>;
/// An error filter: sees how a worker ended (`None`: without error) and may
/// change it. Used per manifold and engine-wide.
pub type FilterFn = Arc<dyn Fn(Option<Error>) -> Option<Error> + Send + Sync>;

/// One named node of the engine's graph: which inputs it needs, how to
/// start its worker, what the worker offers to its dependents, and how to
/// read the worker's errors.
///
/// Build one with [`Manifold::new`] and the builder methods:
///
/// ```
/// use std::sync::Arc;
/// use worker_core::Passive;
/// use worker_dependency::Manifold;
///
/// #[derive(Clone)]
/// struct Config { port: u16 }
///
/// let config = Manifold::constant(Config { port: 8080 });
/// let server = Manifold::new(|ctx| {
///     let config: Config = ctx.get("config")?; // Missing until "config" runs
///     assert_eq!(config.port, 8080);
///     Ok(Passive::new())
/// })
/// .inputs(["config"]);
/// # let _ = (config, server);
/// ```
#[derive(Clone)]
pub struct Manifold {
    pub(crate) inputs: Arc<[Arc<str>]>,
    pub(crate) start: StartFn,
    pub(crate) output: Option<OutputFn>,
    pub(crate) filter: Option<FilterFn>,
    worker_type: &'static str,
}

impl Manifold {
    /// A manifold with no inputs whose worker is made by `start`.
    ///
    /// `start` runs on one of the engine's threads, never on its loop, and
    /// may block for a while (it should watch [`Context::abort`] if it may
    /// block long). It returns any [`Worker`]; returning a
    /// [`SharedWorker`] is fine too (it is not wrapped twice). A panic in
    /// it becomes the manifold's error.
    pub fn new<W, F>(start: F) -> Self
    where
        W: Worker,
        F: Fn(&Context) -> Result<W, Error> + Send + Sync + 'static,
    {
        Manifold {
            inputs: Arc::from(Vec::new()),
            start: Arc::new(move |ctx| start(ctx).map(into_shared)),
            output: None,
            filter: None,
            worker_type: type_name::<W>(),
        }
    }

    /// A manifold whose start function returns its worker together with
    /// what it offers to its dependents: the shortest way to share a
    /// client or a handle that the start function made.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use worker_core::Passive;
    /// use worker_dependency::{Manifold, Outputs};
    ///
    /// struct Client { url: String }
    ///
    /// let client = Manifold::offering(|ctx| {
    ///     let url: String = ctx.get("config")?;
    ///     let client = Arc::new(Client { url });
    ///     Ok((Passive::new(), Outputs::new().with(client)))
    /// })
    /// .inputs(["config"]);
    /// # let _ = client;
    /// ```
    ///
    /// The worker the engine sees wraps the one returned (kill, wait,
    /// completion and report go straight through), so do not add an
    /// [`output`](Self::output) function to such a manifold.
    pub fn offering<W, F>(start: F) -> Self
    where
        W: Worker,
        F: Fn(&Context) -> Result<(W, Outputs), Error> + Send + Sync + 'static,
    {
        Manifold::new(move |ctx| start(ctx).map(|(worker, outputs)| Offering { worker, outputs }))
            .output(|offering: &Offering<W>, out| *out = offering.outputs.clone())
    }

    /// A manifold that always offers `value` to its dependents, with a
    /// worker that does nothing until stopped. Handy for configuration,
    /// shared clients and tests.
    pub fn constant<T>(value: T) -> Self
    where
        T: Any + Clone + Send + Sync,
    {
        Manifold::new(|_| Ok(Passive::new())).output(move |_: &Passive, out| out.put(value.clone()))
    }

    /// Declares the inputs (replacing any declared before): the manifolds
    /// whose outputs the start function may read. Every start or stop of
    /// an input restarts this manifold; an input that is not running makes
    /// [`Context::get`] fail with a [`Missing`](crate::Missing) error.
    pub fn inputs<I, S>(mut self, inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inputs = inputs.into_iter().map(|s| Arc::from(s.as_ref())).collect();
        self
    }

    /// Sets what a running worker offers to its dependents. `output` gets
    /// the worker, as the concrete type the start function returned, and
    /// [`Outputs::put`]s any number of values of distinct types; a
    /// dependent reads one with [`Context::get`]. It runs once per start,
    /// right after the start function, and a panic in it (or a worker of
    /// another type than `W`) becomes the manifold's error.
    pub fn output<W, F>(mut self, output: F) -> Self
    where
        W: Worker,
        F: Fn(&W, &mut Outputs) + Send + Sync + 'static,
    {
        let started = self.worker_type;
        self.output = Some(Arc::new(move |worker: &SharedWorker, out: &mut Outputs| {
            let any: &dyn Any = &**worker;
            if let Some(w) = any.downcast_ref::<W>() {
                output(w, out);
                return Ok(());
            }
            // A start function that returned an `Arc` of its worker: the
            // engine keeps that very `Arc` (never wrapped again).
            match W::from_shared(worker) {
                Some(w) => {
                    output(&w, out);
                    Ok(())
                }
                None => Err(Error::msg(format!(
                    "output function expects a worker of type {}, but the start function returned {started}",
                    type_name::<W>()
                ))),
            }
        }));
        self
    }

    /// Sets a filter for this manifold's errors: it sees how every worker
    /// (or start function) ended, `None` meaning "without error", and its
    /// answer is what the engine acts on (restart, fatal, control error).
    /// A panic in it becomes the manifold's error.
    pub fn filter<F>(mut self, filter: F) -> Self
    where
        F: Fn(Option<Error>) -> Option<Error> + Send + Sync + 'static,
    {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Runs the start function with `ctx`, as the engine would (without
    /// catching panics): for unit tests of manifolds, with a context from
    /// [`Context::builder`] or the stubs of `worker-testing`.
    pub fn start_worker(&self, ctx: &Context) -> Result<SharedWorker, Error> {
        (self.start)(ctx)
    }

    /// Runs the output function on `worker`, as the engine would after a
    /// start: what the worker offers its dependents (nothing, without an
    /// output function).
    pub fn outputs(&self, worker: &SharedWorker) -> Result<Outputs, Error> {
        let mut outputs = Outputs::new();
        if let Some(output) = &self.output {
            output(worker, &mut outputs)?;
        }
        Ok(outputs)
    }

    /// The declared inputs, in the order given.
    pub fn input_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.inputs.iter().map(|s| &**s)
    }
}

impl fmt::Debug for Manifold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifold")
            .field("inputs", &self.inputs)
            .field("worker", &self.worker_type)
            .field("output", &self.output.is_some())
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

/// A worker with the outputs its start function returned
/// ([`Manifold::offering`]).
struct Offering<W> {
    worker: W,
    outputs: Outputs,
}

impl<W: Worker> Worker for Offering<W> {
    fn kill(&self) {
        self.worker.kill()
    }
    fn wait(&self) -> Result<(), Error> {
        self.worker.wait()
    }
    fn on_done(
        &self,
        callback: worker_core::DoneCallback,
    ) -> Result<(), worker_core::DoneCallback> {
        self.worker.on_done(callback)
    }
    fn dead_signal(&self) -> Option<worker_core::Signal> {
        self.worker.dead_signal()
    }
    fn reporter(&self) -> Option<&dyn worker_core::Reporter> {
        self.worker.reporter()
    }
}

/// What a running manifold offers its dependents: at most one value per
/// type, read with [`Context::get`].
///
/// Go's `Output(worker, out)` fills one pointer per call; here the output
/// function fills this set once per start, and the values are shared by
/// every dependent, so `get` is a lookup and runs no user code.
#[derive(Default, Clone)]
pub struct Outputs {
    values: Vec<Output>,
}

#[derive(Clone)]
struct Output {
    type_id: TypeId,
    type_name: &'static str,
    value: Arc<dyn Any + Send + Sync>,
}

impl Outputs {
    /// An empty set.
    pub fn new() -> Self {
        Outputs::default()
    }

    /// Offers `value`; a value of the same type offered before is replaced.
    pub fn put<T>(&mut self, value: T)
    where
        T: Any + Clone + Send + Sync,
    {
        let output = Output {
            type_id: TypeId::of::<T>(),
            type_name: type_name::<T>(),
            value: Arc::new(value),
        };
        match self.values.iter_mut().find(|o| o.type_id == output.type_id) {
            Some(slot) => *slot = output,
            None => self.values.push(output),
        }
    }

    /// [`put`](Self::put), as a builder.
    pub fn with<T>(mut self, value: T) -> Self
    where
        T: Any + Clone + Send + Sync,
    {
        self.put(value);
        self
    }

    /// A clone of the value of type `T`, if one is offered.
    pub fn get<T: Any + Clone>(&self) -> Option<T> {
        let id = TypeId::of::<T>();
        self.values
            .iter()
            .find(|o| o.type_id == id)
            .and_then(|o| o.value.downcast_ref::<T>())
            .cloned()
    }

    /// The names of the offered types, in the order they were put.
    pub fn type_names(&self) -> Vec<&'static str> {
        self.values.iter().map(|o| o.type_name).collect()
    }

    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.type_names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_keyed_by_type() {
        let mut out = Outputs::new().with(3_u32).with(String::from("a"));
        out.put(4_u32);
        assert_eq!(out.get::<u32>(), Some(4));
        assert_eq!(out.get::<String>().as_deref(), Some("a"));
        assert_eq!(out.get::<i64>(), None);
        assert_eq!(out.type_names(), vec!["u32", "alloc::string::String"]);
    }

    #[test]
    fn offering_manifolds_offer_what_start_returned() {
        let m = Manifold::offering(|_| Ok((Passive::new(), Outputs::new().with(9_u32))));
        let ctx = Context::builder("m").build();
        let worker = m.start_worker(&ctx).unwrap();
        assert_eq!(m.outputs(&worker).unwrap().get::<u32>(), Some(9));
        worker.kill();
        assert!(worker.wait().is_ok());
        assert!(worker.dead_signal().is_some());
    }

    #[test]
    fn output_of_the_wrong_worker_type_is_an_error() {
        let m = Manifold::new(|_| Ok(Passive::new())).output(|_: &worker_core::ThreadWorker, _| {});
        let w: SharedWorker = Arc::new(Passive::new());
        let err = (m.output.unwrap())(&w, &mut Outputs::new()).unwrap_err();
        assert!(
            err.to_string().contains("expects a worker of type"),
            "{err}"
        );
    }
}
