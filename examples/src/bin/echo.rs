//! A TCP echo server whose blocked threads stop on Ctrl-C:
//! `cargo run -p worker-examples --bin echo -- 127.0.0.1:7007`.

use std::net::TcpListener;
use std::process::ExitCode;

use worker_core::Worker;

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".into());
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match worker_examples::echo::serve("echo", listener) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let killer = server.clone();
    if let Err(e) = ctrlc::set_handler(move || Worker::kill(&killer)) {
        eprintln!("echo: cannot handle Ctrl-C: {e}");
        Worker::kill(&server);
    }
    eprintln!("echo: serving on {addr}; Ctrl-C stops every connection");
    match Worker::wait(&server) {
        Ok(()) => {
            eprintln!("echo: stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
