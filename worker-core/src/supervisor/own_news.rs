//! News the loop makes itself: a short cut past its own channel.
//!
//! When a supervisor's loop kills one of the library's thread-free
//! workers itself (a quiet kill, see [`quiet`](super::quiet)), the worker
//! finishes there and then, and its completion callback, which the
//! supervisor registered, tells the loop through [`Events::send`]: from
//! the loop's own thread, to the loop's own channel. Stopping 100,000
//! such workers sent 100,000 messages through the channel (an eighth of
//! the loop's time went to sending and receiving them) only for the same
//! thread to take them out again.
//!
//! So a loop thread keeps a queue of its own here, in a thread-local
//! slot: [`Events::send`] on that thread, for that loop, puts the event
//! in it instead, and the loop takes the queue in whole wherever it takes
//! messages from its channel, and before it blocks, so nothing waits in
//! it. Any other thread, and a loop's thread sending to another
//! supervisor, uses the channel as before.
//!
//! The queue is typed by the loop's event type, which the slot cannot be:
//! it holds a `Vec<E>` as `dyn Any`, and a send checks the loop's id and
//! then the type (one comparison each).
//!
//! [`Events::send`]: super::Events::send

use std::any::Any;
use std::cell::{Cell, RefCell};

thread_local! {
    /// The loop this thread runs (its supervisor id) and its queue.
    static OWN: RefCell<Option<(u64, Box<dyn Any>)>> = const { RefCell::new(None) };
    /// Whether the queue may hold anything: the loop looks at this every
    /// time it looks for messages, so it is a plain flag, not the queue.
    static PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Puts `event` in the queue of loop `id` if this thread runs that loop;
/// gives it back otherwise.
pub(super) fn push<E: 'static>(id: u64, event: E) -> Result<(), E> {
    let mut event = Some(event);
    // (No slot any more, during the thread's exit: the channel it is.)
    let _ = OWN.try_with(|own| {
        let Ok(mut own) = own.try_borrow_mut() else {
            return;
        };
        if let Some((owner, queue)) = &mut *own {
            if *owner == id {
                if let Some(queue) = queue.downcast_mut::<Vec<E>>() {
                    queue.extend(event.take());
                    PENDING.set(true);
                }
            }
        }
    });
    match event {
        None => Ok(()),
        Some(event) => Err(event),
    }
}

/// The queue of the loop this thread runs, while it runs: installed by
/// [`OwnNews::install`], taken away (with what is left in it) when the
/// guard is dropped.
pub(super) struct OwnNews<E: 'static> {
    /// The queue's other buffer, swapped in at each take so that neither
    /// allocates again once grown.
    spare: Vec<E>,
}

impl<E: 'static> OwnNews<E> {
    /// Gives this thread the queue of loop `id`.
    pub(super) fn install(id: u64) -> Self {
        OWN.with(|own| *own.borrow_mut() = Some((id, Box::new(Vec::<E>::new()))));
        OwnNews { spare: Vec::new() }
    }

    /// Takes what the queue holds, oldest first (empty if nothing).
    pub(super) fn take(&mut self) -> Vec<E> {
        let mut taken = std::mem::take(&mut self.spare);
        PENDING.set(false);
        OWN.with(|own| {
            if let Some((_, queue)) = &mut *own.borrow_mut() {
                if let Some(queue) = queue.downcast_mut::<Vec<E>>() {
                    std::mem::swap(queue, &mut taken);
                }
            }
        });
        taken
    }

    /// Hands back a buffer [`take`](Self::take) returned, emptied, for
    /// reuse.
    pub(super) fn give_back(&mut self, buffer: Vec<E>) {
        debug_assert!(buffer.is_empty());
        if buffer.capacity() > self.spare.capacity() {
            self.spare = buffer;
        }
    }

    /// Whether the queue holds nothing.
    pub(super) fn is_empty(&self) -> bool {
        !PENDING.get()
    }
}

impl<E: 'static> Drop for OwnNews<E> {
    fn drop(&mut self) {
        // Sends on this thread go to the channel again. Anything left (the
        // loop ended between a send and the next take) is dropped here, as
        // the loop drops what its channel still holds when it ends; during
        // a panic's unwind, it is leaked instead, as the graveyard is.
        let left = OWN.try_with(|own| own.borrow_mut().take()).ok().flatten();
        let _ = PENDING.try_with(|pending| pending.set(false));
        if std::thread::panicking() {
            std::mem::forget(left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_loops_own_thread_and_id_use_the_queue() {
        let mut news = OwnNews::<u32>::install(7);
        assert!(news.is_empty());
        assert_eq!(push(7, 1u32), Ok(()));
        assert_eq!(push(8, 2u32), Err(2), "another supervisor's news");
        assert_eq!(push(7, "three"), Err("three"), "another event type");
        let other = std::thread::spawn(|| push(7, 4u32)).join().unwrap();
        assert_eq!(other, Err(4), "another thread");
        assert_eq!(push(7, 5u32), Ok(()));
        assert!(!news.is_empty());
        let taken = news.take();
        assert_eq!(taken, vec![1, 5]);
        assert!(news.is_empty());
        let mut taken = taken;
        taken.clear();
        news.give_back(taken);
        assert_eq!(push(7, 6u32), Ok(()));
        assert_eq!(news.take(), vec![6]);
        drop(news);
        assert_eq!(push(7, 9u32), Err(9), "no queue once the loop is done");
    }
}
