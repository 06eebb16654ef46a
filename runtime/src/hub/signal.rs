//! The dump of the greenlets on a signal (`dump_on_signal`).
//!
//! A signal handler may run between any two instructions of the thread it interrupts,
//! with the hub's state half-updated, so it touches none of it. It does one
//! async-signal-safe thing: it writes one byte to a pipe (the `write` system call, made
//! directly: not the monkey patch's hooked `write`). The pipe's read end is registered
//! in the reactor of the hub that asked for the dump, under a token of its own, so the
//! byte is an event of that hub's next poll (and ends a poll that waits). The poll
//! drains the pipe and writes the dump (`greenlet::dump`) to standard error, in the
//! hub's own thread, between two greenlets. Nothing is added to the paths of a hub
//! that no signal asked: the token is told apart by the comparison that already
//! singles out the reactor's waker.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use crate::greenlet::dump;
use crate::hub::{Hub, with_hub};

/// The pipe's write end (the handler's) and read end (the hub's); -1 until made.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);
static PIPE_R: AtomicI32 = AtomicI32::new(-1);
/// The id of the hub that prints (0: none).
static PRINTER: AtomicU64 = AtomicU64::new(0);
/// Serialises the setting up (the pipe is made once).
static SETUP: Mutex<()> = Mutex::new(());

/// Makes the calling thread's hub print [`format_run_info`](crate::format_run_info) to
/// standard error whenever the process receives `signal` (say `libc::SIGUSR1`), like
/// gevent's `gevent.util.print_run_info` on a signal. `kill -USR1 <pid>` then shows
/// what every greenlet of the thread is doing.
///
/// The handler is async-signal-safe: it only writes a byte to a pipe, which the hub
/// polls with its sockets. The hub prints at its next poll for IO (a hub waiting for
/// timers or IO wakes up at once), between two greenlets. A greenlet that runs without
/// switching delays the dump until it switches (see [`monitor`](crate::monitor) for
/// finding it), and so does a hub kept busy by ready greenlets with no IO to wait for,
/// until it next waits.
///
/// One thread's hub prints: the last one to call this. The pipe and the handler stay
/// for the life of the process; a later call may name another signal (the first keeps
/// its handler).
///
/// # Errors
///
/// `InvalidInput` for a signal that cannot be caught or that the runtime uses
/// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, or out of range);
/// the error of `pipe2`, `sigaction` or the reactor's registration otherwise.
///
/// # Examples
///
/// ```
/// green::dump_on_signal(libc::SIGUSR1).unwrap();
/// assert!(green::dump_on_signal(libc::SIGKILL).is_err());
/// ```
pub fn dump_on_signal(signal: libc::c_int) -> io::Result<()> {
    const REFUSED: [libc::c_int; 6] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    if signal <= 0 || signal >= libc::SIGRTMAX() || REFUSED.contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("green::dump_on_signal: signal {signal} cannot be used"),
        ));
    }
    let _setup = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let read_end = pipe()?;
    with_hub(|h| {
        h.with_reactor(|r| r.register_dump_pipe(read_end))??;
        PRINTER.store(h.id, Ordering::Release);
        Ok::<(), io::Error>(())
    })?;
    // The handler calls `syscall`, which the monkey patch interposes: the hook forwards
    // any number but `SYS_futex` to glibc's function through a pointer it resolves on
    // its first call (`dlsym`, not async-signal-safe). One call here resolves it
    // before a handler can run.
    // SAFETY: `getpid` takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_getpid) };
    // SAFETY: a zeroed `sigaction` is valid; the handler is an `extern "C" fn(c_int)`,
    // as `sa_sigaction` without `SA_SIGINFO` expects, and it is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(signal, &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The pipe's read end, made on the first call (non-blocking, close-on-exec).
fn pipe() -> io::Result<libc::c_int> {
    let r = PIPE_R.load(Ordering::Acquire);
    if r >= 0 {
        return Ok(r);
    }
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pipe2,
            fds.as_mut_ptr(),
            libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    PIPE_W.store(fds[1], Ordering::Release);
    PIPE_R.store(fds[0], Ordering::Release);
    Ok(fds[0])
}

/// The signal handler: a byte, nothing else (async-signal-safe), with `errno` kept
/// for the code it interrupted.
extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: `__errno_location` returns this thread's errno, valid for the thread's
    // life.
    let errno = unsafe { *libc::__errno_location() };
    let fd = PIPE_W.load(Ordering::Acquire);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: a one-byte write from a live local; a full pipe (EAGAIN) is fine:
        // the hub has a byte to wake it already.
        unsafe { libc::syscall(libc::SYS_write, fd, &byte as *const u8, 1usize) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The poll of `h` saw the pipe readable: a signal asked for a dump. Drains the pipe
/// (the next byte is a new edge) and prints, if `h` is the hub that prints (another
/// that registered the pipe before only drains it).
#[cold]
#[inline(never)]
pub(crate) fn on_event(h: &Hub) {
    drain(PIPE_R.load(Ordering::Acquire));
    if PRINTER.load(Ordering::Acquire) == h.id {
        dump::print_run_info();
    }
}

/// Empties the (non-blocking) pipe, so that the next byte is a new readiness edge.
fn drain(fd: libc::c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live buffer of its length.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            break;
        }
    }
}
