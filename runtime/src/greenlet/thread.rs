//! The greenlet layer's per-thread state: [`Thread`], created on a thread's first use
//! of `green` and dropped when the thread ends, and [`Hot`], the few fields every
//! switch reads.
//!
//! `Hot` is a `const` thread-local without destructor: each field is one load at a
//! fixed offset from the thread pointer, with no lazy-initialisation check, and stays
//! readable while the thread's thread-locals are destroyed, from a signal handler (the
//! stack-overflow report) and from the monkey patch's hooks on threads that never used
//! `green`. Everything else is in `Thread`, reached through `Hot::thread`. With the
//! current greenlet, the context and the yielder in `Thread` instead, behind that
//! pointer, a switch round trip takes about 10 instructions more (123 with them here),
//! a yield about 16 more (285) (`benches/instr.rs`).
//!
//! The thread's scheduler (the hub, see [`Scheduler`]) is installed into its `Thread`
//! by the layer above on first use; a thread that only switches explicitly never gets
//! one. When the thread ends, `Thread`'s `Drop` unwinds the greenlets still alive
//! ([`unwind_at_exit`]), then drops the scheduler, then the rest.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use corosensei::Yielder;

use crate::greenlet::Greenlet;
use crate::greenlet::record::{Kind, Record, Records, State, live_greenlets};
use crate::greenlet::sched::{NoScheduler, Scheduler};
use crate::greenlet::stack::overflow::{self, OwnAltStack, RunningInfo};
use crate::greenlet::stack::{DEFAULT_STACK_SIZE, StackPool, StackStats};
use crate::greenlet::switch::{Input, Output};
use crate::greenlet::trace::Trace;
use crate::greenlet::trampoline::log_panic;
use crate::greenlet::value::InlineParts;
use crate::greenlet::word;

/// What the code running on this thread is, as far as the runtime is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// No greenlet state on this thread (before its first use of `green`, and after its
    /// thread-locals are destroyed).
    None,
    /// The thread's own code: the main greenlet.
    Main,
    /// The scheduler: the trampoline between two greenlets, and what the scheduler runs
    /// there (the hub's loop, timer callbacks, links). It must not wait or switch.
    Scheduler,
    /// A greenlet running on its own stack.
    Greenlet,
}

/// The per-thread fields read on every switch (see the module docs).
pub(crate) struct Hot {
    /// The greenlet whose code is running (the scheduler's greenlet in the trampoline;
    /// null before the thread's first use). Not owning: the trampoline holds a strong
    /// handle to the greenlet it resumed for as long as it runs, and `Thread` owns main
    /// and the scheduler's greenlet.
    current: Cell<*const Record>,
    context: Cell<Context>,
    /// The yielder of the greenlet running on this thread (null in main).
    yielder: Cell<*const Yielder<usize, usize>>,
    /// How many greenlets of the thread need the slow path at their switch points (the
    /// scheduler's count of greenlets with throw state): every switch point reads it
    /// and calls the scheduler only when it is not zero.
    unusual: Cell<usize>,
    /// This thread's `Thread` (null before it is made and once it is dropped).
    thread: Cell<*const Thread>,
    /// The target of a `REQ_SWITCH` request word in flight (see `word`).
    pub(crate) target: Cell<*const Record>,
    /// The inline value of an `IN_INLINE` word in flight (see `word`).
    pub(crate) inline: Cell<InlineParts>,
    /// The newest of this thread's listed greenlet records (see `record`).
    pub(crate) records: Cell<*const Record>,
}

thread_local! {
    pub(crate) static HOT: Hot = const {
        Hot {
            current: Cell::new(ptr::null()),
            context: Cell::new(Context::None),
            yielder: Cell::new(ptr::null()),
            unusual: Cell::new(0),
            thread: Cell::new(ptr::null()),
            target: Cell::new(ptr::null()),
            inline: Cell::new(InlineParts::EMPTY),
            records: Cell::new(ptr::null()),
        }
    };
    static THREAD: Thread = Thread::new();
}

/// The greenlet layer's state of one thread (see the module docs).
pub(crate) struct Thread {
    /// The thread's own code.
    pub(crate) main: Greenlet,
    /// The scheduler's greenlet: the parent of spawned greenlets; switching to it asks
    /// the scheduler what runs next.
    pub(crate) hub: Greenlet,
    pub(crate) stacks: RefCell<StackPool>,
    /// Default stack size for new greenlets.
    pub(crate) stack_size: Cell<usize>,
    /// Records of dead greenlets kept for reuse.
    pub(crate) records: Records,
    /// The side slot of an input crossing a switch that does not fit a word (`word`).
    pub(crate) xfer_input: Cell<Option<Input>>,
    /// The outcome of a greenlet's function, on its way to the trampoline (`word`).
    pub(crate) xfer_output: Cell<Option<Output>>,
    /// What a blocking monitor or the stall report (`api::monitor`, `api::stall`)
    /// reads from its own thread.
    pub(crate) switch_log: Arc<SwitchLog>,
    /// Whether the trampoline takes its slow path on every switch (`trace::switched`):
    /// a monitor watches the thread or a trace hook is set.
    pub(crate) watched: Cell<bool>,
    /// Whether a monitor or the stall report watches the thread: only then does the
    /// trampoline count switches and record which greenlet runs.
    pub(crate) monitored: Cell<bool>,
    /// The trace hook (`greenlet::trace`).
    pub(crate) trace: Trace,
    /// The installed scheduler (see [`Thread::install`]); `None` on a thread that only
    /// switches explicitly.
    scheduler: UnsafeCell<Option<Box<dyn Scheduler>>>,
    /// Suspended greenlets whose last handle went while no scheduler was installed and
    /// the main greenlet could not unwind them at once; the scheduler adopts them when
    /// it is installed, and the thread's end unwinds them otherwise.
    pub(crate) orphans: RefCell<Vec<Greenlet>>,
    /// Set once the thread's end has unwound what it could: a greenlet orphaned from
    /// now on is left as it is.
    pub(crate) ending: Cell<bool>,
    /// The alternate signal stack the overflow handler runs on, if the thread had none
    /// and it was made here. The last field: freed after everything else.
    _altstack: Option<OwnAltStack>,
}

impl Thread {
    fn new() -> Thread {
        let main = Greenlet::from_rc(Record::root(Kind::Main, None));
        let hub = Greenlet::from_rc(Record::root(Kind::Hub, Some(main.clone())));
        overflow::install();
        let altstack = overflow::ensure_altstack();
        let switch_log = Arc::new(SwitchLog::for_this_thread());
        let watched = WATCH_NEW.load(Ordering::Relaxed);
        if watched {
            list_for_report(&switch_log);
        }
        let made = Thread {
            main,
            hub,
            stacks: RefCell::new(StackPool::new()),
            stack_size: Cell::new(DEFAULT_STACK_SIZE),
            records: Records::default(),
            xfer_input: Cell::new(None),
            xfer_output: Cell::new(None),
            switch_log,
            watched: Cell::new(watched),
            monitored: Cell::new(watched),
            trace: Trace::default(),
            scheduler: UnsafeCell::new(None),
            orphans: RefCell::new(Vec::new()),
            ending: Cell::new(false),
            _altstack: altstack,
        };
        // Last: until now the thread is not a greenlet context, so that a contended
        // lock above (a `Once` of the overflow handler's or the stack pool's, the
        // report's list), whose wait the monkey patch's futex hook may see, waits as on
        // a plain thread instead of making a second `Thread` to park in.
        HOT.with(|h| {
            h.context.set(Context::Main);
            h.current.set(Rc::as_ptr(&*made.main.0));
        });
        made
    }

    /// The installed scheduler, or the layer's own stand-in when there is none.
    #[inline]
    pub(crate) fn scheduler(&self) -> &dyn Scheduler {
        // SAFETY: the slot is written only by `install` (from `None`, while no
        // reference from here can exist, since there was nothing to refer to) and by
        // `Drop`, after which no method of `self` runs.
        match unsafe { &*self.scheduler.get() } {
            Some(s) => &**s,
            None => &NoScheduler,
        }
    }

    /// The installed scheduler, if there is one.
    #[inline]
    pub(crate) fn installed(&self) -> Option<&dyn Scheduler> {
        // SAFETY: as in `scheduler`.
        unsafe { (*self.scheduler.get()).as_deref() }
    }

    /// Whether a scheduler is installed.
    pub(crate) fn has_scheduler(&self) -> bool {
        self.installed().is_some()
    }

    /// Starts or stops counting switches for a monitor or the stall report.
    pub(crate) fn set_monitored(&self, on: bool) {
        self.monitored.set(on);
        self.update_watched();
    }

    /// Recomputes [`Thread::watched`] after a monitor or the trace hook changed.
    pub(crate) fn update_watched(&self) {
        self.watched
            .set(self.monitored.get() || self.trace.is_set());
    }

    /// Installs the thread's scheduler (once): from now on the greenlet layer asks it
    /// what runs next. It owns it until the thread ends.
    pub(crate) fn install(&self, s: Box<dyn Scheduler>) {
        debug_assert!(!self.has_scheduler(), "a second scheduler");
        // SAFETY: see `scheduler`: no reference into the (empty) slot exists.
        unsafe { *self.scheduler.get() = Some(s) };
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        // The greenlets still alive are unwound while everything still works, the
        // scheduler included, reached through `Hot::thread`, which is set from this
        // drop's own reference (`THREAD` itself cannot be accessed any more: its
        // destructor is running).
        let t: &Thread = self;
        HOT.with(|h| h.thread.set(t));
        // No tracing of the unwinding: the hook may use thread-locals already gone.
        let hook = t.trace.clear();
        t.update_watched();
        drop(hook);
        unwind_at_exit(t);
        t.ending.set(true);
        // Then the scheduler, while the greenlet layer still works (its timers and ready
        // queue hold greenlets), seen as gone meanwhile.
        let s = self.scheduler.get_mut().take();
        drop(s);
        HOT.with(|h| {
            h.thread.set(ptr::null());
            h.context.set(Context::None);
            h.current.set(ptr::null());
        });
    }
}

/// Runs `f` with this thread's `Thread`, making it on first use.
///
/// # Panics
///
/// If called while the thread's thread-locals are being destroyed.
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&Thread) -> R) -> R {
    let p = HOT.with(|h| h.thread.get());
    if !p.is_null() {
        // SAFETY: `Hot::thread` is set to THREAD's address below (or to the dropping
        // `Thread` during its drop) and cleared at the end of `Thread::drop`, so a
        // non-null value points at the live `Thread` of this thread.
        return f(unsafe { &*p });
    }
    THREAD.with(|t| {
        HOT.with(|h| h.thread.set(t));
        f(t)
    })
}

/// Like [`with`] but `None` once the thread's `Thread` is gone (thread exit).
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&Thread) -> R) -> Option<R> {
    let p = HOT.with(|h| h.thread.get());
    if !p.is_null() {
        // SAFETY: as in `with`.
        return Some(f(unsafe { &*p }));
    }
    THREAD
        .try_with(|t| {
            HOT.with(|h| h.thread.set(t));
            f(t)
        })
        .ok()
}

/// Runs `f` with this thread's `Thread` if it has one already (never makes it): for
/// code that must not turn a plain thread into a greenlet context.
pub(crate) fn if_exists<R>(f: impl FnOnce(&Thread) -> R) -> Option<R> {
    let p = HOT.with(|h| h.thread.get());
    // SAFETY: as in `with`: a non-null pointer is the live `Thread` of this thread.
    (!p.is_null()).then(|| f(unsafe { &*p }))
}

/// The address of this thread's `Thread`, made on first use: [`with`] without a
/// closure, for the switch path, where a closure that is not inlined would be a call
/// frame spanning the coroutine switch (see `switch::switch_to`). The `Thread` lives
/// until the thread's thread-locals are destroyed: callers dereference the pointer only
/// for the duration of their own call, as `with` would.
#[inline(always)]
pub(crate) fn ptr() -> *const Thread {
    let p = HOT.with(|h| h.thread.get());
    if !p.is_null() {
        return p;
    }
    init_ptr()
}

#[cold]
#[inline(never)]
fn init_ptr() -> *const Thread {
    THREAD.with(|t| {
        HOT.with(|h| h.thread.set(t));
        t as *const Thread
    })
}

/// The runtime context of the calling code.
#[inline(always)]
pub(crate) fn context() -> Context {
    HOT.with(|h| h.context.get())
}

#[inline(always)]
pub(crate) fn set_context(c: Context) {
    HOT.with(|h| h.context.set(c))
}

/// The running greenlet's record (see [`Hot`]); null before the thread's first use.
#[inline(always)]
pub(crate) fn current_ptr() -> *const Record {
    HOT.with(|h| h.current.get())
}

#[inline(always)]
pub(crate) fn set_current(g: &Greenlet) {
    HOT.with(|h| h.current.set(Rc::as_ptr(&*g.0)));
}

/// Runs `f` with the running greenlet's record. Only once the thread's `Thread` exists.
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(&Record) -> R) -> R {
    let p = current_ptr();
    debug_assert!(!p.is_null());
    // SAFETY: a non-null `current` points at a live greenlet (see `Hot::current`), which
    // stays current during `f` (callers pass short closures that do not switch).
    f(unsafe { &*p })
}

/// A new handle to the running greenlet. Only once the thread's `Thread` exists.
pub(crate) fn current_greenlet() -> Greenlet {
    let p = current_ptr();
    debug_assert!(!p.is_null());
    // SAFETY: `p` points at a live record owned by an `Rc` (see `Hot::current`), so
    // adding a strong count and making a second `Rc` from it is sound.
    unsafe {
        Rc::increment_strong_count(p);
        Greenlet::from_rc(Rc::from_raw(p))
    }
}

/// Whether `g` is the running greenlet.
#[inline(always)]
pub(crate) fn is_current(g: &Greenlet) -> bool {
    ptr::eq(current_ptr(), Rc::as_ptr(&*g.0))
}

/// The yielder of the running greenlet (null in main).
#[inline(always)]
pub(crate) fn yielder() -> *const Yielder<usize, usize> {
    HOT.with(|h| h.yielder.get())
}

#[inline(always)]
pub(crate) fn set_yielder(y: *const Yielder<usize, usize>) {
    HOT.with(|h| h.yielder.set(y))
}

/// Whether some greenlet of the thread needs the slow path at its switch points.
#[inline(always)]
pub(crate) fn unusual() -> bool {
    HOT.with(|h| h.unusual.get()) != 0
}

/// One more greenlet needs the slow path at its switch points.
pub(crate) fn unusual_added() {
    HOT.with(|h| h.unusual.set(h.unusual.get() + 1));
}

/// One greenlet fewer needs the slow path at its switch points.
pub(crate) fn unusual_removed() {
    HOT.with(|h| h.unusual.set(h.unusual.get().saturating_sub(1)));
}

/// The overflow report of the running greenlet, for the stack-overflow signal handler
/// (null before the thread's first use). Async-signal-safe: one read of a `const`
/// thread-local without destructor, and the record (its `Cold` box included) does not
/// change while its greenlet runs.
pub(crate) fn running_info() -> *const RunningInfo {
    let p = current_ptr();
    if p.is_null() {
        return ptr::null();
    }
    // SAFETY: a non-null `current` points at a live record (see `Hot::current`); only
    // the field's address is taken.
    unsafe { ptr::addr_of!((*p).cold.info) }
}

/// A new greenlet id, unique in the process.
#[inline]
pub(crate) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// How many times the greenlets still alive when their thread ends are killed (see
/// [`unwind_at_exit`]) before those left are given up.
const EXIT_ROUNDS: u32 = 16;

/// Unwinds the greenlets of this thread still alive when its `Thread` is dropped, at
/// thread exit, so that their destructors run: each is killed at its switch point (a
/// greenlet not started dies without running), from the main greenlet, its death
/// coming back there. This runs while the thread's thread-locals are destroyed: the
/// destructors it runs cannot use those already gone.
///
/// The scheduler says what each is resumed with (a kill, or what lets one that is
/// already unwinding go on: [`Scheduler::exit_input`]) and gives main its turn back
/// while they run ([`Scheduler::exit_tick`]). After [`EXIT_ROUNDS`] rounds, the
/// greenlets still alive are left as they are (their stacks are not unwound) and a line
/// is logged.
fn unwind_at_exit(t: &Thread) {
    if context() != Context::Main || t.main.0.core.state.get() != State::Running {
        return;
    }
    let s = t.scheduler();
    for round in 0..EXIT_ROUNDS {
        let live = live_greenlets();
        if live.is_empty() {
            break;
        }
        if round == 0 {
            s.exit_tick(true);
        }
        for g in live {
            if g.dead() {
                continue;
            }
            let input = s.exit_input(&g, round);
            *g.0.cold.parent.borrow_mut() = Some(t.main.clone());
            if let Input::Throw(p) =
                word::unpack_input(s.drive(t, g.clone(), word::pack_input(input)))
            {
                // Its panic, or that of a greenlet whose parent is main.
                log_panic(g.dead().then_some(&g), p.as_ref());
            }
        }
    }
    s.exit_tick(false);
    let left = live_greenlets().len();
    if left > 0 {
        log::error!(
            "green: the thread ends with {left} greenlets that would not unwind in \
             {EXIT_ROUNDS} rounds of kills (they caught them, or their destructors kept \
             waiting); they are leaked"
        );
    }
}

/// Whether the calling code may park (block cooperatively): it runs in a spawned or
/// explicitly created greenlet, or it is the thread's own code (the main greenlet) on a
/// thread that uses `green` (its first `spawn`, `sleep`, `getcurrent`, ... made the
/// thread's state). `false` on a plain thread that never used `green`, and in the hub
/// itself (timer callbacks, links).
///
/// The monkey patch uses this to decide whether a blocking std call should switch.
///
/// # Examples
///
/// ```
/// // A fresh thread has no hub yet:
/// std::thread::spawn(|| assert!(!green::is_greenlet_context())).join().unwrap();
/// let h = green::spawn(|| green::is_greenlet_context());
/// assert!(h.join().unwrap());
/// assert!(green::is_greenlet_context()); // main, now that the hub exists
/// ```
#[inline]
pub fn is_greenlet_context() -> bool {
    matches!(context(), Context::Main | Context::Greenlet)
}

/// Sets the default stack size (in bytes) of greenlets created after the call on this
/// thread. It is rounded up to whole pages. [`Builder::stack_size`](crate::Builder::stack_size)
/// sets it for one greenlet.
///
/// # Examples
///
/// ```
/// green::set_default_stack_size(256 * 1024);
/// assert_eq!(green::default_stack_size(), 256 * 1024);
/// # green::set_default_stack_size(green::DEFAULT_STACK_SIZE);
/// ```
pub fn set_default_stack_size(bytes: usize) {
    with(|t| t.stack_size.set(bytes.max(16 * 1024)))
}

/// The default stack size of new greenlets on this thread.
///
/// ```
/// assert!(green::default_stack_size() >= 16 * 1024);
/// ```
pub fn default_stack_size() -> usize {
    with(|t| t.stack_size.get())
}

/// Statistics of the stack pool of the calling thread.
///
/// # Examples
///
/// ```
/// let h = green::spawn(|| ());
/// h.join().unwrap();
/// let s = green::stack::pool_stats();
/// assert!(s.pooled >= 1); // the finished greenlet's stack waits for reuse
/// ```
pub fn pool_stats() -> StackStats {
    with(|t| t.stacks.borrow().stats())
}

/// The name of the last named greenlet that ran, by id.
#[derive(Default)]
struct Named {
    id: u64,
    name: String,
}

/// What a blocking monitor or the process-wide stall report (`api::monitor`,
/// `api::stall`), on their own threads, read of a thread's switching: a count of
/// resumes and, while watched, which greenlet runs. Written only by its thread.
pub(crate) struct SwitchLog {
    switches: AtomicU64,
    /// The id of the running greenlet; 0: the scheduler (idle or scheduling).
    current: AtomicU64,
    /// The id whose name `named` holds (a relaxed copy, so that switching back to the
    /// same named greenlet takes no lock).
    named_id: AtomicU64,
    named: Mutex<Named>,
    /// The thread, as the kernel and the user name it (for reports).
    pub(crate) tid: libc::pid_t,
    pub(crate) thread_name: String,
    /// Whether the process-wide stall report watches this thread.
    pub(crate) in_report: AtomicBool,
}

impl SwitchLog {
    /// The log of the calling thread.
    fn for_this_thread() -> SwitchLog {
        SwitchLog {
            switches: AtomicU64::new(0),
            current: AtomicU64::new(0),
            named_id: AtomicU64::new(0),
            named: Mutex::new(Named::default()),
            // SAFETY: gettid has no preconditions.
            tid: unsafe { libc::gettid() },
            thread_name: std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_owned(),
            in_report: AtomicBool::new(false),
        }
    }

    /// Counts one resume (called by the trampoline on every switch while watched).
    #[inline]
    pub(crate) fn count_switch(&self) {
        // Only this thread writes: a load and a store, not a (locked) read-modify-write.
        let n = self.switches.load(Ordering::Relaxed);
        self.switches.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Records that `g` runs: one relaxed store, and for a named greenlet other than
    /// the last named one, a copy of its name.
    #[inline]
    pub(crate) fn record(&self, g: &Greenlet) {
        let id = g.id();
        self.current.store(id, Ordering::Relaxed);
        if let Some(name) = g.name()
            && self.named_id.load(Ordering::Relaxed) != id
        {
            self.record_name(id, name);
        }
    }

    #[cold]
    fn record_name(&self, id: u64, name: &str) {
        if let Ok(mut n) = self.named.lock() {
            n.id = id;
            n.name.clear();
            n.name.push_str(name);
            self.named_id.store(id, Ordering::Relaxed);
        }
    }

    /// Records that the scheduler runs.
    #[inline]
    pub(crate) fn record_scheduler(&self) {
        self.current.store(0, Ordering::Relaxed);
    }

    /// The switch count.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// The running greenlet's id and name (empty if it has none, or if it changed
    /// while being read); `None` while the scheduler runs.
    pub(crate) fn running(&self) -> Option<(u64, String)> {
        let id = self.current.load(Ordering::Relaxed);
        if id == 0 {
            return None;
        }
        let name = match self.named.lock() {
            Ok(n) if n.id == id => n.name.clone(),
            _ => String::new(),
        };
        Some((id, name))
    }
}

/// Whether threads made from now on are watched by the process-wide stall report
/// (`api::stall`), which picks their logs up with [`take_new_logs`].
static WATCH_NEW: AtomicBool = AtomicBool::new(false);
/// The logs of threads made while [`WATCH_NEW`] was set, not yet picked up.
static NEW_LOGS: Mutex<Vec<Arc<SwitchLog>>> = Mutex::new(Vec::new());

/// Makes threads created from now on watched (their switches recorded) and listed for
/// [`take_new_logs`], or no longer.
pub(crate) fn watch_new_threads(on: bool) {
    WATCH_NEW.store(on, Ordering::Relaxed);
}

/// Lists `log` for [`take_new_logs`], once.
pub(crate) fn list_for_report(log: &Arc<SwitchLog>) {
    if !log.in_report.swap(true, Ordering::Relaxed) {
        NEW_LOGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log.clone());
    }
}

/// The logs listed since the last call.
pub(crate) fn take_new_logs() -> Vec<Arc<SwitchLog>> {
    std::mem::take(&mut *NEW_LOGS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Whether the calling code runs in the scheduler (the hub's loop, a timer callback, a
/// link), which must not wait or switch.
#[inline(always)]
pub(crate) fn in_scheduler() -> bool {
    context() == Context::Scheduler
}
