//! Hooks of `nanosleep` and `clock_nanosleep` (what `std::thread::sleep` calls), and of
//! `usleep` and `sleep`.
//!
//! Inside a greenlet, with the sleep patch on, a sleep on a wall or monotonic clock is a
//! cooperative sleep of the hub; anything else (a plain thread, the patch off, another
//! clock, a null request) is glibc's. A kill arriving during the sleep ends it early, as
//! an interruption would (`EINTR`).

use super::{green_sleep, set_errno};
use crate::monkey::{SLEEP, real, rt, state};
use libc::c_int;
use std::time::Duration;

fn valid(ts: &libc::timespec) -> bool {
    ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec)
}

fn ts_dur(ts: &libc::timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Hook for `nanosleep(2)`.
///
/// # Safety
/// The libc contract of `nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if state() & SLEEP == 0 || req.is_null() || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::nanosleep(req, rem) };
    }
    // SAFETY: the caller passes a readable timespec (checked non-null).
    let ts = unsafe { *req };
    if !valid(&ts) {
        set_errno(libc::EINVAL);
        return -1;
    }
    let done = green_sleep(ts_dur(&ts));
    if !rem.is_null() {
        // SAFETY: the caller passes a writable timespec or null.
        unsafe {
            *rem = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    if done {
        0
    } else {
        set_errno(libc::EINTR);
        -1
    }
}

/// Hook for `clock_nanosleep(2)` (what `std::thread::sleep` calls on Linux).
///
/// # Safety
/// The libc contract of `clock_nanosleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let wall = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if state() & SLEEP == 0 || req.is_null() || !wall || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::clock_nanosleep(clock, flags, req, rem) };
    }
    // SAFETY: the caller passes a readable timespec (checked non-null).
    let ts = unsafe { *req };
    if !valid(&ts) {
        return libc::EINVAL;
    }
    let abs = flags & libc::TIMER_ABSTIME != 0;
    let d = if abs {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is writable; `clock` is one of the clocks matched above.
        unsafe { libc::clock_gettime(clock, &mut now) };
        ts_dur(&ts).saturating_sub(ts_dur(&now))
    } else {
        ts_dur(&ts)
    };
    let done = green_sleep(d);
    if !abs && !rem.is_null() {
        // SAFETY: the caller passes a writable timespec or null.
        unsafe {
            *rem = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    if done { 0 } else { libc::EINTR }
}

/// Hook for `usleep(3)`.
///
/// # Safety
/// The libc contract of `usleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    if state() & SLEEP == 0 || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::usleep(usec) };
    }
    if green_sleep(Duration::from_micros(u64::from(usec))) {
        0
    } else {
        set_errno(libc::EINTR);
        -1
    }
}

/// Hook for `sleep(3)`: returns 0, or the seconds left when a kill ended it early.
///
/// # Safety
/// The libc contract of `sleep`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(secs: libc::c_uint) -> libc::c_uint {
    if state() & SLEEP == 0 || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::sleep(secs) };
    }
    let start = std::time::Instant::now();
    let d = Duration::from_secs(u64::from(secs));
    if green_sleep(d) {
        0
    } else {
        let left = d.saturating_sub(start.elapsed());
        // Rounded up, as glibc's `sleep` does with the kernel's remainder.
        left.as_secs() as libc::c_uint + u32::from(left.subsec_nanos() > 0)
    }
}
