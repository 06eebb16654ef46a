//! The seeds' gevent server ("TCP服务端通过协程实现并发"), in one thread: the main
//! greenlet accepts, each connection gets a greenlet that sends back what it receives,
//! upper-cased, and ends on EOF or a reset by the peer.
//!
//! ```text
//! cargo run --release --example echo_server -- [--addr 127.0.0.1:8080] [--max-conns N]
//!     [--duration SECS] [--quiet]
//! ```
//!
//! It runs until killed, or until `--max-conns` connections were served, or for
//! `--duration` seconds. `--quiet` skips printing every message (the seeds print them).

#[path = "shared/echo.rs"]
mod echo;

use std::rc::Rc;
use std::time::Duration;

use green::net::TcpListener;

fn main() {
    let addr: String = echo::arg("--addr", "127.0.0.1:8080".to_string());
    let max_conns: Option<u64> = echo::opt_arg("--max-conns");
    let duration: Option<f64> = echo::opt_arg("--duration");
    let verbose = !echo::flag("--quiet");
    if let Err(e) = echo::raise_fd_limit(256) {
        eprintln!("warning: {e}");
    }

    // server = socket.socket(); server.bind(...); server.listen(5)
    let server = match TcpListener::bind(addr.as_str()) {
        Ok(l) => Rc::new(l),
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => println!("listening ({e})"),
    }
    if let Some(secs) = duration {
        // Close the listener after `secs`: accept then fails and serve() returns.
        let s = server.clone();
        green::spawn(move || {
            green::sleep(Duration::from_secs_f64(secs));
            s.close();
        });
    }
    let stats = echo::serve(&server, max_conns, verbose);
    println!(
        "served {} connections, {} messages, {} errors",
        stats.conns, stats.messages, stats.errors
    );
}
