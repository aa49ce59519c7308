//! The demo agent: runs a few real workers built on the core, stops them,
//! and prints how each one ended.

use std::sync::Arc;
use std::time::Duration;

use worker_core::crossbeam_channel::{select, tick};
use worker_core::{Error, Passive, SharedWorker, Worker, spawn, watch};

fn main() {
    let (done_tx, done_rx) = worker_core::crossbeam_channel::unbounded();
    let workers: Vec<(&str, SharedWorker)> = vec![
        (
            "ticker",
            Arc::new(spawn("ticker", |tomb| {
                let ticks = tick(Duration::from_millis(20));
                let mut n = 0u32;
                loop {
                    select! {
                        recv(tomb.dying()) -> _ => {
                            println!("ticker: saw {n} ticks, stopping cleanly");
                            return Ok(());
                        }
                        recv(ticks) -> _ => n += 1,
                    }
                }
            })),
        ),
        (
            "failing",
            Arc::new(spawn("failing", |_tomb| {
                Err(Error::msg("could not reach the controller"))
            })),
        ),
        (
            "panicking",
            Arc::new(spawn("panicking", |_tomb| -> Result<(), Error> {
                panic!("index out of range")
            })),
        ),
        ("lease", Arc::new(Passive::new())),
    ];
    for (name, w) in &workers {
        let tx = done_tx.clone();
        let name = name.to_string();
        watch(w, move |outcome| {
            let _ = tx.send((name, outcome.clone()));
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    for (_, w) in &workers {
        w.kill();
    }
    for (name, w) in &workers {
        let ended = match w.wait() {
            Ok(()) => "stopped cleanly".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        println!("{name:>10}: {ended}");
    }
    drop(done_tx);
    println!("completion callbacks seen: {}", done_rx.iter().count());
}
