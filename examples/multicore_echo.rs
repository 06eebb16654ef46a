//! One hub per core: N threads (default: the number of CPUs), each running the seeds'
//! echo server in its own greenlets on a listener that shares one port through
//! `SO_REUSEPORT` (the kernel spreads connections between them), plus N client
//! threads, each running its share of the client greenlets. Finishes by itself and
//! prints per-thread counts.
//!
//! ```text
//! cargo run --release --example multicore_echo -- [--threads N] [--conns 400] [--duration 5]
//! ```

#[path = "shared/echo.rs"]
mod echo;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use green::net::TcpListener;

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: usize = echo::arg("--threads", cpus).max(1);
    let conns: u64 = echo::arg("--conns", 400);
    let secs: f64 = echo::arg("--duration", 5.0);
    if let Err(e) = echo::raise_fd_limit(2 * conns + 64) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // Bind the first listener here to learn the port; a std listener can cross threads.
    let first = match TcpListener::bind_reuseport("127.0.0.1:0").and_then(|l| {
        let addr = l.local_addr()?;
        Ok((l.into_std()?, addr))
    }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1);
        }
    };
    let (first, addr) = first;
    println!("{threads} server threads on {addr} (SO_REUSEPORT), {conns} clients for {secs} s");

    let stop = Arc::new(AtomicBool::new(false));
    let mut first = Some(first);
    let servers: Vec<_> = (0..threads)
        .map(|i| {
            let stop = stop.clone();
            let std_listener = first.take();
            std::thread::spawn(move || {
                let listener = match std_listener {
                    Some(l) => TcpListener::from_std(l),
                    None => TcpListener::bind_reuseport(addr),
                };
                let listener = match listener {
                    Ok(l) => Rc::new(l),
                    Err(e) => {
                        eprintln!("server thread {i}: {e}");
                        return echo::ServeStats {
                            errors: 1,
                            ..Default::default()
                        };
                    }
                };
                // Hubs are per thread: a watcher greenlet turns the cross-thread stop
                // flag into a close() of this thread's listener.
                let l2 = listener.clone();
                green::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        green::sleep(Duration::from_millis(20));
                    }
                    l2.close();
                });
                echo::serve(&listener, None, false)
            })
        })
        .collect();
    // Give every server thread time to bind before connecting.
    std::thread::sleep(Duration::from_millis(100));

    let per = conns / threads as u64;
    let clients: Vec<_> = (0..threads as u64)
        .map(|i| {
            let n = if i == 0 {
                conns - per * (threads as u64 - 1)
            } else {
                per
            };
            std::thread::spawn(move || {
                echo::run_clients(
                    addr,
                    n,
                    Duration::from_secs_f64(secs),
                    None,
                    &format!("t{i}-"),
                    false,
                )
            })
        })
        .collect();
    let mut messages = 0;
    let mut errors = 0;
    let mut elapsed = Duration::ZERO;
    for c in clients {
        match c.join() {
            Ok(c) => {
                messages += c.messages;
                errors += c.errors;
                elapsed = elapsed.max(c.elapsed);
            }
            Err(_) => errors += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut served = 0;
    for (i, s) in servers.into_iter().enumerate() {
        match s.join() {
            Ok(s) => {
                println!(
                    "server thread {i}: {} connections, {} messages, {} errors",
                    s.conns, s.messages, s.errors
                );
                served += s.conns;
                errors += s.errors;
            }
            Err(_) => {
                println!("server thread {i}: panicked");
                errors += 1;
            }
        }
    }
    println!("connections served: {served}");
    println!(
        "messages: {messages} in {:.2} s = {:.0} messages/s",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    println!("errors: {errors}");
    if errors > 0 || served != conns {
        std::process::exit(1);
    }
}
