//! One hub per core: N threads (default: the number of CPUs), each running the seeds'
//! echo server in its own greenlets on a listener that shares one port through
//! `SO_REUSEPORT` (the kernel spreads connections between them), plus N client
//! threads, each running its share of the client greenlets. Finishes by itself and
//! prints per-thread counts.
//!
//! ```text
//! cargo run --release --example multicore_echo -- [--threads N] [--conns 400] [--duration 5]
//! ```

#[path = "shared/mod.rs"]
mod shared;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use green::net::TcpListener;
use shared::{cli, echo, logger, sys};

const USAGE: &str = "\
usage: multicore_echo [OPTIONS]

One hub per thread: N echo-server threads sharing a port (SO_REUSEPORT) and N client
threads; runs for a while, prints per-thread counts, and exits.

Options:
  --threads N        server threads, and as many client threads (default: CPUs)
  --conns N          client connections in all (default 400; at least --threads)
  --duration SECS    how long the clients run (default 5)
  -h, --help         print this help
";

fn main() {
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut conns = 400;
    let mut duration = Duration::from_secs(5);
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("threads") => threads = args.count(1, 1024) as usize,
            cli::Long("conns") => conns = args.count(1, 1_000_000),
            cli::Long("duration") => duration = args.secs(),
            other => cli::reject(other),
        }
    }
    if conns < threads as u64 {
        cli::fail(format!("--conns {conns} is below --threads {threads}"));
    }
    logger::init();
    if let Err(e) = sys::raise_fd_limit(2 * conns + 64) {
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
    println!(
        "{threads} server threads on {addr} (SO_REUSEPORT), {conns} clients for {} s",
        duration.as_secs_f64()
    );

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
                echo::close_when(listener.clone(), stop);
                echo::serve(&listener, &echo::ServeConfig::default())
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
                echo::run_clients(addr, n, duration, None, &format!("t{i}-"), false)
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
                let e = s.errors + s.accept_errors;
                println!(
                    "server thread {i}: {} connections, {} messages, {e} errors",
                    s.conns, s.messages
                );
                served += s.conns;
                errors += e;
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
