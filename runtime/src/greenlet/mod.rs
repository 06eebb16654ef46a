//! [`Greenlet`]: explicit switching, parents, throw and kill — Python's `greenlet`.

pub(crate) mod error;
pub(crate) mod records;
pub mod stack;
pub(crate) mod switch;
pub(crate) mod value;
pub(crate) mod word;

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::{Coroutine, Yielder};

use crate::greenlet::error::{ParentError, SwitchError};
use crate::greenlet::stack::overflow::RunningInfo;
use crate::greenlet::stack::{GreenStack, StackError};
use crate::greenlet::value::Value;
use crate::hub::{self, with_hub};
use switch::Input;
use word::Word;

/// A greenlet's coroutine: only a word crosses each switch (see `word`).
pub(crate) type Coro = Coroutine<usize, usize, usize, GreenStack>;
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Greenlet ids are handed to threads in blocks of `ID_BLOCK`, so that creating a
/// greenlet costs no atomic read-modify-write (tens of cycles).
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);
const ID_BLOCK: u64 = 1 << 16;

thread_local! {
    /// The rest of this thread's block of ids: (next, end).
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// The newest of this thread's greenlet records (null: none), each linked to the
    /// next older one: every record a greenlet with a stack can live in, the hub's
    /// kept ones included. A record is listed when it is allocated and unlisted when it
    /// is freed (`Inner::drop`), so a spawn that reuses a kept record costs nothing
    /// here. The hub walks the list when its thread ends, to unwind the greenlets still
    /// alive ([`live_greenlets`]), even those only their own stack keeps alive (a wait
    /// on an event that only the waiter holds). A `const` thread-local without
    /// destructor: usable while the thread's thread-locals are destroyed.
    static RECORDS: Cell<*const Inner> = const { Cell::new(ptr::null()) };
}

/// A new record for a greenlet, listed in [`RECORDS`].
fn new_record(inner: Inner) -> Rc<Inner> {
    let rc = Rc::new(inner);
    let me = Rc::as_ptr(&rc);
    RECORDS.with(|head| {
        let next = head.get();
        rc.records_next.set(next);
        if !next.is_null() {
            // SAFETY: a listed record is alive: it is unlisted first thing when freed.
            unsafe { (*next).records_prev.set(me) };
        }
        head.set(me);
    });
    rc
}

/// Takes `g` off [`RECORDS`] (nothing if it is not listed).
fn unlist_record(g: &Inner) {
    let (prev, next) = (g.records_prev.get(), g.records_next.get());
    RECORDS.with(|head| {
        if prev.is_null() {
            if !ptr::eq(head.get(), g) {
                // Not listed (the main greenlet, the hub).
                return;
            }
            head.set(next);
        } else {
            // SAFETY: listed records are alive (see `new_record`).
            unsafe { (*prev).records_next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).records_prev.set(prev) };
        }
    });
    g.records_prev.set(ptr::null());
    g.records_next.set(ptr::null());
}

/// Handles to every greenlet of this thread that is alive and not running: started and
/// suspended (explicitly, parked or yielded), or not started yet. For the hub to unwind
/// them when the thread ends.
pub(crate) fn live_greenlets() -> Vec<Greenlet> {
    let mut live = Vec::new();
    let mut p = RECORDS.with(|head| head.get());
    while !p.is_null() {
        // SAFETY: listed records are alive (see `new_record`), and nothing runs
        // meanwhile that could free one.
        let g = unsafe { &*p };
        if g.state.get().resumable() || g.state.get() == State::Fresh {
            // SAFETY: `p` points into a live `Rc` (above): one more strong handle.
            live.push(unsafe {
                Rc::increment_strong_count(p);
                Greenlet::from_rc(Rc::from_raw(p))
            });
        }
        p = g.records_next.get();
    }
    live
}

/// A new greenlet id, unique in the process.
#[inline]
fn next_id() -> u64 {
    IDS.with(|c| {
        let (next, end) = c.get();
        if next < end {
            c.set((next + 1, end));
            return next;
        }
        let start = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
        c.set((start + 1, start + ID_BLOCK));
        start
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The thread's own code.
    Main,
    /// The scheduler (never runs user code of its own).
    Hub,
    /// A greenlet with its own stack.
    Coro,
}

// The three suspended states come first: `resumable` is then one comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Switched away from explicitly (or by its child's death); any switch resumes it.
    Suspended,
    /// Parked in the hub (a wait on an `Unparker`: a sleep, IO, a lock, a join, ...):
    /// only the hub resumes it, with the end of its park, a kill or a timeout.
    Parked,
    /// Yielded (`yield_now`): waits in the hub's ready queue, resumed only by the hub.
    Yielded,
    /// Created, never switched into.
    Fresh,
    /// Its code is running now.
    Running,
    /// Its function returned, panicked or was killed.
    Dead,
}

impl State {
    /// Whether it is suspended mid-function (explicitly, parked or yielded).
    #[inline(always)]
    pub(crate) fn resumable(self) -> bool {
        matches!(self, State::Suspended | State::Parked | State::Yielded)
    }

    /// Whether it waits in the hub (parked or yielded): an explicit switch into it is
    /// refused (see `switch::refuse_switch`).
    #[inline(always)]
    pub(crate) fn in_hub(self) -> bool {
        matches!(self, State::Parked | State::Yielded)
    }
}

// Field order is layout (`repr(C)`): what every switch touches comes first, right after
// the `Rc`'s counts — the coroutine (its saved stack pointer and stack base), the state
// and queue flags, the pending input, the yielder, the park number and where the last
// park's frames are (which the hub prefetches, see `crate::hub::prefetch`), about two cache
// lines. With a thousand greenlets taking turns the records are cold and each line is a
// cache miss. Cachegrind's cache simulation (D1 read misses): a 1000-greenlet
// `yield_now` ring went from 4.9 to 3.2 per yield with this order (compiler's order
// before), and the 1000-connection `socket_concurrency` example from 44.4 to 42.6 per
// message. Aligning the record to a cache line (`align(64)`) put the counts in a line
// of their own, touched by every clone: 46.6 per message.
#[repr(C)]
pub(crate) struct Inner {
    /// The coroutine; `None` once dead. Only the driver touches it while the greenlet
    /// lives (it resumes it in place), and `Drop` after.
    pub(crate) co: UnsafeCell<Option<Coro>>,
    pub(crate) state: Cell<State>,
    pub(crate) kind: Kind,
    /// Whether `pending` is set, i.e. the greenlet is in the ready queue.
    queued: Cell<bool>,
    /// How many more socket operations it makes before its fairness budget's next check
    /// (`crate::hub::budget`); restarted whenever its park number advances. A record reused
    /// for a new greenlet starts with what the last one left: at worst an early turn.
    /// (In the same hole.)
    pub(crate) budget: Cell<u16>,
    /// What to resume it with when the hub picks it, as a word (see `set_pending` and
    /// `crate::greenlet::word`); meaningful only while `queued`.
    pending: Cell<Word>,
    /// The coroutine's yielder, known once it has started.
    pub(crate) yielder: Cell<*const Yielder<usize, usize>>,
    /// Incremented each time a park ends; an `Unparker` wakes only the park it was made for.
    pub(crate) park_seq: Cell<u64>,
    /// About where the stack pointer was when the greenlet's last park ended (0: it
    /// never parked), for the hub to prefetch the frames its next resume from a park
    /// returns through ([`crate::hub::prefetch`]).
    pub(crate) park_sp: Cell<usize>,
    /// The base of its stack (corosensei's, the highest address it uses; 0 for the main
    /// greenlet), for the same.
    pub(crate) stack_base: usize,
    pub(crate) id: u64,
    /// `None` only for the main greenlet.
    pub(crate) parent: RefCell<Option<Greenlet>>,
    /// The greenlet joining this one, woken when it dies: the common single join needs
    /// no boxed callback (see [`Greenlet::set_joiner`]).
    pub(crate) joiner: RefCell<Option<crate::hub::park::Unparker>>,
    /// The pending input when it does not fit a word (`pending` is `IN_SLOT`).
    pending_rich: Cell<Option<Input>>,
    pub(crate) name: Option<Box<str>>,
    /// Run by the hub when the greenlet dies (links, waits, joins beyond the first).
    pub(crate) on_exit: RefCell<Vec<ExitCallback>>,
    /// What the stack-overflow handler reports; written to its thread-local on each resume.
    pub(crate) info: RunningInfo,
    /// Greenlet-local values (`sync::local`, keyed by their `LocalKey`),
    /// dropped by the driver when the greenlet dies. Untouched by switching.
    pub(crate) locals: RefCell<crate::api::sync::local::Locals>,
    /// A spawned greenlet's result, read through its `JoinHandle`.
    pub(crate) outcome: crate::api::spawn::Outcome,
    /// The timer that starts a `spawn_later` greenlet, while armed: disarmed if the
    /// greenlet dies before it fires (see `timer::cancel_start`).
    pub(crate) start_timer: Cell<Option<crate::hub::timer::Key>>,
    /// The neighbours of this record in the thread's list of greenlet records
    /// ([`RECORDS`]), null at the ends (and in a record that is not listed).
    records_prev: Cell<*const Inner>,
    records_next: Cell<*const Inner>,
}

/// A callback run in the hub when a greenlet dies, given the dead greenlet.
pub(crate) type ExitCallback = Box<dyn FnOnce(&Greenlet)>;

impl Inner {
    /// A record owning nothing: no coroutine, parent, name, callbacks or values.
    fn blank(kind: Kind) -> Inner {
        Inner {
            id: 0,
            kind,
            state: Cell::new(State::Dead),
            co: UnsafeCell::new(None),
            yielder: Cell::new(ptr::null()),
            parent: RefCell::new(None),
            pending: Cell::new(word::IN_NONE),
            pending_rich: Cell::new(None),
            queued: Cell::new(false),
            park_seq: Cell::new(0),
            name: None,
            on_exit: RefCell::new(Vec::new()),
            joiner: RefCell::new(None),
            info: RunningInfo::new(0, 0, 0, 0),
            park_sp: Cell::new(0),
            stack_base: 0,
            locals: RefCell::default(),
            outcome: Default::default(),
            start_timer: Cell::new(None),
            budget: Cell::new(crate::hub::budget::CHECK),
            records_prev: Cell::new(ptr::null()),
            records_next: Cell::new(ptr::null()),
        }
    }

    /// Drops everything a dead greenlet's record still owns (its result, parent, name,
    /// ...), leaving it as [`blank`](Self::blank) made it, for reuse. `false` if it
    /// cannot be reused: it is not a greenlet's or still has a coroutine.
    #[inline]
    pub(crate) fn empty(&mut self) -> bool {
        if self.kind != Kind::Coro || self.co.get_mut().is_some() {
            return false;
        }
        // (`create` sets the id, state, parent, name and overflow record anew.)
        self.queued.set(false);
        self.start_timer.set(None);
        // Each of these may run user code (the destructor of a result or a local). Most
        // are empty by now (a spawned greenlet that was joined holds only its parent):
        // each is checked in place before it is moved out to be dropped.
        if self.pending_rich.get_mut().is_some() {
            drop(self.pending_rich.take());
        }
        if let Some(r) = self.outcome.take() {
            drop(r);
        }
        drop(self.parent.get_mut().take());
        if self.name.is_some() {
            drop(self.name.take());
        }
        if self.joiner.get_mut().is_some() {
            drop(self.joiner.get_mut().take());
        }
        // Run at death; normally empty by now.
        self.on_exit.get_mut().clear();
        self.locals.get_mut().clear();
        true
    }

    /// Sets what the hub resumes the greenlet with; returns whether it was queued already.
    #[inline]
    pub(crate) fn set_pending(&self, input: Input) -> bool {
        let mut rich = None;
        let w = word::pack_with(input, |r| {
            rich = Some(r);
            word::IN_SLOT
        });
        // The input it replaces is dropped first, then a rich one takes the slot.
        let was = self.set_pending_word(w);
        if rich.is_some() {
            self.pending_rich.set(rich);
        }
        was
    }

    /// [`set_pending`](Self::set_pending) with the input as its word: a common input's,
    /// or `IN_SLOT` with the caller filling `pending_rich` right after.
    #[inline]
    pub(crate) fn set_pending_word(&self, w: Word) -> bool {
        let was = self.queued.replace(true);
        if was && self.pending.get() == word::IN_SLOT {
            drop(self.pending_rich.take());
        }
        self.pending.set(w);
        was
    }

    /// `f` of the pending input if it is a rich one (a throw, `LoopExit`, a value that
    /// does not fit a word); `None` if there is none or it is a common one (a wake, the
    /// empty value).
    pub(crate) fn peek_rich_pending<R>(&self, f: impl FnOnce(&Input) -> R) -> Option<R> {
        if !self.queued.get() || self.pending.get() != word::IN_SLOT {
            return None;
        }
        let rich = self.pending_rich.take();
        let r = rich.as_ref().map(f);
        self.pending_rich.set(rich);
        r
    }

    /// Takes the pending input (`None` if there is none: a stale queue entry).
    #[inline]
    pub(crate) fn take_pending(&self) -> Option<Input> {
        if !self.queued.replace(false) {
            return None;
        }
        let w = self.pending.get();
        Some(if w == word::IN_SLOT {
            self.pending_rich
                .take()
                .unwrap_or(Input::Value(Value::none()))
        } else {
            word::decode(w)
        })
    }

    /// [`take_pending`](Self::take_pending) for the driver: the input as the word it
    /// resumes the greenlet with (a rich one goes in flight, into the hub's side slot).
    #[inline(always)]
    pub(crate) fn take_pending_word(&self) -> Option<Word> {
        if !self.queued.replace(false) {
            return None;
        }
        let w = self.pending.get();
        if w == word::IN_SLOT {
            return Some(self.rich_in_flight());
        }
        Some(w)
    }

    #[cold]
    fn rich_in_flight(&self) -> Word {
        match self.pending_rich.take() {
            Some(input) => word::to_slot(input),
            None => word::IN_NONE,
        }
    }

    /// Whether the greenlet waits in the ready queue with an input.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.queued.get()
    }

    /// The coroutine, for the driver to resume in place.
    ///
    /// # Safety
    ///
    /// No other reference to the coroutine may exist: only the driver calls this, on a
    /// greenlet that is not running, and keeps the result only while resuming it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn coroutine(&self) -> &mut Option<Coro> {
        // SAFETY: guaranteed by the caller (see above).
        unsafe { &mut *self.co.get() }
    }
}

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
/// - [`throw`](Greenlet::throw) raises [`GreenletExit`](crate::GreenletExit) at the greenlet's switch point,
///   unwinding it (destructors run); dropping the last handle to a suspended greenlet
///   unwinds it the same way, and so does the end of its thread (when the thread's hub
///   is dropped, among its thread-locals: see the guide, "When a thread ends").
///
/// # Examples
///
/// The seeds' `eat`/`play_phone` example:
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
pub struct Greenlet(pub(crate) ManuallyDrop<Rc<Inner>>);

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
fn last_handle(rc: Rc<Inner>) {
    if rc.state.get() == State::Dead {
        crate::greenlet::records::recycle(rc);
    }
}

impl Greenlet {
    #[inline(always)]
    pub(crate) fn from_rc(rc: Rc<Inner>) -> Greenlet {
        Greenlet(ManuallyDrop::new(rc))
    }

    /// The handle as its `Rc`, without dropping it (`word::set_target`).
    #[inline(always)]
    pub(crate) fn into_rc(self) -> Rc<Inner> {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so its `Rc` is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut me.0) }
    }

    pub(crate) fn root(kind: Kind, parent: Option<Greenlet>) -> Greenlet {
        let mut inner = Inner::blank(kind);
        inner.id = next_id();
        inner.state.set(if kind == Kind::Main {
            State::Running
        } else {
            State::Suspended
        });
        *inner.parent.get_mut() = parent;
        inner.name = Some(if kind == Kind::Main { "main" } else { "hub" }.into());
        Greenlet::from_rc(Rc::new(inner))
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
    pub fn try_new<F, R>(f: F) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: Any,
    {
        with_hub(|h| Greenlet::create(h, f, None, None, None))
    }

    /// Creates a greenlet on the hub `h` with an optional name, stack size and parent
    /// (`None`: the current greenlet). (`spawn` passes the hub it already reached.)
    #[inline]
    pub(crate) fn create<F, R>(
        h: &hub::Hub,
        f: F,
        name: Option<String>,
        stack_size: Option<usize>,
        parent: Option<Greenlet>,
    ) -> Result<Greenlet, StackError>
    where
        F: FnOnce(Value) -> R + 'static,
        R: Any,
    {
        let size = stack_size.unwrap_or_else(|| h.stack_size.get());
        let stack = h.stacks.borrow_mut().get(size)?;
        let parent = parent.unwrap_or_else(|| h.current_greenlet());
        let id = next_id();
        let (guard_lo, guard_hi) = stack.guard_range();
        let size = stack.size();
        let stack_base = corosensei::stack::Stack::base(&stack).get();
        let co: Coro = Coroutine::with_stack(stack, move |y: &Yielder<usize, usize>, w| {
            switch::set_yielder(y);
            let arg = match crate::greenlet::word::unpack_input(w) {
                Input::Value(v) => v,
                // The driver never starts a greenlet with a throw (it kills it unstarted).
                _ => Value::none(),
            };
            let r = catch_unwind(AssertUnwindSafe(move || Value::new(f(arg))));
            // A kill deferred by a monkey-patched call that the function never re-raised
            // decides the outcome, even over a panic that followed it (such as an
            // `unwrap()` of the failed call's error). (Held throws do not: they go
            // with the greenlet.)
            let r = match crate::hub::throw::take_interrupting() {
                Some(p) => Err(p),
                None => r,
            };
            // A spawned greenlet keeps its outcome in its record, for its `JoinHandle`;
            // any other goes to the driver, for the parent. (A kill, `GreenletExit`,
            // becomes a value for the parent there.)
            let for_parent = hub::with_current(move |me| {
                if me.outcome.is_kept() {
                    me.outcome.store(r);
                    None
                } else {
                    Some(r)
                }
            });
            if let Some(r) = for_parent {
                with_hub(|h| crate::greenlet::word::put_output(h, r));
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
        // A dead greenlet's record if one is kept (see `records`), else a new one.
        let mut rc = h
            .records
            .take()
            .unwrap_or_else(|| new_record(Inner::blank(Kind::Coro)));
        let Some(inner) = Rc::get_mut(&mut rc) else {
            unreachable!("green: a kept greenlet record has other handles");
        };
        inner.id = id;
        inner.state.set(State::Fresh);
        *inner.co.get_mut() = Some(co);
        inner.yielder.set(ptr::null());
        *inner.parent.get_mut() = Some(parent);
        inner.name = name;
        inner.info = info;
        inner.park_sp.set(0);
        inner.stack_base = stack_base;
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
    ///   lock, an event, a queue or a join, [`park`](crate::hub::park::park)) or yielding
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
        self.0.state.get() == State::Dead
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
        self.0.state.get() != State::Fresh
    }

    /// Whether this is the thread's main greenlet.
    ///
    /// ```
    /// assert!(green::getcurrent().is_main());
    /// ```
    pub fn is_main(&self) -> bool {
        self.0.kind == Kind::Main
    }

    /// Whether this is the hub (the parent of greenlets made by [`spawn`](crate::spawn())).
    ///
    /// ```
    /// let h = green::spawn(|| green::getcurrent().parent().unwrap().is_hub());
    /// assert!(h.join().unwrap());
    /// ```
    pub fn is_hub(&self) -> bool {
        self.0.kind == Kind::Hub
    }

    /// Whether this greenlet is the one running the caller's code.
    ///
    /// ```
    /// assert!(green::getcurrent().is_current());
    /// ```
    pub fn is_current(&self) -> bool {
        hub::is_current(self)
    }

    /// The parent: where the greenlet's return value (or panic) goes. `None` only for
    /// the main greenlet. Greenlets made by [`spawn`](crate::spawn()) have the hub as parent.
    ///
    /// ```
    /// let main = green::getcurrent();
    /// let g = green::Greenlet::new(|_: green::Value| ());
    /// assert_eq!(g.parent(), Some(main));
    /// ```
    pub fn parent(&self) -> Option<Greenlet> {
        self.0.parent.borrow().clone()
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
        if self.0.kind != Kind::Coro {
            return Err(ParentError::Root);
        }
        let mut p = Some(parent.clone());
        while let Some(g) = p {
            if Rc::ptr_eq(&g.0, &self.0) {
                return Err(ParentError::Cycle);
            }
            p = g.parent();
        }
        *self.0.parent.borrow_mut() = Some(parent.clone());
        Ok(())
    }

    /// A number unique among the greenlets of the process.
    ///
    /// ```
    /// let a = green::Greenlet::new(|_: green::Value| ());
    /// assert_ne!(a.id(), green::getcurrent().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The greenlet's name, if it was given one (see [`Builder`](crate::Builder)).
    ///
    /// ```
    /// assert_eq!(green::getcurrent().name(), Some("main"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
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
        if self.dead() {
            f(self);
        } else {
            self.0.on_exit.borrow_mut().push(f);
        }
    }

    /// Arranges for the calling greenlet (whose park `u` belongs to) to be woken when
    /// this greenlet dies. The single joiner slot is used when it is free or holds a
    /// stale unparker (a join that timed out); otherwise a withdrawable exit callback
    /// is added, withdrawn once `u`'s park is over (see `add_extra_joiner`).
    #[inline]
    pub(crate) fn set_joiner(&self, u: crate::hub::park::Unparker) {
        let mut slot = self.0.joiner.borrow_mut();
        if slot.is_none() {
            *slot = Some(u);
        } else {
            drop(slot);
            self.set_joiner_slow(u);
        }
    }

    /// [`set_joiner`](Self::set_joiner) when the slot is taken.
    #[cold]
    #[inline(never)]
    fn set_joiner_slow(&self, u: crate::hub::park::Unparker) {
        let mut slot = self.0.joiner.borrow_mut();
        if slot.as_ref().is_none_or(|old| !old.is_current_park()) {
            *slot = Some(u);
        } else {
            drop(slot);
            crate::api::sync::registration::add_extra_joiner(self, u);
        }
    }

    /// Empties the joiner slot if it holds the calling greenlet's unparker (its join
    /// ended without this greenlet's death).
    pub(crate) fn withdraw_joiner(&self) {
        let mut slot = self.0.joiner.borrow_mut();
        if slot.as_ref().is_some_and(|u| u.greenlet().is_current()) {
            let stale = slot.take();
            drop(slot);
            drop(stale);
        }
    }

    /// The nearest live ancestor (the hub or main at worst).
    pub(crate) fn live_parent(&self) -> Greenlet {
        let mut p = self.parent();
        loop {
            match p {
                Some(g) if g.dead() => p = g.parent(),
                Some(g) => return g,
                None => return with_hub(|h| h.main.clone()),
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
        d.field("id", &self.0.id);
        if let Some(n) = &self.0.name {
            d.field("name", n);
        }
        d.field("state", &self.0.state.get()).finish()
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
pub fn getcurrent() -> Greenlet {
    with_hub(|h| h.current_greenlet())
}

impl Drop for Inner {
    fn drop(&mut self) {
        unlist_record(self);
        let Some(mut co) = self.co.get_mut().take() else {
            crate::hub::throw::forget(self);
            return;
        };
        if co.started() && !co.done() {
            // Suspended mid-function: unwind it so that its destructors run. The
            // coroutine needs a live handle for that, so it is moved into a new one
            // (greenlet "resurrects" a collected greenlet the same way).
            let mut inner = Inner::blank(self.kind);
            inner.id = self.id;
            inner.state.set(State::Suspended);
            *inner.co.get_mut() = Some(co);
            inner.yielder.set(self.yielder.get());
            *inner.parent.get_mut() = self.parent.get_mut().take();
            inner.park_seq.set(self.park_seq.get());
            inner.park_sp.set(self.park_sp.get());
            inner.stack_base = self.stack_base;
            inner.name = self.name.take();
            *inner.on_exit.get_mut() = std::mem::take(self.on_exit.get_mut());
            *inner.joiner.get_mut() = self.joiner.get_mut().take();
            // The name moved with its heap buffer: the overflow record stays right.
            inner.info = std::mem::replace(&mut self.info, RunningInfo::new(0, 0, 0, 0));
            inner.start_timer.set(self.start_timer.take());
            *inner.locals.get_mut() = std::mem::take(self.locals.get_mut());
            inner.outcome = crate::api::spawn::Outcome::with_flags(self.outcome.flags());
            let g = Greenlet::from_rc(new_record(inner));
            switch::kill_orphan(g);
            return;
        }
        crate::hub::throw::forget(self);
        // Not started (drop the closure) or finished: give the stack back.
        co.force_unwind();
        let stack = co.into_stack();
        let _ = hub::try_with_hub(|h| {
            if let Ok(mut pool) = h.stacks.try_borrow_mut() {
                pool.put(stack);
            }
        });
    }
}
