//! Hooks of `waitpid`, `wait4`, `waitid` and `wait` (`patch_subprocess()`): what
//! `Child::wait`, `Command::status` and `Command::output` wait for a child with.
//!
//! From a greenlet, a wait that would block (no `WNOHANG`) first tries the real call
//! with `WNOHANG`; while the child has not changed state the greenlet parks:
//! - for the exit of one child (`pid > 0`, `P_PID`, `P_PIDFD`): on a pidfd
//!   (`pidfd_open`, Linux 5.3+), which the reactor reports readable when the child
//!   exits;
//! - otherwise (any child, a process group, stops and continues, no pidfd): the blocking
//!   pool runs `waitid(.., WNOWAIT)`, which returns when a child is ready without
//!   reaping it.
//!
//! Then the real call with `WNOHANG` reaps the child and fills the caller's status, so
//! results and errors are the real call's. A kill arriving while the greenlet waits
//! makes the call fail with `ECANCELED` (no child is reaped). Anything else (a plain
//! thread, the patch off, `WNOHANG`) is glibc's.

use libc::{c_int, pid_t};

use super::{errno, guarded, set_errno};
use crate::monkey::{SUBPROCESS, real, rt, state};

/// `P_PIDFD` (Linux 5.4+): `waitid` on a pidfd.
const P_PIDFD: libc::idtype_t = 3;

/// What a wait is for, as `waitid` names it.
#[derive(Clone, Copy)]
struct Target {
    idtype: libc::idtype_t,
    id: libc::id_t,
}

impl Target {
    /// `waitpid`'s `pid` argument as a `waitid` target.
    fn of_pid(pid: pid_t) -> Target {
        match pid {
            -1 => Target {
                idtype: libc::P_ALL,
                id: 0,
            },
            0 => Target {
                idtype: libc::P_PGID,
                // SAFETY: getpgrp has no preconditions.
                id: unsafe { libc::getpgrp() } as libc::id_t,
            },
            p if p < 0 => Target {
                idtype: libc::P_PGID,
                id: p.unsigned_abs() as libc::id_t,
            },
            p => Target {
                idtype: libc::P_PID,
                id: p as libc::id_t,
            },
        }
    }
}

/// What one try with `WNOHANG` gave.
enum Try<R> {
    Done(R),
    NotYet,
}

/// Whether a wait in this context parks.
fn cooperative(options: c_int) -> bool {
    state() & SUBPROCESS != 0 && options & libc::WNOHANG == 0 && rt::in_greenlet()
}

/// The `waitid` events to wait for, from `waitpid`-style `options`.
fn events_of_waitpid(options: c_int) -> c_int {
    let mut ev = libc::WEXITED;
    if options & libc::WUNTRACED != 0 {
        ev |= libc::WSTOPPED;
    }
    ev | (options & (libc::WCONTINUED | libc::__WALL | libc::__WCLONE | libc::__WNOTHREAD))
}

/// Waits cooperatively for `target`'s state change: `try_now` is the real call with
/// `WNOHANG`; `events` the `waitid` events the caller waits for.
fn wait_child<R>(target: Target, events: c_int, mut try_now: impl FnMut() -> Try<R>, fail: R) -> R {
    let exit_only = events & (libc::WSTOPPED | libc::WCONTINUED) == 0;
    let mut pidfd = None;
    loop {
        if let Try::Done(r) = try_now() {
            close_pidfd(pidfd);
            return r;
        }
        let one = matches!(target.idtype, libc::P_PID | P_PIDFD);
        if exit_only && one && pidfd.is_none() {
            pidfd = open_pidfd(target);
        }
        let waited = match pidfd {
            Some(fd) => park_on(fd),
            None => wait_on_pool(target, events),
        };
        if let Err(e) = waited {
            close_pidfd(pidfd);
            set_errno(e);
            return fail;
        }
    }
}

/// A pidfd for `target` (the caller's own for `P_PIDFD`, not to be closed by us), or
/// `None` if none can be had (no `pidfd_open`, no such process).
fn open_pidfd(target: Target) -> Option<PidFd> {
    if target.idtype == P_PIDFD {
        return Some(PidFd {
            fd: target.id as c_int,
            owned: false,
        });
    }
    let saved = errno();
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, target.id as pid_t, 0) } as c_int;
    set_errno(saved);
    (fd >= 0).then_some(PidFd { fd, owned: true })
}

/// A pidfd the wait parks on, and whether the wait opened it.
#[derive(Clone, Copy)]
struct PidFd {
    fd: c_int,
    owned: bool,
}

fn close_pidfd(p: Option<PidFd>) {
    if let Some(p) = p.filter(|p| p.owned) {
        let saved = errno();
        // SAFETY: our own pidfd, closed once.
        unsafe { real::close(p.fd) };
        set_errno(saved);
    }
}

/// Parks until the pidfd is readable (the process exited); `Err(errno)` on a kill.
fn park_on(p: PidFd) -> Result<(), c_int> {
    match guarded(|| rt::wait_readable(p.fd, None)) {
        // A pidfd the reactor refuses: the next try blocks in the pool instead.
        Some(Err(_)) => wait_on_pool(
            Target {
                idtype: P_PIDFD,
                id: p.fd as libc::id_t,
            },
            libc::WEXITED,
        ),
        Some(Ok(())) => Ok(()),
        None => Err(libc::ECANCELED),
    }
}

/// Waits on the blocking pool until `target` has one of `events`, without reaping it
/// (`WNOWAIT`); `Err(errno)` on a kill. A failed `waitid` returns `Ok`: the next try
/// reports its error.
fn wait_on_pool(target: Target, events: c_int) -> Result<(), c_int> {
    let r = rt::run_owned(move || {
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is writable; the target and options are plain values.
        unsafe { real::waitid(target.idtype, target.id, &mut info, events | libc::WNOWAIT) }
    });
    match r {
        Ok(_) => Ok(()),
        Err(p) => {
            rt::defer_unwind(p);
            Err(libc::ECANCELED)
        }
    }
}

/// `waitpid`-style result of one try with `WNOHANG`.
fn try_pid(r: pid_t) -> Try<pid_t> {
    if r == 0 { Try::NotYet } else { Try::Done(r) }
}

/// Hook for `waitpid(2)` (what `Child::wait` calls).
///
/// # Safety
/// The libc contract of `waitpid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    if !cooperative(options) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::waitpid(pid, status, options) };
    }
    wait_child(
        Target::of_pid(pid),
        events_of_waitpid(options),
        // SAFETY: forwarded with WNOHANG added.
        || try_pid(unsafe { real::waitpid(pid, status, options | libc::WNOHANG) }),
        -1,
    )
}

/// Hook for `wait(2)`: `waitpid(-1, status, 0)`.
///
/// # Safety
/// The libc contract of `wait`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    if !cooperative(0) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::wait(status) };
    }
    // SAFETY: `wait(status)` is `waitpid(-1, status, 0)`.
    unsafe { waitpid(-1, status, 0) }
}

/// Hook for `wait4(2)`.
///
/// # Safety
/// The libc contract of `wait4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    if !cooperative(options) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::wait4(pid, status, options, usage) };
    }
    wait_child(
        Target::of_pid(pid),
        events_of_waitpid(options),
        // SAFETY: forwarded with WNOHANG added.
        || try_pid(unsafe { real::wait4(pid, status, options | libc::WNOHANG, usage) }),
        -1,
    )
}

/// Hook for `waitid(2)`.
///
/// # Safety
/// The libc contract of `waitid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    info: *mut libc::siginfo_t,
    options: c_int,
) -> c_int {
    // Without a siginfo a try with WNOHANG cannot tell "done" from "not yet".
    if !cooperative(options) || info.is_null() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::waitid(idtype, id, info, options) };
    }
    let target = Target { idtype, id };
    let events = options & !libc::WNOWAIT;
    wait_child(
        target,
        events,
        || {
            // SAFETY: `info` is a writable siginfo_t (waitid's contract); zeroed first, as
            // waitid(2) advises, so that an unchanged child leaves si_pid 0.
            unsafe {
                std::ptr::write_bytes(info, 0, 1);
                let r = real::waitid(idtype, id, info, options | libc::WNOHANG);
                if r != 0 || (*info).si_pid() != 0 {
                    Try::Done(r)
                } else {
                    Try::NotYet
                }
            }
        },
        -1,
    )
}
