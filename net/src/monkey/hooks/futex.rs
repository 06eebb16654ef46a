//! Hook of `syscall`, for `SYS_futex`: what std's `Mutex`, `Condvar`, `RwLock`, `Once`
//! and `thread::park` (and crates such as crossbeam) wait and wake through. parking_lot
//! waits through it too, on a per-thread word that greenlets cannot share: such waits
//! block the thread (see `thread_park`).
//!
//! - `FUTEX_WAIT` / `FUTEX_WAIT_BITSET` (private or shared, relative or absolute timeout,
//!   either clock) from a greenlet of a patched thread park the greenlet in the table of
//!   [`waiters`] instead of the thread in the kernel. A kill or a timeout raised
//!   meanwhile is deferred to the greenlet's next switch point and the wait returns
//!   `EINTR`, as the kernel's would on a signal; the caller's loop waits again (a lock
//!   cannot be given up), and later waits of that greenlet park without raising it.
//! - `FUTEX_WAKE` / `FUTEX_WAKE_BITSET` from anywhere (a greenlet of this hub or another,
//!   a plain thread) wake green waiters first, honouring the count and the bitset, and
//!   pass what is left of the count to the kernel, whose waiters are the threads.
//! - `FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE` and `FUTEX_WAKE_OP` wake every green waiter of
//!   both addresses (a spurious wake, which every futex user tolerates), then go to the
//!   kernel.
//! - Every other operation, every other system call number, and every call outside a
//!   greenlet (or unpatched) go to glibc's `syscall` unchanged. The unpatched cost is a
//!   compare of the number and one relaxed load. The project's own raw system calls
//!   call glibc's `syscall` directly (`real::syscall`), never this hook.
//!
//! A shared (not private) futex is keyed by its address in this process, as a private
//! one: a wake from another process reaches only the kernel, so a green waiter of a
//! shared futex also re-reads the word every few milliseconds and returns once it
//! changed.
//!
//! # The ABI of `syscall`
//!
//! glibc's `syscall` is C-variadic (`long syscall(long number, ...)`), which stable Rust
//! cannot define. On x86-64 (System V) and AArch64 Linux (AAPCS64, which passes variadic
//! arguments like named ones, unlike Apple's variant) the integer and pointer arguments
//! of a variadic call travel exactly where a call with seven `long` parameters puts
//! them (x86-64: six registers and the first stack slot; AArch64: seven registers), and
//! no vector register carries any. Every system call argument is an
//! integer or a pointer, so a non-variadic definition with seven `c_long`s receives them
//! all; arguments the caller did not pass read as whatever the registers (and that
//! stack slot, in the caller's frame) hold, and are ignored by the system call, as with
//! glibc's own `syscall`, which reads all six. On other targets the hook is not
//! built.

use super::guarded;
use super::thread_park;
use crate::monkey::waiters::{self, Node};
use crate::monkey::{SYNC, SYNC_USED, real, state};
use green_runtime::__net::RemoteWait;
use green_runtime::park::Wake;
use libc::{c_int, c_long};
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often a green waiter of a shared futex re-reads the word (a wake from another
/// process reaches only the kernel's waiters).
const SHARED_RECHECK: Duration = Duration::from_millis(5);

/// This thread runs the futex hook's own bookkeeping: a futex call made meanwhile (a
/// contended lock inside a cross-thread wake, the logger) goes to the kernel.
pub(super) const IN_HOOK: u8 = 1;
/// This thread probes its parker word (see `thread_park`): the next wake reports it.
pub(super) const PROBING: u8 = 2;

thread_local! {
    static FLAGS: Cell<u8> = const { Cell::new(0) };
}

/// This thread's hook flags (`IN_HOOK` if they cannot be read, during thread exit).
pub(super) fn flags() -> u8 {
    FLAGS.try_with(|f| f.get()).unwrap_or(IN_HOOK)
}

/// Sets `bit` of the flags for the guard's life.
pub(super) struct Flag {
    saved: u8,
}

impl Flag {
    pub(super) fn set(bit: u8) -> Flag {
        let saved = flags();
        let _ = FLAGS.try_with(|f| f.set(saved | bit));
        Flag { saved }
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        let _ = FLAGS.try_with(|f| f.set(self.saved));
    }
}

/// Whether futex waits of this thread's running code may park it: a greenlet of a
/// thread with a hub. (The unit tests drive the hooks without a runtime: never.)
#[cfg(not(test))]
pub(super) fn can_park() -> bool {
    green_runtime::is_greenlet_context()
}
#[cfg(test)]
pub(super) fn can_park() -> bool {
    false
}

/// Hook for `syscall(2)`; see the module's notes on its ABI.
///
/// # Safety
/// The kernel's contract of system call `n` for these arguments.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if n == libc::SYS_futex && state() & SYNC_USED != 0 {
        // SAFETY: forwarded to the caller.
        return unsafe { futex(Args([a1, a2, a3, a4, a5, a6])) };
    }
    // SAFETY: forwarded unchanged.
    unsafe { real::syscall(n, a1, a2, a3, a4, a5, a6) }
}

/// Takes the hook's address (see `hooks::keep_linked`).
pub(super) fn keep_linked() {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    std::hint::black_box(syscall as *const ());
}

/// The six arguments of a `SYS_futex` call: `uaddr, op, val, timeout (or val2), uaddr2,
/// val3`.
#[derive(Clone, Copy)]
pub(super) struct Args(pub(super) [c_long; 6]);

impl Args {
    pub(super) fn addr(self) -> usize {
        self.0[0] as usize
    }
    fn op(self) -> c_int {
        self.0[1] as c_int
    }
    pub(super) fn val(self) -> u32 {
        self.0[2] as u32
    }
    fn timeout(self) -> *const libc::timespec {
        self.0[3] as *const libc::timespec
    }
    fn addr2(self) -> usize {
        self.0[4] as usize
    }
    fn val3(self) -> u32 {
        self.0[5] as u32
    }

    /// glibc's `syscall(SYS_futex, ..)` with these arguments.
    ///
    /// # Safety
    /// The kernel's contract of the futex operation.
    pub(super) unsafe fn forward(self) -> c_long {
        let [a1, a2, a3, a4, a5, a6] = self.0;
        // SAFETY: forwarded to the caller.
        unsafe { real::syscall(libc::SYS_futex, a1, a2, a3, a4, a5, a6) }
    }
}

/// A failed call: `-1` with `errno` set to `e`, as glibc's `syscall` returns.
pub(super) fn fail(e: c_int) -> c_long {
    super::set_errno(e);
    -1
}

/// The word at `addr` (aligned, non-null: checked by the caller).
///
/// # Safety
/// `addr` points to a live `u32` (the futex word the caller waits or wakes on).
pub(super) unsafe fn word<'a>(addr: usize) -> &'a AtomicU32 {
    // SAFETY: forwarded to the caller; `AtomicU32` has the layout of `u32`.
    unsafe { AtomicU32::from_ptr(addr as *mut u32) }
}

/// The futex operations.
///
/// # Safety
/// The kernel's contract of the operation; in particular a wait's `uaddr` points to a
/// live word (the kernel would report `EFAULT` for a bad one, this reads it).
unsafe fn futex(a: Args) -> c_long {
    let op = a.op();
    let cmd = op & libc::FUTEX_CMD_MASK;
    let realtime = op & libc::FUTEX_CLOCK_REALTIME != 0;
    let addr = a.addr();
    // Leave to the kernel what it refuses (a null or misaligned word, a zero bitset).
    let sound = addr != 0 && addr.is_multiple_of(4);
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET if sound => {
            let bitset = if cmd == libc::FUTEX_WAIT {
                !0
            } else {
                a.val3()
            };
            // SAFETY: forwarded to the caller.
            unsafe { wait(a, cmd, realtime, bitset) }
        }
        libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET if sound && !realtime => {
            let bitset = if cmd == libc::FUTEX_WAKE {
                !0
            } else {
                a.val3()
            };
            // SAFETY: forwarded to the caller.
            unsafe { wake(a, bitset) }
        }
        libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE | libc::FUTEX_WAKE_OP if flags() == 0 => {
            let _hook = Flag::set(IN_HOOK);
            for addr in [addr, a.addr2()] {
                if addr != 0 && waiters::may_have_waiters(addr) {
                    waiters::wake(addr, !0, usize::MAX);
                }
            }
            // SAFETY: forwarded to the caller.
            unsafe { a.forward() }
        }
        // SAFETY: forwarded to the caller.
        _ => unsafe { a.forward() },
    }
}

/// `FUTEX_WAIT` / `FUTEX_WAIT_BITSET`.
///
/// # Safety
/// As [`futex`].
unsafe fn wait(a: Args, cmd: c_int, realtime: bool, bitset: u32) -> c_long {
    if state() & SYNC == 0 || bitset == 0 || flags() != 0 {
        // SAFETY: forwarded to the caller.
        return unsafe { a.forward() };
    }
    if !can_park() {
        // SAFETY: forwarded to the caller.
        return unsafe { thread_park::outside_greenlet(a) };
    }
    // SAFETY: the caller passes a null or readable timespec, as the kernel requires.
    let deadline = match unsafe { deadline(a.timeout(), cmd, realtime) } {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if cmd == libc::FUTEX_WAIT && thread_park::is_thread_local(a.addr()) {
        thread_park::warn_thread_local();
        // SAFETY: forwarded to the caller.
        return unsafe { a.forward() };
    }
    if a.val() == thread_park::PARKED {
        // SAFETY: forwarded to the caller.
        if let Some(r) = unsafe { thread_park::wait(a, deadline) } {
            return r;
        }
    }
    // SAFETY: forwarded to the caller.
    unsafe { green_wait(a, bitset, deadline) }
}

/// When a wait with this timeout ends: `Ok(None)` for none, `Err(EINVAL)` for a
/// malformed one. `FUTEX_WAIT` takes a relative timeout; `FUTEX_WAIT_BITSET` an absolute
/// time on `CLOCK_MONOTONIC`, or `CLOCK_REALTIME` with `FUTEX_CLOCK_REALTIME`.
///
/// # Safety
/// `ts` is null or points to a readable timespec.
unsafe fn deadline(
    ts: *const libc::timespec,
    cmd: c_int,
    realtime: bool,
) -> Result<Option<Instant>, c_int> {
    if ts.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    let ts = unsafe { *ts };
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(libc::EINVAL);
    }
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = Instant::now();
    let left = if cmd == libc::FUTEX_WAIT {
        d
    } else {
        let clock = if realtime {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is writable; the clock exists.
        unsafe { libc::clock_gettime(clock, &mut t) };
        d.saturating_sub(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    };
    // Too far to represent: no deadline, as good as one.
    Ok(now.checked_add(left))
}

/// How a green park inside a hook ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Parked {
    /// Something woke it (maybe spuriously: the caller checks).
    Woken,
    TimedOut,
    /// A kill or a timeout was raised into it: deferred to its next switch point.
    Interrupted,
    /// The hub refused to park it.
    Failed,
}

/// A wait that other threads can end, or `None` if the hub cannot make one (no reactor).
pub(super) fn new_wait() -> Option<RemoteWait> {
    RemoteWait::new().ok()
}

/// Parks the greenlet on `wait` until it is woken or `deadline` passes, with the
/// greenlet's deferred throws held aside (the call must go on waiting after a kill), and
/// any throw that arrives meanwhile deferred.
pub(super) fn park(wait: &RemoteWait, deadline: Option<Instant>) -> Parked {
    green_runtime::__net::hold_deferred(|| match guarded(|| wait.park(deadline)) {
        Some(Ok(Wake::Unparked)) => Parked::Woken,
        Some(Ok(Wake::TimedOut)) => Parked::TimedOut,
        Some(Err(_)) => Parked::Failed,
        None => Parked::Interrupted,
    })
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A futex wait of a greenlet: queue, check the word, park.
///
/// # Safety
/// As [`futex`].
unsafe fn green_wait(a: Args, bitset: u32, deadline: Option<Instant>) -> c_long {
    let Some(wait) = new_wait() else {
        // SAFETY: forwarded to the caller.
        return unsafe { a.forward() };
    };
    let addr = a.addr();
    let shared = a.op() & libc::FUTEX_PRIVATE_FLAG == 0;
    // SAFETY: the caller's contract: the word is live for the call.
    let w = unsafe { word(addr) };
    let node = Node::new(addr, bitset, wait.waker(), None);
    {
        let _hook = Flag::set(IN_HOOK);
        let mut b = waiters::lock(addr);
        b.count_waiter();
        if w.load(Ordering::Relaxed) != a.val() {
            b.uncount_waiter();
            return fail(libc::EAGAIN);
        }
        if passed(deadline) {
            b.uncount_waiter();
            return fail(libc::ETIMEDOUT);
        }
        // SAFETY: `node` stays in this frame until it is dequeued below (every path
        // out of the loop dequeues it or finds it woken, and `park` does not unwind).
        unsafe { b.enqueue(&node) };
    }
    loop {
        let until = if shared {
            let tick = Instant::now() + SHARED_RECHECK;
            Some(deadline.map_or(tick, |d| d.min(tick)))
        } else {
            deadline
        };
        let p = park(&wait, until);
        let _hook = Flag::set(IN_HOOK);
        let mut b = waiters::lock(addr);
        if b.is_woken(&node) {
            return 0;
        }
        let r = match p {
            Parked::Interrupted => fail(libc::EINTR),
            Parked::TimedOut if passed(deadline) => fail(libc::ETIMEDOUT),
            Parked::Failed => {
                b.dequeue(&node);
                drop(b);
                // SAFETY: forwarded to the caller: wait in the kernel instead.
                return unsafe { a.forward() };
            }
            // A shared futex changed under us (a wake from another process).
            _ if shared && w.load(Ordering::Relaxed) != a.val() => 0,
            // Spurious: wait on.
            _ => continue,
        };
        b.dequeue(&node);
        return r;
    }
}

/// `FUTEX_WAKE` / `FUTEX_WAKE_BITSET`: green waiters first, the rest of the count to
/// the kernel.
///
/// # Safety
/// As [`futex`].
unsafe fn wake(a: Args, bitset: u32) -> c_long {
    let f = flags();
    if f & PROBING != 0 {
        // The probe's `unpark` names the parker word here. The wake still goes on: no
        // one else waits on that word, and a wake for any other word (one the probe
        // did not foresee) must reach its waiter.
        thread_park::probed(a.addr());
    }
    if f & IN_HOOK != 0 || bitset == 0 || !waiters::may_have_waiters(a.addr()) {
        // SAFETY: forwarded to the caller.
        return unsafe { a.forward() };
    }
    // The kernel wakes one waiter for a count of zero or less.
    let max = (a.val() as c_int).max(1) as usize;
    let (woken, parker) = {
        let _hook = Flag::set(IN_HOOK);
        waiters::wake(a.addr(), bitset, max)
    };
    let kernel = parker.is_some_and(|p| p.kernel_waiting.load(Ordering::SeqCst));
    if woken >= max && !kernel {
        return woken as c_long;
    }
    let rest = if woken >= max { 1 } else { max - woken };
    let mut b = a;
    b.0[2] = rest as c_long;
    // SAFETY: the caller's operation with a smaller count.
    let r = unsafe { b.forward() };
    if r < 0 {
        return if woken > 0 { woken as c_long } else { r };
    }
    woken as c_long + r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A wake made while the thread probes for its parker word reaches a thread that
    /// waits in the kernel on another word.
    #[test]
    fn a_wake_made_while_probing_reaches_its_waiter() {
        let word = Arc::new(AtomicU32::new(0));
        let w = word.clone();
        let waiter = std::thread::spawn(move || {
            let limit = libc::timespec {
                tv_sec: 10,
                tv_nsec: 0,
            };
            // SAFETY: a futex wait on a live word with a valid timeout.
            unsafe {
                real::syscall(
                    libc::SYS_futex,
                    w.as_ptr() as c_long,
                    c_long::from(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                    0,
                    &raw const limit as c_long,
                    0,
                    0,
                )
            }
        });
        let wake = Args([
            word.as_ptr() as c_long,
            c_long::from(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG),
            1,
            0,
            0,
            0,
        ]);
        let end = Instant::now() + Duration::from_secs(5);
        let mut woken = 0;
        while woken == 0 && Instant::now() < end {
            let _probe = Flag::set(PROBING);
            // SAFETY: a wake on a live word.
            woken = unsafe { futex(wake) };
            drop(_probe);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(woken, 1, "the wake reached no waiter");
        assert_eq!(waiter.join().unwrap(), 0, "the waiter timed out");
    }
}
