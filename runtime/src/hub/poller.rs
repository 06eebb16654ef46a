//! The poller: the hub's `mio::Poll`, the table of registered fds, and the waker through
//! which other threads wake the hub.
//!
//! Each registration's state ([`IoState`]) is here: its readiness bits and the waits
//! listed on it, which an event records and ends; so is the hub's side of the waits for
//! other threads ([`Remote`], [`Slot`]), which the waker's event ends. Waiting itself
//! (listing a greenlet's wait and parking) is `reactor`'s and `remote`'s. The hub polls only when it has nothing else to
//! run, or at its maintenance ticks (see `run`).

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::hub::Hub;
use crate::hub::park::Unparker;
use crate::hub::precise::{self, PreciseTimer};

const WAKER_TOKEN: Token = Token(usize::MAX);
/// The token of the pipe of `dump_on_signal` (`hub::signal`).
const DUMP_TOKEN: Token = Token(usize::MAX - 1);

/// Readiness bits of a slot (see `reactor`).
pub(crate) const READ_READY: u8 = 1;
pub(crate) const WRITE_READY: u8 = 2;
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
pub(crate) fn ready_bits(interest: Interest) -> u8 {
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
pub(crate) fn clear_bits(interest: Interest) -> u8 {
    ready_bits(interest) & (READ_READY | WRITE_READY)
}

/// Waits beyond the first in a direction, with their direction.
type MoreWaits = Vec<(u8, Unparker)>;

/// One registration's state, shared by its `FdRegistration` (or `wait_fd`'s table) and
/// the reactor's slab, which the poll loop reaches by token. Waits are listed and ended
/// here without borrowing the reactor, and an event touches only this.
pub(crate) struct IoState {
    /// Readiness bits (see `reactor`).
    pub(crate) ready: Cell<u8>,
    /// Cleared when deregistered: its waiters are woken and get an error.
    pub(crate) registered: Cell<bool>,
    /// The first wait in each direction has an inline place; nearly always the only one.
    reader: Cell<Option<Unparker>>,
    writer: Cell<Option<Unparker>>,
    /// Further waits, with their direction (`READ_READY` or `WRITE_READY`): only when
    /// several greenlets wait on one fd in the same direction at once.
    rest: Cell<Option<Box<MoreWaits>>>,
}

impl IoState {
    pub(crate) fn new() -> IoState {
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
    pub(crate) fn push(&self, dir: u8, u: Unparker) {
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
    pub(crate) fn remove(&self, dirs: u8, key: (*const (), u64)) -> usize {
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

impl IoState {
    /// An event for this registration: records its readiness and moves the waits it ends
    /// to `woken`; returns how many.
    #[inline]
    pub(crate) fn on_event(&self, ev: &Event, woken: &mut Vec<Unparker>) -> usize {
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
        let n = self.drain_into(bits, woken);
        self.ready.set(self.ready.get() | bits);
        n
    }

    /// The registration is gone: its waits end (with an error), moved to `woken`.
    pub(crate) fn close(&self, woken: &mut Vec<Unparker>) {
        self.registered.set(false);
        self.drain_into(READ_READY | WRITE_READY, woken);
    }
}

/// Whether `c` holds a value satisfying `f` (it is moved out and back).
#[inline(always)]
fn peek<T>(c: &Cell<Option<T>>, f: impl FnOnce(&T) -> bool) -> bool {
    let v = c.take();
    let found = v.as_ref().is_some_and(f);
    c.set(v);
    found
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
    /// Raw fds registered by `reactor::wait_fd` (the monkey patch), by fd number, with
    /// the tag they were registered under (see `reactor::wait_fd_tagged`).
    fds: HashMap<RawFd, (usize, Rc<IoState>, u64)>,
    remote: Arc<Remote>,
    /// Waits of greenlets for other threads (`remote::RemoteWait`), by key.
    pub(crate) remote_slots: Slab<Slot>,
    /// The generation of the next remote wait (see `remote`).
    next_gen: u64,
    /// `poll`'s list of greenlets to wake, kept to reuse its allocation.
    woken: Vec<Unparker>,
    /// Where `wait_fd_tagged` last found the `FdRegistration` of an fd it could not
    /// register (a `green::net` socket polled through a hooked `poll`), so that the next
    /// wait finds it without a failed `epoll_ctl` and a scan of `slots`. A hint, checked
    /// against `slots` on use (`owner_state`); never cleaned up otherwise.
    owners: HashMap<RawFd, usize>,
    /// Ends polls at short timers' deadlines to the microsecond (`hub::precise`).
    precise: PreciseTimer,
}

impl Reactor {
    pub(crate) fn new(hub_id: u64) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(1024),
            slots: Slab::new(),
            fds: HashMap::new(),
            remote: Arc::new(Remote::new(waker, hub_id)),
            remote_slots: Slab::new(),
            next_gen: 0,
            woken: Vec::new(),
            owners: HashMap::new(),
            precise: PreciseTimer::default(),
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

    /// Registers `fd` (both directions, edge-triggered) in a new slot.
    pub(crate) fn register(&mut self, fd: RawFd) -> io::Result<(usize, Rc<IoState>)> {
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), Token(key), registered_interest())?;
        let state = Rc::new(IoState::new());
        entry.insert((fd, state.clone()));
        Ok((key, state))
    }

    /// Registers the read end of `dump_on_signal`'s pipe (`hub::signal`): its events
    /// are handled by the poll itself, with no greenlet waiting. Once per reactor.
    pub(crate) fn register_dump_pipe(&mut self, fd: RawFd) -> io::Result<()> {
        match self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), DUMP_TOKEN, Interest::READABLE)
        {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        }
    }

    /// Deregisters what `reactor::wait_fd` registered for the raw `fd`, if anything;
    /// returns the greenlets that were waiting on it (see [`Reactor::deregister`]).
    pub(crate) fn forget_raw(&mut self, fd: RawFd) -> Vec<Unparker> {
        match self.fds.remove(&fd) {
            Some((key, old, _)) => self.deregister(key, &old),
            None => Vec::new(),
        }
    }

    /// The state of the registration of `fd` that `owners` remembers, if that slot still
    /// holds `fd` (the fd's registration now: epoll holds one per fd). For an fd that
    /// `fds` does not list, whose registration is then a `FdRegistration`'s.
    fn owner_state(&self, fd: RawFd) -> Option<Rc<IoState>> {
        let key = *self.owners.get(&fd)?;
        match self.slots.get(key) {
            Some((f, state)) if *f == fd => Some(state.clone()),
            _ => None,
        }
    }

    /// The state of the raw `fd` for a wait of the file numbered `tag` (see
    /// `reactor::wait_fd_tagged`), registering it if needed; with the greenlets waiting
    /// on an earlier file's registration under this number, dropped here, to be woken by
    /// the caller.
    pub(crate) fn raw_state(
        &mut self,
        fd: RawFd,
        tag: u64,
    ) -> (io::Result<Rc<IoState>>, Vec<Unparker>) {
        let mut stale = Vec::new();
        match self.fds.get(&fd) {
            Some((_, state, t)) if *t == tag => return (Ok(state.clone()), stale),
            // Registered for an earlier file under this number: dropped.
            Some(_) => stale = self.forget_raw(fd),
            // A `green::net` socket polled through a hooked `poll` again.
            None => {
                if let Some(state) = self.owner_state(fd) {
                    return (Ok(state), stale);
                }
            }
        }
        let state = match self.register(fd) {
            Ok((key, state)) => {
                self.fds.insert(fd, (key, state.clone(), tag));
                Ok(state)
            }
            // The fd has a `FdRegistration` already (a `green::net` socket polled through
            // a hooked `poll`): wait on its state, leaving it its owner's.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let found = self.slots.iter().find(|(_, (f, _))| *f == fd);
                match found.map(|(k, (_, s))| (k, s.clone())) {
                    Some((key, state)) => {
                        self.owners.insert(fd, key);
                        Ok(state)
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        (state, stale)
    }

    /// The state of the raw `fd` if it is registered for the file numbered `tag`.
    pub(crate) fn known_raw(&self, fd: RawFd, tag: u64) -> Option<Rc<IoState>> {
        match self.fds.get(&fd)? {
            (_, state, t) if *t == tag => Some(state.clone()),
            _ => None,
        }
    }

    /// Takes the raw `fd`'s registration off the table: its slot and state, for
    /// [`deregister`](Reactor::deregister).
    pub(crate) fn take_raw(&mut self, fd: RawFd) -> Option<(usize, Rc<IoState>)> {
        self.fds.remove(&fd).map(|(key, state, _)| (key, state))
    }

    /// Removes the registration `key` if it is `state`'s; returns the greenlets that
    /// were waiting on it (the caller takes them off `Hub::io_waiters`).
    pub(crate) fn deregister(&mut self, key: usize, state: &Rc<IoState>) -> Vec<Unparker> {
        match self.slots.get(key) {
            Some((_, s)) if Rc::ptr_eq(s, state) => {}
            _ => return Vec::new(),
        }
        let (fd, state) = self.slots.remove(key);
        // Fails harmlessly if the fd was closed already (the kernel dropped it).
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        let mut woken = Vec::new();
        state.close(&mut woken);
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

impl Hub {
    /// The reactor, created on first use.
    pub(crate) fn with_reactor<R>(&self, f: impl FnOnce(&mut Reactor) -> R) -> io::Result<R> {
        let mut slot = self.reactor.borrow_mut();
        if slot.is_none() {
            *slot = Some(Reactor::new(self.id)?);
        }
        // The `if` above filled the slot, or returned the error.
        match slot.as_mut() {
            Some(r) => Ok(f(r)),
            None => Err(io::Error::other("reactor missing")),
        }
    }

    /// Polls for IO events for at most `timeout` (`None`: until one arrives) and wakes
    /// the greenlets waiting on them.
    pub(crate) fn poll_io(&self, timeout: Option<Duration>) {
        crate::hub::poll_hooks::poll(self, timeout, poll)
    }
}

/// [`Hub::poll_io`].
fn poll(h: &Hub, timeout: Option<Duration>) {
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
            precise,
            ..
        } = r;
        let mut woken = std::mem::take(woken);
        if let Some(t) = timeout {
            precise.arm(poll.registry(), t);
        }
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("green: polling the reactor failed: {e}");
            }
            return woken;
        }
        for ev in events.iter() {
            if ev.token().0 >= precise::TOKEN.0 {
                if ev.token() == WAKER_TOKEN {
                    drain_posted(remote, remote_slots, &mut woken);
                } else if ev.token() == DUMP_TOKEN {
                    crate::hub::signal::on_event(h);
                }
                // (precise::TOKEN: the poll has ended at its deadline; nothing to do.)
                continue;
            }
            let Some((_, state)) = slots.get(ev.token().0) else {
                continue;
            };
            let n = state.on_event(ev, &mut woken);
            h.io_waiters.set(h.io_waiters.get() - n);
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

/// The hub's side of one `RemoteWait` (see `remote`): its generation, the park it would end now,
/// and whether a wake came while it was not parked.
pub(crate) struct Slot {
    pub(crate) generation: u64,
    pub(crate) parked: Option<Unparker>,
    pub(crate) woken: bool,
}

/// What other threads share with a hub: the keys of the waits they woke, and the
/// waker that interrupts the hub's poll.
///
/// Closed when the hub's reactor is dropped (its thread ended): the waker (an eventfd)
/// is closed then, and later wakes do nothing. Greenlets that the thread's end could
/// not unwind are leaked with their waits, whose `Arc` of this never goes away.
pub(crate) struct Remote {
    posts: Mutex<Posts>,
    closed: AtomicBool,
    /// Which hub this is (see `hub::hub_id`): a wake from that hub's own
    /// thread takes effect at once.
    pub(crate) hub: u64,
}

struct Posts {
    /// The waits woken since the hub last looked.
    done: Vec<(usize, u64)>,
    /// `None` once closed.
    waker: Option<mio::Waker>,
}

impl Remote {
    pub(crate) fn new(waker: mio::Waker, hub: u64) -> Remote {
        Remote {
            posts: Mutex::new(Posts {
                done: Vec::new(),
                waker: Some(waker),
            }),
            closed: AtomicBool::new(false),
            hub,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Posts> {
        self.posts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a wake of the wait `(key, generation)` and interrupts the hub's poll
    /// (under the lock, so that the waker cannot be closed meanwhile).
    pub(crate) fn post(&self, key: usize, generation: u64) {
        let mut posts = self.lock();
        let Posts { done, waker } = &mut *posts;
        let Some(waker) = waker else {
            return;
        };
        done.push((key, generation));
        if let Err(e) = waker.wake() {
            log::error!("green: cannot wake the hub: {e}");
        }
    }

    /// The wakes posted since the last call, for the hub's poll.
    pub(crate) fn take_posted(&self) -> Vec<(usize, u64)> {
        std::mem::take(&mut self.lock().done)
    }

    /// Closes the waker: the hub is gone.
    fn close(&self) {
        let waker = {
            let mut posts = self.lock();
            posts.done = Vec::new();
            posts.waker.take()
        };
        self.closed.store(true, Ordering::Release);
        drop(waker);
    }

    /// Whether the hub is gone (see [`Remote`]).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.remote.close();
    }
}

/// Applies a wake of the wait `(key, generation)` to the hub's slots: returns the park to end,
/// if the wait is parked; remembers the wake otherwise. A stale wake does nothing.
pub(crate) fn wake_slot(
    slots: &mut slab::Slab<Slot>,
    key: usize,
    generation: u64,
) -> Option<Unparker> {
    let slot = slots.get_mut(key).filter(|s| s.generation == generation)?;
    match slot.parked.take() {
        Some(u) => Some(u),
        None => {
            slot.woken = true;
            None
        }
    }
}

/// The hub's poll found posted wakes: ends the parks they are for (into `woken`).
pub(crate) fn drain_posted(
    remote: &Remote,
    slots: &mut slab::Slab<Slot>,
    woken: &mut Vec<Unparker>,
) {
    for (key, generation) in remote.take_posted() {
        if let Some(u) = wake_slot(slots, key, generation) {
            woken.push(u);
        }
    }
}
