//! Groups of greenlets: [`Group`] and the size-limited [`Pool`] — gevent's `pool`
//! module (`spawn`, `join`, `kill`, `map`, `imap`, `imap_unordered`, `apply`,
//! `apply_async`, `map_async`, `wait_available`).
//!
//! This file holds [`Group`], [`Pool`] and their errors; `apply.rs` holds the calls with
//! a result ([`Group::apply`], [`Group::apply_async`], [`Group::map_async`]),
//! `imap.rs` the mapping ones and their iterator, [`IMap`].

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::wait::wait_ready;
use super::{Event, LockError, Semaphore};
use crate::api::spawn::{JoinHandle, wait_dead};
use crate::greenlet::Greenlet;
use crate::greenlet::error::{BlockError, GreenletExit, JoinError};
use crate::greenlet::record::ParkLabel;
use crate::hub::throw::throw_into;
use crate::hub::timer::deadline_after;

mod apply;
mod imap;

pub use imap::IMap;

struct Record {
    members: RefCell<Vec<Greenlet>>,
    /// A pool's free slots.
    slots: Option<Semaphore>,
    size: Option<usize>,
    /// Set while the group is empty.
    empty: Event,
}

impl Record {
    /// Takes `g` off the members (it died, or was discarded), freeing its slot; returns
    /// whether it was one.
    fn untrack(&self, g: &Greenlet) -> bool {
        let gone = {
            let mut members = self.members.borrow_mut();
            let before = members.len();
            members.retain(|m| !m.ptr_eq(g));
            members.len() < before
        };
        if !gone {
            return false;
        }
        if let Some(sem) = &self.slots {
            // (Cannot be refused: the member held its slot.)
            let _ = sem.release();
        }
        if self.members.borrow().is_empty() {
            self.empty.set();
        }
        true
    }
}

/// The error of [`Group::try_add`] and [`Group::try_spawn`]: the pool has no free
/// slot (or greenlets are in line for one, which a `try_` call does not overtake).
///
/// `try_spawn` returns it inside an [`io::Error`] of kind
/// [`WouldBlock`](io::ErrorKind::WouldBlock), as [`try_spawn`](crate::try_spawn())
/// reports its own failures as `io::Error`s.
///
/// ```
/// let pool = green::Pool::new(1);
/// pool.spawn(|| ());
/// let h = green::spawn(|| ());
/// assert_eq!(pool.try_add(h.greenlet()), Err(green::PoolFull));
/// let e = pool.try_spawn(|| ()).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
/// assert!(e.get_ref().is_some_and(|e| e.is::<green::PoolFull>()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFull;

impl fmt::Display for PoolFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the pool is full")
    }
}

impl std::error::Error for PoolFull {}

impl From<PoolFull> for io::Error {
    fn from(e: PoolFull) -> io::Error {
        io::Error::new(io::ErrorKind::WouldBlock, e)
    }
}

/// The error of [`Pool::try_new`]: a pool needs a size of at least 1.
///
/// ```
/// assert_eq!(green::Pool::try_new(0).unwrap_err(), green::PoolSizeError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizeError;

impl fmt::Display for PoolSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pool needs a size of at least 1")
    }
}

impl std::error::Error for PoolSizeError {}

/// The error side of [`Group::apply_async`] and [`Group::map_async`]: how the task
/// ended, shared (an [`AsyncResult`](crate::AsyncResult) hands out clones, and a
/// [`JoinError`] cannot be cloned: it may hold a panic's payload).
///
/// ```
/// let group = green::Group::new();
/// let r = group.apply_async(|| -> u8 { panic!("lost") });
/// let err: green::TaskError = match r.get() {
///     Err(green::AsyncError::Failed(e)) => e,
///     other => panic!("{other:?}"),
/// };
/// assert_eq!(err.panic_message(), Some("lost"));
/// ```
pub type TaskError = Rc<JoinError>;

/// A set of greenlets to wait for or kill together (gevent's `Group`). A greenlet
/// leaves the group when it finishes.
///
/// Cloning gives another handle to the same group. Bound to the thread's hub (`!Send`).
///
/// # Examples
///
/// ```
/// let group = green::Group::new();
/// for i in 0..3 { group.spawn(move || i); }
/// assert_eq!(group.len(), 3);
/// group.join().unwrap();
/// assert!(group.is_empty());
/// ```
#[derive(Clone)]
pub struct Group(Rc<Record>);

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Group {
    /// An empty group without a size limit.
    ///
    /// ```
    /// assert!(green::Group::new().is_empty());
    /// ```
    pub fn new() -> Group {
        Group::with_slots(None)
    }

    fn with_slots(size: Option<usize>) -> Group {
        let empty = Event::new();
        empty.set();
        Group(Rc::new(Record {
            members: RefCell::new(Vec::new()),
            slots: size.map(Semaphore::new),
            size,
            empty,
        }))
    }

    /// Spawns `f` in the group (see [`spawn`](crate::spawn())); in a [`Pool`], first
    /// waits while the pool is full.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated, or when waiting for a slot is impossible (called
    /// from the hub, or in the main greenlet when nothing could ever free a slot).
    ///
    /// ```
    /// let group = green::Group::new();
    /// let h = group.spawn(|| "hi");
    /// assert_eq!(h.join().unwrap(), "hi");
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if let Some(sem) = &self.0.slots {
            match sem.acquire() {
                Ok(p) => p.forget(),
                Err(e) => panic!("green: cannot wait for a free slot in the pool: {e}"),
            }
        }
        match self.spawn_in_slot(f) {
            Ok(h) => h,
            Err(e) => panic!("green: cannot spawn a greenlet: {e}"),
        }
    }

    /// Spawns `f` in the group if that needs no wait: in a [`Pool`] without a free
    /// slot it fails with [`PoolFull`] (in an [`io::Error`] of kind
    /// [`WouldBlock`](io::ErrorKind::WouldBlock)) instead of waiting. A failure to
    /// allocate the stack is an error too, as with [`try_spawn`](crate::try_spawn()).
    ///
    /// ```
    /// let pool = green::Pool::new(1);
    /// let h = pool.try_spawn(|| 1).unwrap();
    /// assert!(pool.try_spawn(|| 2).is_err()); // full
    /// assert_eq!(h.join().unwrap(), 1);
    /// assert!(pool.try_spawn(|| 3).is_ok()); // its slot is free again
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.try_take_slot()?;
        self.spawn_in_slot(f)
    }

    /// Takes a free slot of a pool without waiting (nothing to take in a group).
    fn try_take_slot(&self) -> Result<(), PoolFull> {
        match &self.0.slots {
            Some(sem) => match sem.try_acquire() {
                Some(p) => {
                    p.forget();
                    Ok(())
                }
                None => Err(PoolFull),
            },
            None => Ok(()),
        }
    }

    /// Spawns `f` as a member, its slot (in a pool) taken already: given back if the
    /// spawn fails.
    #[track_caller]
    fn spawn_in_slot<F, T>(&self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match crate::api::spawn::try_spawn(f) {
            Ok(h) => {
                self.track(h.greenlet());
                Ok(h)
            }
            Err(e) => {
                if let Some(sem) = &self.0.slots {
                    // (Cannot be refused: the caller took the slot.)
                    let _ = sem.release();
                }
                Err(e)
            }
        }
    }

    /// Makes `g`, which holds a slot already (in a pool), a member until it dies or is
    /// discarded.
    fn track(&self, g: &Greenlet) {
        self.0.members.borrow_mut().push(g.clone());
        self.0.empty.clear();
        let weak: Weak<Record> = Rc::downgrade(&self.0);
        g.on_exit(Box::new(move |g: &Greenlet| {
            if let Some(inner) = weak.upgrade() {
                inner.untrack(g);
            }
        }));
    }

    /// Adds `g`, a greenlet started elsewhere (or not yet: see
    /// [`Builder::build`](crate::Builder::build)), to the group (gevent's `add`): the
    /// group's [`join`](Group::join) and [`kill`](Group::kill) cover it from now on, and
    /// it leaves the group when it finishes. In a [`Pool`], it takes a slot: `add`
    /// waits while the pool is full ([`try_add`](Group::try_add) does not). Adding a
    /// member again, or a finished greenlet, does nothing.
    ///
    /// Errors: [`BlockError`] when a full pool's slot cannot be waited for (from the
    /// hub, or in the main greenlet when nothing could ever free one).
    ///
    /// ```
    /// let group = green::Group::new();
    /// let h = green::spawn(|| 5);
    /// group.add(h.greenlet()).unwrap();
    /// assert!(group.contains(h.greenlet()));
    /// group.join().unwrap();
    /// assert!(group.is_empty());
    /// assert_eq!(h.join().unwrap(), 5);
    /// ```
    pub fn add(&self, g: &Greenlet) -> Result<(), BlockError> {
        if g.dead() || self.contains(g) {
            return Ok(());
        }
        if let Some(sem) = &self.0.slots {
            match sem.acquire() {
                Ok(p) => p.forget(),
                Err(LockError::Blocked(b)) => return Err(b),
                // (No deadline: it does not time out.)
                Err(_) => return Err(BlockError::WouldBlockForever),
            }
            // Waiting for the slot, it may have finished or been added meanwhile.
            if g.dead() || self.contains(g) {
                // (Cannot be refused: the slot was taken just above.)
                let _ = sem.release();
                return Ok(());
            }
        }
        self.track(g);
        Ok(())
    }

    /// Like [`add`](Group::add), but in a [`Pool`] without a free slot it fails with
    /// [`PoolFull`] instead of waiting (gevent's `add(greenlet, blocking=False)`).
    ///
    /// ```
    /// let pool = green::Pool::new(1);
    /// let (a, b) = (green::spawn(|| ()), green::spawn(|| ()));
    /// pool.try_add(a.greenlet()).unwrap();
    /// assert_eq!(pool.try_add(b.greenlet()), Err(green::PoolFull));
    /// assert!(!pool.contains(b.greenlet()));
    /// pool.join().unwrap();
    /// ```
    pub fn try_add(&self, g: &Greenlet) -> Result<(), PoolFull> {
        if g.dead() || self.contains(g) {
            return Ok(());
        }
        self.try_take_slot()?;
        self.track(g);
        Ok(())
    }

    /// Takes `g` out of the group without killing it (gevent's `discard`): it keeps
    /// running, outside the group, and in a [`Pool`] its slot is free again. Returns
    /// whether it was a member.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = green::Pool::new(1);
    /// let h = pool.spawn(|| green::sleep(Duration::from_millis(20)));
    /// assert!(pool.is_full());
    /// assert!(pool.discard(h.greenlet()));
    /// assert!(!pool.is_full() && pool.is_empty());
    /// pool.join().unwrap(); // does not wait for it
    /// assert!(!h.is_finished());
    /// h.join().unwrap();
    /// ```
    pub fn discard(&self, g: &Greenlet) -> bool {
        self.0.untrack(g)
    }

    /// How many greenlets of the group are running (or not yet started).
    ///
    /// ```
    /// let g = green::Group::new();
    /// g.spawn(|| ());
    /// assert_eq!(g.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.0.members.borrow().len()
    }

    /// Whether no greenlet of the group is running.
    ///
    /// ```
    /// assert!(green::Group::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `g` is a running member of the group.
    ///
    /// ```
    /// let group = green::Group::new();
    /// let h = group.spawn(|| ());
    /// assert!(group.contains(h.greenlet()));
    /// ```
    pub fn contains(&self, g: &Greenlet) -> bool {
        self.0.members.borrow().iter().any(|m| m.ptr_eq(g))
    }

    /// Waits until every greenlet of the group has finished (also those spawned
    /// meanwhile).
    ///
    /// ```
    /// let group = green::Group::new();
    /// group.spawn(|| green::sleep(std::time::Duration::from_millis(1)));
    /// group.join().unwrap();
    /// assert!(group.is_empty());
    /// ```
    pub fn join(&self) -> Result<(), BlockError> {
        while !self.is_empty() {
            self.0.empty.wait()?;
        }
        Ok(())
    }

    /// Like [`join`](Group::join) but gives up after `timeout`; returns whether the
    /// group is empty.
    ///
    /// # Panics
    ///
    /// When it has to wait in the hub (a timer callback or a link), which must not wait
    /// or switch (as [`sleep`](crate::sleep) does).
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = green::Group::new();
    /// group.spawn(|| green::sleep(Duration::from_secs(5)));
    /// assert!(!group.join_timeout(Duration::from_millis(1)));
    /// group.kill();
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        while !self.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return self.is_empty();
            }
            match self.0.empty.wait_timeout(left) {
                Ok(true) => {}
                Err(BlockError::InHub) => crate::hub::in_hub_panic("Group::join_timeout"),
                Ok(false) | Err(BlockError::WouldBlockForever) => return self.is_empty(),
            }
        }
        true
    }

    /// Kills every greenlet of the group (but the caller, if it is one) and waits
    /// until they are dead (gevent's `kill()`). A member that catches its kill and goes
    /// on is waited for until it ends; [`kill_timeout`](Group::kill_timeout) bounds the
    /// wait. From the hub it only delivers the kills.
    ///
    /// ```
    /// let group = green::Group::new();
    /// let h = group.spawn(|| green::sleep(std::time::Duration::from_secs(5)));
    /// green::yield_now();
    /// group.kill();
    /// assert!(h.join().unwrap_err().is_killed());
    /// assert!(group.is_empty());
    /// ```
    pub fn kill(&self) {
        self.kill_and_wait(None);
    }

    /// Like [`kill`](Group::kill), but waits at most `timeout` (gevent's
    /// `kill(timeout=..)`); returns whether every greenlet killed is dead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = green::Group::new();
    /// group.spawn(|| green::sleep(Duration::from_secs(5)));
    /// green::yield_now();
    /// assert!(group.kill_timeout(Duration::from_secs(5)));
    /// assert!(group.is_empty());
    /// ```
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.kill_and_wait(Some(deadline_after(timeout)))
    }

    /// Delivers a kill to every greenlet of the group (but the caller) without waiting
    /// for them to die (gevent's `kill(block=False)`); they leave the group as they die.
    ///
    /// ```
    /// let group = green::Group::new();
    /// let h = group.spawn(|| green::sleep(std::time::Duration::from_secs(5)));
    /// group.kill_nowait();
    /// assert_eq!(group.len(), 1); // still a member: it dies when the hub runs it
    /// group.join().unwrap();
    /// assert!(h.join().unwrap_err().is_killed());
    /// ```
    pub fn kill_nowait(&self) {
        self.kill_members();
    }

    /// Delivers the kills; returns the greenlets killed.
    fn kill_members(&self) -> Vec<Greenlet> {
        let members: Vec<Greenlet> = self.0.members.borrow().clone();
        let members: Vec<Greenlet> = members.into_iter().filter(|g| !g.is_current()).collect();
        for g in &members {
            throw_into(g, Box::new(GreenletExit));
        }
        members
    }

    /// Kills the members and waits for them until `deadline`; whether all are dead.
    fn kill_and_wait(&self, deadline: Option<std::time::Instant>) -> bool {
        let members = self.kill_members();
        if crate::greenlet::thread::in_scheduler() {
            return members.iter().all(Greenlet::dead);
        }
        // Each is waited for (until the deadline), even after one that will not die.
        let mut all = true;
        for g in &members {
            all &= matches!(wait_dead(g, deadline), Ok(true));
        }
        all
    }

    fn free_slots(&self) -> usize {
        self.0.slots.as_ref().map_or(usize::MAX, |s| s.available())
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("len", &self.len())
            .field("size", &self.0.size)
            .finish()
    }
}

/// A [`Group`] that runs at most `size` greenlets at once (gevent's `Pool`):
/// [`spawn`](Group::spawn) waits while the pool is full. It dereferences to [`Group`]
/// for everything else.
///
/// Cloning gives another handle to the same pool. Bound to the thread's hub (`!Send`).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let pool = green::Pool::new(2);
/// let t = Instant::now();
/// for _ in 0..4 { pool.spawn(|| green::sleep(Duration::from_millis(20))); }
/// pool.join().unwrap();
/// assert!(t.elapsed() >= Duration::from_millis(40)); // two rounds of two
/// ```
#[derive(Clone)]
pub struct Pool(Group);

impl Pool {
    /// A pool of `size` greenlets.
    ///
    /// # Panics
    ///
    /// If `size` is 0: such a pool could never run anything, so every spawn would wait
    /// forever. The size is almost always a constant, so, as with std's constructors
    /// given an impossible argument (`slice::chunks(0)`, `Duration::new` overflowing),
    /// that is a panic; [`try_new`](Pool::try_new) returns an error instead, for a size
    /// that comes from input.
    ///
    /// ```
    /// assert_eq!(green::Pool::new(4).size(), 4);
    /// ```
    pub fn new(size: usize) -> Pool {
        match Pool::try_new(size) {
            Ok(p) => p,
            Err(e) => panic!("green: {e}"),
        }
    }

    /// A pool of `size` greenlets, or [`PoolSizeError`] if `size` is 0.
    ///
    /// ```
    /// let size: usize = "0".parse().unwrap();
    /// assert!(green::Pool::try_new(size).is_err());
    /// assert_eq!(green::Pool::try_new(3).unwrap().size(), 3);
    /// ```
    pub fn try_new(size: usize) -> Result<Pool, PoolSizeError> {
        if size == 0 {
            return Err(PoolSizeError);
        }
        Ok(Pool(Group::with_slots(Some(size))))
    }

    /// Waits until a slot is free and returns how many are (gevent's
    /// `wait_available`). It takes no slot: by the time the caller spawns, another
    /// greenlet may have taken it ([`try_spawn`](Group::try_spawn) tells).
    ///
    /// Errors: [`BlockError`] when nothing could ever free a slot (in the main
    /// greenlet), or when called from the hub.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = green::Pool::new(1);
    /// pool.spawn(|| green::sleep(Duration::from_millis(5)));
    /// assert_eq!(pool.wait_available(), Ok(1));
    /// ```
    pub fn wait_available(&self) -> Result<usize, BlockError> {
        self.wait_available_until(None)
    }

    /// Like [`wait_available`](Pool::wait_available) but gives up after `timeout`:
    /// `Ok(0)` then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = green::Pool::new(1);
    /// let h = pool.spawn(|| green::sleep(Duration::from_secs(5)));
    /// assert_eq!(pool.wait_available_timeout(Duration::from_millis(1)), Ok(0));
    /// h.kill();
    /// assert_eq!(pool.wait_available_timeout(Duration::ZERO), Ok(1));
    /// ```
    pub fn wait_available_timeout(&self, timeout: Duration) -> Result<usize, BlockError> {
        self.wait_available_until(Some(deadline_after(timeout)))
    }

    fn wait_available_until(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<usize, BlockError> {
        match &self.0.0.slots {
            Some(sem) if !wait_ready(sem, deadline, ParkLabel::new("pool slot"))? => Ok(0),
            _ => Ok(self.free_count()),
        }
    }

    /// The most greenlets it runs at once.
    ///
    /// ```
    /// assert_eq!(green::Pool::new(2).size(), 2);
    /// ```
    pub fn size(&self) -> usize {
        self.0.0.size.unwrap_or(usize::MAX)
    }

    /// How many more greenlets can be spawned without waiting.
    ///
    /// ```
    /// let pool = green::Pool::new(2);
    /// pool.spawn(|| ());
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn free_count(&self) -> usize {
        self.0.free_slots()
    }

    /// Whether [`spawn`](Group::spawn) would wait.
    ///
    /// ```
    /// let pool = green::Pool::new(1);
    /// pool.spawn(|| ());
    /// assert!(pool.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }
}

impl Deref for Pool {
    type Target = Group;

    fn deref(&self) -> &Group {
        &self.0
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("len", &self.len())
            .field("size", &self.size())
            .finish()
    }
}
