//! The per-thread trace hook (greenlet's `settrace`): a function called on every switch
//! and throw with the greenlet that ran and the one that runs next.
//!
//! Unset, it costs nothing on a switch: the trampoline already tests one flag of the
//! thread (`Thread::watched`, set while a monitor watches or a hook is set) and calls
//! [`switched`] only when it is set.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use crate::greenlet::Greenlet;
use crate::greenlet::error::payload_str;
use crate::greenlet::switch::Input;
use crate::greenlet::thread::{self, Context, Thread};
use crate::greenlet::word::{self, Word};

/// What a [`TraceHook`] is called for (greenlet's `"switch"` and `"throw"`).
///
/// ```
/// assert_ne!(green::TraceEvent::Switch, green::TraceEvent::Throw);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceEvent {
    /// The target resumes (or starts) with a value, or its wait ended.
    Switch,
    /// The target resumes with a panic raised at its switch point: a
    /// [`throw`](Greenlet::throw), a kill, a timeout, or a child's panic.
    Throw,
}

/// A trace hook for [`settrace`]: called with the event, the greenlet that ran last
/// (the origin) and the greenlet about to run (the target). A cheap clonable handle
/// (an `Rc`), bound to its thread.
///
/// The hook runs in the scheduler, between the two greenlets: it must not switch, park,
/// sleep or join (a switch panics, which is caught and reported as below; a park returns
/// [`BlockError::InHub`](crate::BlockError::InHub)). If the hook panics, the panic is
/// logged and the hook is removed; the switch goes on.
///
/// ```
/// use green::{TraceEvent, TraceHook};
/// let hook = TraceHook::new(|event, origin, target| {
///     if event == TraceEvent::Throw {
///         eprintln!("{origin:?} throws into {target:?}");
///     }
/// });
/// let previous = green::settrace(Some(hook));
/// green::settrace(previous);
/// ```
#[derive(Clone)]
pub struct TraceHook(Rc<HookFn>);

/// The function a [`TraceHook`] holds.
type HookFn = dyn Fn(TraceEvent, &Greenlet, &Greenlet);

impl TraceHook {
    /// Makes a hook of `f`.
    ///
    /// ```
    /// let hook = green::TraceHook::new(|_, _, _| {});
    /// assert!(green::settrace(Some(hook)).is_none());
    /// green::settrace(None);
    /// ```
    pub fn new(f: impl Fn(TraceEvent, &Greenlet, &Greenlet) + 'static) -> TraceHook {
        TraceHook(Rc::new(f))
    }

    /// Calls the hook: for a hook that chains to the one it replaced.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let n = Rc::new(Cell::new(0));
    /// let m = n.clone();
    /// let first = green::TraceHook::new(move |_, _, _| m.set(m.get() + 1));
    /// let main = green::getcurrent();
    /// first.call(green::TraceEvent::Switch, &main, &main);
    /// assert_eq!(n.get(), 1);
    /// ```
    pub fn call(&self, event: TraceEvent, origin: &Greenlet, target: &Greenlet) {
        (self.0)(event, origin, target)
    }
}

impl fmt::Debug for TraceHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHook({:p})", Rc::as_ptr(&self.0))
    }
}

/// The trace state of a thread (a field of `Thread`).
#[derive(Default)]
pub(crate) struct Trace {
    hook: RefCell<Option<TraceHook>>,
    /// The greenlet that ran last (the next event's origin): the running one, while a
    /// hook is set; `None` otherwise, so that no greenlet is kept alive by tracing.
    last: RefCell<Option<Greenlet>>,
    /// Whether the hook runs now (a switch from it is reported as such).
    pub(crate) in_hook: Cell<bool>,
}

/// Sets the calling thread's trace hook (`None` removes it); returns the previous one
/// (Python greenlet's `settrace`).
///
/// The hook is called on every switch between greenlets of the thread, with
/// [`TraceEvent::Switch`] or [`TraceEvent::Throw`], the greenlet that ran last and the
/// one about to run. The hub's loop is not a greenlet here: when a greenlet parks and
/// the hub later resumes another, that is one event, from the one that parked to the
/// one resumed. A switch of a greenlet to itself is no event. See [`TraceHook`] for
/// what the hook must not do.
///
/// Unset, tracing costs nothing measurable on a switch (the trampoline tests one flag
/// it tests anyway).
///
/// # Examples
///
/// ```
/// use green::{TraceEvent, TraceHook};
/// use std::{cell::RefCell, rc::Rc};
///
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// green::settrace(Some(TraceHook::new(move |event, origin, target| {
///     s.borrow_mut().push((event, origin.is_main(), target.is_main()));
/// })));
/// let g = green::Greenlet::new(|_: green::Value| ());
/// g.switch(());
/// green::settrace(None);
/// assert_eq!(
///     *seen.borrow(),
///     [(TraceEvent::Switch, true, false), (TraceEvent::Switch, false, true)]
/// );
/// ```
pub fn settrace(hook: Option<TraceHook>) -> Option<TraceHook> {
    thread::with(|t| {
        let last = hook.as_ref().map(|_| thread::current_greenlet());
        let old_last = t.trace.last.replace(last);
        let previous = t.trace.hook.replace(hook);
        t.update_watched();
        // Dropped after the state is consistent: a drop may run arbitrary code.
        drop(old_last);
        previous
    })
}

/// The calling thread's trace hook, if one is set (Python greenlet's `gettrace`).
///
/// ```
/// assert!(green::gettrace().is_none());
/// green::settrace(Some(green::TraceHook::new(|_, _, _| {})));
/// assert!(green::gettrace().is_some());
/// green::settrace(None);
/// ```
pub fn gettrace() -> Option<TraceHook> {
    thread::with(|t| t.trace.hook.borrow().clone())
}

impl Trace {
    /// Removes the hook and the origin it kept; returns both, to be dropped by the
    /// caller once the thread's state is consistent.
    pub(crate) fn clear(&self) -> (Option<TraceHook>, Option<Greenlet>) {
        (self.hook.take(), self.last.take())
    }

    /// Whether a hook is set.
    pub(crate) fn is_set(&self) -> bool {
        self.hook.borrow().is_some()
    }
}

/// The trampoline's slow path when the thread is watched: `g` is about to run, resumed
/// with `input`. Counts the switch for a monitor and calls the trace hook.
#[cold]
#[inline(never)]
pub(crate) fn switched(t: &Thread, g: &Greenlet, input: Word) {
    if t.monitored.get() {
        t.switch_log.count_switch();
        t.switch_log.record(g);
    }
    let Some(hook) = t.trace.hook.borrow().clone() else {
        return;
    };
    if t.trace.in_hook.get() {
        return;
    }
    let event = if word::is_rich(input) && input_is_throw(t) {
        TraceEvent::Throw
    } else {
        TraceEvent::Switch
    };
    let origin = t.trace.last.take().unwrap_or_else(|| g.clone());
    // In the scheduler's context, a switch, park or sleep from the hook is refused
    // before anything changes; the context the trampoline set is restored after.
    let context = thread::context();
    thread::set_context(Context::Scheduler);
    t.trace.in_hook.set(true);
    let r = catch_unwind(AssertUnwindSafe(|| hook.call(event, &origin, g)));
    t.trace.in_hook.set(false);
    thread::set_context(context);
    // The next event's origin, unless the hook removed itself.
    if t.trace.is_set() {
        drop(t.trace.last.replace(Some(g.clone())));
    }
    drop(origin);
    if let Err(p) = r {
        let msg = payload_str(p.as_ref()).unwrap_or("<non-string panic payload>");
        log::error!("green: the trace hook panicked (it is removed): {msg}");
        drop(p);
        // Removed only if it is still the one that panicked.
        let still = matches!(&*t.trace.hook.borrow(), Some(h) if Rc::ptr_eq(&h.0, &hook.0));
        if still {
            let removed = t.trace.clear();
            t.update_watched();
            drop(removed);
        }
    }
}

/// [`switched`] for the main greenlet, resumed with `input`; returns `input`.
#[cold]
#[inline(never)]
pub(crate) fn main_switched(t: &Thread, input: Word) -> Word {
    switched(t, &t.main, input);
    input
}

/// Whether the input waiting in the thread's side slot is a throw.
fn input_is_throw(t: &Thread) -> bool {
    let input = t.xfer_input.take();
    let throw = matches!(input, Some(Input::Throw(_)));
    t.xfer_input.set(input);
    throw
}
