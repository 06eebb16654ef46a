//! [`Event`]: a flag that greenlets wait for — gevent's `Event`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::waiters::WakeAll;
use crate::error::BlockError;
use crate::timer::deadline_after;

struct Inner {
    flag: Cell<bool>,
    waiters: WakeAll,
    /// One-shot callbacks of [`Waitable`](super::Waitable) registrations.
    callbacks: RefCell<Vec<Box<dyn FnOnce()>>>,
}

/// A flag greenlets can wait for: [`set`](Event::set) wakes every waiter,
/// [`clear`](Event::clear) resets it (gevent's `Event`).
///
/// Every greenlet waiting when `set` is called returns `true`, even if `clear` follows
/// at once, before they run. Cloning gives another handle to the same event. Bound to
/// the thread's hub (`!Send`).
///
/// # Examples
///
/// ```
/// let ev = green::Event::new();
/// let e = ev.clone();
/// let waiter = green::spawn(move || e.wait().unwrap());
/// green::yield_now();
/// ev.set();
/// assert!(waiter.join().unwrap());
/// ```
#[derive(Clone)]
pub struct Event(Rc<Inner>);

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    /// A new event, not set.
    ///
    /// ```
    /// assert!(!green::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event(Rc::new(Inner {
            flag: Cell::new(false),
            waiters: WakeAll::default(),
            callbacks: RefCell::new(Vec::new()),
        }))
    }

    /// Sets the flag and wakes every waiting greenlet.
    ///
    /// ```
    /// let ev = green::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ```
    pub fn set(&self) {
        self.0.flag.set(true);
        self.0.waiters.wake_all();
        let cbs = std::mem::take(&mut *self.0.callbacks.borrow_mut());
        for cb in cbs {
            cb();
        }
    }

    /// Resets the flag. Greenlets woken by an earlier `set` still return `true`.
    ///
    /// ```
    /// let ev = green::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.0.flag.set(false);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let ev = green::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.0.flag.get()
    }

    /// Waits until the flag is set (returns at once if it is); `Ok(true)`.
    ///
    /// Errors: [`BlockError`] when nothing could ever set it (in the main greenlet) or
    /// when called from the hub.
    ///
    /// ```
    /// let ev = green::Event::new();
    /// assert!(ev.wait().is_err()); // main, nothing else runs: would block forever
    /// ev.set();
    /// assert!(ev.wait().unwrap());
    /// ```
    pub fn wait(&self) -> Result<bool, BlockError> {
        self.wait_inner(None)
    }

    /// Like [`wait`](Event::wait) but gives up after `timeout`: `Ok(false)` then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = green::Event::new();
    /// assert_eq!(ev.wait_timeout(Duration::from_millis(5)), Ok(false));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, BlockError> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<bool, BlockError> {
        if self.is_set() {
            return Ok(true);
        }
        let since = self.0.waiters.generation();
        self.0.waiters.wait(since, timeout.map(deadline_after))
    }

    pub(crate) fn add_callback(&self, f: Box<dyn FnOnce()>) {
        if self.is_set() {
            f();
        } else {
            self.0.callbacks.borrow_mut().push(f);
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
