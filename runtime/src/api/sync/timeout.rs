//! Timeouts that interrupt a greenlet at its next switch point: gevent's `Timeout`.
//!
//! [`with_timeout`] runs a closure and interrupts it (by unwinding it, so its
//! destructors run) if it is still running after the duration. [`Timeout::start`] is the
//! scoped form: it arms a timeout for the current greenlet and returns a
//! [`TimeoutGuard`] that disarms it when dropped; when it fires, the greenlet's next
//! switch point unwinds with a [`Timeout`] payload that [`Timeout::catch`] turns back
//! into a value.
//!
//! Every timeout has a process-unique id, so nested timeouts can tell whose fired:
//! the shorter one wins, and only the matching [`with_timeout`] (or a caller comparing
//! [`Timeout::id`] with [`TimeoutGuard::id`]) handles it; the others let it pass.
//!
//! A timeout only fires at a switch point (a park, a sleep, a queue wait, ...): code
//! that never switches cannot be interrupted. A cancelled timeout, or one whose body
//! has finished, never fires later: its timer is disarmed and a throw it may already
//! have queued is withdrawn.
//!
//! A timeout can also be made without starting it ([`TimeoutGuard::new`], started
//! later with [`TimeoutGuard::start`]), and made to raise an error of the caller's
//! instead of a [`Timeout`] ([`TimeoutGuard::with_error`], gevent's
//! `Timeout(seconds, exception)`).
//!
//! Timeouts are bound to the thread's hub (`!Send`).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, getcurrent};
use crate::hub::throw::{self, is_kill_or_timeout};
use crate::hub::timeout::{Timeout, TimeoutError, arm_timeout};
use crate::hub::timer::{TimerHandle, deadline_after};

impl Timeout {
    /// Arms a timeout for the current greenlet; when it fires, the greenlet's next
    /// switch point unwinds with a [`Timeout`] payload (catch it with
    /// [`Timeout::catch`]). Dropping (or [`cancel`](TimeoutGuard::cancel)ling) the
    /// guard disarms it.
    ///
    /// Uncaught, the payload unwinds the whole greenlet, which then counts as panicked
    /// ([`JoinError::Panicked`](crate::JoinError::Panicked) with a `Timeout` payload),
    /// as an uncaught `gevent.Timeout` kills a greenlet.
    ///
    /// ```
    /// use std::time::Duration;
    /// let guard = green::Timeout::start(Duration::from_millis(10));
    /// let r = green::Timeout::catch(|| {
    ///     green::sleep(Duration::from_millis(1)); // fine
    ///     green::sleep(Duration::from_secs(10));  // interrupted
    /// });
    /// assert!(guard.is(&r.unwrap_err()));
    /// ```
    pub fn start(duration: Duration) -> TimeoutGuard {
        let guard = TimeoutGuard::new(duration);
        guard.start();
        guard
    }

    /// [`Timeout::start`] raising `error` instead of a [`Timeout`] when it fires (see
    /// [`TimeoutGuard::with_error`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// #[derive(Debug, PartialEq)]
    /// struct TooSlow;
    /// let guard = green::Timeout::start_with_error(Duration::from_millis(5), TooSlow);
    /// let r = guard.catch(|| green::sleep(Duration::from_secs(5)));
    /// assert_eq!(r.unwrap_err().downcast_ref::<TooSlow>(), Some(&TooSlow));
    /// ```
    pub fn start_with_error<E: Any + Send>(duration: Duration, error: E) -> TimeoutGuard {
        let guard = TimeoutGuard::with_error(duration, error);
        guard.start();
        guard
    }

    /// Runs `f`; if a [`Timeout`] payload (any timeout's) unwinds out of it, returns it
    /// as the error. Other panics pass through.
    ///
    /// ```
    /// use std::time::Duration;
    /// let _g = green::Timeout::start(Duration::from_millis(1));
    /// assert!(green::Timeout::catch(|| green::sleep(Duration::from_secs(1))).is_err());
    /// assert_eq!(green::Timeout::catch(|| 5), Ok(5));
    /// ```
    pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Timeout> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) => match p.downcast::<Timeout>() {
                Ok(t) => {
                    throw::timeout_caught(t.id());
                    Err(*t)
                }
                Err(p) => resume_unwind(p),
            },
        }
    }
}

/// An armed timeout of the current greenlet (see [`Timeout::start`]); dropping it
/// disarms the timeout. Bound to its thread (`!Send`).
///
/// ```
/// use std::time::Duration;
/// let guard = green::Timeout::start(Duration::from_millis(5));
/// drop(guard); // disarmed: the sleep below is not interrupted
/// green::sleep(Duration::from_millis(20));
/// ```
#[must_use = "dropping the guard disarms the timeout at once"]
pub struct TimeoutGuard {
    payload: Timeout,
    /// The greenlet it was last started in (its creator until then).
    greenlet: RefCell<Greenlet>,
    armed: Rc<Cell<bool>>,
    timer: Cell<Option<TimerHandle>>,
    /// The error it raises instead of `payload`, until its first firing takes it.
    error: Option<TimeoutError>,
    /// The address of that error's box, to tell it when caught (`catch`).
    error_at: *const (),
    _not_send: PhantomData<*const ()>,
}

impl TimeoutGuard {
    /// A timeout of `duration` that is not started: [`pending`](TimeoutGuard::pending)
    /// is `false` until [`start`](TimeoutGuard::start) (gevent's `Timeout(seconds)`
    /// before `start()`). Dropping it before then does nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = green::TimeoutGuard::new(Duration::from_millis(5));
    /// assert!(!t.pending());
    /// green::sleep(Duration::from_millis(10)); // not armed: not interrupted
    /// assert!(t.start());
    /// assert!(t.pending());
    /// assert!(t.catch(|| green::sleep(Duration::from_secs(5))).is_err());
    /// ```
    pub fn new(duration: Duration) -> TimeoutGuard {
        TimeoutGuard {
            payload: Timeout::new(duration),
            greenlet: RefCell::new(getcurrent()),
            armed: Rc::new(Cell::new(false)),
            timer: Cell::new(None),
            error: None,
            error_at: std::ptr::null(),
            _not_send: PhantomData,
        }
    }

    /// A timeout of `duration`, not started, that raises `error` instead of a
    /// [`Timeout`] when it fires (gevent's `Timeout(seconds, exception)`).
    ///
    /// The interrupted code unwinds with `error` as its panic payload: catch it with
    /// [`catch`](TimeoutGuard::catch), which also keeps the runtime's count of the
    /// greenlet's unwinding throws right (`catch_unwind` alone does not; see the
    /// guide). [`Timeout::catch`] and [`with_timeout`] do not catch it: it is not a
    /// `Timeout`. The error is raised once: if the guard is started again after it
    /// fired, it raises a plain [`Timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = green::TimeoutGuard::with_error(Duration::from_millis(5), "too slow");
    /// t.start();
    /// let err = t.catch(|| green::sleep(Duration::from_secs(5))).unwrap_err();
    /// assert_eq!(err.downcast_ref::<&str>(), Some(&"too slow"));
    /// ```
    pub fn with_error<E: Any + Send>(duration: Duration, error: E) -> TimeoutGuard {
        let error: Box<dyn Any + Send> = Box::new(error);
        let error_at = std::ptr::from_ref::<dyn Any + Send>(&*error).cast::<()>();
        let mut guard = TimeoutGuard::new(duration);
        guard.error = Some(Rc::new(Cell::new(Some(error))));
        guard.error_at = error_at;
        guard
    }

    /// Arms the timeout for the calling greenlet, `duration` from now; `false` (and
    /// nothing changes) if it is armed already. A timeout that fired may be started
    /// again.
    ///
    /// ```
    /// let t = green::TimeoutGuard::new(std::time::Duration::from_secs(1));
    /// assert!(t.start());
    /// assert!(!t.start()); // already pending
    /// ```
    pub fn start(&self) -> bool {
        if self.armed.get() {
            return false;
        }
        // A timer left from an earlier start has fired (it is not armed): a no-op.
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
        let g = getcurrent();
        self.armed.set(true);
        let timer = arm_timeout(
            g.clone(),
            self.payload,
            self.armed.clone(),
            self.error.clone(),
            deadline_after(self.payload.duration()),
        );
        self.timer.set(Some(timer));
        *self.greenlet.borrow_mut() = g;
        true
    }

    /// Runs `f`; if this timeout fires inside it, returns what it raised as the error:
    /// its [`Timeout`], or the error of [`with_error`](TimeoutGuard::with_error).
    /// Anything else unwinding out of `f` (another timeout, a kill, a panic) passes
    /// through.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = green::Timeout::start(Duration::from_millis(5));
    /// let err = t.catch(|| green::sleep(Duration::from_secs(5))).unwrap_err();
    /// assert!(t.is(err.downcast_ref::<green::Timeout>().unwrap()));
    /// assert_eq!(t.catch(|| 7).unwrap(), 7);
    /// ```
    pub fn catch<T>(&self, f: impl FnOnce() -> T) -> Result<T, Box<dyn Any + Send>> {
        let p = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => return Ok(v),
            Err(p) => p,
        };
        let ours = match p.downcast_ref::<Timeout>() {
            Some(t) => self.is(t),
            None => {
                let at = std::ptr::from_ref::<dyn Any + Send>(&*p).cast::<()>();
                // Its error, once the firing took it.
                self.error.as_ref().is_some_and(|e| {
                    !self.error_at.is_null() && at == self.error_at && {
                        let taken = e.take();
                        let fired = taken.is_none();
                        e.set(taken);
                        fired
                    }
                })
            }
        };
        if !ours {
            resume_unwind(p);
        }
        throw::timeout_caught(self.payload.id());
        Err(p)
    }

    /// This timeout's id, to compare with [`Timeout::id`].
    ///
    /// ```
    /// let a = green::Timeout::start(std::time::Duration::from_secs(1));
    /// let b = green::Timeout::start(std::time::Duration::from_secs(1));
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.payload.id()
    }

    /// Whether `t` is this timeout firing.
    ///
    /// ```
    /// use std::time::Duration;
    /// let outer = green::Timeout::start(Duration::from_millis(5));
    /// let inner = green::Timeout::start(Duration::from_secs(5));
    /// let t = green::Timeout::catch(|| green::sleep(Duration::from_secs(5))).unwrap_err();
    /// assert!(outer.is(&t) && !inner.is(&t));
    /// ```
    pub fn is(&self, t: &Timeout) -> bool {
        t.id() == self.payload.id()
    }

    /// Whether it is armed: started, and has neither fired nor been cancelled.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = green::Timeout::start(Duration::from_millis(1));
    /// assert!(g.pending());
    /// let _ = green::Timeout::catch(|| green::sleep(Duration::from_secs(1)));
    /// assert!(!g.pending());
    /// ```
    pub fn pending(&self) -> bool {
        self.armed.get()
    }

    /// Disarms the timeout (what dropping the guard does). It will never fire, even
    /// if its timer had already come due and queued the interruption.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = green::Timeout::start(Duration::from_millis(1));
    /// g.cancel();
    /// green::sleep(Duration::from_millis(10)); // not interrupted
    /// ```
    pub fn cancel(self) {}

    fn disarm(&self) {
        self.armed.set(false);
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
        // The timer may have fired and queued the throw without the greenlet having
        // run since (only possible if it is not the caller), or it may have fired inside
        // a monkey-patched call, which defers it to the next switch point: past this
        // scope it must not fire.
        throw::withdraw_timeout(&self.greenlet.borrow(), self.payload.id());
    }

    /// Takes this timeout if it fired inside a monkey-patched call and was deferred.
    fn take_deferred(&self) -> Option<Timeout> {
        throw::take_deferred_timeout(&self.greenlet.borrow(), self.payload.id())
    }
}

impl Drop for TimeoutGuard {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl fmt::Debug for TimeoutGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutGuard")
            .field("id", &self.payload.id())
            .field("duration", &self.payload.duration())
            .field("pending", &self.armed.get())
            .finish()
    }
}

/// Runs `f`, interrupting it at its next switch point once `duration` has passed
/// (gevent's `with_timeout`). Interrupting unwinds `f` (its destructors run) and
/// returns `Err(Timeout)`. A timeout of an enclosing `with_timeout` that fires inside
/// `f` passes through to its owner; other panics propagate unchanged.
///
/// Works in the main greenlet too. `f` is not interrupted if it never switches.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let slow = green::with_timeout(Duration::from_millis(10), || {
///     green::sleep(Duration::from_secs(10));
///     "done"
/// });
/// assert!(slow.is_err());
/// let quick = green::with_timeout(Duration::from_secs(10), || "done");
/// assert_eq!(quick, Ok("done"));
/// ```
pub fn with_timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Timeout> {
    with_deadline_inner(Timeout::start(duration), f)
}

/// Like [`with_timeout`] with an absolute deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// let r = green::with_deadline(Instant::now() + Duration::from_millis(5), || {
///     green::sleep(Duration::from_secs(5))
/// });
/// assert!(r.is_err());
/// ```
pub fn with_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> Result<T, Timeout> {
    let d = deadline.saturating_duration_since(Instant::now());
    with_deadline_inner(Timeout::start(d), f)
}

fn with_deadline_inner<T>(guard: TimeoutGuard, f: impl FnOnce() -> T) -> Result<T, Timeout> {
    let r = catch_unwind(AssertUnwindSafe(f));
    // Our timeout may have fired inside a monkey-patched call (making it fail) and been
    // deferred, never re-raised because `f` ended first. (One that only waited behind
    // another throw interrupted nothing: `disarm` withdraws it.)
    let deferred = guard.take_deferred();
    // Disarm before anything else can switch (also on the unwinding paths below).
    guard.disarm();
    match r {
        Ok(v) => match deferred {
            Some(t) => Err(t),
            None => Ok(v),
        },
        Err(p) => match own_timeout(p, guard.payload.id()) {
            Ok(t) => {
                throw::timeout_caught(t.id());
                Err(t)
            }
            // Another timeout or a kill unwinding through us goes on to its owner.
            Err(p) if is_kill_or_timeout(&p) => resume_unwind(p),
            // A plain panic after our deferred timeout (such as an `unwrap()` of the
            // monkey-patched call's `ECANCELED`) is its consequence: `f` timed out.
            Err(p) => match deferred {
                Some(t) => Err(t),
                None => resume_unwind(p),
            },
        },
    }
}

fn own_timeout(p: Box<dyn Any + Send>, id: u64) -> Result<Timeout, Box<dyn Any + Send>> {
    match p.downcast_ref::<Timeout>() {
        Some(t) if t.id() == id => Ok(*t),
        _ => Err(p),
    }
}
