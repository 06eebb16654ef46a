//! [`Event`]: a flag that greenlets wait for — gevent's `Event`.

use crate::greenlet::record::ParkLabel;
use std::cell::Cell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::registration::{CallbackHost, CallbackList, Registration};
use super::waiters::WakeAll;
use crate::greenlet::error::BlockError;
use crate::hub::timer::deadline_after;

struct Record {
    flag: Cell<bool>,
    waiters: WakeAll,
    /// One-shot callbacks of [`Waitable`](super::Waitable) registrations, each
    /// withdrawn when its [`Registration`] is dropped.
    callbacks: CallbackList,
}

impl CallbackHost for Record {
    fn callbacks(&self) -> &CallbackList {
        &self.callbacks
    }
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
pub struct Event(Rc<Record>);

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
        Event(Rc::new(Record {
            flag: Cell::new(false),
            waiters: WakeAll::default(),
            callbacks: CallbackList::default(),
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
        // Each callback runs even if one before it panics (a waiter must not miss the
        // event); then the first panic goes on (another one is logged).
        let mut first = None;
        for cb in self.0.callbacks.take_all() {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb)) {
                match first {
                    None => first = Some(p),
                    Some(_) => crate::greenlet::trampoline::log_panic(None, p.as_ref()),
                }
            }
        }
        if let Some(p) = first {
            std::panic::resume_unwind(p);
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
        let label = ParkLabel::new("event");
        self.0
            .waiters
            .wait(label, since, timeout.map(deadline_after))
    }

    /// Registers `f` to run when the event is set (at once if it is); dropping the
    /// registration withdraws it.
    pub(crate) fn add_callback(&self, f: Box<dyn FnOnce()>) -> Registration {
        if self.is_set() {
            f();
            return Registration::empty();
        }
        let host: Weak<Record> = Rc::downgrade(&self.0);
        self.0.callbacks.add(host, f)
    }

    /// How many callbacks are registered (tests).
    #[cfg(test)]
    pub(crate) fn callback_count(&self) -> usize {
        self.0.callbacks.len()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn dropped_registrations_leave_no_callbacks() {
        let ev = Event::new();
        for _ in 0..1000 {
            drop(ev.add_callback(Box::new(|| ())));
        }
        assert_eq!(ev.callback_count(), 0);
    }

    #[test]
    fn set_runs_the_kept_callbacks_in_order_and_empties_the_list() {
        let ev = Event::new();
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let regs: Vec<Registration> = (0..3)
            .map(|i| {
                let s = seen.clone();
                ev.add_callback(Box::new(move || s.borrow_mut().push(i)))
            })
            .collect();
        let mut regs = regs.into_iter();
        let (first, middle, last) = (regs.next(), regs.next(), regs.next());
        drop(middle);
        ev.set();
        assert_eq!(*seen.borrow(), [0, 2]);
        assert_eq!(ev.callback_count(), 0);
        // Dropping registrations that already ran, after a clear and a new one: the
        // new one stays.
        ev.clear();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let newer = ev.add_callback(Box::new(move || r.set(true)));
        drop((first, last));
        assert_eq!(ev.callback_count(), 1);
        ev.set();
        assert!(ran.get());
        drop(newer);
    }

    #[test]
    fn ten_thousand_timed_out_waits_leave_nothing_registered() {
        let ev = Event::new();
        let objs = [&ev];
        for _ in 0..10_000 {
            assert_eq!(ev.wait_timeout(Duration::ZERO), Ok(false));
            assert!(crate::api::sync::wait(&objs, None, Some(Duration::ZERO)).is_empty());
        }
        // A few that really park until their timer fires, one forgotten mid-way.
        for _ in 0..10 {
            assert_eq!(ev.wait_timeout(Duration::from_micros(50)), Ok(false));
            let mut it = crate::api::sync::iwait(&objs, Some(Duration::from_micros(50)));
            assert!(it.next().is_none());
            std::mem::forget(it);
        }
        assert_eq!(ev.callback_count(), 0);
        assert_eq!(ev.0.waiters.len(), 0);
    }

    #[test]
    fn a_set_event_runs_the_callback_at_once() {
        let ev = Event::new();
        ev.set();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        drop(ev.add_callback(Box::new(move || r.set(true))));
        assert!(ran.get());
        assert_eq!(ev.callback_count(), 0);
    }
}
