//! Layer 1, greenlets: [`Greenlet`], explicit switching and parents — Python's
//! `greenlet` — with the stacks they run on, the values they pass and their records.
//!
//! This layer never names the hub, spawning or the synchronisation primitives: what it
//! needs of a scheduler it asks through [`sched::Scheduler`]. `throw` and `kill` are
//! methods of [`Greenlet`] defined by the hub's kill delivery (`hub/throw.rs`).

pub(crate) mod dump;
pub(crate) mod error;
pub(crate) mod outcome;
pub(crate) mod record;
pub(crate) mod sched;
pub(crate) mod stack;
pub(crate) mod switch;
pub(crate) mod thread;
pub(crate) mod trace;
pub(crate) mod trampoline;
pub(crate) mod value;
pub(crate) mod word;

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::ptr;
use std::rc::Rc;

use corosensei::{Coroutine, Yielder};

use crate::greenlet::error::{ParentError, SwitchError};
use crate::greenlet::stack::StackError;
use crate::greenlet::stack::overflow::RunningInfo;
use crate::greenlet::value::Value;
use record::{ExitCallback, KeyedExit, Kind, Record, State};
use switch::Input;
use thread::Thread;

pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// A greenlet: a function running on its own stack, which switches explicitly to other
/// greenlets — Python's `greenlet.greenlet`.
///
/// `Greenlet` is a cheap, clonable handle (an `Rc`). It is bound to the thread that
/// created it and is therefore neither `Send` nor `Sync`: switching to a greenlet of
/// another thread cannot be written.
///
/// - [`Greenlet::new`] creates a greenlet that has not started;
/// - [`switch`](Greenlet::switch) starts it (the first switch passes the argument of its
///   function) or resumes it where it last switched away, and returns the value that the
///   next greenlet switching back passes;
/// - when the function returns, its value is switched into the greenlet's **parent**
///   (by default its creator); when it panics, the panic resumes in the parent;
/// - switching into a dead greenlet goes to its nearest live ancestor;
/// - [`throw`](Greenlet::throw) raises [`GreenletExit`](crate::GreenletExit) at the
///   greenlet's switch point, unwinding it (destructors run); dropping the last handle
///   to a suspended greenlet unwinds it the same way, and so does the end of its thread
///   (when the thread's state is dropped, among its thread-locals: see the guide, "When
///   a thread ends").
///
/// # Examples
///
/// Two greenlets that switch to each other by hand (`eat` and `play_phone`):
///
/// ```
/// use green::{Greenlet, Value};
/// use std::{cell::RefCell, rc::Rc};
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default(); // gr1, known to play_phone
///
/// let (l, s) = (log.clone(), slot.clone());
/// let gr2 = Greenlet::new(move |name: Value| {
///     l.borrow_mut().push(format!("{name} play 1"));
///     let gr1 = s.borrow().clone().unwrap();
///     gr1.switch(());
///     l.borrow_mut().push(format!("{name} play 2"));
/// });
/// let (l, g2) = (log.clone(), gr2.clone());
/// let gr1 = Greenlet::new(move |name: Value| {
///     l.borrow_mut().push(format!("{name} eat food 1"));
///     g2.switch("alex");
///     l.borrow_mut().push(format!("{name} eat food 2"));
///     g2.switch(());
/// });
/// *slot.borrow_mut() = Some(gr1.clone());
/// gr1.switch("egon"); // the first switch passes `name`
/// assert_eq!(
///     *log.borrow(),
///     ["egon eat food 1", "alex play 1", "egon eat food 2", "alex play 2"]
/// );
/// ```
pub struct Greenlet(pub(crate) ManuallyDrop<Rc<Record>>);

impl Clone for Greenlet {
    #[inline]
    fn clone(&self) -> Greenlet {
        Greenlet::from_rc(Rc::clone(&self.0))
    }
}

impl Drop for Greenlet {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self.0` is not used again (this is `drop`); it is moved out or
        // dropped exactly once below.
        let rc = unsafe { ManuallyDrop::take(&mut self.0) };
        if Rc::strong_count(&rc) == 1 {
            last_handle(rc);
        }
        // (Otherwise `rc` is dropped here: a decrement. This stays small enough to be
        // inlined into every drop glue that holds a handle.)
    }
}

/// Drops the last handle to a greenlet: a dead greenlet's record is kept for reuse.
#[cold]
#[inline(never)]
fn last_handle(rc: Rc<Record>) {
    if rc.core.state.get() == State::Dead {
        record::recycle(rc);
    }
}

impl Greenlet {
    #[inline(always)]
    pub(crate) fn from_rc(rc: Rc<Record>) -> Greenlet {
        Greenlet(ManuallyDrop::new(rc))
    }

    /// The handle as its `Rc`, without dropping it (`word::set_target`).
    #[inline(always)]
    pub(crate) fn into_rc(self) -> Rc<Record> {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so its `Rc` is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut me.0) }
    }

    /// Creates a greenlet that will run `f` when first switched into; `f` receives the
    /// value passed by that first switch. Its parent is the current greenlet.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated (see [`Greenlet::try_new`] for the fallible form).
    ///
    /// ```
    /// let g = green::Greenlet::new(|x: green::Value| x.get::<i32>().unwrap() * 2);
    /// assert!(!g.started());
    /// assert_eq!(g.switch(21).get::<i32>(), Ok(42));
    /// assert!(g.dead());
    /// ```
    #[track_caller]
    pub fn new<F, R>(f: F) -> Greenlet
    where
        F: FnOnce(Value) -> R + 'static,
        R: Any,
    {
        match Greenlet::try_new(f) {
            Ok(g) => g,
            Err(e) => panic!("green: cannot create a greenlet: {e}"),
        }
    }

    /// Like [`Greenlet::new`], but reports a failure to allocate the stack as an error.
    ///
    /// ```
    /// let g = green::Greenlet::try_new(|_: green::Value| "done").unwrap();
    /// assert_eq!(g.switch(()).get::<&str>(), Ok("done"));
    /// ```
    #[track_caller]
    pub fn try_new<F, R>(f: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: Any,
    {
        let at = Location::caller();
        thread::with(|t| Greenlet::create(t, f, None, None, None, at))
    }

    /// Creates a greenlet of the thread `t` with an optional name, stack size and parent
    /// (`None`: the current greenlet); `at` is where the user asked for it.
    #[inline]
    pub(crate) fn create<F, R>(
        t: &Thread,
        f: F,
        name: Option<String>,
        stack_size: Option<usize>,
        parent: Option<Greenlet>,
        at: &'static Location<'static>,
    ) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: Any,
    {
        let size = stack_size.unwrap_or_else(|| t.stack_size.get());
        let stack = t.stacks.borrow_mut().get(size)?;
        let parent = parent.unwrap_or_else(thread::current_greenlet);
        let id = thread::next_id();
        let (guard_lo, guard_hi) = stack.guard_range();
        let size = stack.size();
        let co: record::Coro = Coroutine::with_stack(stack, move |y: &Yielder<usize, usize>, w| {
            switch::set_yielder(y);
            let arg = match crate::greenlet::word::unpack_input(w) {
                Input::Value(v) => v,
                // The trampoline never starts a greenlet with a throw (it kills it
                // unstarted).
                _ => Value::none(),
            };
            let r = catch_unwind(AssertUnwindSafe(move || Value::new(f(arg))));
            // A kill deferred by a monkey-patched call that the function never re-raised
            // decides the outcome, even over a panic that followed it (such as an
            // `unwrap()` of the failed call's error). (Held throws do not: they go
            // with the greenlet.)
            let r = match take_interrupting() {
                Some(p) => Err(p),
                None => r,
            };
            // A spawned greenlet keeps its outcome in its record, for its `JoinHandle`;
            // any other goes to the trampoline, for the parent. (A kill, `GreenletExit`,
            // becomes a value for the parent there.)
            let for_parent = thread::with_current(move |me| {
                if me.cold.outcome.is_kept() {
                    me.cold.outcome.store(r);
                    None
                } else {
                    Some(r)
                }
            });
            if let Some(r) = for_parent {
                word::put_output(r);
            }
            0
        });
        let name: Option<Box<str>> = name.map(Into::into);
        let (name_ptr, name_len) = name
            .as_deref()
            .map_or((ptr::null(), 0), |n| (n.as_ptr(), n.len()));
        let mut info = RunningInfo::new(guard_lo, guard_hi, id, size);
        info.name_ptr = name_ptr;
        info.name_len = name_len;
        // A dead greenlet's record if one is kept, else a new one.
        let mut rc = Record::for_greenlet(&t.records);
        let Some(rec) = Rc::get_mut(&mut rc) else {
            unreachable!("green: a kept greenlet record has other handles");
        };
        rec.core.start(id, co);
        let cold = &mut *rec.cold;
        *cold.parent.get_mut() = Some(parent);
        cold.name = name;
        cold.spawned_at = Some(at);
        cold.info = info;
        Ok(Greenlet::from_rc(rc))
    }

    /// Switches to this greenlet, passing `arg`; returns the value passed by whichever
    /// greenlet switches back to the caller (or the value a child returns).
    ///
    /// - The first switch into a greenlet starts its function with `arg`.
    /// - Switching to the current greenlet returns `arg` at once.
    /// - Switching to a dead greenlet switches to its nearest live ancestor.
    /// - If a greenlet whose parent is the caller panics, the panic resumes here.
    /// - A greenlet **parked in the hub** (in [`sleep`](crate::sleep), IO, a wait for a
    ///   lock, an event, a queue or a join, [`park`](crate::park::park)) or yielding
    ///   ([`yield_now`](crate::yield_now)) cannot be switched into: only the hub resumes
    ///   it, when its wait ends (or with a kill or a timeout). Such a switch is refused
    ///   before anything runs, and the target's wait is left untouched (gevent raises
    ///   "Invalid switch" there). [`try_switch`](Greenlet::try_switch) reports it as a
    ///   [`SwitchError`]; `switch` panics with the same message. Greenlets that
    ///   switched away explicitly (with `switch`) can always be switched into.
    ///
    /// # Panics
    ///
    /// Re-raises a child's panic (see above). Also panics, with the message of
    /// [`SwitchError`], when called from the hub itself (a timer callback or a link) and
    /// when the target is parked in the hub or yielding; and — in the main greenlet —
    /// when nothing could ever switch back (gevent's `LoopExit`).
    ///
    /// ```
    /// use green::{getcurrent, Greenlet, Value};
    /// let main = getcurrent();
    /// let g = Greenlet::new(move |a: Value| {
    ///     let b = main.switch(a.get::<i32>().unwrap() + 1); // back to main with 2
    ///     b.get::<i32>().unwrap() * 10                      // returned to main: 30
    /// });
    /// assert_eq!(g.switch(1).get::<i32>(), Ok(2));
    /// assert_eq!(g.switch(3).get::<i32>(), Ok(30));
    /// ```
    #[inline(always)]
    pub fn switch<A: Any>(&self, arg: A) -> Value {
        switch::switch_value(self, Value::new(arg))
    }

    /// Like [`switch`](Greenlet::switch), but a switch that cannot happen is reported
    /// instead of panicking: [`SwitchError::InHub`] when called from the hub (a timer
    /// callback or a link), [`SwitchError::Parked`] or [`SwitchError::Yielded`] when this
    /// greenlet waits in the hub (its wait is left untouched; `arg` is dropped). A
    /// child's panic is still re-raised, and `LoopExit` still panics in the main
    /// greenlet, as with `switch`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sleeper = green::spawn(|| green::sleep(Duration::from_millis(5)));
    /// green::yield_now(); // it parks in its sleep
    /// let err = sleeper.greenlet().try_switch(()).unwrap_err();
    /// assert!(matches!(err, green::SwitchError::Parked { .. }));
    /// sleeper.join().unwrap(); // it slept its whole 5 ms
    ///
    /// let g = green::Greenlet::new(|x: green::Value| x.get::<i32>().unwrap() + 1);
    /// assert_eq!(g.try_switch(1).unwrap().get::<i32>(), Ok(2));
    /// ```
    pub fn try_switch<A: Any>(&self, arg: A) -> Result<Value, SwitchError> {
        switch::try_switch_value(self, Value::new(arg))
    }

    /// Whether the greenlet has finished (returned, panicked or was killed).
    ///
    /// ```
    /// let g = green::Greenlet::new(|_: green::Value| ());
    /// assert!(!g.dead());
    /// g.switch(());
    /// assert!(g.dead());
    /// ```
    pub fn dead(&self) -> bool {
        self.0.core.state.get() == State::Dead
    }

    /// Whether the greenlet has been switched into at least once (dead ones included).
    ///
    /// ```
    /// let g = green::Greenlet::new(|_: green::Value| ());
    /// assert!(!g.started());
    /// g.switch(());
    /// assert!(g.started());
    /// ```
    pub fn started(&self) -> bool {
        self.0.core.state.get() != State::Fresh
    }

    /// Whether this is the thread's main greenlet.
    ///
    /// ```
    /// assert!(green::getcurrent().is_main());
    /// ```
    pub fn is_main(&self) -> bool {
        self.0.core.kind == Kind::Main
    }

    /// Whether this is the hub (the parent of greenlets made by [`spawn`](crate::spawn())).
    ///
    /// ```
    /// let h = green::spawn(|| green::getcurrent().parent().unwrap().is_hub());
    /// assert!(h.join().unwrap());
    /// ```
    pub fn is_hub(&self) -> bool {
        self.0.core.kind == Kind::Hub
    }

    /// Whether this greenlet is the one running the caller's code.
    ///
    /// ```
    /// assert!(green::getcurrent().is_current());
    /// ```
    pub fn is_current(&self) -> bool {
        thread::is_current(self)
    }

    /// The parent: where the greenlet's return value (or panic) goes. `None` only for
    /// the main greenlet. Greenlets made by [`spawn`](crate::spawn()) have the hub as parent.
    ///
    /// To switch to the current greenlet's parent, take the parent in a statement of
    /// its own: in `getcurrent().parent().unwrap().switch(x)`, the handle `getcurrent()`
    /// returns lives until the end of the statement, across the switch, so a handle to
    /// the greenlet stays on its own stack while it is switched away, and dropping
    /// every other handle never unwinds it.
    ///
    /// ```
    /// let main = green::getcurrent();
    /// let g = green::Greenlet::new(|_: green::Value| {
    ///     let parent = green::getcurrent().parent().unwrap(); // not across the switch
    ///     parent.switch("hello");
    /// });
    /// assert_eq!(g.parent(), Some(main));
    /// assert_eq!(g.switch(()).get::<&str>(), Ok("hello"));
    /// ```
    pub fn parent(&self) -> Option<Greenlet> {
        self.0.cold.parent.borrow().clone()
    }

    /// Changes the parent. Refused with [`ParentError::Cycle`] if `parent` is this
    /// greenlet or one of its descendants, and with [`ParentError::Root`] for the main
    /// greenlet and the hub.
    ///
    /// ```
    /// use green::{Greenlet, Value};
    /// let a = Greenlet::new(|_: Value| ());
    /// let b = Greenlet::new(|_: Value| 5);
    /// b.set_parent(&a).unwrap();
    /// assert_eq!(b.parent(), Some(a));
    /// ```
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), ParentError> {
        if self.0.core.kind != Kind::Coro {
            return Err(ParentError::Root);
        }
        let mut p = Some(parent.clone());
        while let Some(g) = p {
            if Rc::ptr_eq(&g.0, &self.0) {
                return Err(ParentError::Cycle);
            }
            p = g.parent();
        }
        *self.0.cold.parent.borrow_mut() = Some(parent.clone());
        Ok(())
    }

    /// A number unique among the greenlets of the process.
    ///
    /// ```
    /// let a = green::Greenlet::new(|_: green::Value| ());
    /// assert_ne!(a.id(), green::getcurrent().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.0.core.id
    }

    /// The greenlet's name, if it was given one (see [`Builder`](crate::Builder)).
    ///
    /// ```
    /// assert_eq!(green::getcurrent().name(), Some("main"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.0.cold.name.as_deref()
    }

    /// Whether both handles name the same greenlet.
    ///
    /// ```
    /// let g = green::getcurrent();
    /// assert!(g.ptr_eq(&green::getcurrent()));
    /// ```
    pub fn ptr_eq(&self, other: &Greenlet) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Registers `f` to run in the hub when this greenlet dies (at once if it is dead).
    pub(crate) fn on_exit(&self, f: ExitCallback) {
        self.on_exit_keyed(0, f);
    }

    /// [`on_exit`](Greenlet::on_exit) with a key (not 0) to withdraw `f` by, until it
    /// runs ([`remove_exit`](Greenlet::remove_exit)); returns whether `f` was kept (the
    /// greenlet is alive), `false` when it ran at once.
    pub(crate) fn on_exit_keyed(&self, key: u64, f: ExitCallback) -> bool {
        if self.dead() {
            f(self);
            false
        } else {
            self.0.cold.on_exit.borrow_mut().push_back((key, f));
            true
        }
    }

    /// Withdraws the exit callbacks registered with `key` (all those with any key for
    /// `None`) that have not run; returns how many. They are dropped after the list's
    /// borrow ends (dropping one may run user code).
    pub(crate) fn remove_exit(&self, key: Option<u64>) -> usize {
        let matches = |k: u64| k != 0 && key.is_none_or(|key| key == k);
        let mut removed: Vec<KeyedExit> = Vec::new();
        {
            let mut list = self.0.cold.on_exit.borrow_mut();
            for e in std::mem::take(&mut *list) {
                if matches(e.0) {
                    removed.push(e);
                } else {
                    list.push_back(e);
                }
            }
        }
        removed.len()
    }

    /// Whether an exit callback with a key (a link) waits to run.
    pub(crate) fn has_keyed_exit(&self) -> bool {
        self.0.cold.on_exit.borrow().iter().any(|(k, _)| *k != 0)
    }

    /// The nearest live ancestor (the hub or main at worst).
    pub(crate) fn live_parent(&self) -> Greenlet {
        let mut p = self.parent();
        loop {
            match p {
                Some(g) if g.dead() => p = g.parent(),
                Some(g) => return g,
                None => return thread::with(|t| t.main.clone()),
            }
        }
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

impl Eq for Greenlet {}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Greenlet");
        d.field("id", &self.0.core.id);
        if let Some(n) = &self.0.cold.name {
            d.field("name", n);
        }
        d.field("state", &self.0.core.state.get()).finish()
    }
}

/// The running greenlet: the thread's main greenlet when called from its own code, the
/// hub when called from a timer callback or link.
///
/// ```
/// let main = green::getcurrent();
/// assert!(main.is_main());
/// let h = green::spawn(|| green::getcurrent().is_main());
/// assert!(!h.join().unwrap());
/// ```
#[inline]
pub fn getcurrent() -> Greenlet {
    thread::with(|_| thread::current_greenlet())
}

/// A throw deferred for the current greenlet (by a hooked call it made fail) that decides
/// its outcome when its function returns; one load when no greenlet needs that.
#[inline(always)]
fn take_interrupting() -> Option<Payload> {
    if !thread::unusual() {
        return None;
    }
    thread::with(|t| t.scheduler().take_interrupting())
}
