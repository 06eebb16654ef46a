//! The seeds' homework — "a socket server made concurrent in a single thread with
//! gevent" — with the seeds' server and their 400 clients in ONE process and ONE OS
//! thread: the server's accept loop, one greenlet per connection, and 400 client
//! greenlets, all switching on IO readiness.
//!
//! ```text
//! cargo run --release --example socket_concurrency -- [--conns 400] [--duration 5]
//! ```

#[path = "shared/echo.rs"]
mod echo;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use green::net::TcpListener;

fn main() {
    let conns: u64 = echo::arg("--conns", 400);
    let secs: f64 = echo::arg("--duration", 5.0);
    match echo::raise_fd_limit(2 * conns + 64) {
        Ok(n) => println!("file descriptor limit: {n}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    let threads_before = echo::os_threads();
    let seen = Rc::new(RefCell::new(HashSet::new()));
    seen.borrow_mut().insert(std::thread::current().id());

    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => Rc::new(l),
        Err(e) => {
            eprintln!("bind: {e}");
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("local_addr: {e}");
            std::process::exit(1);
        }
    };
    println!("server on {addr}; {conns} client greenlets for {secs} s, one thread");

    let (l2, seen2) = (listener.clone(), seen.clone());
    let server = green::spawn(move || {
        seen2.borrow_mut().insert(std::thread::current().id());
        echo::serve(&l2, None, false)
    });
    let seen3 = seen.clone();
    let load = green::spawn(move || {
        seen3.borrow_mut().insert(std::thread::current().id());
        echo::run_clients(addr, conns, Duration::from_secs_f64(secs), None, "", false)
    });
    let c = match load.join() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("client load failed: {e}");
            std::process::exit(1);
        }
    };
    let threads_during = echo::os_threads();
    listener.close(); // the accept loop ends; serve() waits for the handlers
    let s = match server.join() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
    };
    let errors = c.errors + s.errors;
    println!("connections served: {}", s.conns);
    println!(
        "messages: {} in {:.2} s = {:.0} messages/s (round trips; server answered {})",
        c.messages,
        c.elapsed.as_secs_f64(),
        c.messages as f64 / c.elapsed.as_secs_f64(),
        s.messages
    );
    println!("errors: {errors}");
    println!(
        "OS threads in the process: {threads_before} before, {threads_during} at the end; \
         thread ids seen by main, server and clients: {}",
        seen.borrow().len()
    );
    if errors > 0 || s.conns != conns || seen.borrow().len() != 1 {
        std::process::exit(1);
    }
}
