//! What a program's greenlets are doing: the dump (`green::format_run_info`), on demand
//! and on a signal, and the trace hook (`green::settrace`).
//!
//! Starts a few greenlets that wait on different things (a sleep, an event, a queue, a
//! socket read, a join), prints the dump, traces a few explicit switches, and with
//! `--wait SECS` waits for `kill -USR1 <pid>` to print the dump again.
//!
//! Run: `cargo run --example diagnostics -- --wait 30`

#[path = "shared/mod.rs"]
mod shared;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Duration;

use green::{Builder, Event, Greenlet, JoinHandle, Queue, TraceEvent, TraceHook, Value};
use shared::cli;

const USAGE: &str = "\
usage: diagnostics [--wait SECS] [--no-trace]

Starts greenlets waiting on a sleep, an event, a queue, a socket read and a join,
prints the dump of every greenlet (green::print_run_info), then traces a few explicit
switches (green::settrace).

  --wait SECS   afterwards, print the dump again on SIGUSR1 (kill -USR1 <pid>) for
                SECS seconds (green::dump_on_signal)
  --no-trace    skip the trace part
";

fn main() {
    let mut wait = None;
    let mut trace = true;
    let mut args = cli::Args::new(USAGE);
    while let Some(arg) = args.next() {
        match arg {
            cli::Long("wait") => wait = Some(args.secs()),
            cli::Long("no-trace") => trace = false,
            other => cli::reject(other),
        }
    }

    let waiters = start_waiters();
    println!("--- the dump (green::print_run_info goes to stderr; this is format_run_info):");
    print!("{}", green::format_run_info());

    if trace {
        println!("--- the trace of three explicit switches there and back:");
        trace_switches();
    }

    if let Some(secs) = wait {
        if let Err(e) = green::dump_on_signal(libc::SIGUSR1) {
            cli::fail(format!("cannot set up the dump on SIGUSR1: {e}"));
        }
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        println!("--- run `kill -USR1 {pid}` within {secs:?}: the hub prints the dump on stderr");
        green::sleep(secs);
    }

    for h in waiters {
        h.kill();
    }
}

/// Greenlets waiting on different things; their handles, to kill them at the end.
fn start_waiters() -> Vec<JoinHandle<()>> {
    // `#[track_caller]`: the dump shows where each greenlet was spawned, the caller.
    #[track_caller]
    fn named(name: &str, f: Box<dyn FnOnce()>) -> JoinHandle<()> {
        Builder::new()
            .name(name)
            .spawn(f)
            .unwrap_or_else(|e| cli::fail(format!("cannot spawn: {e}")))
    }
    let mut all = Vec::new();
    all.push(named(
        "sleeper",
        Box::new(|| green::sleep(Duration::from_secs(3600))),
    ));
    let event = Event::new();
    all.push(named(
        "event waiter",
        Box::new(move || {
            let _ = event.wait();
        }),
    ));
    let queue: Queue<u32> = Queue::new();
    all.push(named(
        "consumer",
        Box::new(move || {
            let _ = queue.get();
        }),
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| cli::fail(format!("cannot bind 127.0.0.1:0: {e}")));
    let addr = listener.local_addr().unwrap_or_else(|e| cli::fail(e));
    all.push(named(
        "reader",
        Box::new(move || {
            let _keep = listener;
            if let Ok(mut s) = green::net::TcpStream::connect(addr) {
                let _ = s.read(&mut [0u8; 16]);
            }
        }),
    ));
    all.push(named(
        "joiner",
        Box::new(|| {
            let inner = Builder::new()
                .name("joined")
                .spawn(|| green::sleep(Duration::from_secs(3600)));
            if let Ok(h) = inner {
                // Killed with the joiner: `inner` is dropped, and the greenlet goes on
                // until the program ends.
                let _ = h.join();
            }
        }),
    ));
    // Let every one start and park.
    green::sleep(Duration::from_millis(20));
    all
}

/// Counts the trace events between main and a greenlet that switches back and forth.
fn trace_switches() {
    let seen: Rc<RefCell<BTreeMap<String, u32>>> = Rc::default();
    let s = seen.clone();
    let previous = green::settrace(Some(TraceHook::new(move |event, origin, target| {
        let kind = match event {
            TraceEvent::Switch => "switch",
            TraceEvent::Throw => "throw",
        };
        let name = |g: &Greenlet| {
            g.name()
                .map_or_else(|| format!("#{}", g.id()), String::from)
        };
        let key = format!("{kind} {} -> {}", name(origin), name(target));
        *s.borrow_mut().entry(key).or_default() += 1;
    })));
    let main = green::getcurrent();
    let ping = Greenlet::new(move |_: Value| {
        for _ in 0..3 {
            main.switch(());
        }
    });
    for _ in 0..3 {
        ping.switch(());
    }
    let _ = ping.throw();
    green::settrace(previous);
    for (what, n) in seen.borrow().iter() {
        println!("{n:>3} x {what}");
    }
}
