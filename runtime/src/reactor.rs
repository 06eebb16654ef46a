//! The reactor: the hub's `mio::Poll`, IO registrations, and waking from other threads.
//!
//! Readiness is edge-triggered. A greenlet always tries its syscall first; only when it
//! gets `WouldBlock` does it wait, and the next edge (new data, buffer space, hang-up)
//! wakes every greenlet waiting in that direction. Since the hub polls only when it has
//! nothing else to run, no edge can slip between the `WouldBlock` and the wait.
//!
//! Dropping a [`Registration`] while greenlets wait on it wakes them with an error
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

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::hub::{Hub, with_hub};
use crate::park::{Unparker, Wake, park_inline, unparker};
use crate::remote::Remote;

const WAKER_TOKEN: Token = Token(usize::MAX);

/// Readiness bits of a slot (see the module docs).
const READ_READY: u8 = 1;
const WRITE_READY: u8 = 2;
/// A hang-up or error was reported in that direction. Sticky: `clear_ready` keeps it,
/// since no edge would follow a drain once the peer is gone (the EOF may have arrived
/// with the last data, whose short read looks like any other drain).
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;
/// Urgent (TCP out-of-band) data was reported. Sticky, and it keeps reads worth a
/// syscall: a read stops short at the urgent mark with more data queued behind it, so
/// after urgent data a short read no longer means the socket is drained.
const URGENT: u8 = 16;

/// The bits that make `interest` worth a syscall.
fn ready_bits(interest: Interest) -> u8 {
    let mut b = 0;
    if interest.is_readable() {
        b |= READ_READY | READ_CLOSED | URGENT;
    }
    if interest.is_writable() {
        b |= WRITE_READY | WRITE_CLOSED;
    }
    b
}

/// The bits `clear_ready(interest)` clears (never the sticky closed bits).
fn clear_bits(interest: Interest) -> u8 {
    ready_bits(interest) & (READ_READY | WRITE_READY)
}

/// Waits beyond the first in a direction, with their direction.
type MoreWaits = Vec<(u8, Unparker)>;

/// One registration's state, shared by its [`Registration`] (or [`wait_fd`]'s table) and
/// the reactor's slab, which the poll loop reaches by token. Waits are listed and ended
/// here without borrowing the reactor, and an event touches only this: one cache line
/// (48 bytes, aligned to 64 so that the `Rc`'s counts in front, untouched by events and
/// waits, take the line before it; with the allocator's 16-byte alignment the 64 bytes
/// of counts and state straddled two lines three times in four).
#[repr(align(64))]
pub(crate) struct IoState {
    /// Readiness bits (see the module docs).
    ready: Cell<u8>,
    /// Cleared when deregistered: its waiters are woken and get an error.
    registered: Cell<bool>,
    /// The first wait in each direction has an inline place; nearly always the only one.
    reader: Cell<Option<Unparker>>,
    writer: Cell<Option<Unparker>>,
    /// Further waits, with their direction (`READ_READY` or `WRITE_READY`): only when
    /// several greenlets wait on one fd in the same direction at once.
    rest: Cell<Option<Box<MoreWaits>>>,
}

impl IoState {
    fn new() -> IoState {
        IoState {
            ready: Cell::new(READ_READY | WRITE_READY),
            registered: Cell::new(true),
            reader: Cell::new(None),
            writer: Cell::new(None),
            rest: Cell::new(None),
        }
    }

    /// The inline place of direction `dir` (`READ_READY` or `WRITE_READY`).
    #[inline]
    fn first(&self, dir: u8) -> &Cell<Option<Unparker>> {
        if dir == READ_READY {
            &self.reader
        } else {
            &self.writer
        }
    }

    /// Whether extra waits are listed.
    #[inline]
    fn has_rest(&self) -> bool {
        peek(&self.rest, |_| true)
    }

    /// Lists a wait in direction `dir` (`READ_READY` or `WRITE_READY`).
    #[inline]
    fn push(&self, dir: u8, u: Unparker) {
        let first = self.first(dir);
        if peek(first, |_| true) {
            self.push_rest(dir, u);
        } else {
            first.set(Some(u));
        }
    }

    #[cold]
    fn push_rest(&self, dir: u8, u: Unparker) {
        let mut rest = self.rest.take().unwrap_or_default();
        rest.push((dir, u));
        self.rest.set(Some(rest));
    }

    /// Moves the waits of the directions in `dirs` to `out` (readers first, each
    /// direction in the order they began); returns how many.
    #[inline]
    fn drain_into(&self, dirs: u8, out: &mut Vec<Unparker>) -> usize {
        if self.has_rest() {
            return self.drain_all_into(dirs, out);
        }
        let mut n = 0;
        if dirs & READ_READY != 0 && peek(&self.reader, |_| true) {
            out.extend(self.reader.take());
            n += 1;
        }
        if dirs & WRITE_READY != 0 && peek(&self.writer, |_| true) {
            out.extend(self.writer.take());
            n += 1;
        }
        n
    }

    /// [`drain_into`](IoState::drain_into) when extra waits are listed.
    #[cold]
    fn drain_all_into(&self, dirs: u8, out: &mut Vec<Unparker>) -> usize {
        let mut n = 0;
        for dir in [READ_READY, WRITE_READY] {
            if dirs & dir == 0 {
                continue;
            }
            if let Some(u) = self.first(dir).take() {
                out.push(u);
                n += 1;
            }
            if let Some(mut rest) = self.rest.take() {
                n += drain_rest(&mut rest, dir, out);
                if !rest.is_empty() {
                    self.rest.set(Some(rest));
                }
            }
        }
        n
    }

    /// Takes the wait `key` (listed in the directions `dirs`) off if it is still
    /// listed; returns how many entries went (0 to 2). The entries are the caller's own
    /// (it is that wait's greenlet), so dropping them drops no greenlet.
    #[inline]
    fn remove(&self, dirs: u8, key: (*const (), u64)) -> usize {
        let mut n = 0;
        for dir in [READ_READY, WRITE_READY] {
            let first = self.first(dir);
            if dirs & dir != 0 && peek(first, |u| u.is(key)) {
                drop(first.take());
                n += 1;
            }
        }
        if self.has_rest() {
            n += self.remove_rest(key);
        }
        n
    }

    #[cold]
    fn remove_rest(&self, key: (*const (), u64)) -> usize {
        let Some(mut rest) = self.rest.take() else {
            return 0;
        };
        let before = rest.len();
        rest.retain(|(_, u)| !u.is(key));
        let n = before - rest.len();
        if !rest.is_empty() {
            self.rest.set(Some(rest));
        }
        n
    }
}

/// Whether `c` holds a value satisfying `f`, without moving it out of the cell.
#[inline(always)]
fn peek<T>(c: &Cell<Option<T>>, f: impl FnOnce(&T) -> bool) -> bool {
    // SAFETY: a `Cell` is `!Sync`, so only this thread can reach it, and the shared
    // reference made here ends before `peek` returns. The callers' `f` only reads the
    // value's own fields (it cannot reach the cell), so nothing writes to the cell
    // while the reference lives.
    unsafe { (*c.as_ptr()).as_ref().is_some_and(f) }
}

/// Moves the entries of direction `dir` from `rest` to `out`, keeping their order.
#[cold]
fn drain_rest(rest: &mut Vec<(u8, Unparker)>, dir: u8, out: &mut Vec<Unparker>) -> usize {
    let before = rest.len();
    let mut kept = Vec::new();
    for (d, u) in rest.drain(..) {
        if d == dir {
            out.push(u);
        } else {
            kept.push((d, u));
        }
    }
    *rest = kept;
    before - rest.len()
}

pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    /// Each registration's fd and state, by token.
    slots: Slab<(RawFd, Rc<IoState>)>,
    /// Raw fds registered by [`wait_fd`] (the monkey patch), by fd number, with the tag
    /// they were registered under (see [`wait_fd_tagged`]).
    fds: HashMap<RawFd, (usize, Rc<IoState>, u64)>,
    remote: Arc<Remote>,
    /// Waits of greenlets for other threads ([`crate::remote::RemoteWait`]), by key.
    pub(crate) remote_slots: Slab<crate::remote::Slot>,
    /// The generation of the next remote wait (see `crate::remote`).
    next_gen: u64,
    /// `poll`'s list of greenlets to wake, kept to reuse its allocation.
    woken: Vec<Unparker>,
    /// Where [`wait_fd_tagged`] last found the [`Registration`] of an fd it could not
    /// register (a `green::net` socket polled through a hooked `poll`), so that the next
    /// wait finds it without a failed `epoll_ctl` and a scan of `slots`. A hint, checked
    /// against `slots` on use (`owner_state`); never cleaned up otherwise.
    owners: HashMap<RawFd, usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(1024),
            slots: Slab::new(),
            fds: HashMap::new(),
            remote: Arc::new(Remote::new(waker, crate::hub::hub_id())),
            remote_slots: Slab::new(),
            next_gen: 0,
            woken: Vec::new(),
            owners: HashMap::new(),
        })
    }

    pub(crate) fn remote(&self) -> Arc<Remote> {
        self.remote.clone()
    }

    /// A generation number for a new remote wait, never used before on this hub.
    pub(crate) fn next_gen(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    fn register(&mut self, fd: RawFd) -> io::Result<(usize, Rc<IoState>)> {
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(key), registered_interest())?;
        let state = Rc::new(IoState::new());
        entry.insert((fd, state.clone()));
        Ok((key, state))
    }

    /// Deregisters what [`wait_fd`] registered for the raw `fd`, if anything; returns
    /// the greenlets that were waiting on it (see [`Reactor::deregister`]).
    fn forget_raw(&mut self, fd: RawFd) -> Vec<Unparker> {
        match self.fds.remove(&fd) {
            Some((key, old, _)) => self.deregister(key, &old),
            None => Vec::new(),
        }
    }

    /// The state of the registration of `fd` that `owners` remembers, if that slot still
    /// holds `fd` (the fd's registration now: epoll holds one per fd). For an fd that
    /// `fds` does not list, whose registration is then a [`Registration`]'s.
    fn owner_state(&self, fd: RawFd) -> Option<Rc<IoState>> {
        let key = *self.owners.get(&fd)?;
        match self.slots.get(key) {
            Some((f, state)) if *f == fd => Some(state.clone()),
            _ => None,
        }
    }

    /// Removes the registration `key` if it is `state`'s; returns the greenlets that
    /// were waiting on it (the caller takes them off `Hub::io_waiters`).
    fn deregister(&mut self, key: usize, state: &Rc<IoState>) -> Vec<Unparker> {
        match self.slots.get(key) {
            Some((_, s)) if Rc::ptr_eq(s, state) => {}
            _ => return Vec::new(),
        }
        let (fd, state) = self.slots.remove(key);
        // Fails harmlessly if the fd was closed already (the kernel dropped it).
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        state.registered.set(false);
        let mut woken = Vec::new();
        state.drain_into(READ_READY | WRITE_READY, &mut woken);
        woken
    }
}

/// What every fd is registered for: both directions, and on Linux urgent data too (see
/// `URGENT`).
fn registered_interest() -> Interest {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return Interest::READABLE | Interest::WRITABLE;
}

/// Polls for IO events for at most `timeout` (`None`: until one arrives) and wakes the
/// greenlets waiting on them.
pub(crate) fn poll(h: &Hub, timeout: Option<Duration>) {
    if h.blocking_pending.get() > 0 {
        // The monkey patch's hooks around the poll (`monkey_support::set_poll_hooks`).
        return crate::monkey_support::poll_hooked(h, timeout, poll_reactor);
    }
    poll_reactor(h, timeout)
}

/// [`poll`] itself.
#[inline]
fn poll_reactor(h: &Hub, timeout: Option<Duration>) {
    // Wake after releasing the reactor: dropping an unparker may drop a greenlet. The
    // list's allocation is kept in the reactor between polls.
    let res = h.with_reactor(|r| {
        let Reactor {
            poll,
            events,
            slots,
            remote,
            remote_slots,
            woken,
            ..
        } = r;
        let mut woken = std::mem::take(woken);
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("green: polling the reactor failed: {e}");
            }
            return woken;
        }
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                crate::remote::drain_posted(remote, remote_slots, &mut woken);
                continue;
            }
            let Some((_, state)) = slots.get(ev.token().0) else {
                continue;
            };
            let mut bits = 0;
            if ev.is_readable() {
                bits |= READ_READY;
            }
            if ev.is_read_closed() || ev.is_error() {
                bits |= READ_READY | READ_CLOSED;
            }
            if ev.is_writable() {
                bits |= WRITE_READY;
            }
            if ev.is_write_closed() || ev.is_error() {
                bits |= WRITE_READY | WRITE_CLOSED;
            }
            if ev.is_priority() {
                bits |= READ_READY | URGENT;
            }
            let n = state.drain_into(bits, &mut woken);
            h.io_waiters.set(h.io_waiters.get() - n);
            state.ready.set(state.ready.get() | bits);
        }
        woken
    });
    match res {
        Ok(mut woken) => {
            if woken.is_empty() {
                // Nothing to wake: give the (empty) list back without a second borrow.
                if woken.capacity() > 0 {
                    give_back_woken(h, woken);
                }
                return;
            }
            // Dropping a stale unparker may drop a greenlet: still outside the borrow.
            for u in woken.drain(..) {
                u.unpark_into(h);
            }
            give_back_woken(h, woken);
        }
        Err(e) => {
            log::error!("green: cannot create the reactor: {e}");
            // Without a reactor only timers can wake us: sleep until the next one.
            if let Some(t) = timeout {
                std::thread::sleep(t);
            }
        }
    }
}

/// Returns `poll`'s emptied wake list to the reactor for the next poll.
fn give_back_woken(h: &Hub, woken: Vec<Unparker>) {
    if let Ok(mut r) = h.reactor.try_borrow_mut()
        && let Some(r) = r.as_mut()
    {
        r.woken = woken;
    }
}

/// A file descriptor registered with this thread's hub, to wait for its readiness.
///
/// This is the low-level primitive for making any non-blocking fd cooperative: try the
/// syscall; on `WouldBlock`, [`wait`](Registration::wait) (or use
/// [`retry`](Registration::retry), which loops for you). The fd must be in non-blocking
/// mode and must outlive the registration: drop the registration before closing it.
///
/// `Registration` is bound to its thread's hub and is not `Send`.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// use green::reactor::Registration;
/// use mio::Interest;
///
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// b.set_nonblocking(true).unwrap();
/// let reg = Registration::new(b.as_raw_fd()).unwrap();
/// let writer = green::spawn(move || a.write_all(b"ping").unwrap());
/// let mut buf = [0u8; 4];
/// // Waits (switching to the writer) until the bytes arrive:
/// let n = reg.retry(Interest::READABLE, None, || b.read(&mut buf)).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// writer.join().unwrap();
/// ```
pub struct Registration {
    key: usize,
    fd: RawFd,
    /// Shared with the reactor (an `Rc`: this also keeps the type `!Send`).
    state: Rc<IoState>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .finish()
    }
}

impl Registration {
    /// Registers `fd` (for both directions, edge-triggered) with this thread's hub.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let reg = green::reactor::Registration::new(std::os::fd::AsRawFd::as_raw_fd(&s));
    /// assert!(reg.is_ok());
    /// ```
    pub fn new(fd: RawFd) -> io::Result<Registration> {
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
        Ok(Registration { key, fd, state })
    }

    /// The registered fd.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    /// assert_eq!(green::reactor::Registration::new(fd).unwrap().fd(), fd);
    /// ```
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Parks the current greenlet until the fd's next readiness edge in the direction(s)
    /// of `interest`, or until `deadline` (then `ErrorKind::TimedOut`). It always parks,
    /// whatever the readiness cache says ([`retry`](Registration::retry) consults it). If the
    /// registration is dropped meanwhile (the socket was closed by another greenlet),
    /// returns an error of kind `ConnectionAborted`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::reactor::Registration::new(std::os::fd::AsRawFd::as_raw_fd(&s)).unwrap();
    /// let err = reg
    ///     .wait(mio::Interest::READABLE, Some(Instant::now() + Duration::from_millis(10)))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    #[inline]
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        wait_on(&self.state, interest, deadline)
    }

    /// Calls `f` until it returns something other than `WouldBlock`, waiting for
    /// `interest` readiness in between; `ErrorKind::TimedOut` at `deadline`.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::reactor::Registration::new(s.as_raw_fd()).unwrap();
    /// let addr = s.local_addr().unwrap();
    /// let n = reg.retry(mio::Interest::WRITABLE, None, || s.send_to(b"hi", addr)).unwrap();
    /// assert_eq!(n, 2);
    /// ```
    ///
    /// `f` is not called while the readiness cache says the fd is drained in that
    /// direction (see [`clear_ready`](Registration::clear_ready)): `retry` waits for
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
    /// [`clear_ready`](Registration::clear_ready) until the next edge — except that
    /// once a hang-up or error was reported in a direction, it stays true. A cache,
    /// not a promise: `true` only means the syscall is worth trying.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use mio::Interest;
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// let reg = green::reactor::Registration::new(s.as_raw_fd()).unwrap();
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

impl Drop for Registration {
    fn drop(&mut self) {
        let key = self.key;
        deregister_and_wake(|_| Some((key, self.state.clone())));
    }
}

/// Deregisters the slot `which` picks (given the reactor) and wakes its waiters with an
/// error, after releasing the reactor (waking may drop a greenlet, which may touch it).
/// Does nothing once the hub or its reactor is gone, or while the reactor is borrowed.
fn deregister_and_wake(which: impl FnOnce(&mut Reactor) -> Option<(usize, Rc<IoState>)>) {
    let woken = crate::hub::try_with_hub(|h| {
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
    crate::hub::try_with_hub(|h| h.io_waiters.set(h.io_waiters.get() - woken.len()));
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
    crate::hub::try_with_hub(|h| h.io_waiters.set(h.io_waiters.get() - n));
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Lists the current greenlet as waiting on `state` for `interest`, parks, and ends
/// the wait.
fn wait_on(state: &IoState, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    if !state.registered.get() {
        return Err(closed_error());
    }
    let u = unparker();
    let park_key = u.key();
    let dirs = ready_bits(interest) & (READ_READY | WRITE_READY);
    let n = match dirs {
        READ_READY => {
            state.push(READ_READY, u);
            1
        }
        WRITE_READY => {
            state.push(WRITE_READY, u);
            1
        }
        0 => 0,
        _ => {
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
/// let err = green::reactor::wait_fd(s.as_raw_fd(), mio::Interest::READABLE, deadline).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// green::reactor::forget_fd(s.as_raw_fd());
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
/// let e = green::reactor::wait_fd_tagged(s.as_raw_fd(), 7, mio::Interest::READABLE, soon);
/// assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// green::reactor::forget_fd(s.as_raw_fd());
/// ```
pub fn wait_fd_tagged(
    fd: RawFd,
    tag: u64,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let mut stale = Vec::new();
    let state = with_hub(|h| {
        h.with_reactor(|r| {
            match r.fds.get(&fd) {
                Some((_, state, t)) if *t == tag => return Ok::<_, io::Error>(state.clone()),
                // Registered for an earlier file under this number: dropped.
                Some(_) => stale = r.forget_raw(fd),
                // A `green::net` socket polled through a hooked `poll` again.
                None => {
                    if let Some(state) = r.owner_state(fd) {
                        return Ok(state);
                    }
                }
            }
            match r.register(fd) {
                Ok((key, state)) => {
                    r.fds.insert(fd, (key, state.clone(), tag));
                    Ok(state)
                }
                // The fd has a `Registration` already (a `green::net` socket polled
                // through a hooked `poll`): wait on its state, leaving it its owner's.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    let found = r.slots.iter().find(|(_, (f, _))| *f == fd);
                    let (key, state) = found.map(|(k, (_, s))| (k, s.clone())).ok_or(e)?;
                    r.owners.insert(fd, key);
                    Ok(state)
                }
                Err(e) => Err(e),
            }
        })
    });
    wake_deregistered(stale);
    let state = state??;
    wait_on(&state, interest, deadline)
}

/// The state of a raw fd registered by [`wait_fd_tagged`] under `tag`, if the reactor
/// knows it (and is not busy: hooks may run while it is borrowed).
fn fd_state(fd: RawFd, tag: u64) -> Option<Rc<IoState>> {
    crate::hub::try_with_hub(|h| {
        let r = h.reactor.try_borrow().ok()?;
        match r.as_ref()?.fds.get(&fd)? {
            (_, state, t) if *t == tag => Some(state.clone()),
            _ => None,
        }
    })
    .flatten()
}

/// [`Registration::is_ready`] for a raw fd registered by [`wait_fd_tagged`] (or
/// [`wait_fd`]: tag 0): `false` only when [`fd_clear_ready`] recorded that a syscall
/// drained it for `interest` and no readiness edge came since, so the next syscall would
/// say `WouldBlock`; `true` for an fd the reactor does not know under `tag`. The monkey
/// patch asks this before a read or write, and parks first when it is `false`.
///
/// ```
/// use mio::Interest;
/// use std::os::fd::AsRawFd;
/// use std::time::Instant;
/// use green::reactor::{fd_clear_ready, fd_is_ready, forget_fd, wait_fd};
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

/// [`Registration::clear_ready`] for a raw fd registered by [`wait_fd_tagged`] under
/// `tag`: a syscall on it in the direction of `interest` returned `WouldBlock`, or (TCP)
/// did less than asked. Does nothing for an fd the reactor does not know under `tag`.
/// See [`fd_is_ready`].
///
/// ```
/// green::reactor::fd_clear_ready(12345, 0, mio::Interest::READABLE); // unknown: nothing happens
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
/// green::reactor::forget_fd(12345); // unknown: nothing happens
/// ```
pub fn forget_fd(fd: RawFd) {
    deregister_and_wake(|r| r.fds.remove(&fd).map(|(key, state, _)| (key, state)));
}
