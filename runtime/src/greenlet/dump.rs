//! The dump of a thread's greenlets (gevent's `format_run_info`): for each, its id,
//! name, state (what it waits for when parked), parent and where it was created.
//!
//! It reads the thread's list of records (`record::for_each_listed`) and runs no user
//! code, so it can be made anywhere: in a greenlet, in main, or in the hub (the dump
//! on a signal, `hub::signal`).

use std::fmt::Write as _;

use crate::greenlet::record::{self, Kind, Record, State};
use crate::greenlet::thread::{self, Thread};

/// A report on every live greenlet of the calling thread, one line each, main and the
/// hub first, then by id (gevent's `format_run_info`):
///
/// ```text
/// green: 4 greenlets on thread "main" (tid 4242)
///   greenlet 1 "main": running
///   greenlet 2 "hub": waiting
///   greenlet 5 "reader": parked on IO read, fd 7; parent 2; spawned at src/main.rs:12:5
///   greenlet 6: ready (yielded); parent 2; spawned at src/main.rs:15:5
/// ```
///
/// A parked greenlet shows what it waits for: `IO read, fd N` (or `write`,
/// `read/write`), `sleep`, `lock/semaphore`, `event`, `queue get`, `queue put`, `queue
/// peek`, `pool slot`, `join, greenlet N`, `joinall`, `wait/iwait`, `a wake from another
/// thread`, `its turn (fairness)`, or `park` for a direct [`park`](crate::park::park).
/// Greenlets are bound to their thread: other threads' greenlets are not listed (each
/// thread can make its own dump).
///
/// # Examples
///
/// ```
/// let h = green::Builder::new()
///     .name("sleeper")
///     .spawn(|| green::sleep(std::time::Duration::from_millis(20)))
///     .unwrap();
/// green::yield_now(); // it starts and parks
/// let dump = green::format_run_info();
/// assert!(dump.contains("\"sleeper\": parked on sleep"), "{dump}");
/// h.join().unwrap();
/// ```
pub fn format_run_info() -> String {
    thread::with(format_thread)
}

/// Writes [`format_run_info`] to standard error (gevent's `print_run_info`), with
/// `write(2)` calls of its own, not through `std::io::stderr`'s lock nor the monkey
/// patch.
///
/// ```
/// green::print_run_info();
/// ```
pub fn print_run_info() {
    write_stderr(format_run_info().as_bytes());
}

/// Writes `bytes` to fd 2 with the `write` system call (not a hooked libc `write`);
/// errors are ignored (there is nowhere to report them).
pub(crate) fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live buffer of `bytes.len()` bytes.
        let n = unsafe { libc::syscall(libc::SYS_write, 2, bytes.as_ptr(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            return;
        }
    }
}

/// [`format_run_info`] of the thread `t`.
fn format_thread(t: &Thread) -> String {
    let mut lines = Vec::new();
    record::for_each_listed(|r| {
        if r.core.state.get() != State::Dead {
            lines.push((r.core.id, describe(r)));
        }
    });
    lines.sort_by_key(|(id, _)| *id);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "green: {} greenlets on thread {:?} (tid {})",
        lines.len() + 2,
        t.switch_log.thread_name,
        t.switch_log.tid
    );
    for line in [describe(&t.main.0), describe(&t.hub.0)]
        .into_iter()
        .chain(lines.into_iter().map(|(_, l)| l))
    {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// One greenlet's line.
fn describe(r: &Record) -> String {
    let mut s = format!("greenlet {}", r.core.id);
    if let Some(name) = r.cold.name.as_deref() {
        let _ = write!(s, " {name:?}");
    }
    let _ = write!(s, ": {}", state_text(r));
    if let Ok(parent) = r.cold.parent.try_borrow()
        && let Some(p) = parent.as_ref()
        && r.core.kind == Kind::Coro
    {
        let _ = write!(s, "; parent {}", p.0.core.id);
    }
    if let Some(at) = r.cold.spawned_at {
        let _ = write!(s, "; spawned at {at}");
    }
    s
}

/// What the greenlet of `r` is doing.
fn state_text(r: &Record) -> String {
    let queued = r.has_pending();
    if r.core.kind == Kind::Hub {
        return if thread::in_scheduler() {
            "running".into()
        } else {
            "waiting".into()
        };
    }
    match r.core.state.get() {
        State::Running => "running".into(),
        State::Parked if queued => "ready (woken)".into(),
        State::Parked => {
            let label = r.core.park_label.get();
            match label.number() {
                Some(n) => format!("parked on {} {n}", label.what),
                None => format!("parked on {}", label.what),
            }
        }
        State::Yielded => "ready (yielded)".into(),
        State::Suspended if queued => "ready".into(),
        State::Suspended => "suspended (switched away)".into(),
        State::Fresh if queued || r.core.start_armed.get() => "not started (scheduled)".into(),
        State::Fresh => "not started".into(),
        State::Dead => "dead".into(),
    }
}
