//! Dying hooks: how work blocked where no signal reaches learns of a kill.

use super::{Hook, Tomb, TombState};
use crate::{Error, Panicked};

impl Tomb {
    /// Registers `hook` to run once when the tomb stops being alive: on the
    /// thread that calls [`kill`](Tomb::kill) (or [`done`](Tomb::done), if
    /// the work ends first), outside any lock. If the tomb is no longer
    /// alive, the hook runs now, on this thread.
    ///
    /// This is how a worker blocked where no signal reaches it learns that
    /// it must stop: the hook wakes it, typically by shutting down the
    /// socket it is blocked on (a `read` then returns 0, an `accept` an
    /// error). The hook runs inside the killer's call, so it must be quick
    /// and must not block: shut a socket down, set a flag, send on a
    /// channel. A panic in it is caught, logged, and recorded as the
    /// tomb's error if the tomb is still dying; it never reaches the
    /// killer. Supervisors kill their workers off their own loop thread, so
    /// a hook cannot stall a supervisor.
    ///
    /// A worker blocked in `read` on a connection:
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::{Shutdown, TcpListener, TcpStream};
    /// use worker_core::{spawn, stop, Worker};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (mut stream, _) = listener.accept()?;
    ///
    /// let echo = spawn("echo-connection", move |tomb| {
    ///     // A second handle on the same socket, for the hook to shut down.
    ///     let waker = stream.try_clone()?;
    ///     tomb.on_dying(move || {
    ///         let _ = waker.shutdown(Shutdown::Both);
    ///     });
    ///     let mut buf = [0; 512];
    ///     loop {
    ///         match stream.read(&mut buf) {
    ///             Ok(0) => return Ok(()), // shut down by the hook, or closed by the client
    ///             Ok(n) => stream.write_all(&buf[..n])?,
    ///             Err(_) if !tomb.is_alive() => return Ok(()),
    ///             Err(e) => return Err(e.into()),
    ///         }
    ///     }
    /// });
    ///
    /// client.write_all(b"ping")?;
    /// let mut reply = [0; 4];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"ping");
    /// // The worker is blocked in `read` now; kill wakes it through the hook.
    /// assert!(stop(&echo).is_ok());
    /// assert_eq!(client.read(&mut reply)?, 0); // the server side is closed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The `examples` crate has the whole server: an acceptor blocked in
    /// `accept` and one such worker per connection, all stopped by one
    /// kill.
    pub fn on_dying(&self, hook: impl FnOnce() + Send + 'static) {
        let hook: Hook = Box::new(hook);
        let hook = {
            let mut inner = self.lock();
            if inner.state == TombState::Alive {
                inner.extras().hooks.push(hook);
                return;
            }
            hook
        };
        self.run_hook(hook);
    }

    pub(super) fn run_hook(&self, hook: Hook) {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
        if let Err(payload) = caught {
            let panicked = Panicked::from_payload("a dying hook", &*payload);
            tracing::error!(error = %panicked, "dying hook panicked");
            self.kill(Some(Error::new(panicked)));
        }
    }
}
