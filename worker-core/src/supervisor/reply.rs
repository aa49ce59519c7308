//! Requests and their answers: how a handle's method waits for the loop.
//!
//! A request that needs an answer carries a [`Reply`]; the caller keeps
//! the matching [`Call`] and waits on it. Underneath is a small channel,
//! which costs two allocations to make, about as much as the rest of a
//! round trip, so each thread keeps one per answer type and reuses it: the
//! loop's answer carries the sender back ([`Answer::Done`]), so the caller
//! ends the exchange holding both halves again, and nobody else can send
//! on them. A caller that stops listening early (an aborted wait) drops
//! its half instead, so a late answer can never be taken for the answer
//! to a later request.
//!
//! While a request is out, the loop holds the only sender: if the loop
//! drops the request (the supervisor has finished), the channel
//! disconnects and the caller learns that the supervisor is gone.
//!
//! Some requests wait (`worker(id)` until the worker runs): the loop first
//! says so ([`Reply::ack`]), then answers later. A caller with an abort
//! signal only watches it once the request waits, so an answer that is
//! ready at once is never lost to an abort (Go's rule).
//!
//! An answer whose caller has gone is dropped with
//! [`bury`](super::offloop::bury()): it may hold a worker, whose `Drop`
//! must not run on a loop.
//!
//! Async callers use [`AsyncCall`] instead: the same [`Reply`] on the
//! loop's side, a future on the caller's, woken by the answer (no thread
//! waits, and it works on any executor).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, select};

use super::offloop::bury;
use crate::{AbortSignal, Signal, UntilFired};

/// One message on a reply channel.
#[derive(Debug)]
pub enum Answer<T> {
    /// The request waits; the answer follows.
    Waiting,
    /// The answer, and the channel's sender, handed back.
    Done(T, Sender<Answer<T>>),
}

/// The loop's side of a request: where its answer goes.
pub struct Reply<T: Send + 'static> {
    to: To<T>,
}

enum To<T: Send + 'static> {
    /// A thread waits on a channel ([`Call`]).
    Channel(Sender<Answer<T>>),
    /// A future waits ([`AsyncCall`]).
    Slot(Arc<Slot<T>>),
    /// Answered (the value went out).
    Sent,
}

impl<T: Send + 'static> Reply<T> {
    /// Sends the answer. If the caller has gone, the answer is dropped
    /// off the loop.
    pub fn send(mut self, value: T) {
        match std::mem::replace(&mut self.to, To::Sent) {
            To::Channel(to) => {
                let back = to.clone();
                if let Err(e) = to.send(Answer::Done(value, back)) {
                    if let Answer::Done(value, _) = e.into_inner() {
                        bury(value);
                    }
                }
            }
            To::Slot(slot) => {
                slot.repliers.fetch_sub(1, Ordering::SeqCst);
                slot.settle(SlotState::Done(value));
                // The caller's future is gone: nobody will take the answer,
                // and the last handle on it must not drop it on a loop.
                if let Some(slot) = Arc::into_inner(slot) {
                    bury(slot);
                }
            }
            To::Sent => {}
        }
    }

    /// Tells the caller that the request waits and the answer follows.
    pub fn ack(&self) {
        match &self.to {
            To::Channel(to) => {
                let _ = to.send(Answer::Waiting);
            }
            To::Slot(slot) => slot.acknowledge(),
            To::Sent => {}
        }
    }

    /// Whether both are the same request's reply.
    pub fn same(&self, other: &Reply<T>) -> bool {
        match (&self.to, &other.to) {
            (To::Channel(a), To::Channel(b)) => a.same_channel(b),
            (To::Slot(a), To::Slot(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T: Send + 'static> Clone for Reply<T> {
    fn clone(&self) -> Self {
        let to = match &self.to {
            To::Channel(to) => To::Channel(to.clone()),
            To::Slot(slot) => {
                slot.repliers.fetch_add(1, Ordering::SeqCst);
                To::Slot(slot.clone())
            }
            To::Sent => To::Sent,
        };
        Reply { to }
    }
}

impl<T: Send + 'static> Drop for Reply<T> {
    fn drop(&mut self) {
        // A dropped channel sender disconnects by itself; a slot is closed
        // when its last reply goes without an answer.
        if let To::Slot(slot) = &self.to {
            if slot.repliers.fetch_sub(1, Ordering::SeqCst) == 1 {
                slot.settle(SlotState::Closed);
            }
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

/// How a [`Call`] can end without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The loop dropped the request: the supervisor has finished.
    Closed,
    /// The caller's abort signal fired while the request waited.
    Aborted,
}

/// The caller's side of a request; see the [module docs](self).
pub struct Call<T: Send + 'static> {
    rx: Receiver<Answer<T>>,
}

impl<T: Send + 'static> Call<T> {
    /// A request's two sides, from this thread's cache when it has one.
    pub fn new() -> (Call<T>, Reply<T>) {
        let (to, rx) = take_cached::<T>().unwrap_or_else(|| crossbeam_channel::bounded(2));
        (
            Call { rx },
            Reply {
                to: To::Channel(to),
            },
        )
    }

    /// Waits for the answer (through any `Waiting` acknowledgement).
    pub fn wait(self) -> Result<T, CallError> {
        self.wait_or_abort(None)
    }

    /// Waits for the answer; once the request waits, gives up when
    /// `abort` fires (disconnects).
    pub fn wait_or_abort(self, abort: Option<&Signal>) -> Result<T, CallError> {
        let first = recv_spinning(&self.rx).map_err(|_| CallError::Closed)?;
        let answer = match first {
            Answer::Waiting => match abort {
                None => self.rx.recv().map_err(|_| CallError::Closed)?,
                Some(abort) => select! {
                    recv(self.rx) -> answer => answer.map_err(|_| CallError::Closed)?,
                    // The channel is dropped, not reused: the answer may
                    // still come.
                    recv(abort) -> _ => return Err(CallError::Aborted),
                },
            },
            done => done,
        };
        match answer {
            Answer::Done(value, back) => {
                put_cached((back, self.rx));
                Ok(value)
            }
            Answer::Waiting => Err(CallError::Closed),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").finish_non_exhaustive()
    }
}

/// The caller's side of a request made from async code: a future of the
/// answer. No thread waits; the loop's answer wakes the task, on any
/// executor.
///
/// With an abort signal, the future gives up with
/// [`CallError::Aborted`] once the request waits and the signal fires (an
/// answer ready at once wins, as for [`Call`]).
///
/// ```
/// use worker_core::supervisor::{AsyncCall, CallError};
///
/// let (call, reply) = AsyncCall::<u32>::new(None);
/// reply.send(7);
/// # let waker = std::task::Waker::noop();
/// # let mut cx = std::task::Context::from_waker(&waker);
/// # let mut call = std::pin::pin!(call);
/// // In async code: `assert_eq!(call.await, Ok(7));`
/// assert_eq!(call.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(7)));
/// # use std::future::Future;
/// ```
#[must_use = "a future does nothing unless awaited"]
pub struct AsyncCall<T: Send + 'static> {
    slot: Arc<Slot<T>>,
    abort: Option<UntilFired>,
}

impl<T: Send + 'static> AsyncCall<T> {
    /// A request's two sides; `abort` ends the wait once the request
    /// waits.
    pub fn new(abort: Option<&AbortSignal>) -> (AsyncCall<T>, Reply<T>) {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState::Empty),
            waker: Mutex::new(None),
            repliers: AtomicUsize::new(1),
        });
        (
            AsyncCall {
                slot: slot.clone(),
                abort: abort.map(AbortSignal::until_fired),
            },
            Reply { to: To::Slot(slot) },
        )
    }
}

impl<T: Send + 'static> Future for AsyncCall<T> {
    type Output = Result<T, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The waker first, so an answer that lands after the look below
        // wakes this task.
        *this
            .slot
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        let mut state = this.slot.lock();
        match std::mem::replace(&mut *state, SlotState::Taken) {
            SlotState::Done(value) => return Poll::Ready(Ok(value)),
            SlotState::Closed | SlotState::Taken => {
                *state = SlotState::Closed;
                return Poll::Ready(Err(CallError::Closed));
            }
            other => *state = other,
        }
        let waiting = matches!(*state, SlotState::Waiting);
        drop(state);
        if waiting {
            if let Some(abort) = &mut this.abort {
                if Pin::new(abort).poll(cx).is_ready() {
                    return Poll::Ready(Err(CallError::Aborted));
                }
            }
        }
        Poll::Pending
    }
}

impl<T: Send + 'static> fmt::Debug for AsyncCall<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncCall").finish_non_exhaustive()
    }
}

/// Where an [`AsyncCall`]'s answer lands.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
    /// The waiting task's waker (its own lock, so that waking never holds
    /// the state's).
    waker: Mutex<Option<Waker>>,
    /// Live [`Reply`] handles (the loop may clone one to acknowledge it).
    repliers: AtomicUsize,
}

enum SlotState<T> {
    Empty,
    Waiting,
    Done(T),
    Closed,
    Taken,
}

impl<T: Send + 'static> Slot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the exchange with `end` (an answer, or closed), unless it has
    /// ended already; an answer nobody will take is buried.
    fn settle(&self, end: SlotState<T>) {
        {
            let mut state = self.lock();
            match &*state {
                SlotState::Empty | SlotState::Waiting => *state = end,
                _ => {
                    drop(state);
                    if let SlotState::Done(value) = end {
                        bury(value);
                    }
                    return;
                }
            }
        }
        self.wake();
    }

    fn acknowledge(&self) {
        {
            let mut state = self.lock();
            if matches!(*state, SlotState::Empty) {
                *state = SlotState::Waiting;
            } else {
                return;
            }
        }
        self.wake();
    }

    fn wake(&self) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// How long a caller looks for its answer before it sleeps. The loop
/// answers most requests within a microsecond; a caller that slept instead
/// would have to be woken, and a woken thread tends to be moved to its
/// waker's core, which on a two-core machine puts the caller and the loop
/// on one core, taking turns. Real time, as a matter of scheduling.
pub const CALLER_SPIN: Duration = Duration::from_micros(50);

/// Receives on `rx`: looks for a message for up to [`CALLER_SPIN`] (see
/// [`Spin`]), then sleeps.
pub fn recv_spinning<T>(rx: &Receiver<T>) -> Result<T, crossbeam_channel::RecvError> {
    let mut spin = Spin::new();
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(crossbeam_channel::RecvError),
            Err(TryRecvError::Empty) => {}
        }
        if !spin.again(CALLER_SPIN) {
            return rx.recv();
        }
    }
}

/// A bounded busy wait. For its first 2 µs it only spins (an
/// answer from another core arrives within that, and a `sched_yield` is a
/// system call that would delay it); after that it yields the core on each
/// round, so that a thread sharing the core (the one being waited for, on
/// a loaded machine) gets to run.
#[derive(Debug)]
pub struct Spin {
    /// When the wait began; read from the clock on the first long round
    /// only, so a wait that ends at once costs no clock read.
    started: Option<Instant>,
    rounds: u32,
}

impl Default for Spin {
    fn default() -> Self {
        Spin::new()
    }
}

impl Spin {
    const PURE: Duration = Duration::from_micros(2);

    /// A new wait.
    pub fn new() -> Self {
        Spin {
            started: None,
            rounds: 0,
        }
    }

    /// Waits a little; `false` once about `limit` has passed since the
    /// first call.
    pub fn again(&mut self, limit: Duration) -> bool {
        self.rounds = self.rounds.wrapping_add(1);
        if self.rounds % 16 != 0 {
            std::hint::spin_loop();
            return true;
        }
        let waited = self.started.get_or_insert_with(Instant::now).elapsed();
        if waited >= limit {
            return false;
        }
        if waited >= Self::PURE {
            std::thread::yield_now();
        }
        true
    }
}

type Pair<T> = (Sender<Answer<T>>, Receiver<Answer<T>>);

thread_local! {
    /// One idle reply channel per answer type, by type.
    static CACHE: RefCell<Vec<(TypeId, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

fn take_cached<T: Send + 'static>() -> Option<Pair<T>> {
    let id = TypeId::of::<Pair<T>>();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|(t, _)| *t == id)?;
        let (_, pair) = c.swap_remove(i);
        pair.downcast::<Pair<T>>().ok().map(|p| *p)
    })
}

fn put_cached<T: Send + 'static>(pair: Pair<T>) {
    let id = TypeId::of::<Pair<T>>();
    // A thread that is ending has no cache left: the pair is just dropped.
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if !c.iter().any(|(t, _)| *t == id) {
                c.push((id, Box::new(pair)));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_immediate_answer_comes_back_and_the_channel_is_reused() {
        let (call, reply) = Call::<u32>::new();
        let first = reply.clone();
        reply.send(7);
        assert_eq!(call.wait(), Ok(7));
        let (call, reply) = Call::<u32>::new();
        assert!(reply.same(&first), "reused");
        drop(first);
        reply.send(8);
        assert_eq!(call.wait(), Ok(8));
    }

    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        Pin::new(f).poll(&mut cx)
    }

    #[test]
    fn an_async_call_gets_its_answer_or_learns_the_loop_is_gone() {
        let (mut call, reply) = AsyncCall::<u32>::new(None);
        assert_eq!(poll_once(&mut call), Poll::Pending);
        let kept = reply.clone();
        reply.ack();
        assert_eq!(poll_once(&mut call), Poll::Pending);
        kept.send(5);
        assert_eq!(poll_once(&mut call), Poll::Ready(Ok(5)));

        let (mut call, reply) = AsyncCall::<u32>::new(None);
        let clone = reply.clone();
        drop(reply);
        assert_eq!(poll_once(&mut call), Poll::Pending, "one reply is left");
        drop(clone);
        assert_eq!(poll_once(&mut call), Poll::Ready(Err(CallError::Closed)));
    }

    #[test]
    fn an_async_call_watches_its_abort_only_once_the_request_waits() {
        let (trigger, abort) = AbortSignal::pair();
        trigger.fire();
        let (mut call, reply) = AsyncCall::<u32>::new(Some(&abort));
        assert_eq!(poll_once(&mut call), Poll::Pending, "not waiting yet");
        reply.ack();
        assert_eq!(poll_once(&mut call), Poll::Ready(Err(CallError::Aborted)));
        // A late answer is dropped by whoever lets go of it last.
        reply.send(1);
    }

    #[test]
    fn an_answer_to_a_dropped_async_call_is_not_dropped_on_a_loop() {
        struct Tattle(std::sync::mpsc::Sender<bool>);
        impl Drop for Tattle {
            fn drop(&mut self) {
                let _ = self.0.send(super::super::offloop::on_loop());
            }
        }
        let (tx, on_loop) = std::sync::mpsc::channel();
        let (call, reply) = AsyncCall::<Tattle>::new(None);
        drop(call);
        {
            let _loop = super::super::offloop::LoopGuard::enter();
            reply.send(Tattle(tx));
            assert!(on_loop.try_recv().is_err(), "buried, not dropped");
        }
        drop(super::super::offloop::take_graveyard());
        assert!(!on_loop.recv().unwrap(), "dropped off the loop");
    }

    #[test]
    fn a_dropped_request_reads_as_closed() {
        let (call, reply) = Call::<u32>::new();
        drop(reply);
        assert_eq!(call.wait(), Err(CallError::Closed));
    }

    #[test]
    fn an_abort_counts_only_once_the_request_waits() {
        let (abort_tx, abort) = crossbeam_channel::bounded::<std::convert::Infallible>(0);
        drop(abort_tx);
        // Answered at once: the fired abort is not looked at.
        let (call, reply) = Call::<u32>::new();
        reply.send(1);
        assert_eq!(call.wait_or_abort(Some(&abort)), Ok(1));
        // Waiting: the abort ends the wait, and a late answer goes nowhere.
        let (call, reply) = Call::<u32>::new();
        let kept = reply.clone();
        reply.ack();
        assert_eq!(call.wait_or_abort(Some(&abort)), Err(CallError::Aborted));
        reply.send(2);
        let (_call, fresh) = Call::<u32>::new();
        assert!(!fresh.same(&kept), "an aborted channel is never reused");
    }
}
