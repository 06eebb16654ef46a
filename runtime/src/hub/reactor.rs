//! The reactor: registering fds with the hub and waiting for their readiness. The
//! `mio::Poll` and each registration's state (readiness bits, the waits listed on it)
//! are `poller`'s.
//!
//! Readiness is edge-triggered. A greenlet always tries its syscall first; only when it
//! gets `WouldBlock` does it wait, and the next edge (new data, buffer space, hang-up)
//! wakes every greenlet waiting in that direction. Since the hub polls only when it has
//! nothing else to run, no edge can slip between the `WouldBlock` and the wait.
//!
//! Dropping a [`FdRegistration`] while greenlets wait on it wakes them with an error
//! (gevent's `cancel_wait`): a socket closed by one greenlet never leaves another
//! parked forever.
//!
//! Each registration also caches readiness per direction (like tokio's `ScheduledIo`):
//! set when registered and by every edge, cleared by its owner when a syscall says the
//! fd is drained (`WouldBlock`, or a stream read shorter than asked for; not after
//! urgent data, which stops reads short). While the bit
//! is clear the owner may wait for the next edge without first paying for a syscall
//! that would return `WouldBlock`. No edge is lost: an edge is recorded whether or not
//! anyone waits, and the bit is only cleared right after the syscall that observed the
//! drain, before the hub can poll again.

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use mio::Interest;

use crate::greenlet::record::ParkLabel;
use crate::hub::park::{self, Unparker, Wake, park_inline, unparker};
use crate::hub::poller::{IoState, READ_READY, Reactor, WRITE_READY, clear_bits, ready_bits};
use crate::hub::{try_with_hub, with_hub};

/// A file descriptor registered with this thread's hub, to wait for its readiness.
///
/// This is the low-level primitive for making any non-blocking fd cooperative: try the
/// syscall; on `WouldBlock`, [`wait`](FdRegistration::wait) (or use
/// [`retry`](FdRegistration::retry), which loops for you). The fd must be in non-blocking
/// mode and must outlive the registration: drop the registration before closing it.
///
/// `FdRegistration` is bound to its thread's hub and is not `Send`.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use green::__net::FdRegistration;
/// use mio::Interest;
///
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// b.set_nonblocking(true).unwrap();
/// let reg = FdRegistration::new(b.as_raw_fd()).unwrap();
/// let writer = green::spawn(move || a.write_all(b"ping").unwrap());
/// let mut buf = [0u8; 4];
/// // Waits (switching to the writer) until the bytes arrive:
/// let n = reg.retry(Interest::READABLE, None, || b.read(&mut buf)).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// writer.join().unwrap();
/// ```
pub struct FdRegistration {
    key: usize,
    fd: RawFd,
    /// Shared with the reactor (an `Rc`: this also keeps the type `!Send`).
    state: Rc<IoState>,
}

impl std::fmt::Debug for FdRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdRegistration")
            .field("fd", &self.fd)
            .finish()
    }
}

impl FdRegistration {
    /// Registers `fd` (for both directions, edge-triggered) with this thread's hub.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let reg = green::__net::FdRegistration::new(std::os::fd::AsRawFd::as_raw_fd(&s));
    /// assert!(reg.is_ok());
    /// ```
    pub fn new(fd: RawFd) -> io::Result<FdRegistration> {
        let mut stale = Vec::new();
        let registered = with_hub(|h| {
            h.with_reactor(|r| {
                // A raw fd that `wait_fd` registered (a std socket the monkey patch made
                // cooperative, now handed to a `green::net` type) moves to this
                // registration: epoll holds one registration per fd.
                stale = r.forget_raw(fd);
                r.register(fd)
            })
        });
        wake_deregistered(stale);
        let (key, state) = registered??;
        Ok(FdRegistration { key, fd, state })
    }

    /// The registered fd.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    /// assert_eq!(green::__net::FdRegistration::new(fd).unwrap().fd(), fd);
    /// ```
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Parks the current greenlet until the fd's next readiness edge in the direction(s)
    /// of `interest`, or until `deadline` (then `ErrorKind::TimedOut`). It always parks,
    /// whatever the readiness cache says ([`retry`](FdRegistration::retry) consults it). If the
    /// registration is dropped meanwhile (the socket was closed by another greenlet),
    /// returns an error of kind `ConnectionAborted`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::__net::FdRegistration::new(std::os::fd::AsRawFd::as_raw_fd(&s)).unwrap();
    /// let err = reg
    ///     .wait(mio::Interest::READABLE, Some(Instant::now() + Duration::from_millis(10)))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    #[inline]
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        wait_on(&self.state, self.fd, interest, deadline)
    }

    /// Calls `f` until it returns something other than `WouldBlock`, waiting for
    /// `interest` readiness in between; `ErrorKind::TimedOut` at `deadline`.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::__net::FdRegistration::new(s.as_raw_fd()).unwrap();
    /// let addr = s.local_addr().unwrap();
    /// let n = reg.retry(mio::Interest::WRITABLE, None, || s.send_to(b"hi", addr)).unwrap();
    /// assert_eq!(n, 2);
    /// ```
    ///
    /// `f` is not called while the readiness cache says the fd is drained in that
    /// direction (see [`clear_ready`](FdRegistration::clear_ready)): `retry` waits for
    /// the next edge first. A `WouldBlock` from `f` clears the cache.
    pub fn retry<T>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            if self.is_ready(interest) {
                match f() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_ready(interest),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            self.wait(interest, deadline)?;
        }
    }

    /// Whether the fd may be ready for `interest` (either direction, if both): true
    /// from registration on and after every readiness edge, false after
    /// [`clear_ready`](FdRegistration::clear_ready) until the next edge — except that
    /// once a hang-up or error was reported in a direction, it stays true. A cache,
    /// not a promise: `true` only means the syscall is worth trying.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use mio::Interest;
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::__net::FdRegistration::new(s.as_raw_fd()).unwrap();
    /// assert!(reg.is_ready(Interest::READABLE));
    /// reg.clear_ready(Interest::READABLE);
    /// assert!(!reg.is_ready(Interest::READABLE));
    /// assert!(reg.is_ready(Interest::WRITABLE));
    /// ```
    #[inline]
    pub fn is_ready(&self, interest: Interest) -> bool {
        self.state.ready.get() & ready_bits(interest) != 0
    }

    /// Records that the fd is drained for `interest`: a syscall in that direction
    /// returned `WouldBlock`, or (stream sockets on Linux, see epoll(7)) a read returned
    /// fewer bytes than asked for, or a write wrote fewer. Call it right after that
    /// syscall, before anything that could switch greenlets; the next edge sets the bit
    /// again. A reported hang-up or error is not cleared (the syscall would return
    /// at once). Clearing it wrongly (the fd still has data) leaves a waiter parked
    /// until the next edge.
    #[inline]
    pub fn clear_ready(&self, interest: Interest) {
        let ready = &self.state.ready;
        ready.set(ready.get() & !clear_bits(interest));
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        let key = self.key;
        deregister_and_wake(|_| Some((key, self.state.clone())));
    }
}

/// Deregisters the slot `which` picks (given the reactor) and wakes its waiters with an
/// error, after releasing the reactor (waking may drop a greenlet, which may touch it).
/// Does nothing once the hub or its reactor is gone, or while the reactor is borrowed.
fn deregister_and_wake(which: impl FnOnce(&mut Reactor) -> Option<(usize, Rc<IoState>)>) {
    let woken = try_with_hub(|h| {
        let mut r = h.reactor.try_borrow_mut().ok()?;
        let r = r.as_mut()?;
        let (key, state) = which(r)?;
        Some(r.deregister(key, &state))
    })
    .flatten()
    .unwrap_or_default();
    wake_deregistered(woken);
}

/// Wakes the waiters of a deregistered fd (their waits end with an error) and takes them
/// off the hub's count of IO waiters. Call it with the reactor released: an unpark may
/// drop a greenlet.
fn wake_deregistered(woken: Vec<Unparker>) {
    if woken.is_empty() {
        return;
    }
    try_with_hub(|h| h.io_waiters.set(h.io_waiters.get() - woken.len()));
    for u in woken {
        u.unpark();
    }
}

fn closed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "file descriptor was closed in another greenlet",
    )
}

/// Takes a wait off its registration's lists when the wait ends any way but by an event
/// (which takes it off itself): a timeout, a kill unwinding out of `park`, an explicit
/// switch into the parked greenlet.
struct WaitGuard<'a> {
    state: &'a IoState,
    /// The directions listed (`READ_READY`, `WRITE_READY`).
    dirs: u8,
    /// The park waited in (see `Unparker::key`).
    park: (*const (), u64),
}

impl WaitGuard<'_> {
    /// Ends the wait normally; returns whether the fd is still registered.
    #[inline]
    fn finish(self) -> bool {
        self.remove();
        let registered = self.state.registered.get();
        std::mem::forget(self);
        registered
    }

    /// Takes the wait off the lists if it is still listed.
    #[inline]
    fn remove(&self) {
        let n = self.state.remove(self.dirs, self.park);
        if n > 0 {
            uncount_waiters(n);
        }
    }
}

#[cold]
fn uncount_waiters(n: usize) {
    try_with_hub(|h| h.io_waiters.set(h.io_waiters.get() - n));
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Lists the current greenlet as waiting on `state` (of `fd`) for `interest`, parks,
/// and ends the wait.
fn wait_on(
    state: &IoState,
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<()> {
    if !state.registered.get() {
        return Err(closed_error());
    }
    let u = unparker();
    let park_key = u.key();
    let dirs = ready_bits(interest) & (READ_READY | WRITE_READY);
    let n = match dirs {
        READ_READY => {
            park::label(&u, ParkLabel::with("IO read, fd", fd as u64));
            state.push(READ_READY, u);
            1
        }
        WRITE_READY => {
            park::label(&u, ParkLabel::with("IO write, fd", fd as u64));
            state.push(WRITE_READY, u);
            1
        }
        0 => 0,
        _ => {
            park::label(&u, ParkLabel::with("IO read/write, fd", fd as u64));
            state.push(READ_READY, u.clone());
            state.push(WRITE_READY, u);
            2
        }
    };
    with_hub(|h| h.io_waiters.set(h.io_waiters.get() + n));
    let guard = WaitGuard {
        state,
        dirs,
        park: park_key,
    };
    let woke = park_inline(deadline);
    if !guard.finish() {
        return Err(closed_error());
    }
    match woke {
        Ok(Wake::Unparked) => Ok(()),
        Ok(Wake::TimedOut) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "timed out waiting for IO readiness",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Parks until the raw `fd` is ready for `interest` (its next readiness edge), or until
/// `deadline` (`ErrorKind::TimedOut`). The fd is registered with the hub on first use
/// and stays registered until [`forget_fd`]; call that before closing the fd.
///
/// This is what the monkey patch uses for std's sockets.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::time::{Duration, Instant};
/// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// s.set_nonblocking(true).unwrap();
/// let deadline = Some(Instant::now() + Duration::from_millis(5));
/// let err = green::__net::wait_fd(s.as_raw_fd(), mio::Interest::READABLE, deadline).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// green::__net::forget_fd(s.as_raw_fd());
/// ```
pub fn wait_fd(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    wait_fd_tagged(fd, 0, interest, deadline)
}

/// [`wait_fd`] for a caller that can tell apart the files behind a reused fd number:
/// `tag` names the file `fd` refers to now (the monkey patch numbers every socket it sees
/// born). An entry registered under another tag belongs to an earlier file whose close
/// this thread never saw (it was closed on another thread, or without [`forget_fd`]):
/// its registration says nothing about this one, so it is dropped (its waiters woken
/// with an error) and the fd registered anew. [`wait_fd`] is tag 0.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::time::{Duration, Instant};
/// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// s.set_nonblocking(true).unwrap();
/// let soon = Some(Instant::now() + Duration::from_millis(1));
/// let e = green::__net::wait_fd_tagged(s.as_raw_fd(), 7, mio::Interest::READABLE, soon);
/// assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// green::__net::forget_fd(s.as_raw_fd());
/// ```
pub fn wait_fd_tagged(
    fd: RawFd,
    tag: u64,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let (state, stale) = match with_hub(|h| h.with_reactor(|r| r.raw_state(fd, tag))) {
        Ok(found) => found,
        Err(e) => (Err(e), Vec::new()),
    };
    wake_deregistered(stale);
    let state = state?;
    wait_on(&state, fd, interest, deadline)
}

/// The state of a raw fd registered by [`wait_fd_tagged`] under `tag`, if the reactor
/// knows it (and is not busy: hooks may run while it is borrowed).
fn fd_state(fd: RawFd, tag: u64) -> Option<Rc<IoState>> {
    try_with_hub(|h| {
        let r = h.reactor.try_borrow().ok()?;
        r.as_ref()?.known_raw(fd, tag)
    })
    .flatten()
}

/// [`FdRegistration::is_ready`] for a raw fd registered by [`wait_fd_tagged`] (or
/// [`wait_fd`]: tag 0): `false` only when [`fd_clear_ready`] recorded that a syscall
/// drained it for `interest` and no readiness edge came since, so the next syscall would
/// say `WouldBlock`; `true` for an fd the reactor does not know under `tag`. The monkey
/// patch asks this before a read or write, and parks first when it is `false`.
///
/// ```
/// use mio::Interest;
/// use std::os::fd::AsRawFd;
/// use std::time::Instant;
/// use green::__net::{fd_clear_ready, fd_is_ready, forget_fd, wait_fd};
/// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// s.set_nonblocking(true).unwrap();
/// let fd = s.as_raw_fd();
/// assert!(fd_is_ready(fd, 0, Interest::READABLE)); // unknown: try the syscall
/// let _ = wait_fd(fd, Interest::READABLE, Some(Instant::now())); // registers it (tag 0)
/// fd_clear_ready(fd, 0, Interest::READABLE);
/// assert!(!fd_is_ready(fd, 0, Interest::READABLE));
/// assert!(fd_is_ready(fd, 1, Interest::READABLE)); // another file's tag: unknown
/// s.send_to(b"x", s.local_addr().unwrap()).unwrap();
/// let _ = wait_fd(fd, Interest::READABLE, None); // the edge comes
/// assert!(fd_is_ready(fd, 0, Interest::READABLE));
/// forget_fd(fd);
/// ```
pub fn fd_is_ready(fd: RawFd, tag: u64, interest: Interest) -> bool {
    fd_state(fd, tag).is_none_or(|s| s.ready.get() & ready_bits(interest) != 0)
}

/// [`FdRegistration::clear_ready`] for a raw fd registered by [`wait_fd_tagged`] under
/// `tag`: a syscall on it in the direction of `interest` returned `WouldBlock`, or (TCP)
/// did less than asked. Does nothing for an fd the reactor does not know under `tag`.
/// See [`fd_is_ready`].
///
/// ```
/// green::__net::fd_clear_ready(12345, 0, mio::Interest::READABLE); // unknown: nothing happens
/// ```
pub fn fd_clear_ready(fd: RawFd, tag: u64, interest: Interest) {
    if let Some(s) = fd_state(fd, tag) {
        s.ready.set(s.ready.get() & !clear_bits(interest));
    }
}

/// Forgets a raw fd registered by [`wait_fd`], waking its waiters with an error of kind
/// `ConnectionAborted`. Call it before closing the fd. Does nothing for an unknown fd.
///
/// ```
/// green::__net::forget_fd(12345); // unknown: nothing happens
/// ```
pub fn forget_fd(fd: RawFd) {
    deregister_and_wake(|r| r.take_raw(fd));
}
