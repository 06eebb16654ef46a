//! Monkey patching: make std's blocking calls cooperative inside greenlets.
//!
//! After [`patch_all`], code written against plain std — `std::thread::sleep`,
//! `std::net::TcpStream::read`, `TcpListener::accept`, `Mutex::lock`, `Condvar::wait`,
//! `JoinHandle::join`, `ToSocketAddrs` by host name, `Command::output`, pipe and tty
//! reads, `poll`/`select` — parks the calling greenlet on the hub (its reactor, its
//! futex table or the blocking pool) instead of blocking the OS thread, when (and only
//! when) it runs in a greenlet of a thread that has a hub. Everywhere else (plain
//! threads, the main stack, no hub, patch off) the calls behave exactly like glibc's.
//! [`patch_files`] adds regular files; [`event_loop`] runs a foreign event loop (an
//! async runtime's `block_on`) so that its waits park.
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
//! Each concern is one file of `hooks/` and one `patch_*` function: sleeps, sockets
//! ([`patch_net`]), `poll`/`select`/`epoll` ([`patch_select`]), pipes, FIFOs, ttys and
//! eventfds ([`patch_pipes`]: readiness first, then the real call; the fd's flags are
//! never changed), child processes ([`patch_subprocess`]: a pidfd, or the pool), name
//! resolution ([`patch_dns`]: the pool) and regular files ([`patch_files`]: the pool).
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
//! the runtime (`green_runtime::__net::defer_unwind`); the std call fails with
//! `ECANCELED` (a sleep returns early, as if interrupted). The kill is raised again at
//! the greenlet's next switch point (any `green` call that parks, switches or sleeps);
//! if the greenlet's function returns first, it still counts as killed (`join` reports
//! `is_killed()`). Until then, every further patched call of that greenlet fails at once
//! (`ECANCELED`; sleeps return immediately), so a loop of patched std calls that ignores
//! their errors spins: stop on the error, or give the loop a `green` switch point.
//!
//! Waits that cannot fail are the exception: a futex wait says `EINTR` once and then
//! parks again until its condition holds (`Mutex::lock` takes the lock, `join` waits for
//! the thread), and the kill unwinds at the first switch point after the call. So the
//! kills of the thread's end cannot unwind a greenlet that waits in one then: after the
//! last round it is leaked with its stack (see the guide's notes on a thread's end);
//! its wait stops counting as a waiter and its hub's fds are closed.
//!
//! # Fairness and running out of fds
//!
//! A hooked read, write, send, receive or accept of a greenlet counts against its
//! fairness budget (see `green_runtime::__net::spend_budget`): a greenlet whose calls
//! keep succeeding gives the others a turn now and then, before its next call. A hooked
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
//! * `epoll_wait` outside [`event_loop`]: an async runtime's `block_on` blocks the thread
//!   (see [`event_loop`] for why).
//! * `gethostbyname` and other non-reentrant resolver calls.
//! * Both ends of one std or crossbeam channel in greenlets of the same thread (those
//!   channels never wake a waiter of the sender's own thread: reported after a while,
//!   see [`set_park_stall_warning`]), parking_lot's contended locks (they block the
//!   thread, with a warning), and locks taken inside glibc by C libraries
//!   (`pthread_mutex_*`). The guide's chapter 5 says what to use instead.
//! * Calls made by shared libraries (OpenSSL's sockets, ...) and glibc's internal calls:
//!   only the executable's own code reaches the hooks. Statically linked glibc binaries
//!   are not supported. A child made by `fork` runs with the hooks off.
//!
//! The blocked-hub report that `patch_all` turns on names any call that still blocks a
//! hub (see `green::monitor::set_stall_report`).
//!
//! # Example
//!
//! ```no_run
//! green_net::monkey::patch_all();
//! // std code run inside greenlets now switches instead of blocking:
//! // std::thread::sleep(Duration::from_millis(200)) in two greenlets takes ~200 ms.
//! assert!(green_net::monkey::is_patched());
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

mod fdtable;
mod hooks;
#[cfg(not(test))]
mod offload;
pub(crate) mod real;
mod waiters;

pub use hooks::thread_park::set_park_stall_warning;

pub use hooks::dns::__set_resolver;
pub use hooks::event_loop::event_loop;

/// Sleep hooks active.
const SLEEP: u32 = 1;
/// Net hooks active: new sockets are tracked.
const NET: u32 = 2;
/// Some socket may have been tracked: the net hooks must look at the fd table (sticky,
/// so that adopted sockets keep working after [`unpatch_all`]). Also set by the patches
/// that classify other fds ([`patch_pipes`], [`patch_files`]).
const TRACKING: u32 = 4;
/// `poll`, `ppoll`, `select`, `pselect` on any fds park; so do `epoll_wait` and its
/// variants inside [`event_loop`].
const SELECT: u32 = 8;
/// Pipes, FIFOs, ttys, eventfds: reads and writes wait for readiness first.
const PIPES: u32 = 16;
/// `waitpid`, `wait4`, `waitid`, `wait`: child processes are waited for cooperatively.
const SUBPROCESS: u32 = 32;
/// `getaddrinfo`, `getnameinfo`, `gethostbyname_r`, `gethostbyname2_r` run on the
/// blocking pool.
const DNS: u32 = 64;
/// Regular files: opens, reads, writes and syncs run on the blocking pool.
const FILES: u32 = 128;
/// Sync hooks active: futex waits of greenlets park them, `pthread_join` runs on the
/// blocking pool.
const SYNC: u32 = 256;
/// Some greenlet may wait in the futex table: futex wakes must look at it (sticky, so
/// that greenlets parked before [`unpatch_all`] are still woken).
const SYNC_USED: u32 = 512;
/// Every patch bit.
const ALL: u32 = SLEEP | NET | SELECT | PIPES | SUBPROCESS | DNS | FILES | SYNC;

/// The global patch state: one relaxed load on every hooked call.
static STATE: AtomicU32 = AtomicU32::new(0);

#[inline]
fn state() -> u32 {
    STATE.load(Ordering::Relaxed)
}

/// Sets `bits` in the patch state, after making sure the hooks are linked and glibc's
/// originals resolved (outside any hook).
fn patch(bits: u32) {
    hooks::keep_linked();
    real::resolve_all();
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a handler that only stores to an atomic (async-signal-safe).
    AT_FORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(unpatch_in_child));
    });
    STATE.fetch_or(bits, Ordering::SeqCst);
}

/// Turns the hooks off in a child made by `fork` (it runs on a copy of the parent's
/// memory, greenlets and hub included, whose epoll instance it shares with the parent:
/// a hook there could deregister the parent's fds).
extern "C" fn unpatch_in_child() {
    STATE.store(0, Ordering::Relaxed);
}

/// Patches everything but files: [`patch_sleep`], [`patch_net`], [`patch_sync`],
/// [`patch_select`], [`patch_pipes`], [`patch_subprocess`] and [`patch_dns`]; and turns
/// on the blocked-hub report (`green::monitor::set_stall_report`, 500 ms) unless the program chose
/// otherwise or `GREEN_STALL_REPORT=off`. Idempotent.
///
/// Call it first thing in `main`, before creating the sockets that greenlets will use.
/// [`patch_files`] is separate: a file read on the blocking pool costs more than the
/// read itself when the data is cached.
///
/// ```no_run
/// green_net::monkey::patch_all();
/// green_net::monkey::patch_all(); // harmless
/// assert!(green_net::monkey::is_sleep_patched() && green_net::monkey::is_net_patched());
/// assert!(green_net::monkey::is_dns_patched() && !green_net::monkey::is_files_patched());
/// assert!(green_net::monkey::is_sync_patched());
/// ```
pub fn patch_all() {
    patch_sleep();
    patch_net();
    patch_sync();
    patch_select();
    patch_pipes();
    patch_subprocess();
    patch_dns();
    green_runtime::monitor::report_stalls_by_default();
}

/// Makes `std::thread::sleep` (libc `nanosleep`/`clock_nanosleep`), `usleep` and
/// `sleep` cooperative inside greenlets. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_sleep();
/// assert!(green_net::monkey::is_sleep_patched());
/// ```
pub fn patch_sleep() {
    patch(SLEEP);
}

/// Makes `std::net` sockets created from now on cooperative inside greenlets. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_net();
/// assert!(green_net::monkey::is_net_patched());
/// ```
pub fn patch_net() {
    patch(NET | TRACKING);
}

/// Makes `poll`, `ppoll`, `select` and `pselect` on any fds park the calling greenlet
/// until one is ready or the timeout passes (then the real call with a zero timeout
/// fills the result), and `epoll_wait`/`epoll_pwait`/`epoll_pwait2` inside
/// [`event_loop`]. A call with a signal mask is glibc's. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_select();
/// assert!(green_net::monkey::is_select_patched());
/// ```
pub fn patch_select() {
    patch(SELECT);
}

/// Makes reads and writes of pipes, FIFOs, ttys, eventfds (any pollable fd that is not
/// a socket) park the calling greenlet until the fd is ready, then make the real call.
/// The fd's `O_NONBLOCK` flag is never changed (other processes may share it).
/// Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_pipes();
/// assert!(green_net::monkey::is_pipes_patched());
/// ```
pub fn patch_pipes() {
    patch(PIPES | TRACKING);
}

/// Makes `waitpid`, `wait4`, `waitid` and `wait` (what `Child::wait`, `Command::status`
/// and `Command::output` call) park the calling greenlet until the child changes state:
/// on a pidfd for one child, on the blocking pool otherwise. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_subprocess();
/// assert!(green_net::monkey::is_subprocess_patched());
/// ```
pub fn patch_subprocess() {
    patch(SUBPROCESS);
}

/// Makes `getaddrinfo` (what `ToSocketAddrs` by host name calls), `getnameinfo`,
/// `gethostbyname_r` and `gethostbyname2_r` run on the blocking pool while the calling
/// greenlet parks; results and errors are the real call's. Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_dns();
/// assert!(green_net::monkey::is_dns_patched());
/// ```
pub fn patch_dns() {
    patch(DNS);
}

/// Makes `open`, `openat`, `read`, `write`, `pread`, `pwrite`, `fsync` and `fdatasync`
/// of regular files (what `std::fs` calls) run on the blocking pool while the calling
/// greenlet parks. Not part of [`patch_all`]: each call costs a round trip to a helper
/// thread (microseconds), more than a read from the page cache; use it when files are
/// slow (network file systems, cold disks, large reads). Idempotent.
///
/// ```no_run
/// green_net::monkey::patch_files();
/// assert!(green_net::monkey::is_files_patched());
/// ```
pub fn patch_files() {
    patch(FILES | TRACKING);
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
    hooks::keep_sync_linked();
    if let Err(e) = green_runtime::__net::set_poll_hooks(
        hooks::thread_park::before_poll,
        hooks::thread_park::after_poll,
    ) {
        // Without its hooks, a greenlet in std::thread::park can miss an unpark from
        // another thread.
        log::error!("green::monkey: patch_sync: {e}");
    }
    patch(SYNC | SYNC_USED);
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
    STATE.fetch_and(!ALL, Ordering::SeqCst);
}

/// True if any patch is on.
///
/// ```
/// if !green_net::monkey::is_patched() {
///     green_net::monkey::patch_all();
/// }
/// ```
pub fn is_patched() -> bool {
    state() & ALL != 0
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

/// True if [`patch_select`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_select_patched();
/// ```
pub fn is_select_patched() -> bool {
    state() & SELECT != 0
}

/// True if [`patch_pipes`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_pipes_patched();
/// ```
pub fn is_pipes_patched() -> bool {
    state() & PIPES != 0
}

/// True if [`patch_subprocess`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_subprocess_patched();
/// ```
pub fn is_subprocess_patched() -> bool {
    state() & SUBPROCESS != 0
}

/// True if [`patch_dns`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_dns_patched();
/// ```
pub fn is_dns_patched() -> bool {
    state() & DNS != 0
}

/// True if [`patch_files`] is in effect.
///
/// ```
/// let _patched: bool = green_net::monkey::is_files_patched();
/// ```
pub fn is_files_patched() -> bool {
    state() & FILES != 0
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
        green_runtime::__net::wait_fd_tagged(fd, tag, i, d)
    }
    /// Deregisters `fd` and wakes its waiters with an error; call before `close`.
    pub(super) fn forget_fd(fd: RawFd) {
        green_runtime::__net::forget_fd(fd)
    }
    /// Whether a syscall on `fd` for `interest` may succeed: `false` once a syscall
    /// drained it ([`fd_drained`]) until the next readiness edge.
    pub(super) fn fd_ready(fd: RawFd, tag: u64, i: mio::Interest) -> bool {
        green_runtime::__net::fd_is_ready(fd, tag, i)
    }
    /// Records that a syscall drained `fd` for `interest` (see `fd_ready`).
    pub(super) fn fd_drained(fd: RawFd, tag: u64, i: mio::Interest) {
        green_runtime::__net::fd_clear_ready(fd, tag, i)
    }
    /// Keeps a kill caught inside a hook for the greenlet's next switch point (or its
    /// outcome). Outside a greenlet context (never expected) the payload is dropped.
    pub(super) fn defer_unwind(p: Box<dyn std::any::Any + Send>) {
        if green_runtime::is_greenlet_context() {
            green_runtime::__net::defer_unwind(p)
        }
    }
    /// Counts a socket operation against the greenlet's fairness budget; may park (and
    /// so unwind) to let the other greenlets run.
    #[inline]
    pub(super) fn spend_budget() {
        green_runtime::__net::spend_budget()
    }
    /// The running greenlet's id.
    pub(super) fn current_id() -> u64 {
        green_runtime::getcurrent().id()
    }
    /// Parks until `fd` is readable or `deadline` passes, on a registration made for
    /// this wait alone (for fds nobody else registers: a pidfd, an epoll fd).
    pub(super) fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
        Readable::new(fd)?.wait(deadline)
    }
    /// A registration of an fd nobody else registers, for several waits.
    pub(super) struct Readable(green_runtime::__net::FdRegistration);
    impl Readable {
        pub(super) fn new(fd: RawFd) -> io::Result<Readable> {
            green_runtime::__net::FdRegistration::new(fd).map(Readable)
        }
        /// Parks until the fd is readable or `deadline` passes (`TimedOut`).
        pub(super) fn wait(&self, deadline: Option<Instant>) -> io::Result<()> {
            self.0.wait(mio::Interest::READABLE, deadline)
        }
    }
    /// How many greenlets this thread's hub has resumed, if it counts.
    pub(super) fn switches() -> Option<u64> {
        green_runtime::monitor::__switches()
    }
    pub(super) use super::offload::{Payload, run_borrowed, run_owned};
    /// The greenlet lock that serializes `event_loop` scopes on this thread.
    pub(super) type ScopeLock = green_runtime::Lock;
    /// This thread's [`ScopeLock`] (a handle to it); `None` once the thread's end
    /// destroyed it.
    pub(super) fn event_loop_lock() -> Option<ScopeLock> {
        EVENT_LOOP.try_with(Clone::clone).ok()
    }
    /// Takes `lock` (parking until it is free); `false` if that cannot be (from the
    /// hub). The handle is the caller's, so that no reference to the thread-local is
    /// held across the park.
    pub(super) fn lock_scope(lock: &ScopeLock) -> bool {
        lock.acquire().map(|p| p.forget()).is_ok()
    }
    /// Gives back what [`lock_scope`] took.
    pub(super) fn unlock_scope(lock: &ScopeLock) {
        let _ = lock.release();
    }
    thread_local! {
        static EVENT_LOOP: ScopeLock = ScopeLock::new();
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
    pub(super) fn current_id() -> u64 {
        1
    }
    pub(super) fn wait_readable(fd: RawFd, d: Option<Instant>) -> io::Result<()> {
        wait_fd(fd, 0, mio::Interest::READABLE, d)
    }
    pub(super) struct Readable(RawFd);
    impl Readable {
        pub(super) fn new(fd: RawFd) -> io::Result<Readable> {
            Ok(Readable(fd))
        }
        pub(super) fn wait(&self, d: Option<Instant>) -> io::Result<()> {
            wait_readable(self.0, d)
        }
    }
    pub(super) fn switches() -> Option<u64> {
        None
    }
    pub(super) type Payload = Box<dyn std::any::Any + Send>;
    pub(super) fn run_borrowed(job: Box<dyn FnOnce() + Send + '_>) -> Vec<Payload> {
        job();
        Vec::new()
    }
    pub(super) fn run_owned<R>(f: impl FnOnce() -> R) -> Result<R, Payload> {
        Ok(f())
    }
    pub(super) struct ScopeLock;
    pub(super) fn event_loop_lock() -> Option<ScopeLock> {
        Some(ScopeLock)
    }
    pub(super) fn lock_scope(_: &ScopeLock) -> bool {
        true
    }
    pub(super) fn unlock_scope(_: &ScopeLock) {}
}

#[cfg(test)]
mod tests;
