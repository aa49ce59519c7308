//! Workers lent out of a supervisor, and a supervisor that waits for them.
//!
//! A report calls each worker's own `report` on the caller's thread, never
//! on the loop (a slow one must stall only that caller). So the loop's
//! snapshot hands the caller a reference to each worker, and for as long
//! as the caller holds them the supervisor is not their only owner. If the
//! supervisor lets go of a worker meanwhile (it ended, or the supervisor
//! stopped), whoever drops the last reference runs the worker's `Drop`,
//! which is user code: it may panic, be slow or block. It must not be the
//! report's caller, or a worker's slow `Drop` stalls a query; and the
//! supervisor's `wait` must not return while one of its workers has not
//! been dropped.
//!
//! Hence the rule: lent workers always come back. The loop wraps those it
//! lends in a [`Lent`] guard, which sends them back as an event when it is
//! dropped, however that happens (the report finished, panicked, or its
//! caller was gone before the answer came and the loop buried it); the
//! supervisor drops them off its loop like any worker it lets go of. Its
//! [`Lending`] counts what is out, and holds the supervisor's end back
//! until everything has come back. The cost: a report that is slow in a
//! worker's own `report` delays the end of a stopping supervisor by as
//! much, as a slow `Drop` or `kill` would.

use std::fmt;

use super::driver::Handle;
use super::effects::{Effects, Finish};
use super::offloop::OffLoop;
use crate::SharedWorker;

/// Makes the event that brings lent workers back home.
pub type Release<E> = fn(Vec<OffLoop<SharedWorker>>) -> E;

/// The loop's side: how many lent workers are out, and the end that
/// waits for them to come back.
#[derive(Debug, Default)]
pub struct Lending {
    out: usize,
    end: Option<Finish>,
}

impl Lending {
    /// Lends `workers` to a caller, who gets them in the returned guard;
    /// `release` makes the event that brings them back home, through
    /// `home`.
    pub fn lend<E: Send + 'static>(
        &mut self,
        workers: Vec<SharedWorker>,
        home: Handle<E>,
        release: Release<E>,
    ) -> Lent<E> {
        self.out += workers.len();
        Lent {
            workers,
            home: Some((home, release)),
        }
    }

    /// `n` lent workers came back (the caller drops them off the loop);
    /// if they were the last and the supervisor's end waited for them, it
    /// goes out now.
    pub fn back<J>(&mut self, n: usize, fx: &mut Effects<J>) {
        self.out = self.out.saturating_sub(n);
        if self.out == 0 {
            if let Some(end) = self.end.take() {
                fx.finish(end);
            }
        }
    }

    /// The supervisor ends with `end`: at once if no lent worker is out,
    /// else once the last one has come back.
    pub fn finish<J>(&mut self, end: Finish, fx: &mut Effects<J>) {
        if self.out == 0 {
            fx.finish(end);
        } else {
            self.end = Some(end);
        }
    }

    /// How many lent workers are out.
    pub fn out(&self) -> usize {
        self.out
    }
}

/// The caller's side: workers lent by a supervisor, sent back to it when
/// the guard is dropped. Keep it until every other reference the caller
/// holds to those workers (the snapshot's) has been dropped.
pub struct Lent<E: Send + 'static> {
    workers: Vec<SharedWorker>,
    home: Option<(Handle<E>, Release<E>)>,
}

impl<E: Send + 'static> Lent<E> {
    /// A guard that lends nothing (the supervisor had stopped).
    pub fn none() -> Self {
        Lent {
            workers: Vec::new(),
            home: None,
        }
    }

    /// How many workers it holds.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }
}

impl<E: Send + 'static> Drop for Lent<E> {
    fn drop(&mut self) {
        let Some((home, release)) = self.home.take() else {
            return;
        };
        if self.workers.is_empty() {
            return;
        }
        let workers = std::mem::take(&mut self.workers)
            .into_iter()
            .map(OffLoop::new)
            .collect();
        if let Err(refused) = home.send(release(workers)) {
            // Only a supervisor that failed (a bug) ends without waiting
            // for its lent workers: nobody else holds them now.
            let dropped = crate::catch_panic(
                || format!("drop of a worker lent by supervisor {:?}", home.name()),
                || {
                    drop(refused);
                    Ok(())
                },
            );
            if let Err(e) = dropped {
                tracing::error!(error = %e, "a worker's Drop panicked");
            }
        }
    }
}

impl<E: Send + 'static> fmt::Debug for Lent<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lent")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}
