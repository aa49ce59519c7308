//! The engine's readiness waiters: callers of `wait_ready`, registered
//! against the machine's view of the manifolds and answered as the
//! machine's actions go out (a start registered, an uninstall), when the
//! engine begins to stop, and when their deadline passes on the engine's
//! clock.

use std::time::Instant;

use worker_core::ReadyError;
use worker_core::supervisor::Reply;
use worker_core::supervisor::ready::{self, ReadyAnswer, ReadyRequest};

use super::Shell;

/// Where a readiness answer goes.
pub(crate) type ReadyReply = Reply<Result<(), ReadyError>>;

fn send((to, answer): (ReadyReply, ReadyAnswer)) {
    to.send(answer);
}

impl Shell {
    /// `wait_ready`: answered at once, or registered (and acknowledged,
    /// so the caller watches its abort signal from then on).
    pub(super) fn ready_request(&mut self, request: ReadyRequest, now: Instant) {
        let ReadyRequest {
            which,
            waiter,
            timeout,
            reply,
        } = request;
        if self.machine.is_dying() {
            let error = ready::stopped_before(&which, self.machine.error());
            return reply.send(Err(error));
        }
        let machine = &self.machine;
        let resolved = ready::resolve(&which, |n| machine.name_state(n), || machine.not_started());
        let not_started = match resolved {
            Ok(not_started) => not_started,
            Err(e) => return reply.send(Err(ReadyError::NotFound(e))),
        };
        let ack = reply.clone();
        match self.ready.wait(waiter, not_started, timeout, now, reply) {
            Some(answer) => send(answer),
            None => ack.ack(),
        }
    }

    /// A start of `name` registered.
    pub(super) fn ready_started(&mut self, name: &str) {
        self.ready.started(name, |to, answer| send((to, answer)));
    }

    /// `name` was uninstalled.
    pub(super) fn ready_gone(&mut self, name: &str) {
        self.ready.gone(name, |to, answer| send((to, answer)));
    }

    /// The engine began to stop: nothing starts any more.
    pub(super) fn ready_stopped(&mut self) {
        let error = self.machine.error();
        self.ready.stopped(error, |to, answer| send((to, answer)));
    }

    /// Time has passed.
    pub(super) fn ready_tick(&mut self, now: Instant) {
        self.ready.tick(now, |to, answer| send((to, answer)));
    }
}
