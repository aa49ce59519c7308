//! The workers the scenarios supervise: one kind per variant.
//!
//! - `thread`: a thread that blocks on its tomb's dying signal;
//! - `passive`: a tomb with no thread (killing it finishes it);
//! - `task`: a tokio task that awaits its tomb's dying moment, on a
//!   multi-threaded runtime with 2 worker threads. The runtime belongs to
//!   the scenario and is shut down (its threads joined) before the thread
//!   count is read, so `threads_after` means the same for every variant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use worker_core::{Error, Passive, SharedWorker, spawn, task};

use super::Variant;

/// Ends a worker with the given error.
pub type Ender = Box<dyn Fn(Error) + Send>;

/// Makes the workers of one variant.
#[derive(Debug)]
pub struct Workers {
    variant: Variant,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: Option<tokio::runtime::Handle>,
}

impl Workers {
    /// The maker for `variant` (with its runtime, for `task`).
    pub fn new(variant: Variant) -> Result<Arc<Workers>, String> {
        let runtime = match variant {
            Variant::Task => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("bench-task-rt")
                    .build()
                    .map_err(|e| format!("cannot build the task runtime: {e}"))?,
            ),
            Variant::Thread | Variant::Passive => None,
        };
        let handle = runtime.as_ref().map(|r| r.handle().clone());
        Ok(Arc::new(Workers {
            variant,
            runtime: Mutex::new(runtime),
            handle,
        }))
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// A worker that runs until killed (a thread named `name`).
    pub fn blocking(&self, name: &str) -> SharedWorker {
        match (self.variant, &self.handle) {
            (Variant::Thread, _) => Arc::new(spawn(name, |tomb| {
                let _ = tomb.dying().recv();
                Ok(())
            })),
            (Variant::Task, Some(handle)) => Arc::new(task::spawn_on(handle, |tomb| async move {
                tomb.until_dying().await;
                Ok(())
            })),
            _ => Arc::new(Passive::new()),
        }
    }

    /// A fresh worker that ends at once with `error`.
    pub fn failing(&self, name: &str, error: Error) -> SharedWorker {
        match (self.variant, &self.handle) {
            (Variant::Thread, _) => Arc::new(spawn(name, move |_| Err(error))),
            (Variant::Task, Some(handle)) => {
                Arc::new(task::spawn_on(handle, move |_| async move { Err(error) }))
            }
            _ => {
                let w = Passive::new();
                w.finish(Err(error));
                Arc::new(w)
            }
        }
    }

    /// A worker that runs until killed, and a way to make it end with
    /// `error` instead.
    pub fn endable(&self, name: &str) -> (SharedWorker, Ender) {
        match (self.variant, &self.handle) {
            (Variant::Thread, _) => {
                let w = Arc::new(spawn(name, |tomb| {
                    let _ = tomb.dying().recv();
                    Ok(())
                }));
                let tomb = w.tomb().clone();
                (w, Box::new(move |e| tomb.kill(Some(e))))
            }
            (Variant::Task, Some(handle)) => {
                let w = Arc::new(task::spawn_on(handle, |tomb| async move {
                    tomb.until_dying().await;
                    Ok(())
                }));
                let tomb = w.tomb().clone();
                (w, Box::new(move |e| tomb.kill(Some(e))))
            }
            _ => {
                let w = Arc::new(Passive::new());
                let handle = w.clone();
                (w, Box::new(move |e| handle.finish(Err(e))))
            }
        }
    }

    /// Shuts the task runtime down, joining its threads (no-op for the
    /// other variants). Call it once every task worker has ended.
    pub fn shutdown(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use worker_core::task::TaskWorker;
    use worker_core::{Passive, ThreadWorker};

    use super::*;

    /// S2 times a fresh worker of the variant per incarnation: a thread, a
    /// task, or a passive worker, each already failing.
    #[test]
    fn failing_makes_a_fresh_worker_of_the_variant_that_ends_with_the_error() {
        for variant in [Variant::Thread, Variant::Passive, Variant::Task] {
            let workers = Workers::new(variant).unwrap();
            let a = workers.failing("bench-unit-failing", Error::msg("at once"));
            let b = workers.failing("bench-unit-failing", Error::msg("at once"));
            assert!(!Arc::ptr_eq(&a, &b), "{variant:?}: not fresh");
            for w in [&a, &b] {
                assert_eq!(w.wait().unwrap_err().to_string(), "at once");
                let any: &dyn Any = &**w;
                let right_kind = match variant {
                    Variant::Thread => any.is::<ThreadWorker>(),
                    Variant::Passive => any.is::<Passive>(),
                    Variant::Task => any.is::<TaskWorker>(),
                };
                assert!(right_kind, "{variant:?}: a worker of another kind");
            }
            workers.shutdown();
        }
    }
}
