//! Readiness: callers of `wait_ready` waiting until ids have started,
//! kept in the core's [`ReadyWaiters`](worker_core::supervisor::ready::ReadyWaiters) table and answered by the
//! transitions themselves: a start that registers (an entry becomes
//! `Running`), an id that goes away, the runner shutting down, a caller's
//! deadline. Nothing polls.
//!
//! What counts (see `worker_core::ready` for the rules callers see): an id
//! is started while its state is `Running`; it is on its way out once its
//! stop was requested (stopped, being removed, or the runner dies), and is
//! then neither waited for by [`Names::All`] nor accepted by name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use worker_core::supervisor::ready::{self, NameState, ReadyAnswer};
use worker_core::{Names, ReadyError};

use super::entry::State;
use super::{Action, Actions, Io, Machine, WaiterId};

impl<T: Io> Machine<T> {
    /// `wait_ready`: answers at once (every id started, an unknown id, a
    /// runner that is shutting down, a zero timeout), or registers the
    /// caller until the last of its ids starts.
    pub(crate) fn ready_request(
        &mut self,
        which: &Names,
        waiter: WaiterId,
        timeout: Duration,
        reply: T::ReadyReply,
        now: Instant,
        out: &mut Actions<T>,
    ) {
        if self.dying {
            let error = ready::stopped_before(which, self.fatal_errors.first().cloned());
            return push(out, reply, Err(error));
        }
        let resolved = ready::resolve(
            which,
            |id| self.name_state(id),
            || {
                self.entries()
                    .filter(|e| !e.stop_requested && !matches!(e.state, State::Running(_)))
                    .map(|e| e.id.clone())
                    .collect()
            },
        );
        let not_started = match resolved {
            Ok(not_started) => not_started,
            Err(e) => return push(out, reply, Err(ReadyError::NotFound(e))),
        };
        if let Some((to, answer)) = self.ready.wait(waiter, not_started, timeout, now, reply) {
            push(out, to, answer);
        }
    }

    /// Where `id` stands for a readiness wait.
    fn name_state(&self, id: &str) -> NameState {
        let Some(entry) = self.slot_of(id).and_then(|slot| self.entry(slot)) else {
            return NameState::Unknown;
        };
        match entry.state {
            _ if entry.stop_requested => NameState::Unknown,
            State::Running(_) => NameState::Started,
            _ => NameState::NotStarted,
        }
    }

    /// An aborted `wait_ready` caller withdraws.
    pub(crate) fn cancel_ready(&mut self, waiter: WaiterId) {
        // Its reply goes with it: nobody listens any more.
        drop(self.ready.cancel(waiter));
    }

    /// A start of `id` registered (the entry is now `Running`).
    pub(super) fn ready_started(&mut self, id: &Arc<str>, out: &mut Actions<T>) {
        self.ready.started(id, |to, answer| push(out, to, answer));
    }

    /// `id` was forgotten: callers still waiting for it learn it is gone.
    ///
    /// An id removed because its error was fatal (or one restart too
    /// many) is removed just before the runner begins to die, in the same
    /// transition: its callers then learn that the runner stopped, with
    /// that error, rather than that the id is gone. (A fatal error is
    /// only ever recorded on the way to dying.)
    pub(super) fn ready_gone(&mut self, id: &str, out: &mut Actions<T>) {
        if !self.fatal_errors.is_empty() {
            return self.ready_stopped(out);
        }
        self.ready.gone(id, |to, answer| push(out, to, answer));
    }

    /// The runner began to shut down: nothing starts any more.
    pub(super) fn ready_stopped(&mut self, out: &mut Actions<T>) {
        let error = self.fatal_errors.first().cloned();
        self.ready
            .stopped(error, |to, answer| push(out, to, answer));
    }

    /// Time has passed: callers past their timeout are told so.
    pub(super) fn ready_tick(&mut self, now: Instant, out: &mut Actions<T>) {
        self.ready.tick(now, |to, answer| push(out, to, answer));
    }
}

fn push<T: Io>(out: &mut Actions<T>, to: T::ReadyReply, answer: ReadyAnswer) {
    out.push(Action::Ready {
        to,
        result: answer.map_err(Box::new),
    });
}
