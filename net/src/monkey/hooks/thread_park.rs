//! `std::thread::park`'s per-thread word, shared by all the greenlets of a thread.
//!
//! std's futex parker keeps one `u32` per OS thread (`EMPTY` 0, `NOTIFIED` 1, `PARKED`
//! `u32::MAX`): `park` does `fetch_sub(1)` (`NOTIFIED` → `EMPTY`: return; `EMPTY` →
//! `PARKED`: wait), then loops `futex_wait(PARKED)` and `CAS(NOTIFIED → EMPTY)`;
//! `park_timeout` waits once and then swaps `EMPTY` in; `unpark` swaps `NOTIFIED` in and
//! calls `futex_wake` only if it took `PARKED` out. Channels (std's `mpsc`, crossbeam),
//! `thread::scope` and blocking clients built on futures (`reqwest::blocking`) all wait
//! this way, with the `Thread` handle of the OS thread: every greenlet of a thread parks
//! through the same word. A hook that only parked futex waiters would break: the second
//! greenlet's `fetch_sub` turns `PARKED` into `u32::MAX - 1`, its wait then returns at
//! once for ever (a spin), and an `unpark` seeing that value calls no `futex_wake` (a
//! lost wake-up).
//!
//! Nor can the word simply be kept at `PARKED` while greenlets are parked through it:
//! std's `futex_wait` checks the word before the system call, so a second greenlet's
//! `park` (whose `fetch_sub` leaves `u32::MAX - 1`) would spin in std's loop without
//! ever reaching the hook. And while the word reads anything but `PARKED`, an `unpark`
//! from another thread is a silent store. So the hook recognises the word, treats it as
//! a condition that concerns every greenlet parked through it (an `unpark` is for "the
//! thread", and every user of `park` checks its own condition again after waking), and
//! keeps it in the state that suits what the thread is doing:
//!
//! - **Identifying the word.** The first time a greenlet of a thread waits for `PARKED`
//!   on an unknown word, the hook calls `thread::current().unpark()` with a thread-local
//!   flag set: if the greenlet is inside `park`, the word reads `PARKED`, so `unpark`
//!   calls `futex_wake` on it, which the hook records (the wake itself goes on: no one
//!   else waits on that word). The word now holds a token, so the wait returns at once
//!   and `park` returns (a spurious wake-up, which `park` allows). A probe never takes a
//!   token away.
//! - **While greenlets run, the word reads `EMPTY`.** A greenlet that parks through the
//!   hook leaves it `EMPTY` (it was `PARKED` by its own `fetch_sub`), so the next one's
//!   `fetch_sub` also makes `PARKED` and reaches the hook.
//! - **While the hub sleeps, the word reads `PARKED`.** Right before the hub waits in its
//!   poll with greenlets parked through the word, it stores `PARKED` (no greenlet can
//!   call `park` until it wakes), and takes it back right after. An `unpark` from another
//!   thread then calls `futex_wake`, which the hook turns into a wake-up of the hub.
//! - **Every greenlet gets its wake.** A wake through the futex wakes **all** the
//!   greenlets parked through the word. Each of them, resumed inside the hook, stores
//!   `NOTIFIED` just before its wait returns, so that its own `park` consumes a token and
//!   returns. A token that an `unpark` left while the word read `EMPTY` is seen by the
//!   next poll of the hub (busy or not), or by the next greenlet resumed in the hook, and
//!   wakes them all too.
//! - **A token can be taken unseen.** While greenlets run, a greenlet's `park` can
//!   consume a token meant for another (std's `fetch_sub` takes it without any call the
//!   hook can see), and nothing tells that apart from a `park` that found no token. So
//!   while greenlets are parked through the word and others run, the hook wakes them all
//!   again every so often (10 ms, doubling up to 1 s while no wake comes through the
//!   futex): a wake-up can be late, never lost.
//! - **What cannot work is reported.** std's and crossbeam's channels never wake a
//!   waiter of the sender's own OS thread (they skip it on purpose, by thread id), so two
//!   greenlets of one thread can never hand each other messages through them when one
//!   has to wait. Nothing the hook sees tells this apart from a long wait for another
//!   thread, so when greenlets have waited through the word for a while (10 s by
//!   default, [`set_park_stall_warning`]) with no wake-up at all, it logs a warning that
//!   names the likely cause and green's channels as the way out.
//! - A `park` from the hub itself (a timer callback or a link) while greenlets are parked
//!   through the word blocks the thread, as any blocking call there does; wakes then
//!   reach the kernel too, and the hook logs an error.
//!
//! - A greenlet the hub refuses to park (one that parks again while it is unwound at
//!   the thread's end) waits in the kernel, as unpatched: wakes then reach the kernel.
//!
//! Words of other libraries kept in thread-local storage and waited on with plain
//! `FUTEX_WAIT` (parking_lot's per-thread parker) cannot be shared between greenlets at
//! all (their queues link the thread's record): such waits block the thread, with a
//! warning.

use super::futex::{self, Args, Flag, PROBING, Parked, fail};
use crate::monkey::waiters::{self, Node, ParkShared, Woken};
use libc::c_long;
use std::cell::{Cell, OnceCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
/// What a parked thread's word holds.
pub(super) const PARKED: u32 = u32::MAX;

/// The first delay of the wake-up that follows a window (see the module's notes).
const SAFETY_MIN: Duration = Duration::from_millis(10);
/// Its longest delay.
const SAFETY_MAX: Duration = Duration::from_secs(1);

/// The stall warning's delay in milliseconds (0: off).
static STALL_MS: AtomicU64 = AtomicU64::new(10_000);

/// Sets how long greenlets may wait in `std::thread::park` (a blocking std or
/// crossbeam channel, `reqwest::blocking`, ...) with no wake-up before the sync patch
/// logs a warning (default 10 s; `None`: never). std's and crossbeam's channels never
/// wake a waiter of their own OS thread, so when both ends of such a channel are
/// greenlets of one thread, a receiver that has to wait is never woken: the warning
/// says so and names green's `Queue`/`Channel`. A long wait for another thread is
/// reported too (once per episode).
///
/// ```
/// use std::time::Duration;
/// green_net::monkey::set_park_stall_warning(Some(Duration::from_secs(30)));
/// ```
pub fn set_park_stall_warning(after: Option<Duration>) {
    let ms = after.map_or(0, |d| d.as_millis().clamp(1, u64::MAX as u128) as u64);
    STALL_MS.store(ms, Ordering::Relaxed);
}

/// This thread's parker word and the greenlets parked through it.
struct Park {
    /// The word's address (0: not identified yet).
    addr: Cell<usize>,
    /// Greenlets of this thread inside [`wait`] (queued or woken, not returned yet).
    inside: Cell<usize>,
    /// The hub stored `PARKED` for its poll (see [`before_poll`]).
    armed: Cell<bool>,
    /// When to wake the queued greenlets again (a token may have been taken unseen);
    /// the delay after which the next such wake-up comes.
    safety_at: Cell<Option<Instant>>,
    delay: Cell<Duration>,
    /// Since when greenlets have waited with no wake-up through the futex; whether
    /// this episode was reported; whether this thread ever reported one.
    stall_since: Cell<Option<Instant>>,
    stall_reported: Cell<bool>,
    warned: Cell<bool>,
    shared: OnceCell<Arc<ParkShared>>,
}

thread_local! {
    static PARK: Park = const {
        Park {
            addr: Cell::new(0),
            inside: Cell::new(0),
            armed: Cell::new(false),
            safety_at: Cell::new(None),
            delay: Cell::new(SAFETY_MIN),
            stall_since: Cell::new(None),
            stall_reported: Cell::new(false),
            warned: Cell::new(false),
            shared: OnceCell::new(),
        }
    };
    /// The word a probe's `futex_wake` named (see [`identify`]).
    static PROBED: Cell<usize> = const { Cell::new(0) };
}

impl Park {
    fn shared(&self) -> Arc<ParkShared> {
        self.shared.get_or_init(Arc::default).clone()
    }

    /// Wakes the queued greenlets again after the current delay at the latest: greenlets
    /// run while some are parked, so a token may be taken unseen.
    fn schedule_safety(&self, now: Instant) {
        if self.safety_at.get().is_none() {
            self.safety_at.set(Some(now + self.delay.get()));
        }
    }
}

/// Called by the futex hook for a wake while this thread probes: `addr` is its parker
/// word (the first wake is the probe's).
pub(super) fn probed(addr: usize) {
    let _ = PROBED.try_with(|p| {
        if p.get() == 0 {
            p.set(addr);
        }
    });
}

/// Whether `addr` is this thread's parker word, probing for it the first time (see the
/// module's notes). Call only from a greenlet waiting for `PARKED` at `addr`.
fn identify(p: &Park, addr: usize) -> bool {
    let known = p.addr.get();
    if known != 0 {
        return known == addr;
    }
    let _ = PROBED.try_with(|c| c.set(0));
    // Only `unpark` runs while probing: getting and dropping the handle may allocate or
    // free, and an allocator's own futex wake would be taken for the parker word's.
    let Ok(me) = std::panic::catch_unwind(std::thread::current) else {
        return false;
    };
    {
        let _probe = Flag::set(PROBING);
        me.unpark();
    }
    drop(me);
    let found = PROBED.try_with(|c| c.get()).unwrap_or(0);
    if found != 0 {
        p.addr.set(found);
    }
    found != 0 && found == addr
}

/// Takes every greenlet parked through `addr` off the table, into `out`.
fn take_all(b: &mut waiters::Locked, addr: usize, out: &mut Woken) {
    let mut parker = None;
    b.take(addr, !0, usize::MAX, out, &mut parker);
}

/// A futex wait for `PARKED` from a greenlet: `None` if `a`'s word is not this thread's
/// parker word (then it is an ordinary futex wait).
///
/// # Safety
/// As the futex hook's: the word is live for the call.
pub(super) unsafe fn wait(a: Args, deadline: Option<Instant>) -> Option<c_long> {
    let addr = a.addr();
    let shared = PARK
        .try_with(|p| identify(p, addr).then(|| p.shared()))
        .ok()
        .flatten()?;
    // SAFETY: the caller's contract.
    Some(unsafe { wait_parked(shared, a, deadline) })
}

/// Runs `f` with this thread's [`Park`], if it is still there. No reference to it may
/// be held across a park: the thread's end unwinds the greenlets parked through the
/// word after the thread-locals with destructors, `PARK` among them, are destroyed.
fn with_park(f: impl FnOnce(&Park)) {
    let _ = PARK.try_with(f);
}

/// [`wait`] once `a`'s word is known to be this thread's parker word, whose shared state
/// is `shared`.
///
/// # Safety
/// As [`wait`].
unsafe fn wait_parked(shared: Arc<ParkShared>, a: Args, deadline: Option<Instant>) -> c_long {
    let addr = a.addr();
    let Some(wait) = futex::new_wait() else {
        // No reactor: let std's park return (spuriously) rather than block the hub.
        return fail(libc::EAGAIN);
    };
    // SAFETY: the caller's contract.
    let word = unsafe { futex::word(addr) };
    let node = Node::new(addr, !0, wait.waker(), Some(shared.clone()));
    let mut woken = Woken::new();
    {
        let _hook = Flag::set(futex::IN_HOOK);
        let mut b = waiters::lock(addr);
        b.count_waiter();
        // This greenlet's fetch_sub made the word PARKED: make it EMPTY again, for the
        // next greenlet's park, or find a token.
        loop {
            match word.load(Ordering::Relaxed) {
                NOTIFIED => {
                    // An unpark came after this greenlet's fetch_sub: it returns (std
                    // consumes the token); the others check their conditions too.
                    b.uncount_waiter();
                    take_all(&mut b, addr, &mut woken);
                    drop(b);
                    woken.wake();
                    return fail(libc::EAGAIN);
                }
                EMPTY => break,
                v => {
                    if word
                        .compare_exchange(v, EMPTY, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        break;
                    }
                }
            }
        }
        if futex_passed(deadline) {
            b.uncount_waiter();
            return fail(libc::ETIMEDOUT);
        }
        // SAFETY: `node` stays in this frame until it is dequeued below.
        unsafe { b.enqueue(&node) };
        with_park(|p| {
            p.inside.set(p.inside.get() + 1);
            // Others run while this one is parked: a token meant for it may be taken
            // unseen.
            let now = Instant::now();
            p.schedule_safety(now);
            if p.stall_since.get().is_none() {
                p.stall_since.set(Some(now));
            }
        });
    }
    loop {
        let r = futex::park(&wait, deadline);
        let _hook = Flag::set(futex::IN_HOOK);
        let mut b = waiters::lock(addr);
        let was_woken = b.is_woken(&node);
        if !was_woken && r == Parked::Woken {
            // Spurious: still queued, wait on.
            continue;
        }
        b.dequeue(&node);
        // A token left while the word read EMPTY may be meant for a greenlet still
        // queued: they all check.
        if word.load(Ordering::Relaxed) == NOTIFIED {
            take_all(&mut b, addr, &mut woken);
        }
        // (Gone at the thread's end: nothing is left to keep count for.)
        with_park(|p| {
            p.inside.set(p.inside.get() - 1);
            if shared.linked.load(Ordering::Relaxed) > 0 {
                // This one runs on while others stay parked.
                p.schedule_safety(Instant::now());
            }
        });
        if !was_woken && r == Parked::Failed {
            // The hub refuses to park this greenlet (it parks again while it unwinds at
            // the thread's end). Returning would only bring it back here from std's
            // loop at once, for ever: wait in the kernel instead, as unpatched, unless
            // a token came (a failed CAS).
            shared.kernel_waiting.store(true, Ordering::SeqCst);
            if word
                .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                drop(b);
                drop(_hook);
                woken.wake();
                // SAFETY: forwarded to the caller: the word reads PARKED again, as std
                // left it for this wait.
                let r = unsafe { a.forward() };
                shared.kernel_waiting.store(false, Ordering::SeqCst);
                return r;
            }
            shared.kernel_waiting.store(false, Ordering::SeqCst);
        }
        let timed_out = !was_woken && r == Parked::TimedOut;
        if !timed_out {
            // Woken, killed (a spurious wake-up for `park`), or refused with a token:
            // `park`'s CAS consumes this token and it returns.
            word.store(NOTIFIED, Ordering::Release);
        }
        drop(b);
        woken.wake();
        return if timed_out { fail(libc::ETIMEDOUT) } else { 0 };
    }
}

fn futex_passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A futex wait outside a greenlet (a plain thread, the hub, no hub): glibc's; a `park`
/// from the hub while greenlets of its thread are parked through the word is reported,
/// and wakes of the word then reach the kernel too.
///
/// # Safety
/// As the futex hook's.
pub(super) unsafe fn outside_greenlet(a: Args) -> c_long {
    let addr = a.addr();
    let ours = (a.val() == PARKED && futex::flags() == 0)
        .then(|| {
            PARK.try_with(|p| (p.addr.get() == addr && p.inside.get() > 0).then(|| p.shared()))
                .ok()
                .flatten()
        })
        .flatten();
    let Some(shared) = ours else {
        // SAFETY: forwarded to the caller.
        return unsafe { a.forward() };
    };
    log::error!(
        "green::monkey: std::thread::park called in the hub (a timer callback or a link) \
         while greenlets of this thread wait in it: it blocks the thread; do not block in \
         hub callbacks"
    );
    shared.kernel_waiting.store(true, Ordering::SeqCst);
    // SAFETY: forwarded to the caller.
    let r = unsafe { a.forward() };
    shared.kernel_waiting.store(false, Ordering::SeqCst);
    r
}

/// The hub's check right before it polls (registered by `patch_sync`), while greenlets
/// are parked through this thread's word: wakes them all for a token left while the
/// word read `EMPTY`, or when the wake-up after a busy spell is due; before a poll that
/// may wait, stores `PARKED` (see [`after_poll`]); reports a stall. Returns when the
/// hub must look again.
pub(crate) fn before_poll(blocking: bool) -> Option<Instant> {
    PARK.try_with(|p| {
        if p.inside.get() == 0 {
            p.stall_since.set(None);
            p.stall_reported.set(false);
            p.safety_at.set(None);
            return None;
        }
        let addr = p.addr.get();
        let shared = p.shared();
        let now = Instant::now();
        let mut woken = Woken::new();
        let mut progress = shared.visible.swap(false, Ordering::Relaxed);
        if progress {
            p.delay.set(SAFETY_MIN);
        }
        {
            let _hook = Flag::set(futex::IN_HOOK);
            let mut b = waiters::lock(addr);
            if shared.linked.load(Ordering::Relaxed) > 0 {
                // SAFETY: greenlets of this thread are parked in `park` on this word,
                // which lives in their `Thread`.
                let word = unsafe { futex::word(addr) };
                let mut all = word.load(Ordering::Relaxed) == NOTIFIED;
                progress |= all;
                if !blocking {
                    // Greenlets run on: a token may be taken unseen meanwhile.
                    p.schedule_safety(now);
                }
                if p.safety_at.get().is_some_and(|t| t <= now) {
                    p.safety_at.set(None);
                    p.delay.set((p.delay.get() * 2).min(SAFETY_MAX));
                    all = true;
                }
                if !all && blocking {
                    // No greenlet runs until the poll ends: an unpark from now on
                    // calls futex_wake. A failed CAS means a token came.
                    let armed = word
                        .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                    p.armed.set(armed);
                    all = !armed;
                }
                if all {
                    take_all(&mut b, addr, &mut woken);
                }
            } else {
                p.safety_at.set(None);
            }
        }
        woken.wake();
        let stall = STALL_MS.load(Ordering::Relaxed);
        if progress || p.stall_since.get().is_none() {
            p.stall_since.set(Some(now));
            p.stall_reported.set(false);
        }
        let mut next = p.safety_at.get();
        if let Some(since) = p.stall_since.get()
            && stall > 0
            && !p.stall_reported.get()
        {
            let at = since + Duration::from_millis(stall);
            if at <= now {
                report_stall(p, now - since);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    })
    .ok()
    .flatten()
}

/// The hub's step right after a poll that [`before_poll`] armed: the word reads
/// `EMPTY` again before any greenlet runs (a token that came stays, for the greenlets
/// its futex wake woke), and greenlets are about to run while others stay parked.
pub(crate) fn after_poll() {
    let _ = PARK.try_with(|p| {
        if !p.armed.replace(false) {
            return;
        }
        let addr = p.addr.get();
        let _hook = Flag::set(futex::IN_HOOK);
        let _b = waiters::lock(addr);
        // SAFETY: as in `before_poll`: greenlets are parked through this word.
        let word = unsafe { futex::word(addr) };
        let _ = word.compare_exchange(PARKED, EMPTY, Ordering::Relaxed, Ordering::Relaxed);
        if p.shared().linked.load(Ordering::Relaxed) > 0 {
            p.schedule_safety(Instant::now());
        }
    });
}

#[cold]
fn report_stall(p: &Park, waited: Duration) {
    p.stall_reported.set(true);
    let n = p.inside.get();
    let first = !p.warned.replace(true);
    let level = if first {
        log::Level::Warn
    } else {
        log::Level::Debug
    };
    log::log!(
        level,
        "green::monkey: {n} greenlet(s) of thread {:?} have waited {:.1} s in \
         std::thread::park (a std::sync::mpsc or crossbeam channel, reqwest::blocking, ...) \
         with no wake-up. std's and crossbeam's channels never wake a waiter of their own OS \
         thread: if the other end is a greenlet of this same thread, it never will. Between \
         greenlets of one thread use green::Queue or green::Channel (std channels work \
         between threads).",
        std::thread::current().name().unwrap_or("<unnamed>"),
        waited.as_secs_f64()
    );
}

/// Whether `addr` lies in this thread's block of the executable's static thread-local
/// storage (where parking_lot keeps its per-thread parker word).
pub(super) fn is_thread_local(addr: usize) -> bool {
    thread_local! {
        /// The block's bounds (`(0, 0)`: not known yet; `(1, 1)`: none).
        static TLS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }
    let (start, end) = TLS
        .try_with(|t| {
            if t.get() == (0, 0) {
                t.set(tls_block().unwrap_or((1, 1)));
            }
            t.get()
        })
        .unwrap_or((1, 1));
    (start..end).contains(&addr)
}

/// This thread's instance of the executable's `PT_TLS` segment, from `dl_iterate_phdr`.
fn tls_block() -> Option<(usize, usize)> {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: glibc passes a valid `dl_phdr_info` and our `out` pointer; the first
        // object it reports is the executable.
        unsafe {
            let info = &*info;
            let out = &mut *out.cast::<Option<(usize, usize)>>();
            let phdrs = std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
            if let Some(tls) = phdrs.iter().find(|ph| ph.p_type == libc::PT_TLS) {
                let start = info.dlpi_tls_data as usize;
                if start != 0 {
                    *out = Some((start, start + tls.p_memsz as usize));
                }
            }
        }
        1 // stop after the executable
    }
    let mut out: Option<(usize, usize)> = None;
    // SAFETY: the callback matches the prototype and only writes `out`.
    unsafe { libc::dl_iterate_phdr(Some(first), (&raw mut out).cast()) };
    out
}

/// Warns (once per process) that a wait on a thread-local word blocks the thread.
pub(super) fn warn_thread_local() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "green::monkey: a greenlet waits on a futex word in thread-local storage \
             (parking_lot, and crates built on it, keep one per OS thread): greenlets \
             cannot share it, so the wait blocks the whole thread, and a lock held by \
             another greenlet of this thread is never released. Between greenlets use \
             std::sync::Mutex or green::Lock"
        );
    }
}
