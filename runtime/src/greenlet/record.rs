//! The greenlet record: everything a greenlet is, behind its `Rc`.
//!
//! The fields are declared once, in two groups:
//!
//! - [`Core`], what a switch, a park or a wake touches: the coroutine, the state, the
//!   pending input and the park number. It sits right after the `Rc`'s counts.
//! - [`Cold`], the rest: parent, name, joiner, exit callbacks, locals, a spawned
//!   greenlet's kept outcome, the stack-overflow report. Boxed, allocated once per
//!   record and recycled with it.
//!
//! Every operation that resets or moves a record does so a whole group at a time: a new
//! greenlet gets a new [`Core`] (one struct literal, [`Core::new`]); an emptied record
//! takes the whole [`Cold`] out to drop it ([`Record::empty`]); a record freed while its
//! greenlet is suspended moves both groups into a new record ([`Record`]'s `Drop`). Adding
//! a field touches its group's declaration and, for [`Core`], its constructor: the
//! compiler points at both.
//!
//! # Life of a record
//!
//! Records are listed per thread from allocation to free (for the unwinding of the
//! greenlets still alive when the thread ends, [`live_greenlets`]). When the last handle
//! to a dead greenlet goes, its record is emptied and kept on the thread's free list
//! ([`Records`]); the next greenlet created on the thread takes it, with its `Cold` box
//! and its memory still in the cache.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::mem;
use std::panic::Location;
use std::ptr;
use std::rc::Rc;

use corosensei::{Coroutine, Yielder};

use crate::greenlet::Greenlet;
use crate::greenlet::outcome::Outcome;
use crate::greenlet::stack::GreenStack;
use crate::greenlet::stack::overflow::RunningInfo;
use crate::greenlet::switch::Input;
use crate::greenlet::thread::{self, Context, HOT};
use crate::greenlet::trampoline;
use crate::greenlet::value::Value;
use crate::greenlet::word::{self, Word};

/// A greenlet's coroutine: only a word crosses each switch (see `word`).
pub(crate) type Coro = Coroutine<usize, usize, usize, GreenStack>;

/// A callback run in the scheduler when a greenlet dies, given the dead greenlet.
pub(crate) type ExitCallback = Box<dyn FnOnce(&Greenlet)>;

/// An exit callback with the key its owner may withdraw it by (0: none).
pub(crate) type KeyedExit = (u64, ExitCallback);

/// A greenlet's local values (`green_local!`), keyed by their key's number.
pub(crate) type Locals = Vec<(usize, Rc<dyn Any>)>;

/// One wait of one greenlet: the greenlet and its wait epoch then (`Core::park_seq`).
/// The hub's `Unparker` wraps it; the record's joiner slot holds one.
pub(crate) struct Waiter {
    pub(crate) g: Greenlet,
    pub(crate) seq: u64,
}

/// What a greenlet is.
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
/// Where a greenlet is in its life.
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

/// A greenlet record: its hot [`Core`] and its boxed [`Cold`] part.
pub(crate) struct Record {
    pub(crate) core: Core,
    pub(crate) cold: Box<Cold>,
    /// This record's place in the thread's list of records (`Hot::records`).
    links: Links,
}

/// The fields a switch, a park or a wake touches.
pub(crate) struct Core {
    /// The coroutine; `None` once dead. Only the trampoline touches it while the greenlet
    /// lives (it resumes it in place), and `Drop` after.
    pub(crate) co: UnsafeCell<Option<Coro>>,
    pub(crate) state: Cell<State>,
    pub(crate) kind: Kind,
    /// Whether `pending` is set: the scheduler holds the greenlet (in its ready queue),
    /// to resume it with that input.
    queued: Cell<bool>,
    /// Whether the scheduler arranged to start it later (`spawn_later`): a start by other
    /// means (a switch into it) or its death tells the scheduler, which then disarms it.
    pub(crate) start_armed: Cell<bool>,
    /// How many more socket operations it makes before its fairness budget's next check
    /// (the hub's `budget`; 0: at its next one). The hub restarts it when it starts a
    /// greenlet and whenever its wait epoch advances.
    pub(crate) budget: Cell<u16>,
    /// The input to resume it with at its next resume by the scheduler, as a word (see
    /// `set_pending` and `crate::greenlet::word`); meaningful only while `queued`.
    pending: Cell<Word>,
    /// The coroutine's yielder, known once it has started.
    pub(crate) yielder: Cell<*const Yielder<usize, usize>>,
    /// The wait epoch: incremented each time a park ends, so that an `Unparker` wakes
    /// only the park it was made for.
    pub(crate) park_seq: Cell<u64>,
    /// What it waits for while parked, for the dump (`greenlet::dump`): set by the
    /// park, read only when it is parked.
    pub(crate) park_label: Cell<ParkLabel>,
    pub(crate) id: u64,
}

/// What a parked greenlet waits for, as the dump shows it: a short text and, for some
/// waits, a number (a socket's fd, a joined greenlet's id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParkLabel {
    pub(crate) what: &'static str,
    /// `u64::MAX`: no number.
    pub(crate) n: u64,
}

impl ParkLabel {
    /// A label without a number.
    pub(crate) const fn new(what: &'static str) -> ParkLabel {
        ParkLabel { what, n: u64::MAX }
    }

    /// A label with a number.
    pub(crate) const fn with(what: &'static str, n: u64) -> ParkLabel {
        ParkLabel { what, n }
    }

    /// The number, if it has one.
    pub(crate) fn number(self) -> Option<u64> {
        (self.n != u64::MAX).then_some(self.n)
    }
}

impl Core {
    /// The core of a new record (`co` is `None` for main and the hub, and for a record
    /// not yet given a greenlet).
    pub(crate) fn new(kind: Kind, id: u64, state: State, co: Option<Coro>) -> Core {
        Core {
            co: UnsafeCell::new(co),
            state: Cell::new(state),
            kind,
            queued: Cell::new(false),
            start_armed: Cell::new(false),
            budget: Cell::new(0),
            pending: Cell::new(word::IN_NONE),
            yielder: Cell::new(ptr::null()),
            park_seq: Cell::new(0),
            park_label: Cell::new(ParkLabel::new("park")),
            id,
        }
    }

    /// Gives an empty record's core to a new greenlet: its id and coroutine. The
    /// rest carries over from the greenlet before: the park number only ever grows, and
    /// a fairness budget left over gives at worst an early turn.
    #[inline]
    pub(crate) fn start(&mut self, id: u64, co: Coro) {
        self.id = id;
        self.state.set(State::Fresh);
        *self.co.get_mut() = Some(co);
        self.yielder.set(ptr::null());
    }
}

/// The fields of a record that switching does not touch.
#[derive(Default)]
pub(crate) struct Cold {
    /// `None` only for the main greenlet.
    pub(crate) parent: RefCell<Option<Greenlet>>,
    /// One waiter to resume when this greenlet dies (a join): the common single join
    /// needs no boxed callback. The scheduler wakes it (`Scheduler::died`).
    pub(crate) joiner: RefCell<Option<Waiter>>,
    /// The pending input when it does not fit a word (`pending` is `IN_SLOT`).
    pending_rich: Cell<Option<Input>>,
    pub(crate) name: Option<Box<str>>,
    /// Where it was created (the caller of `spawn`, `Greenlet::new`, ...), for the dump.
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// Run in the hub when the greenlet dies (links, waits, joins beyond the first), in
    /// order; those with a key (links) can be withdrawn before.
    pub(crate) on_exit: RefCell<VecDeque<KeyedExit>>,
    /// What the stack-overflow handler reports, found through the current greenlet.
    pub(crate) info: RunningInfo,
    /// Greenlet-local values, dropped in the scheduler when the greenlet dies.
    /// Untouched by switching.
    pub(crate) locals: RefCell<Locals>,
    /// A spawned greenlet's result, read through its `JoinHandle`: kept here instead of
    /// being passed to its parent, the scheduler's greenlet.
    pub(crate) outcome: Outcome,
}

impl Cold {
    /// Drops everything it owns, for a new greenlet to fill it. Each field may
    /// run user code when dropped (the destructor of a result or a local); most are
    /// empty by now (a spawned greenlet that was joined holds only its parent), so each
    /// is checked in place before it is moved out to be dropped. (The pattern names
    /// every field: a new one must be handled here.)
    #[inline]
    fn reset(&mut self) {
        let Cold {
            parent,
            joiner,
            pending_rich,
            name,
            spawned_at,
            on_exit,
            info,
            locals,
            outcome,
        } = self;
        drop(parent.get_mut().take());
        if joiner.get_mut().is_some() {
            drop(joiner.get_mut().take());
        }
        if pending_rich.get_mut().is_some() {
            drop(pending_rich.take());
        }
        if name.is_some() {
            drop(name.take());
        }
        // Run or dropped at death; normally empty by now.
        if !on_exit.get_mut().is_empty() {
            drop(mem::take(on_exit.get_mut()));
        }
        // Plain data, which the next greenlet's start overwrites.
        let _ = (info, spawned_at);
        if !locals.get_mut().is_empty() {
            drop(mem::take(locals.get_mut()));
        }
        if let Some(r) = outcome.reset() {
            drop(r);
        }
    }
}

/// A record's neighbours in the thread's list of records (`Hot::records`), null at the
/// ends and in a record that is not listed.
struct Links {
    prev: Cell<*const Record>,
    next: Cell<*const Record>,
}

impl Default for Links {
    fn default() -> Links {
        Links {
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
        }
    }
}

impl Record {
    /// Sets what the hub resumes the greenlet with; returns whether it was queued already.
    #[inline]
    pub(crate) fn set_pending(&self, input: Input) -> bool {
        word::pack_with(
            input,
            |w| self.set_pending_word(w),
            |rich| self.set_pending_rich(rich),
        )
    }

    /// [`set_pending`](Self::set_pending) of an input that does not fit a word.
    #[cold]
    #[inline(never)]
    fn set_pending_rich(&self, input: Input) -> bool {
        // The input it replaces is dropped first, then the new one takes the slot.
        let was = self.set_pending_word(word::IN_SLOT);
        self.cold.pending_rich.set(Some(input));
        was
    }

    /// [`set_pending`](Self::set_pending) with the input as its word: a common input's,
    /// or `IN_SLOT` with the caller filling the rich slot right after.
    #[inline]
    pub(crate) fn set_pending_word(&self, w: Word) -> bool {
        let was = self.core.queued.replace(true);
        if was && self.core.pending.get() == word::IN_SLOT {
            drop(self.cold.pending_rich.take());
        }
        self.core.pending.set(w);
        was
    }

    /// Whether the greenlet waits in the ready queue with an input.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.core.queued.get()
    }

    /// The coroutine, for the trampoline to resume in place.
    ///
    /// # Safety
    ///
    /// No other reference to the coroutine may exist: only the trampoline calls this, on a
    /// greenlet that is not running, and keeps the result only while resuming it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn coroutine(&self) -> &mut Option<Coro> {
        // SAFETY: guaranteed by the caller (see above).
        unsafe { &mut *self.core.co.get() }
    }

    /// A record for the thread's main greenlet or its hub: not listed (they live as long
    /// as the thread's hub), never recycled.
    pub(crate) fn root(kind: Kind, parent: Option<Greenlet>) -> Rc<Record> {
        let state = if kind == Kind::Main {
            State::Running
        } else {
            State::Suspended
        };
        let cold = Cold {
            parent: RefCell::new(parent),
            name: Some(if kind == Kind::Main { "main" } else { "hub" }.into()),
            ..Cold::default()
        };
        Rc::new(Record {
            core: Core::new(kind, thread::next_id(), state, None),
            cold: Box::new(cold),
            links: Links::default(),
        })
    }

    /// An empty record for a new greenlet (its core still to [`start`](Core::start)):
    /// a kept one from `kept`, else a new one, listed.
    pub(crate) fn for_greenlet(kept: &Records) -> Rc<Record> {
        match kept.take() {
            Some(rc) => rc,
            None => listed(Record {
                core: Core::new(Kind::Coro, 0, State::Dead, None),
                cold: Box::default(),
                links: Links::default(),
            }),
        }
    }

    /// Empties a dead greenlet's record for reuse: everything its cold part still owns
    /// (its result, parent, name, ...) is dropped. `false` if it cannot be reused: it is
    /// not a greenlet's or still has a coroutine.
    #[inline]
    pub(crate) fn empty(&mut self) -> bool {
        if self.core.kind != Kind::Coro || self.core.co.get_mut().is_some() {
            return false;
        }
        self.core.queued.set(false);
        self.cold.reset();
        true
    }

    /// Takes the pending input (`None` if there is none: a stale queue entry).
    #[inline]
    pub(crate) fn take_pending(&self) -> Option<Input> {
        if !self.core.queued.replace(false) {
            return None;
        }
        let w = self.core.pending.get();
        Some(if w == word::IN_SLOT {
            self.cold
                .pending_rich
                .take()
                .unwrap_or(Input::Value(Value::none()))
        } else {
            word::decode(w)
        })
    }

    /// [`take_pending`](Self::take_pending) for the trampoline: the input as the word it
    /// resumes the greenlet with (a rich one goes in flight, into the hub's side slot).
    #[inline(always)]
    pub(crate) fn take_pending_word(&self) -> Option<Word> {
        if !self.core.queued.replace(false) {
            return None;
        }
        let w = self.core.pending.get();
        if w == word::IN_SLOT {
            return Some(self.rich_in_flight());
        }
        Some(w)
    }

    #[cold]
    fn rich_in_flight(&self) -> Word {
        match self.cold.pending_rich.take() {
            Some(input) => word::to_slot(input),
            None => word::IN_NONE,
        }
    }

    /// `f` of the pending input if it is a rich one (a throw, `LoopExit`, a value that
    /// does not fit a word); `None` if there is none or it is a common one (a wake, the
    /// empty value).
    pub(crate) fn peek_rich_pending<R>(&self, f: impl FnOnce(&Input) -> R) -> Option<R> {
        if !self.core.queued.get() || self.core.pending.get() != word::IN_SLOT {
            return None;
        }
        let rich = self.cold.pending_rich.take();
        let r = rich.as_ref().map(f);
        self.cold.pending_rich.set(rich);
        r
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        unlist(self);
        let suspended = self
            .core
            .co
            .get_mut()
            .as_ref()
            .is_some_and(|co| co.started() && !co.done());
        if suspended {
            // Suspended mid-function: unwind it so that its destructors run. The
            // coroutine needs a live handle for that, so both groups move into a new
            // record (greenlet "resurrects" a collected greenlet the same way). The
            // name moves with its heap buffer: the overflow report stays right.
            let blank = Core::new(self.core.kind, self.core.id, State::Dead, None);
            let core = mem::replace(&mut self.core, blank);
            core.state.set(State::Suspended);
            let rec = Record {
                core,
                cold: mem::take(&mut self.cold),
                links: Links::default(),
            };
            trampoline::kill_orphan(Greenlet::from_rc(listed(rec)));
            return;
        }
        // Not started (drop the closure) or finished: give the stack back.
        let Some(mut co) = self.core.co.get_mut().take() else {
            return;
        };
        co.force_unwind();
        let stack = co.into_stack();
        let _ = thread::try_with(|t| {
            if let Ok(mut pool) = t.stacks.try_borrow_mut() {
                pool.put(stack);
            }
        });
    }
}

/// `rec` in an `Rc`, listed in the thread's list of records (`Hot::records`): every record
/// a greenlet with a stack can live in, the kept ones included. A record is listed when
/// it is allocated and unlisted when it is freed, so a spawn that reuses a kept record
/// costs nothing here.
fn listed(rec: Record) -> Rc<Record> {
    let rc = Rc::new(rec);
    let me = Rc::as_ptr(&rc);
    HOT.with(|h| {
        let head = &h.records;
        let next = head.get();
        rc.links.next.set(next);
        if !next.is_null() {
            // SAFETY: a listed record is alive: it is unlisted first thing when freed.
            unsafe { (*next).links.prev.set(me) };
        }
        head.set(me);
    });
    rc
}

/// Takes `rec` off the thread's list (nothing if it is not listed).
fn unlist(rec: &Record) {
    let (prev, next) = (rec.links.prev.get(), rec.links.next.get());
    HOT.with(|h| {
        let head = &h.records;
        if prev.is_null() {
            if !ptr::eq(head.get(), rec) {
                // Not listed (the main greenlet, the hub).
                return;
            }
            head.set(next);
        } else {
            // SAFETY: listed records are alive (see `listed`).
            unsafe { (*prev).links.next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).links.prev.set(prev) };
        }
    });
    rec.links.prev.set(ptr::null());
    rec.links.next.set(ptr::null());
}

/// Calls `f` with every listed record of this thread (every greenlet but main and the
/// hub, dead ones included), newest first. `f` must not create or free a greenlet.
pub(crate) fn for_each_listed(mut f: impl FnMut(&Record)) {
    let mut p = HOT.with(|h| h.records.get());
    while !p.is_null() {
        // SAFETY: listed records are alive (see `listed`), and `f` frees none.
        let rec = unsafe { &*p };
        f(rec);
        p = rec.links.next.get();
    }
}

/// Handles to every greenlet of this thread that is alive and not running: started and
/// suspended (explicitly, parked or yielded), or not started yet. For the unwinding of
/// the greenlets still alive when the thread ends.
pub(crate) fn live_greenlets() -> Vec<Greenlet> {
    let mut live = Vec::new();
    let mut p = HOT.with(|h| h.records.get());
    while !p.is_null() {
        // SAFETY: listed records are alive (see `listed`), and nothing runs meanwhile
        // that could free one.
        let rec = unsafe { &*p };
        let state = rec.core.state.get();
        if state.resumable() || state == State::Fresh {
            // SAFETY: `p` points into a live `Rc` (above): one more strong handle.
            live.push(unsafe {
                Rc::increment_strong_count(p);
                Greenlet::from_rc(Rc::from_raw(p))
            });
        }
        p = rec.links.next.get();
    }
    live
}

/// How many emptied records a thread keeps (a few hundred bytes each).
pub(crate) const MAX_KEPT: usize = 256;

/// The free list of one thread: records of dead greenlets kept for reuse.
#[derive(Default)]
pub(crate) struct Records {
    kept: RefCell<Vec<Rc<Record>>>,
}

impl Records {
    /// A kept record: emptied, and with no other handle.
    #[inline]
    fn take(&self) -> Option<Rc<Record>> {
        self.kept.borrow_mut().pop()
    }

    /// Keeps `rc` (emptied, the only handle) if there is room; drops it otherwise.
    #[inline]
    fn keep(&self, rc: Rc<Record>) {
        // A record refused because the list is full is dropped after the borrow ends.
        let refused = {
            let mut kept = self.kept.borrow_mut();
            if kept.len() < MAX_KEPT {
                kept.push(rc);
                None
            } else {
                Some(rc)
            }
        };
        drop(refused);
    }

    /// How many records are kept (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.borrow().len()
    }
}

/// Called by `Greenlet::drop` with the last handle to a dead greenlet: empties the record
/// and keeps it for reuse (or frees it, when it cannot be reused or the list is full or
/// the thread's state is gone).
#[inline]
pub(crate) fn recycle(mut rc: Rc<Record>) {
    let Some(rec) = Rc::get_mut(&mut rc) else {
        return;
    };
    // Dropping what it owns may run user code, which may spawn (and take records): no
    // borrow of the list is held meanwhile. In the scheduler (the trampoline dropped the
    // last handle, right after the greenlet died) a panicking destructor must not unwind
    // through the trampoline: it is logged, as a panic in any hub callback is, and the
    // record is freed rather than kept.
    let emptied = if thread::context() == Context::Scheduler {
        trampoline::run_callback(|| rec.empty()).unwrap_or(false)
    } else {
        rec.empty()
    };
    if !emptied {
        return;
    }
    // (If the thread's state is gone, the closure and `rc` with it are dropped unused.)
    let _ = thread::try_with(move |t| t.records.keep(rc));
}
#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use crate::api::spawn::{Builder, spawn};
    use crate::greenlet::thread;

    fn kept() -> usize {
        thread::with(|t| t.records.len())
    }

    /// Sets its flag when dropped.
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn a_joined_greenlets_record_is_reused_by_the_next_spawn() {
        let before = kept();
        let h = Builder::new().name("first").spawn(|| 1).unwrap();
        let first_id = h.greenlet().id();
        assert_eq!(h.join().unwrap(), 1);
        assert_eq!(kept(), before + 1, "the record is kept");
        let h = spawn(crate::greenlet::getcurrent);
        assert_eq!(kept(), before, "and taken by the next spawn");
        let g = h.join().unwrap();
        // A new greenlet in the old record: new id, no name of the old one.
        assert_ne!(g.id(), first_id);
        assert_eq!(g.name(), None);
        assert!(g.dead());
        drop(g);
        assert_eq!(kept(), before + 1);
    }

    #[test]
    fn the_free_list_is_bounded() {
        let hs: Vec<_> = (0..super::MAX_KEPT + 50)
            .map(|i| spawn(move || i))
            .collect();
        let total: usize = crate::api::spawn::joinall(hs)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        assert_eq!(total, (0..super::MAX_KEPT + 50).sum());
        assert_eq!(kept(), super::MAX_KEPT);
    }

    #[test]
    fn a_result_is_dropped_with_the_last_handle_not_kept_in_the_list() {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let h = spawn(move || Flag(d));
        h.wait().unwrap();
        let g = h.greenlet().clone();
        drop(h);
        assert!(!dropped.get(), "another handle still reaches the greenlet");
        drop(g);
        assert!(dropped.get(), "emptied when its record was kept");
        // A result that was taken is the caller's.
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let flag = spawn(move || Flag(d)).join().unwrap();
        assert!(!dropped.get());
        drop(flag);
        assert!(dropped.get());
    }

    #[test]
    fn locals_and_callbacks_do_not_leak_into_the_next_greenlet() {
        crate::green_local!(static N: Cell<u32> = Cell::new(0));
        spawn(|| N.with(|n| n.set(7))).join().unwrap();
        assert_eq!(spawn(|| N.with(|n| n.get())).join().unwrap(), 0);
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let h = spawn(|| ());
        h.link(move |_| r.set(r.get() + 1));
        h.join().unwrap();
        spawn(|| ()).join().unwrap();
        assert_eq!(runs.get(), 1);
    }
}
