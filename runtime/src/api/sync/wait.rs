//! Waiting for several objects at once: [`wait`], [`iwait`] and the [`Waitable`]
//! trait — gevent's `wait`/`iwait`. The callbacks they register are withdrawn through
//! [`Registration`]s when they return or unwind. Also [`JoinHandle::link_value`] and
//! [`JoinHandle::link_error`] (gevent's `link_value`/`link_exception`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{AsyncResult, BoundedSemaphore, Event, Lock, RLock, Registration, Semaphore};
use crate::api::spawn::{JoinHandle, LinkId};
use crate::greenlet::error::{BlockError, JoinError};
use crate::greenlet::record::ParkLabel;
use crate::hub::park::{Unparker, Wake, park_as, unparker};
use crate::hub::timer::deadline_after;

/// Something a greenlet can wait for with [`wait`] and [`iwait`]: a finished greenlet
/// ([`JoinHandle`]), a set [`Event`], a ready [`AsyncResult`], a [`Semaphore`],
/// [`BoundedSemaphore`], [`Lock`] or [`RLock`] that could be acquired without waiting
/// (gevent's semaphores are waitable too). Waiting for a lock does not acquire it: by
/// the time the waiter runs, another greenlet may have taken it; use `try_acquire`.
///
/// Implement it for your own types by delegating to one of these (return the inner
/// object's [`Registration`]), or by keeping callbacks yourself and returning a
/// [`Registration::new`] that withdraws one.
///
/// # Registrations are withdrawn when dropped
///
/// [`on_ready`](Waitable::on_ready) returns a [`Registration`]: dropping it withdraws
/// the callback if it has not run. [`wait`] and [`iwait`] drop theirs when they
/// return (a timeout, enough objects ready) or unwind (a kill, a [`Timeout`]), so
/// waiting again and again on a long-lived object leaves nothing behind on it.
///
/// A caller that wants its callback to stay until the object is ready, whatever
/// happens to the registration, calls [`Registration::detach`].
///
/// [`Timeout`]: crate::Timeout
///
/// # Semaphores and locks
///
/// ```
/// let lock = green::Lock::new();
/// let guard = lock.acquire().unwrap();
/// let l = lock.clone();
/// let waiter = green::spawn(move || green::wait(&[l], None, None).len());
/// green::yield_now();
/// assert!(!waiter.is_finished()); // held: not ready
/// drop(guard);
/// assert_eq!(waiter.join().unwrap(), 1);
/// assert!(!lock.locked()); // waiting did not acquire it
/// ```
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use green::Registration;
/// use green::Waitable;
///
/// // A waitable of your own, delegating to an event.
/// struct Door { open: green::Event }
/// impl Waitable for Door {
///     fn is_ready(&self) -> bool { self.open.is_ready() }
///     fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration { self.open.on_ready(f) }
/// }
///
/// let door = Door { open: green::Event::new() };
/// assert!(!door.is_ready());
/// let rang = Rc::new(Cell::new(false));
/// let r = rang.clone();
/// let reg = door.on_ready(Box::new(move || r.set(true)));
/// drop(reg); // withdrawn
/// door.open.set();
/// assert!(door.is_ready() && !rang.get());
/// ```
pub trait Waitable {
    /// Whether it is ready now.
    fn is_ready(&self) -> bool;

    /// Registers `f` to run once when it becomes ready (at once if it is ready, then
    /// returning [`Registration::empty`]). `f` may run in the hub: it must not block
    /// or switch.
    ///
    /// Dropping the returned [`Registration`] withdraws `f` if it has not run yet;
    /// [`Registration::detach`] keeps it registered.
    ///
    /// ```
    /// use green::Waitable;
    /// let h = green::spawn(|| ());
    /// let reg = h.on_ready(Box::new(|| println!("finished")));
    /// h.wait().unwrap(); // prints "finished"
    /// drop(reg);
    /// ```
    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration;
}

impl<T: 'static> Waitable for JoinHandle<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        super::registration::on_exit(self.greenlet(), f)
    }
}

impl Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        self.add_callback(f)
    }
}

impl<T, E> Waitable for AsyncResult<T, E> {
    fn is_ready(&self) -> bool {
        self.ready()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        self.event().add_callback(f)
    }
}

impl Waitable for Semaphore {
    fn is_ready(&self) -> bool {
        !self.locked()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        self.add_callback(f)
    }
}

impl Waitable for BoundedSemaphore {
    fn is_ready(&self) -> bool {
        !self.locked()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        self.as_semaphore().add_callback(f)
    }
}

impl Waitable for Lock {
    fn is_ready(&self) -> bool {
        !self.locked()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        self.as_semaphore().add_callback(f)
    }
}

/// Ready when free, or held by the current greenlet (which may acquire it again).
impl Waitable for RLock {
    fn is_ready(&self) -> bool {
        !self.locked() || self.is_owned()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        if self.is_owned() {
            f();
            return Registration::empty();
        }
        self.inner_lock().on_ready(f)
    }
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        (**self).on_ready(f)
    }
}

impl<W: Waitable + ?Sized> Waitable for Rc<W> {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }

    fn on_ready(&self, f: Box<dyn FnOnce()>) -> Registration {
        (**self).on_ready(f)
    }
}

struct Shared {
    ready: VecDeque<usize>,
    waiter: Option<Unparker>,
}

/// The iterator of [`iwait`]: the objects in the order they became ready.
///
/// It holds the [`Registration`]s of its callbacks: they are withdrawn when it ends
/// (every object yielded, or the timeout passed) or is dropped.
///
/// ```
/// let ev = green::Event::new();
/// let evs = [ev.clone()];
/// let mut it = green::iwait(&evs, Some(std::time::Duration::from_millis(1)));
/// assert!(it.next().is_none()); // timed out: nothing is left registered on `ev`
/// ```
pub struct IWait<'a, W> {
    objects: &'a [W],
    shared: Rc<RefCell<Shared>>,
    registrations: Vec<Registration>,
    yielded: usize,
    deadline: Option<Instant>,
}

/// Yields `objects` in the order they become ready (the ready ones first, in slice
/// order), until all have been yielded or `timeout` passes (gevent's `iwait`).
///
/// Mix types with `&dyn Waitable`. The callbacks registered on the objects are
/// withdrawn when the iterator ends or is dropped (see [`Waitable`]).
///
/// # Panics
///
/// When the iterator has to wait in the hub (a timer callback or a link), which must
/// not wait or switch (as [`sleep`](crate::sleep) does). [`wait`] too.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let hs: Vec<_> = [30u64, 10, 20].into_iter().map(|ms| green::spawn(move || {
///     green::sleep(Duration::from_millis(ms));
///     ms
/// })).collect();
/// let order: Vec<u64> = green::iwait(&hs, None).map(|h| h.value().unwrap()).collect();
/// assert_eq!(order, [10, 20, 30]);
/// ```
pub fn iwait<W: Waitable>(objects: &[W], timeout: Option<Duration>) -> IWait<'_, W> {
    let shared = Rc::new(RefCell::new(Shared {
        ready: VecDeque::new(),
        waiter: None,
    }));
    let mut registrations = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        let s = shared.clone();
        let reg = o.on_ready(Box::new(move || {
            let u = {
                let mut s = s.borrow_mut();
                s.ready.push_back(i);
                s.waiter.take()
            };
            if let Some(u) = u {
                u.unpark();
            }
        }));
        registrations.push(reg);
    }
    IWait {
        objects,
        shared,
        registrations,
        yielded: 0,
        deadline: timeout.map(deadline_after),
    }
}

impl<'a, W> Iterator for IWait<'a, W> {
    type Item = &'a W;

    fn next(&mut self) -> Option<&'a W> {
        if self.yielded == self.objects.len() {
            return None;
        }
        loop {
            let next = self.shared.borrow_mut().ready.pop_front();
            if let Some(i) = next {
                self.yielded += 1;
                if self.yielded == self.objects.len() {
                    self.withdraw();
                }
                return Some(&self.objects[i]);
            }
            self.shared.borrow_mut().waiter = Some(unparker());
            match park_as(self.deadline, ParkLabel::new("wait/iwait")) {
                Ok(Wake::Unparked) => continue,
                Err(BlockError::InHub) => crate::hub::in_hub_panic("wait/iwait"),
                Ok(Wake::TimedOut) | Err(BlockError::WouldBlockForever) => {
                    // A last look: something may have become ready meanwhile.
                    let next = self.shared.borrow_mut().ready.pop_front();
                    match next {
                        Some(i) => {
                            self.yielded += 1;
                            return Some(&self.objects[i]);
                        }
                        None => {
                            // Over: the other objects' callbacks go now, not when the
                            // iterator is dropped.
                            self.withdraw();
                            return None;
                        }
                    }
                }
            }
        }
    }
}

impl<W> IWait<'_, W> {
    /// Withdraws the callbacks still registered (those that ran are no-ops).
    fn withdraw(&mut self) {
        // Taken out first: dropping them runs code of the objects' (`Registration::new`).
        drop(std::mem::take(&mut self.registrations));
    }
}

impl<W> fmt::Debug for IWait<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IWait")
            .field("objects", &self.objects.len())
            .field("yielded", &self.yielded)
            .finish()
    }
}

/// Waits until `count` of `objects` (all of them with `None`) are ready, or `timeout`
/// passes; returns the ready ones in the order they became ready (gevent's `wait`).
/// Nothing stays registered on the objects once it returns (see [`Waitable`]).
///
/// ```
/// use std::time::Duration;
/// let quick = green::spawn(|| green::sleep(Duration::from_millis(1)));
/// let slow = green::spawn(|| green::sleep(Duration::from_secs(9)));
/// let hs = [quick, slow];
/// let done = green::wait(&hs, Some(1), None);
/// assert_eq!(done.len(), 1);
/// assert!(done[0].is_finished());
/// assert!(green::wait(&hs, None, Some(Duration::from_millis(5))).len() == 1);
/// hs[1].kill();
/// ```
pub fn wait<W: Waitable>(
    objects: &[W],
    count: Option<usize>,
    timeout: Option<Duration>,
) -> Vec<&W> {
    let n = count.unwrap_or(objects.len()).min(objects.len());
    iwait(objects, timeout).take(n).collect()
}

/// Parks until `w` is ready or `deadline` passes; whether it is ready. The callback it
/// registers is withdrawn when it returns or unwinds. `label` says what it waits for,
/// for the dump.
pub(crate) fn wait_ready<W: Waitable + ?Sized>(
    w: &W,
    deadline: Option<Instant>,
    label: ParkLabel,
) -> Result<bool, BlockError> {
    loop {
        if w.is_ready() {
            return Ok(true);
        }
        let u = unparker();
        let reg = w.on_ready(Box::new(move || {
            u.unpark();
        }));
        let r = park_as(deadline, label);
        drop(reg);
        if w.is_ready() {
            return Ok(true);
        }
        match r? {
            Wake::TimedOut => return Ok(false),
            // Woken, but taken again before we ran (or a spurious wake): wait again.
            Wake::Unparked => {}
        }
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Registers `f` to run in the hub with the value if the greenlet returns one
    /// (gevent's `link_value`); returns the link's id for
    /// [`unlink`](JoinHandle::unlink). See [`link`](JoinHandle::link).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let h = green::spawn(|| 4);
    /// h.link_value(move |v| s.set(*v));
    /// h.wait().unwrap();
    /// assert_eq!(seen.get(), 4);
    /// ```
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static) -> LinkId {
        self.link(move |r| {
            if let Ok(v) = r {
                f(v)
            }
        })
    }

    /// Registers `f` to run in the hub with the error if the greenlet panics or is
    /// killed (gevent's `link_exception`); returns the link's id for
    /// [`unlink`](JoinHandle::unlink). See [`link`](JoinHandle::link).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let failed = Rc::new(Cell::new(false));
    /// let f = failed.clone();
    /// let h = green::spawn(|| panic!("oops"));
    /// h.link_error(move |e| f.set(e.is_panic()));
    /// let _ = h.wait();
    /// assert!(failed.get());
    /// ```
    pub fn link_error(&self, f: impl FnOnce(&JoinError) + 'static) -> LinkId {
        self.link(move |r| {
            if let Err(e) = r {
                f(e)
            }
        })
    }
}
