//! Layer 2, the hub: one scheduler per thread. It runs the ready greenlets, fires timers,
//! polls the reactor, runs blocking calls on helper threads, and delivers kills, throws
//! and timeouts.
//!
//! A hub is created on a thread's first use of anything that waits (a spawn, a sleep, a
//! park, a timer, a socket), and installed into the thread's greenlet state as its
//! `Scheduler`; it is dropped when the thread ends, after the greenlets still alive
//! were unwound. Everything it holds is bound to its thread.
//!
//! - `run.rs`: the `Scheduler` the greenlet layer calls: what runs next (the ready
//!   queue, then timers and IO), yields, deaths.
//! - `ready.rs`, `park.rs`, `time.rs`, `timer.rs`: the ready queue, parking, sleeping
//!   and yielding, timers.
//! - `reactor.rs` (registering fds and waiting for them) over `poller.rs` (the
//!   `mio::Poll` and each registration's state); `precise.rs`: a timerfd that ends
//!   polls at short timers' deadlines to the microsecond.
//! - `remote.rs`: waking a parked greenlet from other threads.
//! - `blocking.rs`: the helper-thread pool.
//! - `throw.rs`: kill, throw and timeout delivery; `timeout.rs`: the timeout payload
//!   and the timer that raises it.
//! - `budget.rs`: the fairness budget of socket operations.
//! - `poll_hooks.rs`: functions the monkey patch runs around the hub's poll.
//! - `signal.rs`: the dump of the greenlets on a signal.
//! - `internal.rs`: the interface to `green-net` (`green::__net`).

pub(crate) mod blocking;
pub(crate) mod budget;
pub mod internal;
pub mod park;
pub(crate) mod poll_hooks;
pub(crate) mod poller;
pub(crate) mod precise;
pub(crate) mod reactor;
pub(crate) mod ready;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod signal;
pub(crate) mod throw;
pub(crate) mod time;
pub(crate) mod timeout;
pub mod timer;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::greenlet::Greenlet;
use crate::greenlet::error::BlockError;
use crate::greenlet::thread;
use crate::hub::poller::Reactor;
use crate::hub::ready::ReadyQueue;
use crate::hub::timer::Timers;

thread_local! {
    /// This thread's hub, once installed (null before and after): a `const` thread-local,
    /// one load on the paths that reach the hub (a wake, a park, a wait for IO).
    static HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
}

/// The hub of one thread: all of its state.
pub(crate) struct Hub {
    /// A process-unique number, so that a cross-thread waker knows when it is used on
    /// its hub's own thread (`remote`).
    pub(crate) id: u64,
    /// Greenlets with something to resume them with (their pending input).
    pub(crate) ready: ReadyQueue,
    /// Scheduling ticks left before the next poll of timers and IO while greenlets are
    /// ready (a countdown, see `run::MAINTENANCE_INTERVAL`).
    pub(crate) ticks: Cell<u32>,
    pub(crate) timers: RefCell<Timers>,
    /// The timers that start `spawn_later` greenlets, by greenlet id, while armed (see
    /// `Core::start_armed`).
    pub(crate) starts: RefCell<HashMap<u64, timer::Key>>,
    /// Created on first use: a thread that never waits for IO makes no epoll fd.
    pub(crate) reactor: RefCell<Option<Reactor>>,
    /// Waits listed on IO registrations (`reactor`), counted here so that a wait and
    /// its end need not borrow the reactor.
    pub(crate) io_waiters: Cell<usize>,
    /// Waits of this hub's greenlets for other threads (`remote::RemoteWait`: helper
    /// thread jobs, futex wakes, future wakers): while any exists, the hub keeps
    /// polling instead of reporting that nothing can ever wake.
    pub(crate) blocking_pending: Cell<usize>,
    /// The throw state of the greenlets that have one (see `throw`).
    pub(crate) throws: throw::Throws,
    /// The fairness budget's checks (see `budget`).
    pub(crate) budget: budget::Checks,
    /// The timer that gives main its turn back while the greenlets still alive when the
    /// thread ends unwind (see `run`'s `exit_tick`), while armed.
    pub(crate) exit_tick: Cell<Option<timer::Key>>,
}

impl Hub {
    fn new() -> Hub {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Hub {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ready: ReadyQueue::new(),
            ticks: Cell::new(run::MAINTENANCE_INTERVAL - 1),
            timers: RefCell::new(Timers::new()),
            starts: RefCell::new(HashMap::new()),
            reactor: RefCell::new(None),
            io_waiters: Cell::new(0),
            blocking_pending: Cell::new(0),
            throws: Default::default(),
            budget: Default::default(),
            exit_tick: Cell::new(None),
        }
    }

    /// Queues `g` to run; its `pending` input must already be set.
    #[inline]
    pub(crate) fn push_ready(&self, g: Greenlet) {
        self.ready.push(g);
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        HUB.with(|h| h.set(ptr::null()));
    }
}

/// Runs `f` with this thread's hub, installing it on first use.
///
/// # Panics
///
/// If called while the thread's thread-locals are being destroyed.
#[inline(always)]
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let p = HUB.with(|h| h.get());
    if !p.is_null() {
        // SAFETY: `HUB` is set to the installed hub's address (in its box, owned by the
        // thread's `Thread` until the thread ends) and cleared first thing in its drop,
        // so a non-null value points at the live hub of this thread.
        return f(unsafe { &*p });
    }
    match install() {
        // SAFETY: as above: just installed.
        Some(p) => f(unsafe { &*p }),
        None => panic!("green: the hub is used while its thread ends"),
    }
}

/// The id of this thread's hub, 0 if it has none (see `Hub::id`).
#[inline]
pub(crate) fn hub_id() -> u64 {
    let p = HUB.with(|h| h.get());
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in `with_hub`: a non-null `HUB` points at the live hub.
    unsafe { (*p).id }
}

/// Whether this thread's hub is installed.
#[inline(always)]
pub(crate) fn installed() -> bool {
    !HUB.with(|h| h.get()).is_null()
}

/// Like [`with_hub`] but `None` once the hub is gone (thread exit).
#[inline]
pub(crate) fn try_with_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let p = HUB.with(|h| h.get());
    if !p.is_null() {
        // SAFETY: as in `with_hub`.
        return Some(f(unsafe { &*p }));
    }
    // SAFETY: as in `with_hub`.
    install().map(|p| f(unsafe { &*p }))
}

/// Makes this thread's hub and installs it as the thread's scheduler; `None` if the
/// thread is ending. Greenlets orphaned before (see `NoScheduler::orphan`) are killed
/// by the new hub.
#[cold]
#[inline(never)]
fn install() -> Option<*const Hub> {
    thread::try_with(|t| {
        if t.ending.get() || t.has_scheduler() {
            return None;
        }
        // While the hub is made, the thread is no greenlet context: a lock contended in
        // there (a `Once` of std's, say) whose wait the monkey patch's futex hook sees
        // must block like a plain thread's, not park through a hub that does not exist
        // yet (which would make a second one).
        let was = thread::context();
        let hub = {
            let _restore = RestoreContext(was);
            thread::set_context(thread::Context::None);
            Box::new(Hub::new())
        };
        let p: *const Hub = &*hub;
        budget::restart(&t.main.0);
        t.install(hub);
        HUB.with(|h| h.set(p));
        let orphans = std::mem::take(&mut *t.orphans.borrow_mut());
        // SAFETY: just installed (see `with_hub`).
        let h = unsafe { &*p };
        for g in orphans {
            *g.0.cold.parent.borrow_mut() = Some(t.hub.clone());
            throw::deliver(h, &g, Box::new(crate::greenlet::error::GreenletExit));
        }
        Some(p)
    })
    .flatten()
}

/// Puts the thread's context back when dropped (see `install`).
struct RestoreContext(thread::Context);

impl Drop for RestoreContext {
    fn drop(&mut self) {
        thread::set_context(self.0);
    }
}

/// The panic of `what` (a wait with no error to return: `sleep`, `yield_now`, `wait`,
/// ...) called from the hub, a timer callback or a link, which must not wait or switch.
/// The hub catches it and logs it with the callback's other panics
/// (`trampoline::run_callback`).
#[cold]
#[inline(never)]
pub(crate) fn in_hub_panic(what: &str) -> ! {
    panic!("green: {what}: {}", BlockError::InHub)
}
