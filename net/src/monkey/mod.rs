//! Monkey patching: make `std::thread::sleep`, `std::net`, `std::sync` and thread joins
//! cooperative inside greenlets.
//!
//! After [`patch_all`], code written against plain std — `std::thread::sleep`,
//! `std::net::TcpStream::read`, `TcpListener::accept`, `Mutex::lock`, `Condvar::wait`,
//! `mpsc::Receiver::recv`, `JoinHandle::join`, ... — parks the calling greenlet instead
//! of blocking the OS thread, when (and only when) it runs in a greenlet of a thread that
//! has a hub. Everywhere else (plain threads, the main stack,
//! no hub, patch off) the calls behave exactly like glibc's.
//!
//! # How
//!
//! This module defines `#[no_mangle] extern "C"` functions named like the libc entry
//! points std uses (`clock_nanosleep`, `nanosleep`, `socket`, `connect`, `accept4`,
//! `recv`, `send`, `read`, `write`, `poll`, `close`, `setsockopt`, `fcntl`, `ioctl`,
//! `syscall` (for `SYS_futex`), `pthread_join`, ... see `hooks/`). The executable's definitions win over `libc.so.6` for every call made by
//! Rust code linked into it; the hooks reach glibc's originals with
//! `dlsym(RTLD_NEXT, ..)`. rustc links every `#[no_mangle]` symbol of every linked rlib
//! (through its synthetic `symbols.o`), so the hooks are present as soon as this crate is
//! linked; they do nothing until a `patch_*` function flips a global flag, and an
//! unpatched call costs one relaxed atomic load.
//!
//! Sockets created while the net patch is on are remembered in a per-fd table. The first
//! time a greenlet makes a blocking-style call on one, the real fd is switched to
//! `O_NONBLOCK` (the user's own view of the flag is kept in the table, as in libco, in
//! one record per socket that all its `dup`s and `try_clone`s share) and
//! every call that would block parks the greenlet until the reactor reports readiness,
//! honouring `SO_RCVTIMEO`/`SO_SNDTIMEO`. Used later from a plain thread, such a socket
//! still blocks (emulated with `poll`).
//!
//! "Inside a greenlet" means `green_runtime::is_greenlet_context()`: a spawned greenlet
//! or the main greenlet of a thread whose hub exists (so a patched sleep in `main` runs
//! the other greenlets meanwhile, as in gevent); never the hub itself.
//!
//! # Kills and timeouts
//!
//! A kill (or a `Timeout`) raised into a greenlet parked in a patched std call cannot
//! unwind through std's `extern "C"` call frames. The hook catches it and hands it to
//! [`green_runtime::defer_unwind`]; the std call fails with `ECANCELED` (a sleep returns
//! early, as if interrupted). The kill is raised again at the greenlet's next switch
//! point (any `green` call that parks, switches or sleeps); if the greenlet's function
//! returns first, it still counts as killed (`join` reports `is_killed()`). Until then,
//! every further patched call of that greenlet fails at once (`ECANCELED`; sleeps return
//! immediately), so a loop of patched std calls that ignores their errors spins: stop
//! on the error, or give the loop a `green` switch point.
//!
//! Waits that cannot fail are the exception: a futex wait says `EINTR` once and then
//! parks again until its condition holds (`Mutex::lock` takes the lock, `join` waits for
//! the thread), and the kill unwinds at the first switch point after the call.
//!
//! # Fairness and running out of fds
//!
//! A hooked read, write, send, receive or accept of a greenlet counts against its
//! fairness budget (see `green_runtime::spend_budget`): a greenlet whose calls keep
//! succeeding gives the others a turn now and then, before its next call. A hooked
//! `accept`/`accept4` that the kernel refuses for want of resources (`EMFILE`,
//! `ENFILE`, `ENOBUFS`, `ENOMEM`) first parks the greenlet for its listener's back-off
//! delay (10 ms, doubling up to 1 s, reset by an accepted connection), then returns the
//! error as the real call gave it, so that a std accept loop that retries at once does
//! not spin. One warning is logged when such an episode starts, one info line when it
//! ends.
//!
//! # Not covered
//!
//! * Sockets that existed before [`patch_net`] (or were inherited) — call `patch_all()`
//!   first thing in `main`.
//! * DNS (`getaddrinfo` runs inside glibc, whose internal calls are not hooked): use
//!   `green_net`'s resolver or a thread. Likewise `sleep(3)`/`usleep(3)` called from C.
//! * Files, pipes, stdio: they block the thread as before.
//! * Both ends of one std or crossbeam channel in greenlets of the same thread (those
//!   channels never wake a waiter of the sender's own thread: reported after a while,
//!   see [`set_park_stall_warning`]), parking_lot's contended locks (they block the
//!   thread, with a warning), and locks taken inside glibc by C libraries
//!   (`pthread_mutex_*`). The guide's chapter 5 says what to use instead.
//! * Calls made by shared libraries (OpenSSL's sockets, ...): only the executable's own
//!   code reaches the hooks. Statically linked glibc binaries are not supported.
//! * `poll` with several fds from a greenlet is approximated by polling with short
//!   cooperative sleeps.
//!
//! # Example
//!
//! ```no_run
//! green_net::monkey::patch_all();
//! // std code run inside greenlets now switches instead of blocking:
//! // std::thread::sleep(Duration::from_millis(200)) in two greenlets takes ~200 ms.
//! assert!(green_net::monkey::is_patched());
//! ```

use std::sync::atomic::{AtomicU8, Ordering};

mod fdtable;
mod hooks;
pub(crate) mod real;
mod waiters;

pub use hooks::thread_park::set_park_stall_warning;

/// Sleep hooks active.
const SLEEP: u8 = 1;
/// Net hooks active: new sockets are tracked.
const NET: u8 = 2;
/// Some socket may have been tracked: the net hooks must look at the fd table (sticky,
/// so that adopted sockets keep working after [`unpatch_all`]).
const TRACKING: u8 = 4;

/// Sync hooks active: futex waits of greenlets park them, `pthread_join` runs on the
/// blocking pool.
const SYNC: u8 = 64;
/// Some greenlet may wait in the futex table: futex wakes must look at it (sticky, so
/// that greenlets parked before [`unpatch_all`] are still woken).
const SYNC_USED: u8 = 128;

/// The global patch state: one relaxed load on every hooked call.
static STATE: AtomicU8 = AtomicU8::new(0);

#[inline]
fn state() -> u8 {
    STATE.load(Ordering::Relaxed)
}

/// Patches everything this module knows: [`patch_sleep`], [`patch_net`] and
/// [`patch_sync`]. Idempotent.
///
/// Call it first thing in `main`, before creating the sockets that greenlets will use.
///
/// ```no_run
/// green_net::monkey::patch_all();
/// green_net::monkey::patch_all(); // harmless
/// assert!(green_net::monkey::is_sleep_patched() && green_net::monkey::is_net_patched());
/// assert!(green_net::monkey::is_sync_patched());
/// ```
pub fn patch_all() {
    patch_sleep();
    patch_net();
    patch_sync();
}

/// Makes `std::thread::sleep` (libc `nanosleep`/`clock_nanosleep`) cooperative inside
/// greenlets. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_sleep();
/// assert!(green_net::monkey::is_sleep_patched());
/// ```
pub fn patch_sleep() {
    hooks::keep_linked();
    real::resolve_all();
    STATE.fetch_or(SLEEP, Ordering::SeqCst);
}

/// Makes `std::net` sockets created from now on cooperative inside greenlets. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_net();
/// assert!(green_net::monkey::is_net_patched());
/// ```
pub fn patch_net() {
    hooks::keep_linked();
    real::resolve_all();
    STATE.fetch_or(NET | TRACKING, Ordering::SeqCst);
}

/// Makes `std::sync` (`Mutex`, `Condvar`, `RwLock`, `Once`/`OnceLock`, `Barrier`, channels),
/// `std::thread::park` and `JoinHandle::join` cooperative inside greenlets, like gevent's
/// `patch_thread`: their futex waits park the greenlet (hooked `syscall(SYS_futex)`),
/// and joining an OS thread waits on the blocking pool. Idempotent. See the guide's
/// chapter 5 for what is covered and what is not.
///
/// ```no_run
/// green_net::monkey::patch_sync();
/// assert!(green_net::monkey::is_sync_patched());
/// ```
pub fn patch_sync() {
    real::resolve_all();
    hooks::keep_sync_linked();
    green_runtime::__remote::set_poll_hooks(
        hooks::thread_park::before_poll,
        hooks::thread_park::after_poll,
    );
    STATE.fetch_or(SYNC | SYNC_USED, Ordering::SeqCst);
}

/// Turns the patches off: sleeps and std's locks block again, new sockets are not
/// tracked. Sockets already switched to non-blocking mode under the hood keep their
/// cooperative behaviour (and their blocking semantics for the user) until they are
/// closed, and greenlets already parked in a lock are still woken.
///
/// ```no_run
/// green_net::monkey::patch_all();
/// green_net::monkey::unpatch_all();
/// assert!(!green_net::monkey::is_patched());
/// ```
pub fn unpatch_all() {
    STATE.fetch_and(!(SLEEP | NET | SYNC), Ordering::SeqCst);
}

/// True if any patch is on.
///
/// ```
/// if !green_net::monkey::is_patched() {
///     green_net::monkey::patch_all();
/// }
/// ```
pub fn is_patched() -> bool {
    state() & (SLEEP | NET | SYNC) != 0
}

/// True if [`patch_sleep`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_sleep_patched();
/// ```
pub fn is_sleep_patched() -> bool {
    state() & SLEEP != 0
}

/// True if [`patch_net`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_net_patched();
/// ```
pub fn is_net_patched() -> bool {
    state() & NET != 0
}

/// True if [`patch_sync`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_sync_patched();
/// ```
pub fn is_sync_patched() -> bool {
    state() & SYNC != 0
}

/// The runtime services the hooks need (a thin seam over `green_runtime`).
#[cfg(not(test))]
mod rt {
    use std::io;
    use std::os::fd::RawFd;
    use std::time::{Duration, Instant};

    /// True when parking is possible: a greenlet or the main greenlet of a thread with a
    /// hub (not the hub itself, not a hub-less thread).
    #[inline]
    pub(super) fn in_greenlet() -> bool {
        green_runtime::is_greenlet_context()
    }
    /// Cooperative sleep.
    pub(super) fn sleep(d: Duration) {
        green_runtime::sleep(d)
    }
    /// Parks until `fd` (the socket numbered `tag`, see `fdtable::Slot::tag`) is ready
    /// for `interest` or `deadline` passes.
    pub(super) fn wait_fd(
        fd: RawFd,
        tag: u64,
        i: mio::Interest,
        d: Option<Instant>,
    ) -> io::Result<()> {
        green_runtime::reactor::wait_fd_tagged(fd, tag, i, d)
    }
    /// Deregisters `fd` and wakes its waiters with an error; call before `close`.
    pub(super) fn forget_fd(fd: RawFd) {
        green_runtime::reactor::forget_fd(fd)
    }
    /// Whether a syscall on `fd` for `interest` may succeed: `false` once a syscall
    /// drained it ([`fd_drained`]) until the next readiness edge.
    pub(super) fn fd_ready(fd: RawFd, tag: u64, i: mio::Interest) -> bool {
        green_runtime::reactor::fd_is_ready(fd, tag, i)
    }
    /// Records that a syscall drained `fd` for `interest` (see `fd_ready`).
    pub(super) fn fd_drained(fd: RawFd, tag: u64, i: mio::Interest) {
        green_runtime::reactor::fd_clear_ready(fd, tag, i)
    }
    /// Keeps a kill caught inside a hook for the greenlet's next switch point (or its
    /// outcome). Outside a greenlet context (never expected) the payload is dropped.
    pub(super) fn defer_unwind(p: Box<dyn std::any::Any + Send>) {
        if green_runtime::is_greenlet_context() {
            green_runtime::defer_unwind(p)
        }
    }
    /// Counts a socket operation against the greenlet's fairness budget; may park (and
    /// so unwind) to let the other greenlets run.
    #[inline]
    pub(super) fn spend_budget() {
        green_runtime::spend_budget()
    }
}

/// Unit tests drive the hooks with a fake runtime: a thread-local "in a greenlet" flag,
/// and waits that block in glibc's `poll`.
#[cfg(test)]
mod rt {
    use std::cell::Cell;
    use std::io;
    use std::os::fd::RawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    thread_local! {
        pub(super) static FAKE_GREENLET: Cell<bool> = const { Cell::new(false) };
    }
    pub(super) static WAITS: AtomicUsize = AtomicUsize::new(0);
    pub(super) static FORGETS: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn in_greenlet() -> bool {
        FAKE_GREENLET.with(|f| f.get())
    }
    pub(super) fn sleep(d: Duration) {
        let ts = libc::timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        };
        // SAFETY: valid timespec, null remainder.
        unsafe { super::real::nanosleep(&ts, std::ptr::null_mut()) };
    }
    thread_local! {
        /// Waits by this thread (tests running in parallel share `WAITS`).
        pub(super) static THREAD_WAITS: Cell<usize> = const { Cell::new(0) };
    }
    pub(super) fn wait_fd(
        fd: RawFd,
        _tag: u64,
        i: mio::Interest,
        d: Option<Instant>,
    ) -> io::Result<()> {
        WAITS.fetch_add(1, Ordering::Relaxed);
        THREAD_WAITS.with(|w| w.set(w.get() + 1));
        let mut events = 0;
        if i.is_readable() {
            events |= libc::POLLIN;
        }
        if i.is_writable() {
            events |= libc::POLLOUT;
        }
        let ms = d.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now()).as_millis() as i32 + 1
        });
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        match unsafe { super::real::poll(&mut p, 1, ms) } {
            0 => Err(io::ErrorKind::TimedOut.into()),
            1.. => {
                // The "edge": ready again in the waited direction.
                let read = i.is_readable();
                DRAINED.with(|d| d.borrow_mut().retain(|&e| e != (fd, read)));
                Ok(())
            }
            _ => Err(io::Error::last_os_error()),
        }
    }
    pub(super) fn forget_fd(_fd: RawFd) {
        FORGETS.fetch_add(1, Ordering::Relaxed);
    }
    thread_local! {
        /// The fds `fd_drained` was told about and no `wait_fd` has seen ready since
        /// (the fake stand-in for the reactor's readiness bits).
        pub(super) static DRAINED: std::cell::RefCell<Vec<(RawFd, bool)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    pub(super) fn fd_ready(fd: RawFd, _tag: u64, i: mio::Interest) -> bool {
        let read = i.is_readable();
        DRAINED.with(|d| !d.borrow().contains(&(fd, read)))
    }
    pub(super) fn fd_drained(fd: RawFd, _tag: u64, i: mio::Interest) {
        let read = i.is_readable();
        DRAINED.with(|d| {
            let mut d = d.borrow_mut();
            if !d.contains(&(fd, read)) {
                d.push((fd, read));
            }
        });
    }
    pub(super) static DEFERRED: AtomicUsize = AtomicUsize::new(0);
    pub(super) fn defer_unwind(_p: Box<dyn std::any::Any + Send>) {
        DEFERRED.fetch_add(1, Ordering::Relaxed);
    }
    thread_local! {
        /// Operations this thread counted against the budget.
        pub(super) static SPENT: Cell<usize> = const { Cell::new(0) };
    }
    pub(super) fn spend_budget() {
        SPENT.with(|s| s.set(s.get() + 1));
    }
}

#[cfg(test)]
mod tests;
