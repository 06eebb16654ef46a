//! Locks: [`Semaphore`], [`BoundedSemaphore`], [`Lock`] and [`RLock`] — gevent's
//! `lock` module.
//!
//! `acquire` returns a guard that releases on drop, also when the holder is killed or
//! interrupted (the unwinding drops the guard). Waiters are served in arrival order: a
//! release hands the permit straight to the first waiter, so a greenlet arriving later
//! cannot overtake it. A waiter that times out or is killed leaves the line; one
//! killed just after being handed the permit passes it on.

use crate::greenlet::record::ParkLabel;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::registration::{CallbackHost, CallbackList, Registration};
use super::waiters::{HandoffList, WaitFail};
use crate::greenlet::error::BlockError;
use crate::greenlet::{Greenlet, getcurrent};
use crate::hub::timer::deadline_after;

/// Why a lock operation failed.
///
/// ```
/// let s = green::BoundedSemaphore::new(1);
/// assert_eq!(s.release(), Err(green::LockError::OverReleased));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockError {
    /// The wait timed out.
    TimedOut,
    /// The wait could not happen (see [`BlockError`]).
    Blocked(BlockError),
    /// A [`BoundedSemaphore`] (or a [`Lock`]) was released more times than acquired,
    /// or a [`Semaphore`] was released while it already had `usize::MAX` permits.
    OverReleased,
    /// An [`RLock`] was released by a greenlet that does not own it.
    NotOwner,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::TimedOut => f.write_str("timed out waiting for the lock"),
            LockError::Blocked(b) => b.fmt(f),
            LockError::OverReleased => f.write_str("semaphore released too many times"),
            LockError::NotOwner => f.write_str("cannot release a lock owned by another greenlet"),
        }
    }
}

impl std::error::Error for LockError {}

struct SemInner {
    count: Cell<usize>,
    /// `Some(n)`: a bounded semaphore of initial count `n`.
    bound: Option<usize>,
    waiters: HandoffList<()>,
    /// One-shot callbacks of [`Waitable`](super::Waitable) registrations, run when a
    /// permit becomes free (withdrawn when their [`Registration`] is dropped).
    callbacks: CallbackList,
}

impl CallbackHost for SemInner {
    fn callbacks(&self) -> &CallbackList {
        &self.callbacks
    }
}

impl SemInner {
    fn new(n: usize, bound: Option<usize>) -> SemInner {
        SemInner {
            count: Cell::new(n),
            bound,
            waiters: HandoffList::default(),
            callbacks: CallbackList::default(),
        }
    }

    /// Whether `try_acquire` would succeed.
    fn is_free(&self) -> bool {
        self.count.get() > 0 && self.waiters.is_empty()
    }
    fn try_acquire(&self) -> bool {
        if self.count.get() > 0 && self.waiters.is_empty() {
            self.count.set(self.count.get() - 1);
            true
        } else {
            false
        }
    }

    fn acquire(&self, deadline: Option<Instant>) -> Result<(), LockError> {
        if self.try_acquire() {
            return Ok(());
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(LockError::TimedOut);
        }
        match self
            .waiters
            .wait(ParkLabel::new("lock/semaphore"), None, deadline, |()| {
                // Handed the permit but unwinding: pass it on.
                let _ = self.release();
            }) {
            Ok(_) => Ok(()),
            Err(WaitFail::TimedOut(_)) => Err(LockError::TimedOut),
            Err(WaitFail::Blocked(b, _)) => Err(LockError::Blocked(b)),
        }
    }

    /// Gives a permit to the first waiter, or adds it to the count: refused past the
    /// bound of a bounded semaphore, and past `usize::MAX` for any (never wrapped).
    fn release(&self) -> Result<(), LockError> {
        if self.waiters.hand(()).is_ok() {
            return Ok(());
        }
        match self.count.get().checked_add(1) {
            Some(n) if self.bound.is_none_or(|b| n <= b) => {
                self.count.set(n);
                // A free permit (nobody waits: it went to the count): the semaphore
                // is ready for `wait`/`iwait`. The callbacks must not block or switch;
                // one that panics is logged (this may run in a permit's drop).
                if n == 1 && !self.callbacks.is_empty() {
                    for cb in self.callbacks.take_all() {
                        crate::greenlet::trampoline::run_callback(cb);
                    }
                }
                Ok(())
            }
            _ => Err(LockError::OverReleased),
        }
    }
}

/// A counting semaphore (gevent's `Semaphore`): at most `n` holders at a time.
///
/// Cloning gives another handle to the same semaphore. Bound to the thread's hub
/// (`!Send`).
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// let sem = green::Semaphore::new(2);
/// let (now, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// let hs: Vec<_> = (0..6).map(|_| {
///     let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
///     green::spawn(move || {
///         let _permit = sem.acquire().unwrap();
///         now.set(now.get() + 1);
///         peak.set(peak.get().max(now.get()));
///         green::sleep(Duration::from_millis(1));
///         now.set(now.get() - 1);
///     })
/// }).collect();
/// green::joinall(hs);
/// assert_eq!(peak.get(), 2);
/// ```
#[derive(Clone)]
pub struct Semaphore(Rc<SemInner>);

/// Releases a permit of a [`Semaphore`] or [`BoundedSemaphore`] when dropped.
///
/// ```
/// let sem = green::Semaphore::new(1);
/// {
///     let _p = sem.acquire().unwrap();
///     assert_eq!(sem.available(), 0);
/// }
/// assert_eq!(sem.available(), 1);
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a SemInner,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit acquired without a guard; give it back later with `release`.
    ///
    /// ```
    /// let sem = green::Semaphore::new(1);
    /// sem.acquire().unwrap().forget();
    /// assert_eq!(sem.available(), 0);
    /// sem.release().unwrap();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self)
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        // Refused only when the count is full already (released by hand meanwhile).
        let _ = self.sem.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}

impl Semaphore {
    /// A semaphore with `n` permits.
    ///
    /// ```
    /// assert_eq!(green::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(n: usize) -> Semaphore {
        Semaphore(Rc::new(SemInner::new(n, None)))
    }

    /// Waits for a permit (in arrival order) and returns a guard releasing it.
    ///
    /// Errors: [`LockError::Blocked`] when nothing could ever release one.
    ///
    /// ```
    /// let sem = green::Semaphore::new(1);
    /// let p = sem.acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire(None)?;
        Ok(SemaphorePermit { sem: &self.0 })
    }

    /// Like [`acquire`](Semaphore::acquire) but gives up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = green::Semaphore::new(0);
    /// let r = sem.acquire_timeout(Duration::from_millis(1));
    /// assert_eq!(r.unwrap_err(), green::LockError::TimedOut);
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire(Some(deadline_after(timeout)))?;
        Ok(SemaphorePermit { sem: &self.0 })
    }

    /// A permit if one is free and nobody waits for one.
    ///
    /// ```
    /// let sem = green::Semaphore::new(1);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        // The permit is made only when one was taken: built for nothing (as an eager
        // `then_some` would), its drop would release a permit nobody holds.
        self.0
            .try_acquire()
            .then(|| SemaphorePermit { sem: &self.0 })
    }

    /// Adds a permit (gives it to the first waiter, if any). For a permit kept with
    /// [`SemaphorePermit::forget`], or to raise the count.
    ///
    /// Errors: [`LockError::OverReleased`] if the semaphore already has `usize::MAX`
    /// free permits (gevent's "Semaphore released too many times"); the count is left
    /// as it was. A [`SemaphorePermit`] dropped then is not counted back.
    ///
    /// ```
    /// let sem = green::Semaphore::new(0);
    /// sem.release().unwrap();
    /// assert_eq!(sem.available(), 1);
    /// let full = green::Semaphore::new(usize::MAX);
    /// assert_eq!(full.release(), Err(green::LockError::OverReleased));
    /// assert_eq!(full.available(), usize::MAX);
    /// ```
    pub fn release(&self) -> Result<(), LockError> {
        self.0.release()
    }

    /// How many permits are free (gevent's `counter`).
    ///
    /// ```
    /// assert_eq!(green::Semaphore::new(2).available(), 2);
    /// ```
    pub fn available(&self) -> usize {
        self.0.count.get()
    }

    /// Whether `acquire` would wait (gevent's `locked()`).
    ///
    /// ```
    /// assert!(green::Semaphore::new(0).locked());
    /// ```
    pub fn locked(&self) -> bool {
        !self.0.is_free()
    }

    pub(crate) fn waiting(&self) -> usize {
        self.0.waiters.len()
    }

    /// Registers `f` to run when a permit becomes free (at once if one is); dropping
    /// the registration withdraws it.
    pub(crate) fn add_callback(&self, f: Box<dyn FnOnce()>) -> Registration {
        if self.0.is_free() {
            f();
            return Registration::empty();
        }
        let host: std::rc::Weak<SemInner> = Rc::downgrade(&self.0);
        self.0.callbacks.add(host, f)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// A semaphore that refuses to be released beyond its initial count (gevent's
/// `BoundedSemaphore`): [`release`](BoundedSemaphore::release) then fails with
/// [`LockError::OverReleased`].
///
/// ```
/// let s = green::BoundedSemaphore::new(1);
/// s.acquire().unwrap().forget();
/// assert_eq!(s.release(), Ok(()));
/// assert_eq!(s.release(), Err(green::LockError::OverReleased));
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore(Semaphore);

impl BoundedSemaphore {
    /// A bounded semaphore with `n` permits.
    ///
    /// ```
    /// assert_eq!(green::BoundedSemaphore::new(2).available(), 2);
    /// ```
    pub fn new(n: usize) -> BoundedSemaphore {
        BoundedSemaphore(Semaphore(Rc::new(SemInner::new(n, Some(n)))))
    }

    /// See [`Semaphore::acquire`].
    ///
    /// ```
    /// let s = green::BoundedSemaphore::new(1);
    /// let _p = s.acquire().unwrap();
    /// ```
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire()
    }

    /// See [`Semaphore::acquire_timeout`].
    ///
    /// ```
    /// let s = green::BoundedSemaphore::new(1);
    /// let _p = s.acquire_timeout(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire_timeout(timeout)
    }

    /// See [`Semaphore::try_acquire`].
    ///
    /// ```
    /// let s = green::BoundedSemaphore::new(1);
    /// assert!(s.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.0.try_acquire()
    }

    /// Gives a permit back; [`LockError::OverReleased`] if that would exceed the
    /// initial count.
    ///
    /// ```
    /// let s = green::BoundedSemaphore::new(1);
    /// assert!(s.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), LockError> {
        (self.0).0.release()
    }

    /// How many permits are free.
    ///
    /// ```
    /// assert_eq!(green::BoundedSemaphore::new(1).available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.0.available()
    }

    /// Whether `acquire` would wait.
    ///
    /// ```
    /// assert!(!green::BoundedSemaphore::new(1).locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.0.locked()
    }
}

impl BoundedSemaphore {
    pub(crate) fn as_semaphore(&self) -> &Semaphore {
        &self.0
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .finish()
    }
}

/// A mutual-exclusion lock (gevent's `Lock`, a bounded semaphore of one). It is not
/// re-entrant: see [`RLock`]. Any greenlet may release it.
///
/// Cloning gives another handle to the same lock. Bound to the thread's hub (`!Send`).
///
/// ```
/// let lock = green::Lock::new();
/// let guard = lock.acquire().unwrap();
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// ```
#[derive(Clone, Default)]
pub struct Lock(BoundedSemaphore);

impl Default for BoundedSemaphore {
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl Lock {
    /// An unlocked lock.
    ///
    /// ```
    /// assert!(!green::Lock::new().locked());
    /// ```
    pub fn new() -> Lock {
        Lock(BoundedSemaphore::new(1))
    }

    /// Waits for the lock (in arrival order); the guard unlocks on drop.
    ///
    /// ```
    /// let lock = green::Lock::new();
    /// let _g = lock.acquire().unwrap();
    /// ```
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire()
    }

    /// Like [`acquire`](Lock::acquire) but gives up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = green::Lock::new();
    /// let _g = lock.acquire().unwrap();
    /// assert!(lock.acquire_timeout(Duration::from_millis(1)).is_err());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, LockError> {
        self.0.acquire_timeout(timeout)
    }

    /// The lock if it is free.
    ///
    /// ```
    /// let lock = green::Lock::new();
    /// let g = lock.try_acquire();
    /// assert!(g.is_some() && lock.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.0.try_acquire()
    }

    /// Unlocks a lock held without a guard ([`SemaphorePermit::forget`]);
    /// [`LockError::OverReleased`] if it is not locked.
    ///
    /// ```
    /// let lock = green::Lock::new();
    /// lock.acquire().unwrap().forget();
    /// assert_eq!(lock.release(), Ok(()));
    /// assert!(lock.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), LockError> {
        self.0.release()
    }

    /// Whether it is held.
    ///
    /// ```
    /// assert!(!green::Lock::new().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.0.locked()
    }
}

impl Lock {
    pub(crate) fn as_semaphore(&self) -> &Semaphore {
        self.0.as_semaphore()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

struct RInner {
    lock: Lock,
    owner: RefCell<Option<Greenlet>>,
    depth: Cell<usize>,
}

/// A re-entrant lock (gevent's `RLock`): the greenlet holding it may acquire it again;
/// it is free once every acquisition is released. Only the owner may release it.
///
/// Cloning gives another handle to the same lock. Bound to the thread's hub (`!Send`).
///
/// ```
/// let lock = green::RLock::new();
/// let a = lock.acquire().unwrap();
/// let b = lock.acquire().unwrap(); // same greenlet: no deadlock
/// drop(b);
/// assert!(lock.locked());
/// drop(a);
/// assert!(!lock.locked());
/// ```
#[derive(Clone)]
pub struct RLock(Rc<RInner>);

/// Releases one acquisition of an [`RLock`] when dropped.
///
/// ```
/// let lock = green::RLock::new();
/// drop(lock.acquire().unwrap());
/// assert!(!lock.locked());
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct RLockGuard<'a> {
    lock: &'a RInner,
}

impl RLockGuard<'_> {
    /// Keeps the acquisition without a guard; release it later with
    /// [`RLock::release`].
    ///
    /// ```
    /// let lock = green::RLock::new();
    /// lock.acquire().unwrap().forget();
    /// lock.release().unwrap();
    /// ```
    pub fn forget(self) {
        std::mem::forget(self)
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_one();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl RInner {
    fn owned_by_current(&self) -> bool {
        self.owner.borrow().as_ref().is_some_and(|o| o.is_current())
    }

    fn release_one(&self) {
        let d = self.depth.get().saturating_sub(1);
        self.depth.set(d);
        if d == 0 {
            self.owner.borrow_mut().take();
            let _ = self.lock.release();
        }
    }

    fn acquire(&self, deadline: Option<Duration>, try_only: bool) -> Result<(), LockError> {
        if self.owned_by_current() {
            self.depth.set(self.depth.get() + 1);
            return Ok(());
        }
        let permit = match (try_only, deadline) {
            (true, _) => self.lock.try_acquire().ok_or(LockError::TimedOut)?,
            (false, Some(t)) => self.lock.acquire_timeout(t)?,
            (false, None) => self.lock.acquire()?,
        };
        permit.forget();
        *self.owner.borrow_mut() = Some(getcurrent());
        self.depth.set(1);
        Ok(())
    }
}

impl RLock {
    /// An unlocked re-entrant lock.
    ///
    /// ```
    /// assert!(!green::RLock::new().locked());
    /// ```
    pub fn new() -> RLock {
        RLock(Rc::new(RInner {
            lock: Lock::new(),
            owner: RefCell::new(None),
            depth: Cell::new(0),
        }))
    }

    /// Acquires the lock, at once if the current greenlet owns it already.
    ///
    /// ```
    /// let l = green::RLock::new();
    /// let _a = l.acquire().unwrap();
    /// let _b = l.acquire().unwrap();
    /// ```
    pub fn acquire(&self) -> Result<RLockGuard<'_>, LockError> {
        self.0.acquire(None, false)?;
        Ok(RLockGuard { lock: &self.0 })
    }

    /// Like [`acquire`](RLock::acquire) but gives up after `timeout`.
    ///
    /// ```
    /// let l = green::RLock::new();
    /// let _a = l.acquire_timeout(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, LockError> {
        self.0.acquire(Some(timeout), false)?;
        Ok(RLockGuard { lock: &self.0 })
    }

    /// Acquires the lock if that needs no wait.
    ///
    /// ```
    /// let l = green::RLock::new();
    /// assert!(l.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<RLockGuard<'_>> {
        self.0.acquire(None, true).ok()?;
        Some(RLockGuard { lock: &self.0 })
    }

    /// Releases one acquisition kept with [`RLockGuard::forget`];
    /// [`LockError::NotOwner`] unless the current greenlet owns the lock.
    ///
    /// ```
    /// let l = green::RLock::new();
    /// assert_eq!(l.release(), Err(green::LockError::NotOwner));
    /// ```
    pub fn release(&self) -> Result<(), LockError> {
        if !self.0.owned_by_current() {
            return Err(LockError::NotOwner);
        }
        self.0.release_one();
        Ok(())
    }

    /// Whether some greenlet holds it.
    ///
    /// ```
    /// assert!(!green::RLock::new().locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.0.owner.borrow().is_some()
    }

    /// Whether the current greenlet holds it.
    ///
    /// ```
    /// let l = green::RLock::new();
    /// let _g = l.acquire().unwrap();
    /// assert!(l.is_owned());
    /// ```
    pub fn is_owned(&self) -> bool {
        self.0.owned_by_current()
    }
}

impl RLock {
    pub(crate) fn inner_lock(&self) -> &Lock {
        &self.0.lock
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &*self.0.owner.borrow())
            .field("depth", &self.0.depth.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sync::{Waitable, wait};

    #[test]
    fn withdrawn_and_timed_out_waits_leave_no_callbacks() {
        let sem = Semaphore::new(0);
        for _ in 0..1000 {
            drop(sem.on_ready(Box::new(|| ())));
        }
        let objs = [&sem];
        for _ in 0..10 {
            assert!(wait(&objs, None, Some(Duration::from_micros(50))).is_empty());
        }
        assert_eq!(sem.0.callbacks.len(), 0);
    }

    #[test]
    fn a_release_runs_the_kept_callbacks_once() {
        let sem = Semaphore::new(0);
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let reg = sem.on_ready(Box::new(move || r.set(r.get() + 1)));
        sem.release().unwrap();
        sem.release().unwrap();
        assert_eq!(ran.get(), 1);
        assert_eq!(sem.0.callbacks.len(), 0);
        drop(reg);
    }
}
