//! Hooks of a socket fd's lifetime: `socket`, `socketpair`, `close`, `dup`, `dup2`,
//! `dup3`; and the bookkeeping they share with `accept` and `fcntl(F_DUPFD)`.
//!
//! Each forwards to glibc unchanged and, while the net patch is (or was) on, keeps the fd
//! table in step: sockets born while patched are remembered, a duplicate shares its
//! original's record, and an fd about to be closed or replaced is forgotten first, which
//! wakes the greenlets waiting on it with an error.

use super::{errno, guarded, set_errno};
use crate::monkey::fdtable::{self, REGISTERED, Slot};
use crate::monkey::{NET, TRACKING, real, rt, state};
use libc::c_int;

/// A socket was born on `fd` (socket, accept, socketpair); `tcp`: a TCP stream socket.
pub(super) fn born(fd: c_int, tcp: bool) {
    let s = state();
    if s & NET != 0 {
        if let Some(slot) = fdtable::get_or_create(fd) {
            slot.set_fresh(tcp);
        }
    } else if s & TRACKING != 0
        && let Some(slot) = fdtable::get(fd)
    {
        slot.clear();
    }
}

/// Whether `fd` is a TCP socket born while patched (a listener's accepted sockets are).
pub(super) fn is_tcp(fd: c_int) -> bool {
    fdtable::get(fd)
        .and_then(Slot::desc)
        .is_some_and(|d| d.bits() & fdtable::TCP != 0)
}

/// `new` is a duplicate of `old` (same open file description): it shares `old`'s record.
pub(super) fn duplicated(old: c_int, new: c_int) {
    if state() & TRACKING == 0 {
        return;
    }
    match fdtable::get(old) {
        Some(src) if src.desc().is_some() => {
            if let Some(dst) = fdtable::get_or_create(new) {
                dst.share(src);
            }
        }
        _ => {
            if let Some(dst) = fdtable::get(new) {
                dst.clear();
            }
        }
    }
}

/// `fd` is about to stop naming its socket: forget it, waking greenlets waiting on it.
fn forget(fd: c_int) {
    if state() & TRACKING == 0 {
        return;
    }
    if let Some(slot) = fdtable::get(fd)
        && slot.clear() & REGISTERED != 0
    {
        let saved = errno();
        let _ = guarded(|| rt::forget_fd(fd));
        set_errno(saved);
    }
}

fn tracked_domain(domain: c_int) -> bool {
    matches!(domain, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX)
}

/// Hook for `socket(2)`: remembers sockets born while patched.
///
/// # Safety
/// The libc contract of `socket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let fd = unsafe { real::socket(domain, ty, proto) };
    if fd >= 0 && state() & TRACKING != 0 {
        if tracked_domain(domain) {
            // (Not SCTP and the like: their stream sockets keep message boundaries,
            // so a short read does not mean an empty queue.)
            let tcp = (domain == libc::AF_INET || domain == libc::AF_INET6)
                && ty & 0xf == libc::SOCK_STREAM
                && matches!(proto, 0 | libc::IPPROTO_TCP | libc::IPPROTO_MPTCP);
            born(fd, tcp);
        } else if let Some(slot) = fdtable::get(fd) {
            slot.clear();
        }
    }
    fd
}

/// Hook for `socketpair(2)`.
///
/// # Safety
/// The libc contract of `socketpair`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    proto: c_int,
    sv: *mut c_int,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::socketpair(domain, ty, proto, sv) };
    if r == 0 && state() & TRACKING != 0 && tracked_domain(domain) {
        // SAFETY: on success glibc wrote two fds to `sv`.
        let (a, b) = unsafe { (*sv, *sv.add(1)) };
        born(a, false);
        born(b, false);
    }
    r
}

/// Hook for `close(2)`: wakes greenlets waiting on the fd (with an error) first.
///
/// # Safety
/// The libc contract of `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    forget(fd);
    // SAFETY: forwarded unchanged.
    unsafe { real::close(fd) }
}

/// Hook for `dup(2)`.
///
/// # Safety
/// The libc contract of `dup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::dup(fd) };
    if r >= 0 {
        duplicated(fd, r);
    }
    r
}

/// Hook for `dup2(2)`.
///
/// # Safety
/// The libc contract of `dup2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    if fd != new {
        forget(new);
    }
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::dup2(fd, new) };
    if r >= 0 && fd != new {
        duplicated(fd, r);
    }
    r
}

/// Hook for `dup3(2)`.
///
/// # Safety
/// The libc contract of `dup3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    if fd != new {
        forget(new);
    }
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::dup3(fd, new, flags) };
    if r >= 0 {
        duplicated(fd, r);
    }
    r
}
