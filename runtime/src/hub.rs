//! The per-thread hub: the ready queue, the current greenlet, and the entry points to
//! the timers, the reactor and the stack pool.
//!
//! A hub is created lazily, the first time a thread uses `green`. It lives in a
//! thread-local and is dropped when the thread ends, after unwinding the greenlets still
//! alive then (see `driver::unwind_at_exit`). Greenlets, the hub and everything they
//! hold are bound to their thread: [`Greenlet`] is `!Send`.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::rc::Rc;

use crate::greenlet::{Greenlet, Inner, Kind};
use crate::reactor::Reactor;
use crate::stack::{DEFAULT_STACK_SIZE, StackPool};
use crate::timer::Timers;

/// What the code running on this thread is, as far as the runtime is concerned.
/// Kept in a `const`-initialised thread-local so that the monkey patch's hooks and the
/// overflow handler can read it without touching (or lazily creating) the hub.
pub(crate) const CTX_NONE: u8 = 0;
/// The thread's own code (the main greenlet), with a hub on the thread.
pub(crate) const CTX_MAIN: u8 = 1;
/// The hub's scheduling loop, timer callbacks and links.
pub(crate) const CTX_HUB: u8 = 2;
/// A greenlet running on its own stack.
pub(crate) const CTX_GREENLET: u8 = 3;

thread_local! {
    static HUB: Hub = Hub::new();
    /// The address of `HUB` once created (null before and after): a `const` thread-local
    /// is a single load, where the lazily initialised `HUB` checks its state each time.
    static HUB_PTR: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    pub(crate) static CONTEXT: Cell<u8> = const { Cell::new(CTX_NONE) };
    /// The greenlet whose code is running (the hub while the driver schedules). Not
    /// owning: the driver holds a strong handle to the greenlet it resumed for as long as
    /// it runs, and the hub owns `main` and `hub`. A thread-local rather than a hub
    /// field: read right after every switch, it costs one load instead of a chain.
    static CURRENT: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    /// This thread's hub's id (0: none yet): a process-unique number, so that a
    /// cross-thread waker knows when it is used on its hub's own thread (`remote`).
    static HUB_ID: Cell<u64> = const { Cell::new(0) };
    /// How many greenlets of this thread need the slow path at their switch points:
    /// each holds deferred throws (`defer_unwind`, `greenlet::hold_for`) or a count of
    /// raised throws (`Inner::thrown`), and counts once per cause. Lets every switch skip those
    /// checks with one thread-local load.
    static SLOW_SWITCHES: Cell<usize> = const { Cell::new(0) };
}

/// The id of this thread's hub, 0 if it has none (see `HUB_ID`).
#[inline]
pub(crate) fn hub_id() -> u64 {
    HUB_ID.try_with(|c| c.get()).unwrap_or(0)
}

/// Whether any greenlet of this thread holds a deferred throw or a count of raised throws: the
/// switch points then take their slow path.
#[inline(always)]
pub(crate) fn any_deferred() -> bool {
    SLOW_SWITCHES.with(|c| c.get()) != 0
}

/// A greenlet's deferred list became non-empty, or it got a count of raised throws.
pub(crate) fn slow_switch_added() {
    SLOW_SWITCHES.with(|c| c.set(c.get() + 1));
}

/// A greenlet's deferred list became empty, or its count went (also when its
/// record is freed with them).
pub(crate) fn slow_switch_removed() {
    let _ = SLOW_SWITCHES.try_with(|c| c.set(c.get().saturating_sub(1)));
}

/// The scheduler state of one thread.
pub(crate) struct Hub {
    /// The thread's own code.
    pub(crate) main: Greenlet,
    /// The pseudo-greenlet standing for the hub (the parent of spawned greenlets).
    pub(crate) hub: Greenlet,
    /// Greenlets with something to resume them with (their `pending` input).
    pub(crate) ready: crate::ready::ReadyQueue,
    pub(crate) timers: RefCell<Timers>,
    /// Created on first use: a thread that only switches never makes an epoll fd.
    pub(crate) reactor: RefCell<Option<Reactor>>,
    pub(crate) stacks: RefCell<StackPool>,
    /// Records of dead greenlets kept for reuse.
    pub(crate) records: crate::records::Records,
    /// Default stack size for new greenlets.
    pub(crate) stack_size: Cell<usize>,
    /// Scheduling ticks left before the next poll of timers and IO while greenlets are
    /// ready (a countdown).
    pub(crate) ticks: Cell<u32>,
    /// Waits of this hub's greenlets for other threads (`remote::RemoteWait`: helper
    /// thread jobs, futex wakes, future wakers): while any exists, the hub keeps
    /// polling instead of reporting that nothing can ever wake.
    pub(crate) blocking_pending: Cell<usize>,
    /// Waits listed on IO registrations (`reactor`), counted here so that a wait and
    /// its end need not borrow the reactor.
    pub(crate) io_waiters: Cell<usize>,
    /// What `sync::monitor` reads from its own thread: the switch counter (one relaxed
    /// add per resume) and, while monitoring, which greenlet runs.
    pub(crate) monitor: std::sync::Arc<crate::sync::monitor::Shared>,
    /// Greenlets that had throws held while they seemed to be unwinding
    /// (`greenlet::hold_for`), to deliver them once no unwinding is in progress
    /// (`greenlet::release_held`); `has_held` says whether the list may be non-empty.
    pub(crate) held: RefCell<Vec<std::rc::Weak<Inner>>>,
    pub(crate) has_held: Cell<bool>,
    /// Whether a monitor is attached (only then does the driver record the current
    /// greenlet for it).
    pub(crate) monitoring: Cell<bool>,
    /// The side slot of an input crossing a switch that does not fit a word (`word`).
    pub(crate) xfer_input: Cell<Option<crate::driver::Input>>,
    /// The outcome of a greenlet's function, on its way to the driver (`word`).
    pub(crate) xfer_output: Cell<Option<crate::driver::Output>>,
}

impl Hub {
    fn new() -> Hub {
        let main = Greenlet::root(Kind::Main, None);
        let hub = Greenlet::root(Kind::Hub, Some(main.clone()));
        CURRENT.with(|c| c.set(Rc::as_ptr(&*main.0)));
        static NEXT_HUB_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        HUB_ID.with(|c| c.set(NEXT_HUB_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        crate::overflow::install();
        crate::overflow::ensure_altstack();
        let made = Hub {
            main,
            hub,
            ready: crate::ready::ReadyQueue::new(),
            timers: RefCell::new(Timers::new()),
            reactor: RefCell::new(None),
            stacks: RefCell::new(StackPool::new()),
            records: Default::default(),
            stack_size: Cell::new(DEFAULT_STACK_SIZE),
            ticks: Cell::new(crate::driver::MAINTENANCE_INTERVAL - 1),
            blocking_pending: Cell::new(0),
            io_waiters: Cell::new(0),
            monitor: Default::default(),
            held: RefCell::new(Vec::new()),
            has_held: Cell::new(false),
            monitoring: Cell::new(false),
            xfer_input: Cell::new(None),
            xfer_output: Cell::new(None),
        };
        // Last: from here on the monkey patch's hooks see a greenlet context and may park
        // through this hub. Making it can wait on a `Once` (another thread's hub
        // installing the overflow handler or probing the guard kind), and a hook must not
        // use the hub before it exists (that would create a second one).
        CONTEXT.with(|c| c.set(CTX_MAIN));
        made
    }

    /// The running greenlet.
    #[inline]
    pub(crate) fn current(&self) -> &Inner {
        // SAFETY: `current` always points at a live greenlet: `main` or `hub` (owned by
        // this hub) or the greenlet the driver is running, which the driver keeps alive
        // with a strong handle until it is switched away from.
        unsafe { &*CURRENT.with(|c| c.get()) }
    }

    /// A new handle to the running greenlet.
    pub(crate) fn current_greenlet(&self) -> Greenlet {
        let p = CURRENT.with(|c| c.get());
        // SAFETY: `p` points at a live `Inner` owned by an `Rc` (see `current`), so
        // adding a strong count and making a second `Rc` from it is sound.
        unsafe {
            Rc::increment_strong_count(p);
            Greenlet::from_rc(Rc::from_raw(p))
        }
    }

    #[inline]
    pub(crate) fn set_current(&self, g: &Greenlet) {
        CURRENT.with(|c| c.set(Rc::as_ptr(&*g.0)));
    }

    /// Queues `g` to run; its `pending` input must already be set.
    #[inline]
    pub(crate) fn push_ready(&self, g: Greenlet) {
        self.ready.push(g);
    }

    /// The reactor, created on first use.
    pub(crate) fn with_reactor<R>(&self, f: impl FnOnce(&mut Reactor) -> R) -> std::io::Result<R> {
        let mut slot = self.reactor.borrow_mut();
        if slot.is_none() {
            *slot = Some(Reactor::new()?);
        }
        // The `if` above filled the slot, or returned the error.
        match slot.as_mut() {
            Some(r) => Ok(f(r)),
            None => Err(std::io::Error::other("reactor missing")),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // The greenlets still alive are unwound while the hub still works, reached
        // through HUB_PTR, which is set from this drop's own reference. (`HUB` itself
        // cannot be accessed any more: its destructor is running.)
        let h: &Hub = self;
        HUB_PTR.with(|p| p.set(h));
        crate::driver::unwind_at_exit(h);
        HUB_PTR.with(|p| p.set(ptr::null()));
        CONTEXT.with(|c| c.set(CTX_NONE));
        CURRENT.with(|c| c.set(ptr::null()));
    }
}

/// Runs `f` with this thread's hub, creating the hub on first use.
///
/// # Panics
///
/// If called while the thread's thread-locals are being destroyed.
#[inline(always)]
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let p = HUB_PTR.with(|p| p.get());
    if !p.is_null() {
        // SAFETY: HUB_PTR is set to HUB's address below and cleared first thing in
        // `Hub::drop`, so a non-null value points at the live hub of this thread.
        return f(unsafe { &*p });
    }
    HUB.with(|h| {
        HUB_PTR.with(|p| p.set(h));
        f(h)
    })
}

/// The address of this thread's hub, created on first use: [`with_hub`] without a
/// closure, for the switch path, where a closure that is not inlined would be a call
/// frame spanning the coroutine switch (see `driver::switch_to`).
///
/// The hub lives until the thread's thread-locals are destroyed: callers dereference
/// the pointer only for the duration of their own call, as `with_hub` would.
///
/// # Panics
///
/// If called while the thread's thread-locals are being destroyed.
#[inline(always)]
pub(crate) fn hub_ptr() -> *const Hub {
    let p = HUB_PTR.with(|p| p.get());
    if !p.is_null() {
        return p;
    }
    init_hub_ptr()
}

#[cold]
#[inline(never)]
fn init_hub_ptr() -> *const Hub {
    HUB.with(|h| {
        HUB_PTR.with(|p| p.set(h));
        h as *const Hub
    })
}

/// Runs `f` with the running greenlet's record: [`Hub::current`] without going through
/// the hub. Only while a hub runs on this thread (something is current).
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(&Inner) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    debug_assert!(!p.is_null());
    // SAFETY: as in `Hub::current`: a non-null CURRENT points at a live greenlet, kept
    // alive while it is current, which it stays during `f` (`f` is not given a way to
    // switch while it holds the reference: callers pass short, non-switching closures).
    f(unsafe { &*p })
}

/// The record of the running greenlet, null while no hub runs on this thread. It stays
/// alive while its greenlet runs (see [`Hub::current`]).
#[inline(always)]
pub(crate) fn current_ptr() -> *const Inner {
    CURRENT.with(|c| c.get())
}

/// The overflow record of the running greenlet, for the stack-overflow signal handler
/// (null outside a hub). Async-signal-safe: one read of a `const` thread-local without
/// destructor, and the record is immutable while its greenlet lives.
pub(crate) fn running_info() -> *const crate::overflow::RunningInfo {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return ptr::null();
    }
    // SAFETY: a non-null CURRENT points at a live greenlet (see `Hub::current`); only
    // the field's address is taken.
    unsafe { ptr::addr_of!((*p).info) }
}

/// Whether `g` is the running greenlet.
#[inline(always)]
pub(crate) fn is_current(g: &Greenlet) -> bool {
    ptr::eq(CURRENT.with(|c| c.get()), Rc::as_ptr(&*g.0))
}

/// Like [`with_hub`] but `None` once the hub is gone (thread exit).
#[inline]
pub(crate) fn try_with_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let p = HUB_PTR.with(|p| p.get());
    if !p.is_null() {
        // SAFETY: as in `with_hub`.
        return Some(f(unsafe { &*p }));
    }
    HUB.try_with(|h| {
        HUB_PTR.with(|p| p.set(h));
        f(h)
    })
    .ok()
}

/// The runtime context of the calling code (one of the `CTX_*` constants).
#[inline]
pub(crate) fn context() -> u8 {
    CONTEXT.with(|c| c.get())
}

#[inline]
pub(crate) fn set_context(ctx: u8) {
    CONTEXT.with(|c| c.set(ctx))
}

/// The panic of `what` (a wait with no error to return: `sleep`, `yield_now`, `wait`,
/// ...) called from the hub, a timer callback or a link, which must not wait or switch.
/// The hub catches it and logs it with the callback's other panics
/// (`driver::run_hub_callback`).
#[cold]
#[inline(never)]
pub(crate) fn in_hub_panic(what: &str) -> ! {
    panic!("green: {what}: {}", crate::error::BlockError::InHub)
}

/// Whether the calling code may park (block cooperatively): it runs in a spawned or
/// explicitly created greenlet, or it is the thread's own code (the main greenlet) on a
/// thread whose hub exists. `false` on a plain thread that never used `green`, and in
/// the hub itself (timer callbacks, links).
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
    matches!(
        CONTEXT.try_with(|c| c.get()),
        Ok(CTX_MAIN) | Ok(CTX_GREENLET)
    )
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
    with_hub(|h| h.stack_size.set(bytes.max(16 * 1024)))
}

/// The default stack size of new greenlets on this thread.
///
/// ```
/// assert!(green::default_stack_size() >= 16 * 1024);
/// ```
pub fn default_stack_size() -> usize {
    with_hub(|h| h.stack_size.get())
}
