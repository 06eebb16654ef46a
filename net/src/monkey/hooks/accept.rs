//! Hooks of `accept` and `accept4` (what `TcpListener::accept` calls), and the back-off
//! of a listener whose accepts the kernel refuses for want of resources.
//!
//! The wait for a connection is that of the read family (see `io`); the accepted fd is
//! remembered as a socket born while patched. A refusal (`EMFILE`, ...) on a socket that
//! blocks for the user, in a greenlet, first parks it for the listener's back-off delay,
//! then returns the error as the real call gave it (`ECANCELED` if a kill arrived
//! meanwhile). If the net patch was never on, the result is the real call's, untouched.

use super::fd::{born, is_tcp};
use super::io::{Ask, io};
use super::wait::Dir;
use super::{Mode, errno, green_sleep, mode, set_errno, tracked};
use crate::backoff::{self, Backoff};
use crate::monkey::{TRACKING, real, state};
use libc::{c_int, sockaddr, socklen_t, ssize_t};
use std::cell::RefCell;

/// Hook for `accept(2)`.
///
/// # Safety
/// The libc contract of `accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded unchanged, possibly several times.
    let r = io(
        fd,
        Dir::Read,
        false,
        || Ask::Some,
        || unsafe { real::accept(fd, addr, len) } as ssize_t,
    ) as c_int;
    after_accept(fd, r)
}

/// Hook for `accept4(2)` (what `TcpListener::accept` calls).
///
/// # Safety
/// The libc contract of `accept4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded unchanged, possibly several times.
    let r = io(
        fd,
        Dir::Read,
        false,
        || Ask::Some,
        || unsafe { real::accept4(fd, addr, len, flags) } as ssize_t,
    ) as c_int;
    after_accept(fd, r)
}

thread_local! {
    /// The back-off of each listener on which this thread's greenlets had accepts
    /// refused for want of resources, by fd and socket number (`Desc::tag`), while the
    /// episode lasts: empty otherwise. Reached with `try_with` only: the hooks run after
    /// it is destroyed when the thread's end unwinds a greenlet parked in one (gone, it
    /// reads as empty and keeps nothing).
    static ACCEPT_BACKOFF: RefCell<Vec<(c_int, u64, Backoff)>> = const { RefCell::new(Vec::new()) };
}

/// What a hooked accept on the listener `fd` that returned `r` returns: the new fd,
/// which is remembered as a socket born while patched, or the error. A refusal for want
/// of resources (`EMFILE`, ...) on a socket that blocks for the user, in a greenlet,
/// first parks the greenlet for its listener's back-off delay (see `crate::backoff`),
/// so that a std accept loop that retries at once lets the hub run the greenlets whose
/// work would free fds; the error is then returned as the real call gave it
/// (`ECANCELED` if the greenlet was killed meanwhile).
#[inline]
fn after_accept(fd: c_int, r: c_int) -> c_int {
    if state() & TRACKING == 0 {
        // Never patched: no socket is remembered, no listener backs off.
        return r;
    }
    if r >= 0 {
        born(r, is_tcp(fd));
        if ACCEPT_BACKOFF
            .try_with(|l| !l.borrow().is_empty())
            .unwrap_or(false)
        {
            accepted_after_refusals(fd);
        }
        return r;
    }
    let e = errno();
    if backoff::is_exhaustion(e) {
        refused(fd, e);
    }
    r
}

/// An accept on `fd` succeeded while some listener of the thread is backing off: the
/// next refusal waits the shortest delay again, and `fd`'s episode ends if it has been
/// quiet long enough (its entry is dropped then).
#[cold]
fn accepted_after_refusals(fd: c_int) {
    let saved = errno();
    let _ = ACCEPT_BACKOFF.try_with(|l| {
        let mut l = l.borrow_mut();
        if let Some(i) = l.iter().position(|&(f, _, _)| f == fd)
            && l[i].2.accepted(fd)
        {
            l.swap_remove(i);
        }
    });
    set_errno(saved);
}

/// An accept on `fd` was refused with `e`, one of the resource errors: in a greenlet,
/// parks it for the listener's back-off delay. Leaves `errno` as the caller returns it.
#[cold]
fn refused(fd: c_int, e: c_int) {
    let Mode::Green(sock) = mode(fd) else {
        set_errno(e);
        return;
    };
    let tag = sock.tag();
    let mut b = ACCEPT_BACKOFF
        .try_with(|l| {
            let mut l = l.borrow_mut();
            // Entries of listeners closed during their episode name another socket now.
            l.retain(|&(f, t, _)| f == fd || tracked(f).is_some_and(|s| s.tag() == t));
            l.iter()
                .find(|&&(f, t, _)| f == fd && t == tag)
                .map(|&(_, _, b)| b)
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    // (No borrow is held while logging or parking: another greenlet of the thread may
    // accept meanwhile.)
    let delay = b.refused(fd, &std::io::Error::from_raw_os_error(e));
    let _ = ACCEPT_BACKOFF.try_with(|l| {
        let mut l = l.borrow_mut();
        l.retain(|&(f, _, _)| f != fd);
        l.push((fd, tag, b));
    });
    set_errno(if green_sleep(delay) {
        e
    } else {
        libc::ECANCELED
    });
}
