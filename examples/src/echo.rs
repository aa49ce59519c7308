//! A TCP echo server of blocking threads that all stop on one kill.
//!
//! The pattern for workers that block in I/O. A thread blocked in
//! `accept()` or `read()` cannot watch its tomb's dying signal: it would
//! sleep through a kill. So each worker registers a dying hook
//! ([`Tomb::on_dying`]) that shuts its socket down, which wakes the
//! blocked call on the killing thread's behalf:
//!
//! - a connection worker blocked in `read()` gets `Ok(0)` once its stream
//!   is shut down (std's [`TcpStream::shutdown`]);
//! - the acceptor blocked in `accept()` gets an error once its listening
//!   socket is shut down (`shutdown(2)` through `nix`: std has no
//!   `TcpListener::shutdown`; this wakes `accept` on Linux).
//!
//! The hook holds a second handle on the socket (`try_clone`), since the
//! body owns the first. Connections are bound to a [`Catacomb`], so one
//! kill of the server kills the acceptor and every connection, and the
//! server is dead only once all of them have finished and closed their
//! sockets. A client that resets its connection ends only that connection
//! worker: its error is logged, not passed on, because a catacomb would
//! treat it as the server's failure.
//!
//! Run it with `cargo run -p worker-examples --bin echo -- 127.0.0.1:7007`
//! and talk to it with `nc 127.0.0.1 7007`; Ctrl-C stops it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use worker_catacomb::{Catacomb, Plan};
use worker_core::{Error, ThreadWorker, Tomb, spawn};

/// Serves echo on `listener` until the returned catacomb is killed.
///
/// `name` names the catacomb and prefixes its threads (`{name}-acceptor`,
/// `{name}-conn`).
pub fn serve(name: &str, listener: TcpListener) -> Result<Catacomb, Error> {
    let prefix = name.to_owned();
    let server = Catacomb::invoke(Plan::new(name, move |catacomb: &Catacomb| {
        let acceptor = acceptor(&prefix, listener, catacomb.clone())?;
        catacomb.add(Arc::new(acceptor))?;
        // The acceptor and the connections do the work; this thread only
        // holds the catacomb's life until it is killed.
        let _ = catacomb.dying().recv();
        Err(catacomb.err_dying())
    }))?;
    Ok(server)
}

/// The worker blocked in `accept()`: each connection becomes a worker
/// bound to `server`.
fn acceptor(prefix: &str, listener: TcpListener, server: Catacomb) -> Result<ThreadWorker, Error> {
    let waker = listener.try_clone()?;
    let conn_name = format!("{prefix}-conn");
    Ok(spawn(format!("{prefix}-acceptor"), move |tomb| {
        tomb.on_dying(move || {
            // Wakes `accept` with an error; the fd stays open until the
            // acceptor drops its listener.
            let _ = nix::sys::socket::shutdown(waker.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        });
        loop {
            let stream = match listener.accept() {
                Ok((stream, _peer)) => stream,
                Err(_) if !tomb.is_alive() => return Ok(()),
                Err(e) => return Err(Error::new(e).context("accepting connections")),
            };
            let worker = connection(&conn_name, stream)?;
            if server.add(Arc::new(worker)).is_err() {
                // The server is dying: `add` has killed the connection.
                return Ok(());
            }
        }
    }))
}

/// The worker blocked in `read()` on one connection.
fn connection(name: &str, stream: TcpStream) -> Result<ThreadWorker, Error> {
    let waker = stream.try_clone()?;
    Ok(spawn(name, move |tomb| {
        tomb.on_dying(move || {
            let _ = waker.shutdown(Shutdown::Both);
        });
        if let Err(e) = echo(tomb, stream) {
            // One client's failure is not the server's.
            tracing::debug!(error = %e, "echo connection ended with an error");
        }
        Ok(())
    }))
}

fn echo(tomb: &Tomb, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()), // closed by the client, or shut down by the hook
            Ok(n) => stream.write_all(&buf[..n])?,
            Err(_) if !tomb.is_alive() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
