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
//! fd is drained (`WouldBlock`, or a stream read shorter than asked for). While the bit
//! is clear the owner may wait for the next edge without first paying for a syscall
//! that would return `WouldBlock`. No edge is lost: an edge is recorded whether or not
//! anyone waits, and the bit is only cleared right after the syscall that observed the
//! drain, before the hub can poll again.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::hub::{with_hub, Hub};
use crate::park::{park, unparker, Unparker, Wake};

const WAKER_TOKEN: Token = Token(usize::MAX);

/// Readiness bits of a slot (see the module docs).
const READ_READY: u8 = 1;
const WRITE_READY: u8 = 2;
/// A hang-up or error was reported in that direction. Sticky: `clear_ready` keeps it,
/// since no edge would follow a drain once the peer is gone (the EOF may have arrived
/// with the last data, whose short read looks like any other drain).
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;

/// The bits that make `interest` worth a syscall.
fn ready_bits(interest: Interest) -> u8 {
    let mut b = 0;
    if interest.is_readable() {
        b |= READ_READY | READ_CLOSED;
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

struct Slot {
    gen: u64,
    fd: RawFd,
    /// Shared with the [`Registration`], which reads and clears it without borrowing
    /// the reactor.
    ready: Rc<Cell<u8>>,
    readers: Waiters,
    writers: Waiters,
}

/// The greenlets waiting in one direction of a slot, each with its wait's id. Nearly
/// always zero or one: the first has an inline place, the rest a `Vec` (which allocates
/// only if a second greenlet waits at the same time).
#[derive(Default)]
struct Waiters {
    first: Option<(u64, Unparker)>,
    rest: Vec<(u64, Unparker)>,
}

impl Waiters {
    #[inline]
    fn push(&mut self, id: u64, u: Unparker) {
        if self.first.is_none() {
            self.first = Some((id, u));
        } else {
            self.rest.push((id, u));
        }
    }

    /// Moves every waiter to `out`; returns how many.
    #[inline]
    fn drain_into(&mut self, out: &mut Vec<Unparker>) -> usize {
        let mut n = 0;
        if let Some((_, u)) = self.first.take() {
            out.push(u);
            n += 1;
        }
        if !self.rest.is_empty() {
            n += self.rest.len();
            out.extend(self.rest.drain(..).map(|(_, u)| u));
        }
        n
    }

    /// Removes the wait `id` if it is still listed; returns how many were removed (0/1).
    #[inline]
    fn remove(&mut self, id: u64) -> usize {
        if self.first.as_ref().is_some_and(|(i, _)| *i == id) {
            self.first = None;
            return 1;
        }
        if self.rest.is_empty() {
            return 0;
        }
        match self.rest.iter().position(|(i, _)| *i == id) {
            Some(pos) => {
                self.rest.remove(pos);
                1
            }
            None => 0,
        }
    }
}

/// Wakes the hub from other threads (helper-thread jobs finishing).
pub(crate) struct Remote {
    waker: mio::Waker,
    done: Mutex<Vec<usize>>,
}

impl Remote {
    /// Reports job `key` as finished and wakes the hub.
    pub(crate) fn complete(&self, key: usize) {
        match self.done.lock() {
            Ok(mut d) => d.push(key),
            Err(poisoned) => poisoned.into_inner().push(key),
        }
        if let Err(e) = self.waker.wake() {
            log::error!("green: cannot wake the hub: {e}");
        }
    }
}

pub(crate) struct Reactor {
    poll: Poll,
    events: Events,
    slots: Slab<Slot>,
    next_gen: u64,
    next_wait: u64,
    /// Greenlets parked on IO.
    waiters: usize,
    /// Raw fds registered by [`wait_fd`] (the monkey patch), by fd number.
    fds: HashMap<RawFd, (usize, u64)>,
    remote: Arc<Remote>,
    /// Greenlets waiting for helper-thread jobs, by job key.
    pub(crate) jobs: Slab<Option<Unparker>>,
    /// `poll`'s list of greenlets to wake, kept to reuse its allocation.
    woken: Vec<Unparker>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(1024),
            slots: Slab::new(),
            next_gen: 1,
            next_wait: 1,
            waiters: 0,
            fds: HashMap::new(),
            remote: Arc::new(Remote {
                waker,
                done: Mutex::new(Vec::new()),
            }),
            jobs: Slab::new(),
            woken: Vec::new(),
        })
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters > 0
    }

    pub(crate) fn remote(&self) -> Arc<Remote> {
        self.remote.clone()
    }

    fn register(&mut self, fd: RawFd) -> io::Result<(usize, u64, Rc<Cell<u8>>)> {
        let gen = self.next_gen;
        self.next_gen += 1;
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let ready = Rc::new(Cell::new(READ_READY | WRITE_READY));
        entry.insert(Slot {
            gen,
            fd,
            ready: ready.clone(),
            readers: Waiters::default(),
            writers: Waiters::default(),
        });
        Ok((key, gen, ready))
    }

    /// Removes a registration; returns the greenlets that were waiting on it.
    fn deregister(&mut self, key: usize, gen: u64) -> Vec<Unparker> {
        match self.slots.get(key) {
            Some(s) if s.gen == gen => {}
            _ => return Vec::new(),
        }
        let slot = self.slots.remove(key);
        // Fails harmlessly if the fd was closed already (the kernel dropped it).
        let _ = self.poll.registry().deregister(&mut SourceFd(&slot.fd));
        let (mut readers, mut writers) = (slot.readers, slot.writers);
        let mut woken = Vec::new();
        let n = readers.drain_into(&mut woken) + writers.drain_into(&mut woken);
        self.waiters -= n;
        woken
    }
}

/// Polls for IO events for at most `timeout` (`None`: until one arrives) and wakes the
/// greenlets waiting on them.
pub(crate) fn poll(h: &Hub, timeout: Option<Duration>) {
    // Wake after releasing the reactor: dropping an unparker may drop a greenlet. The
    // list's allocation is kept in the reactor between polls.
    let res = h.with_reactor(|r| {
        let Reactor {
            poll,
            events,
            slots,
            waiters,
            remote,
            jobs,
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
                let done = match remote.done.lock() {
                    Ok(mut d) => std::mem::take(&mut *d),
                    Err(p) => std::mem::take(&mut *p.into_inner()),
                };
                for key in done {
                    if let Some(Some(u)) = jobs.try_remove(key) {
                        woken.push(u);
                    }
                    h.blocking_pending.set(h.blocking_pending.get() - 1);
                }
                continue;
            }
            let Some(slot) = slots.get_mut(ev.token().0) else {
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
            if bits & READ_READY != 0 {
                *waiters -= slot.readers.drain_into(&mut woken);
            }
            if bits & WRITE_READY != 0 {
                *waiters -= slot.writers.drain_into(&mut woken);
            }
            slot.ready.set(slot.ready.get() | bits);
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
            for u in &woken {
                u.unpark();
            }
            // Dropping the unparkers may drop greenlets: still outside the borrow.
            woken.clear();
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
    if let Ok(mut r) = h.reactor.try_borrow_mut() {
        if let Some(r) = r.as_mut() {
            r.woken = woken;
        }
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
    gen: u64,
    fd: RawFd,
    /// The slot's readiness bits (an `Rc`: this also keeps the type `!Send`).
    ready: Rc<Cell<u8>>,
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
        let (key, gen, ready) = with_hub(|h| h.with_reactor(|r| r.register(fd)))??;
        Ok(Registration {
            key,
            gen,
            fd,
            ready,
        })
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
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        wait_slot(self.key, self.gen, interest, deadline)
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
        self.ready.get() & ready_bits(interest) != 0
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
        self.ready.set(self.ready.get() & !clear_bits(interest));
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (key, gen) = (self.key, self.gen);
        deregister_and_wake(|_| Some((key, gen)));
    }
}

/// Deregisters the slot `which` picks (given the reactor) and wakes its waiters with an
/// error, after releasing the reactor (waking may drop a greenlet, which may touch it).
/// Does nothing once the hub or its reactor is gone, or while the reactor is borrowed.
fn deregister_and_wake(which: impl FnOnce(&mut Reactor) -> Option<(usize, u64)>) {
    let woken = crate::hub::try_with_hub(|h| {
        let mut r = h.reactor.try_borrow_mut().ok()?;
        let r = r.as_mut()?;
        let (key, gen) = which(r)?;
        Some(r.deregister(key, gen))
    })
    .flatten()
    .unwrap_or_default();
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

/// Takes a wait off its slot's lists when the wait ends any way but by an event (which
/// drains the lists itself): a timeout, a kill unwinding out of `park`, an explicit
/// switch into the parked greenlet.
struct WaitGuard {
    key: usize,
    gen: u64,
    id: u64,
}

impl WaitGuard {
    /// Ends the wait normally; returns whether the slot is still registered.
    fn finish(self) -> bool {
        let registered = self.remove();
        std::mem::forget(self);
        registered
    }

    /// Removes the wait from its slot if it is still listed (one borrow of the
    /// reactor); returns whether the slot is still registered.
    fn remove(&self) -> bool {
        crate::hub::try_with_hub(|h| {
            let mut r = h.reactor.borrow_mut();
            let Some(r) = r.as_mut() else { return false };
            let Some(slot) = r.slots.get_mut(self.key) else {
                return false;
            };
            if slot.gen != self.gen {
                return false;
            }
            let removed = slot.readers.remove(self.id) + slot.writers.remove(self.id);
            r.waiters -= removed;
            true
        })
        .unwrap_or(false)
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.remove();
    }
}

fn wait_slot(
    key: usize,
    gen: u64,
    interest: Interest,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let u = unparker();
    let id = with_hub(|h| {
        h.with_reactor(|r| {
            let id = r.next_wait;
            r.next_wait += 1;
            let slot = match r.slots.get_mut(key) {
                Some(s) if s.gen == gen => s,
                _ => return Err(closed_error()),
            };
            let n = match (interest.is_readable(), interest.is_writable()) {
                (true, true) => {
                    slot.readers.push(id, u.clone());
                    slot.writers.push(id, u);
                    2
                }
                (true, false) => {
                    slot.readers.push(id, u);
                    1
                }
                (false, true) => {
                    slot.writers.push(id, u);
                    1
                }
                (false, false) => 0,
            };
            r.waiters += n;
            Ok(id)
        })
    })??;
    let guard = WaitGuard { key, gen, id };
    let woke = park(deadline);
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
    let (key, gen) = with_hub(|h| {
        h.with_reactor(|r| match r.fds.get(&fd) {
            Some(&kg) => Ok::<_, io::Error>(kg),
            None => {
                let (key, gen, _) = r.register(fd)?;
                r.fds.insert(fd, (key, gen));
                Ok((key, gen))
            }
        })
    })??;
    wait_slot(key, gen, interest, deadline)
}

/// The readiness bits of a raw fd registered by [`wait_fd`], if the reactor knows it
/// (and is not busy: hooks may run while it is borrowed).
fn fd_ready_cell(fd: RawFd) -> Option<Rc<Cell<u8>>> {
    crate::hub::try_with_hub(|h| {
        let r = h.reactor.try_borrow().ok()?;
        let r = r.as_ref()?;
        let &(key, gen) = r.fds.get(&fd)?;
        match r.slots.get(key) {
            Some(s) if s.gen == gen => Some(s.ready.clone()),
            _ => None,
        }
    })
    .flatten()
}

/// [`Registration::is_ready`] for a raw fd registered by [`wait_fd`]: `false` only when
/// [`fd_clear_ready`] recorded that a syscall drained it for `interest` and no readiness
/// edge came since, so the next syscall would say `WouldBlock`; `true` for an fd the
/// reactor does not know. The monkey patch asks this before a read or write, and parks
/// first when it is `false`.
///
/// ```
/// use mio::Interest;
/// use std::os::fd::AsRawFd;
/// use std::time::Instant;
/// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// s.set_nonblocking(true).unwrap();
/// let fd = s.as_raw_fd();
/// assert!(green::reactor::fd_is_ready(fd, Interest::READABLE)); // unknown: try the syscall
/// let _ = green::reactor::wait_fd(fd, Interest::READABLE, Some(Instant::now())); // registers it
/// green::reactor::fd_clear_ready(fd, Interest::READABLE);
/// assert!(!green::reactor::fd_is_ready(fd, Interest::READABLE));
/// s.send_to(b"x", s.local_addr().unwrap()).unwrap();
/// let _ = green::reactor::wait_fd(fd, Interest::READABLE, None); // the edge comes
/// assert!(green::reactor::fd_is_ready(fd, Interest::READABLE));
/// green::reactor::forget_fd(fd);
/// ```
pub fn fd_is_ready(fd: RawFd, interest: Interest) -> bool {
    fd_ready_cell(fd).is_none_or(|c| c.get() & ready_bits(interest) != 0)
}

/// [`Registration::clear_ready`] for a raw fd registered by [`wait_fd`]: a syscall on it
/// in the direction of `interest` returned `WouldBlock`, or (TCP) did less than asked.
/// Does nothing for an fd the reactor does not know. See [`fd_is_ready`].
///
/// ```
/// green::reactor::fd_clear_ready(12345, mio::Interest::READABLE); // unknown: nothing happens
/// ```
pub fn fd_clear_ready(fd: RawFd, interest: Interest) {
    if let Some(c) = fd_ready_cell(fd) {
        c.set(c.get() & !clear_bits(interest));
    }
}

/// Forgets a raw fd registered by [`wait_fd`], waking its waiters with an error of kind
/// `ConnectionAborted`. Call it before closing the fd. Does nothing for an unknown fd.
///
/// ```
/// green::reactor::forget_fd(12345); // unknown: nothing happens
/// ```
pub fn forget_fd(fd: RawFd) {
    deregister_and_wake(|r| r.fds.remove(&fd));
}
