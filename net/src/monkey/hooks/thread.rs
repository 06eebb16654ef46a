//! Hook of `pthread_join` (what `std::thread::JoinHandle::join` calls).
//!
//! glibc waits for the thread's end on a futex of its own, inside glibc, which no hook
//! sees. So from a greenlet of a patched thread the hook first tries
//! `pthread_tryjoin_np`; if the thread still runs, glibc's `pthread_join` runs on the
//! blocking pool while the greenlet parks, and the hub keeps running the others
//! (a thread that needs one of them to finish can). A kill or a timeout raised meanwhile
//! is deferred to the greenlet's next switch point: the join still waits for the
//! thread (std's `join` cannot fail), as a joining thread would.

use super::futex::{self, Parked};
use crate::monkey::{SYNC, real, state};
use libc::{c_int, c_long, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Hook for `pthread_join(3)`.
///
/// # Safety
/// The libc contract of `pthread_join`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int {
    if state() & SYNC == 0 || !futex::can_park() || futex::flags() != 0 {
        // SAFETY: forwarded unchanged.
        return unsafe { real::pthread_join(thread, retval) };
    }
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::pthread_tryjoin_np(thread, retval) };
    if r != libc::EBUSY {
        return r;
    }
    // SAFETY: forwarded to the caller.
    unsafe { join_on_pool(thread, retval) }
}

/// What the pool's job reports.
struct Joined {
    /// 0 until the join returned, then 1: a futex word, for a caller that cannot park.
    done: AtomicU32,
    result: AtomicI32,
}

impl Joined {
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire) != 0
    }

    /// Blocks the thread until the job has run (the hub refuses to park the caller).
    fn block(&self) {
        while !self.is_done() {
            // SAFETY: a futex wait on a live word of this process; it returns at once
            // if the word no longer reads 0.
            unsafe {
                real::syscall(
                    libc::SYS_futex,
                    self.done.as_ptr() as c_long,
                    c_long::from(libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG),
                    0,
                    0,
                    0,
                    0,
                )
            };
        }
    }

    fn finish(&self, result: c_int) {
        self.result.store(result, Ordering::Relaxed);
        self.done.store(1, Ordering::Release);
        // SAFETY: a futex wake on a live word of this process.
        unsafe {
            real::syscall(
                libc::SYS_futex,
                self.done.as_ptr() as c_long,
                c_long::from(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG),
                1,
                0,
                0,
                0,
            )
        };
    }
}

/// Runs glibc's `pthread_join` on the blocking pool and parks until it returns.
///
/// # Safety
/// As [`pthread_join`]; `retval` stays writable until this returns (it does not return
/// before the join did).
unsafe fn join_on_pool(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int {
    let Some(wait) = futex::new_wait() else {
        // SAFETY: forwarded unchanged.
        return unsafe { real::pthread_join(thread, retval) };
    };
    let joined = Arc::new(Joined {
        done: AtomicU32::new(0),
        result: AtomicI32::new(0),
    });
    let (j, waker, out) = (joined.clone(), wait.waker(), retval as usize);
    let job = Box::new(move || {
        // SAFETY: the caller waits for this job before it returns, so `out` is still
        // writable; the thread is joinable (tryjoin said it still runs).
        let r = unsafe { real::pthread_join(thread, out as *mut *mut c_void) };
        j.finish(r);
        waker.wake();
    });
    if green_runtime::__net::submit(job).is_err() {
        // No helper thread: wait here, blocking the thread.
        // SAFETY: forwarded unchanged (the job never ran).
        return unsafe { real::pthread_join(thread, retval) };
    }
    while !joined.is_done() {
        if futex::park(&wait, None) == Parked::Failed {
            // The hub refuses to park (the greenlet parks again while it is unwound at
            // the thread's end): wait for the join here, blocking the thread.
            joined.block();
        }
    }
    joined.result.load(Ordering::Relaxed)
}
