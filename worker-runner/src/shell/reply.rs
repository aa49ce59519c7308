//! Reply channels for requests, reused across calls.
//!
//! A request that needs an answer carries the sending half of a small
//! channel. Making a channel per call costs two allocations, about as much
//! as the rest of a round trip, so each thread keeps one per answer type.
//! The loop answers with [`Answer::Done`], which also carries the sender
//! back, so the caller ends the exchange holding both halves again and no
//! one else can send on them. While a request is out, the loop holds the
//! only sender: if the loop drops the request (the runner has finished),
//! the channel disconnects and the caller learns the runner is dead.
//!
//! A caller that stops listening early (an aborted wait) drops its
//! receiver instead of keeping it, so a late answer can never be mistaken
//! for the answer to a later request.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, Sender, TryRecvError};
use worker_core::{Error, SharedWorker};

/// One message on a reply channel.
pub(crate) enum Answer<T> {
    /// The request is registered and waits (only for `worker()` and
    /// `stop_and_remove_worker()`); the answer follows.
    Waiting,
    /// The answer, and the reply channel's sender, returned.
    Done(T, Sender<Answer<T>>),
}

/// Where the loop sends an answer of type `T`.
pub(crate) type ReplyTo<T> = Sender<Answer<T>>;

/// Both halves of a reply channel.
type Pair<T> = (Sender<Answer<T>>, Receiver<Answer<T>>);

/// Sends the final answer, giving the caller its sender back.
pub(crate) fn answer<T>(to: ReplyTo<T>, value: T) {
    let tx = to.clone();
    let _ = tx.send(Answer::Done(value, to));
}

/// Sends the "registered, waiting" acknowledgement.
pub(crate) fn acknowledge<T>(to: &ReplyTo<T>) {
    let _ = to.send(Answer::Waiting);
}

/// How long a caller looks for its answer before it sleeps. The loop
/// answers most requests within a microsecond; a caller that slept
/// instead would have to be woken, and a woken thread tends to be moved to
/// its waker's core, which on a two-core machine puts the caller and the
/// loop on one core, taking turns. Real time, as a matter of scheduling.
const CALLER_SPIN: Duration = Duration::from_micros(50);

/// Receives an answer: looks for it for up to [`CALLER_SPIN`] (see
/// [`Spin`]), then sleeps.
pub(crate) fn recv_answer<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let mut spin = Spin::new();
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) => {}
        }
        if !spin.again(CALLER_SPIN) {
            return rx.recv();
        }
    }
}

/// A bounded busy wait. For its first [`Spin::PURE`] it only spins (an
/// answer from another core arrives within that, and a `sched_yield` is a
/// system call that would delay it); after that it yields the core on each
/// round, so that a thread sharing the core (the one being waited for, on
/// a loaded machine) gets to run.
pub(crate) struct Spin {
    /// When the wait began; read from the clock on the first long round
    /// only, so a wait that ends at once costs no clock read.
    started: Option<Instant>,
    rounds: u32,
}

impl Spin {
    const PURE: Duration = Duration::from_micros(2);

    pub(crate) fn new() -> Self {
        Spin {
            started: None,
            rounds: 0,
        }
    }

    /// Waits a little; `false` once about `limit` has passed since the
    /// first call.
    pub(crate) fn again(&mut self, limit: Duration) -> bool {
        self.rounds += 1;
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

/// A reply channel taken from this thread's cache (or made); give it back
/// with [`Channel::reuse`] once the exchange is complete.
pub(crate) struct Channel<T: Cached> {
    pub(crate) rx: Receiver<Answer<T>>,
    tx: Option<Sender<Answer<T>>>,
}

impl<T: Cached> Channel<T> {
    pub(crate) fn take() -> Self {
        let (tx, rx) = T::take().unwrap_or_else(|| crossbeam_channel::bounded(2));
        Channel { rx, tx: Some(tx) }
    }

    /// The sender to put into the request (once).
    pub(crate) fn sender(&mut self) -> Sender<Answer<T>> {
        self.tx.take().expect("a reply channel is sent once")
    }

    /// The exchange is complete and `back`, which came with the answer on
    /// this channel, is its only sender: keep both halves for the next
    /// request of this thread.
    pub(crate) fn reuse(self, back: Sender<Answer<T>>) {
        T::put((back, self.rx));
    }
}

/// Answer types with a per-thread channel cache.
pub(crate) trait Cached: Sized + 'static {
    fn take() -> Option<Pair<Self>>;
    fn put(pair: Pair<Self>);
}

macro_rules! cached {
    ($t:ty, $cache:ident) => {
        thread_local! {
            static $cache: RefCell<Option<Pair<$t>>> = const { RefCell::new(None) };
        }
        impl Cached for $t {
            fn take() -> Option<Pair<Self>> {
                $cache.with(|c| c.borrow_mut().take())
            }
            fn put(pair: Pair<Self>) {
                $cache.with(|c| *c.borrow_mut() = Some(pair));
            }
        }
    };
}

cached!(Result<(), Error>, UNIT_REPLIES);
cached!(Result<SharedWorker, Error>, WORKER_REPLIES);
