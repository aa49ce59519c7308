//! The blocking-I/O pattern on real sockets: an acceptor blocked in
//! `accept()` and connection workers blocked in `read()` all stop on one
//! kill, woken by their dying hooks.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use worker_catacomb::Catacomb;
use worker_examples::echo::serve;
use worker_testing::{assert_threads_gone, check_alive, clean_kill};

const LONG: Duration = Duration::from_secs(10);

fn start(name: &str) -> (Catacomb, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (serve(name, listener).unwrap(), addr)
}

/// A client that has had one echo back: its connection worker is running
/// and blocked in `read()` again.
fn client(addr: SocketAddr, text: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LONG)).unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut reply = vec![0; text.len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, text.as_bytes());
    stream
}

#[test]
fn one_kill_stops_the_acceptor_and_every_connection() {
    let name = "echo-test-kill";
    let (server, addr) = start(name);
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|i| client(addr, &format!("hello {i}")))
        .collect();
    // Now: the acceptor is blocked in accept(), three workers in read().
    check_alive(&server);
    assert_eq!(server.worker_count(), 4);

    clean_kill(&server);

    // Every connection was shut down from the server's side...
    for client in &mut clients {
        let mut buf = [0; 8];
        assert_eq!(client.read(&mut buf).unwrap(), 0);
    }
    // ...the listening socket is closed...
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    // ...and no thread of the server is left.
    assert_threads_gone(name);
}

#[test]
fn a_client_that_leaves_ends_only_its_connection() {
    let name = "echo-test-leave";
    let (server, addr) = start(name);
    let leaving = client(addr, "bye");
    drop(leaving);
    // A reset from the client side, too.
    let resetting = client(addr, "reset");
    // Linger 0: closing sends a reset, and the server's read fails.
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&resetting, nix::sys::socket::sockopt::Linger, &linger).unwrap();
    drop(resetting);
    // The server still serves.
    let staying = client(addr, "still there?");
    check_alive(&server);
    clean_kill(&server);
    drop(staying);
    assert_threads_gone(name);
}

#[test]
fn a_server_killed_with_no_connection_stops_its_acceptor() {
    let name = "echo-test-idle";
    let (server, _addr) = start(name);
    check_alive(&server);
    clean_kill(&server);
    assert_threads_gone(name);
}
