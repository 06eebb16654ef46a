//! Parking: the one blocking primitive every cooperative wait is built on.
//!
//! A greenlet that must wait makes an [`Unparker`] for itself, hands it to whoever will
//! wake it (a timer, the reactor, a queue, another greenlet), and calls [`park`]. The
//! hub then runs other greenlets until the `Unparker` is used or the deadline passes.
//!
//! Every park has a sequence number and an `Unparker` wakes only the park it was made
//! for: a stale one (from a wait that already ended) does nothing, so a waker that lost
//! a race needs no clean-up to be harmless.
//!
//! A kill or a timeout arrives at a park as an unwind (a panic carrying
//! [`GreenletExit`](crate::GreenletExit) or a timeout payload): keep waiter lists
//! consistent with guards whose `Drop` removes the waiter.
//!
//! # Examples
//!
//! A one-shot signal from one greenlet to another:
//!
//! ```
//! use green::park::{park, unparker, Unparker, Wake};
//! use std::{cell::RefCell, rc::Rc};
//!
//! let slot: Rc<RefCell<Option<Unparker>>> = Rc::default();
//! let s = slot.clone();
//! let waiter = green::spawn(move || {
//!     *s.borrow_mut() = Some(unparker());
//!     park(None).unwrap()
//! });
//! green::yield_now(); // the waiter runs and parks
//! assert!(slot.borrow_mut().take().unwrap().unpark());
//! assert_eq!(waiter.join().unwrap(), Wake::Unparked);
//! ```

use std::time::Instant;

use crate::greenlet::Greenlet;
use crate::greenlet::error::BlockError;
use crate::greenlet::record::{ParkLabel, State, Waiter};
pub use crate::greenlet::switch::Wake;
use crate::greenlet::switch::{self, Input};
use crate::greenlet::thread::{self, Context};
use crate::greenlet::trampoline;
use crate::greenlet::word::{self, Word};
use crate::hub::{Hub, budget, throw, timer, with_hub};

/// Wakes one park of one greenlet. Cheap to clone; using a stale one does nothing.
///
/// ```
/// let u = green::park::unparker();
/// assert!(u.greenlet().is_main());
/// ```
#[derive(Clone)]
pub struct Unparker {
    g: Greenlet,
    seq: u64,
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unparker")
            .field("greenlet", &self.g)
            .field("seq", &self.seq)
            .finish()
    }
}

/// An [`Unparker`] for the current greenlet's next park.
///
/// ```
/// let u = green::park::unparker();
/// assert!(u.is_current_park());
/// ```
#[inline]
pub fn unparker() -> Unparker {
    let g = crate::greenlet::getcurrent();
    let seq = g.0.core.park_seq.get();
    Unparker { g, seq }
}

impl From<Waiter> for Unparker {
    /// The unparker of the wait `w` names (a joiner slot's).
    fn from(w: Waiter) -> Unparker {
        Unparker { g: w.g, seq: w.seq }
    }
}

impl From<Unparker> for Waiter {
    fn from(u: Unparker) -> Waiter {
        Waiter { g: u.g, seq: u.seq }
    }
}

impl Unparker {
    /// Wakes the park this was made for, if it has not ended yet; returns whether it
    /// did. Waking a park that has not started yet makes it return at once.
    ///
    /// ```
    /// let u = green::park::unparker();
    /// assert!(u.unpark());       // before parking: the park will return at once
    /// assert!(!u.unpark());      // already woken
    /// green::park::park(None).unwrap();
    /// assert!(!u.unpark());      // that park is over
    /// ```
    pub fn unpark(&self) -> bool {
        self.wake(Wake::Unparked)
    }

    pub(crate) fn wake(&self, w: Wake) -> bool {
        if !self.can_wake() {
            return false;
        }
        self.g.0.set_pending(Input::Wake(w));
        with_hub(|h| h.push_ready(self.g.clone()));
        true
    }

    /// [`unpark`](Unparker::unpark) by value, for `h`'s own waiters: the handle moves
    /// into the ready queue instead of being cloned there and dropped here.
    #[inline]
    pub(crate) fn unpark_into(self, h: &Hub) -> bool {
        if !self.can_wake() {
            return false;
        }
        self.g.0.set_pending(Input::Wake(Wake::Unparked));
        h.push_ready(self.g);
        true
    }

    /// Ends the park this was made for by handing its greenlet over, to be resumed at
    /// once with the end of a park (`word::IN_UNPARKED`) rather than queued; `Err` with
    /// `self` if that park has ended (or its greenlet is queued or dead).
    #[inline]
    pub(crate) fn wake_directly(self) -> Result<Greenlet, Unparker> {
        if self.can_wake() {
            Ok(self.g)
        } else {
            Err(self)
        }
    }

    #[inline]
    fn can_wake(&self) -> bool {
        let inner = &self.g.0;
        inner.core.park_seq.get() == self.seq
            && inner.core.state.get() != State::Dead
            && !inner.has_pending()
    }

    /// Whether `self` was made for the park that `key` (from [`key`](Unparker::key))
    /// names.
    #[inline]
    pub(crate) fn is(&self, key: (*const (), u64)) -> bool {
        self.seq == key.1 && std::ptr::eq(std::rc::Rc::as_ptr(&self.g.0).cast(), key.0)
    }

    /// Names the park this was made for (its greenlet and sequence number), without
    /// keeping the greenlet alive.
    #[inline]
    pub(crate) fn key(&self) -> (*const (), u64) {
        (std::rc::Rc::as_ptr(&self.g.0).cast(), self.seq)
    }

    /// The greenlet this wakes.
    ///
    /// ```
    /// assert!(green::park::unparker().greenlet().ptr_eq(&green::getcurrent()));
    /// ```
    pub fn greenlet(&self) -> &Greenlet {
        &self.g
    }

    /// Whether the park this was made for has not ended yet.
    ///
    /// ```
    /// let u = green::park::unparker();
    /// u.unpark();
    /// green::park::park(None).unwrap();
    /// assert!(!u.is_current_park());
    /// ```
    pub fn is_current_park(&self) -> bool {
        self.g.0.core.park_seq.get() == self.seq
    }
}

/// Blocks the current greenlet until an [`Unparker`] made for this park wakes it, or
/// until `deadline`. Other greenlets run meanwhile.
///
/// Errors: [`BlockError::InHub`] when called from the hub (a timer callback or link);
/// [`BlockError::WouldBlockForever`] in the main greenlet when nothing could ever wake
/// it (no ready greenlet, no timer, no IO): gevent's `LoopExit`. A greenlet other than
/// main that waits for nothing stays parked (and main gets the error).
///
/// A kill or timeout raised in the greenlet while it is parked unwinds out of `park`.
///
/// ```
/// let err = green::park::park(None).unwrap_err();
/// assert_eq!(err, green::BlockError::WouldBlockForever);
/// ```
pub fn park(deadline: Option<Instant>) -> Result<Wake, BlockError> {
    park_as(deadline, ParkLabel::new("park"))
}

/// [`park`] with what it waits for, as [`format_run_info`](crate::format_run_info)
/// shows it. (The label is read only while the greenlet is parked: set at each park,
/// never cleared.)
pub(crate) fn park_as(deadline: Option<Instant>, label: ParkLabel) -> Result<Wake, BlockError> {
    // (`thread::with` first: this may be the thread's first use of green.)
    thread::with(|_| thread::with_current(|g| g.core.park_label.set(label)));
    park_inline(deadline)
}

/// Labels the park `u` is for (see [`park_as`]), for a caller on a hot path that
/// parks with [`park_inline`]: the record is at hand, no thread-local is read.
#[inline(always)]
pub(crate) fn label(u: &Unparker, label: ParkLabel) {
    u.g.0.core.park_label.set(label);
}

/// [`park`] without a label (the caller sets it with [`label`]), inlined into a caller
/// on a hot path (the reactor's wait): one stack frame and one call fewer between a
/// greenlet's read and its switch to the hub.
#[inline(always)]
pub(crate) fn park_inline(deadline: Option<Instant>) -> Result<Wake, BlockError> {
    if thread::in_scheduler() {
        return Err(BlockError::InHub);
    }
    throw::at_switch_point();
    let timer = deadline.map(|d| timer::add(d, timer::Action::Timeout(unparker())));
    let input = wait(word::REQ_PARK);
    if let Some(t) = timer {
        timer::cancel(t);
    }
    end_park(input)
}

/// Leaves the current greenlet (not the hub) to wait in the hub (`req` is
/// `word::REQ_PARK` or `word::REQ_YIELD`); returns the input word it is resumed with. A
/// greenlet suspends to the trampoline; the main greenlet runs the trampoline in place.
#[inline(always)]
pub(crate) fn wait(req: Word) -> Word {
    if thread::context() == Context::Greenlet {
        // The loop the greenlet suspends to asks the hub what runs next: it must be there
        // (a greenlet made with `Greenlet::new` may be the thread's first to wait).
        ensure_hub();
        switch::suspend(req)
    } else {
        main_waits(req)
    }
}

/// Installs the thread's hub if it is not yet: one load once it is.
#[inline(always)]
fn ensure_hub() {
    if !crate::hub::installed() {
        with_hub(|_| ());
    }
}

#[inline(never)]
fn main_waits(req: Word) -> Word {
    with_hub(|h| thread::with(|t| trampoline::main_waits(t, h, req)))
}

/// Lets every other ready greenlet run once, then returns (the work of `yield_now`, once
/// the caller checked it is not the hub). A kill unwinds from here.
#[inline(always)]
pub(crate) fn yield_here() {
    throw::at_switch_point();
    // The hub queues us behind every ready greenlet, then runs them.
    let input = wait(word::REQ_YIELD);
    // Cannot block forever (we were queued); a kill unwinds from here.
    if word::is_rich(input) {
        after_yield_rich(word::unpack_input(input));
    }
}

#[cold]
fn after_yield_rich(input: Input) {
    match input {
        Input::Throw(p) => throw::raise(p),
        // Main is queued when it yields, so the hub always has something to run: no
        // `LoopExit`. (Explicit switches into a yielding greenlet are refused.)
        Input::Value(_) | Input::Wake(_) | Input::LoopExit | Input::Refused(_) => {}
    }
}

/// Ends a park: later unparkers made for it are stale; a kill unwinds from here.
#[inline]
pub(crate) fn end_park(input: Word) -> Result<Wake, BlockError> {
    thread::with_current(|g| {
        g.core.park_seq.set(g.core.park_seq.get().wrapping_add(1));
        budget::restart(g);
    });
    match input {
        word::IN_UNPARKED => Ok(Wake::Unparked),
        word::IN_TIMED_OUT => Ok(Wake::TimedOut),
        w if word::is_rich(w) => end_park_rich(word::unpack_input(w)),
        // A value: a child of the parked greenlet returned into it (explicit switches
        // into a parked greenlet are refused). A spurious wake: callers check again.
        _ => Ok(Wake::Unparked),
    }
}

#[cold]
fn end_park_rich(input: Input) -> Result<Wake, BlockError> {
    match input {
        Input::Wake(w) => Ok(w),
        Input::Value(_) | Input::Refused(_) => Ok(Wake::Unparked),
        Input::Throw(p) => throw::raise(p),
        Input::LoopExit => Err(BlockError::WouldBlockForever),
    }
}
