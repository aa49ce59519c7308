//! Gates that hold a misbehaving call (a `kill`, a `Drop`, a start
//! function) until the test opens them: one at a time during the
//! schedule, all at once at the end. A gate made after the end is open.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, bounded, select};

/// One held call.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) what: String,
    open: Mutex<Option<Sender<Infallible>>>,
    opened: Receiver<Infallible>,
    all_opened: Receiver<Infallible>,
    /// Calls blocked in it now.
    blocked: AtomicUsize,
}

impl Gate {
    /// Blocks until this gate, or all gates, open.
    pub(crate) fn block(&self) {
        self.blocked.fetch_add(1, Ordering::SeqCst);
        select! {
            recv(self.opened) -> _ => {}
            recv(self.all_opened) -> _ => {}
        }
        self.blocked.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn open(&self) {
        self.open.lock().unwrap().take();
    }
}

/// Every gate of a case.
#[derive(Debug)]
pub(crate) struct Gates {
    open_all: Mutex<Option<Sender<Infallible>>>,
    all_opened: Receiver<Infallible>,
    list: Mutex<Vec<Arc<Gate>>>,
}

impl Default for Gates {
    fn default() -> Self {
        let (open_all, all_opened) = bounded(0);
        Gates {
            open_all: Mutex::new(Some(open_all)),
            all_opened,
            list: Mutex::default(),
        }
    }
}

impl Gates {
    pub(crate) fn make(&self, what: String) -> Arc<Gate> {
        let (open, opened) = bounded(0);
        let gate = Arc::new(Gate {
            what,
            open: Mutex::new(Some(open)),
            opened,
            all_opened: self.all_opened.clone(),
            blocked: AtomicUsize::new(0),
        });
        self.list.lock().unwrap().push(gate.clone());
        gate
    }

    /// Opens the `pick`-th gate made so far (modulo their number).
    pub(crate) fn open_one(&self, pick: usize) {
        let list = self.list.lock().unwrap();
        if !list.is_empty() {
            list[pick % list.len()].open();
        }
    }

    pub(crate) fn open_all(&self) {
        self.open_all.lock().unwrap().take();
    }

    /// What is blocked in a gate now (for a failure's diagnosis).
    pub(crate) fn blocked(&self) -> Vec<String> {
        self.list
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.blocked.load(Ordering::SeqCst) > 0)
            .map(|g| g.what.clone())
            .collect()
    }
}
