//! The seeds' client, with greenlets instead of 400 threads: `--conns` connections in
//! one thread, each sending "<name> <n>" and reading the upper-cased reply in a loop.
//!
//! ```text
//! cargo run --release --example echo_client -- [--addr 127.0.0.1:8080] [--conns 400]
//!     [--duration SECS | --messages N] [--verbose]
//! ```
//!
//! Stops after `--duration` seconds (default 5) or `--messages` round trips per
//! connection, then prints the rate and the errors.

#[path = "shared/echo.rs"]
mod echo;

use std::time::Duration;

fn main() {
    let addr: String = echo::arg("--addr", "127.0.0.1:8080".to_string());
    let conns: u64 = echo::arg("--conns", 400);
    let messages: Option<u64> = echo::opt_arg("--messages");
    let secs: f64 = echo::arg("--duration", if messages.is_some() { 3600.0 } else { 5.0 });
    let verbose = echo::flag("--verbose");
    if let Err(e) = echo::raise_fd_limit(conns + 64) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let addr = match green::net::lookup_host(addr.as_str()).map(|a| a.first().copied()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            eprintln!("{addr}: no address");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let s = echo::run_clients(
        addr,
        conns,
        Duration::from_secs_f64(secs),
        messages,
        "",
        verbose,
    );
    println!(
        "{} connections, {} messages in {:.2} s: {:.0} messages/s, {} errors",
        s.conns,
        s.messages,
        s.elapsed.as_secs_f64(),
        s.messages as f64 / s.elapsed.as_secs_f64(),
        s.errors
    );
    if s.errors > 0 {
        std::process::exit(1);
    }
}
