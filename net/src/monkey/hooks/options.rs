//! Hooks of `setsockopt`, `fcntl` and `ioctl`: the user's view of an adopted socket (and
//! of a pipe's `O_NONBLOCK`, which the pipe hooks cache).
//!
//! An adopted socket's real fd is non-blocking whatever the user asks: these hooks keep
//! the user's `O_NONBLOCK` (`F_GETFL`/`F_SETFL`, `FIONBIO`) and `SO_RCVTIMEO`/
//! `SO_SNDTIMEO` in the socket's record, which the other hooks honour. `F_DUPFD*` share
//! the record with the new fd. Every other call, and every call on an fd the hooks do not
//! know, is glibc's.

use super::fd::duplicated;
use super::{errno, set_errno, timeval_to};
use crate::monkey::fdtable::{self, ADOPTED, Desc, POLLED, USER_NONBLOCK};
use crate::monkey::{TRACKING, real, state};
use libc::{c_int, c_void, socklen_t};

/// Hook for `setsockopt(2)`: remembers `SO_RCVTIMEO`/`SO_SNDTIMEO` of adopted sockets
/// (the kernel ignores them once the fd is non-blocking, so the hooks apply them), in the
/// socket's record, which all its fds share (the kernel keeps the options per socket too).
///
/// # Safety
/// The libc contract of `setsockopt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let r = unsafe { real::setsockopt(fd, level, name, val, len) };
    if r == 0
        && state() & TRACKING != 0
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= std::mem::size_of::<libc::timeval>()
    {
        // Settled: an adoption running meanwhile on another thread may have read the
        // kernel's old value; recording it here as well is then what counts.
        if let Some(desc) = known(fd).filter(|d| d.settled_state() == ADOPTED) {
            // SAFETY: the kernel just accepted `val` as a timeval of `len` bytes.
            let tv = unsafe { std::ptr::read_unaligned(val.cast::<libc::timeval>()) };
            let d = timeval_to(0, &tv);
            if name == libc::SO_RCVTIMEO {
                desc.set_rcv_timeout(d);
            } else {
                desc.set_snd_timeout(d);
            }
        }
    }
    r
}

/// The record of the socket on `fd`, if the hooks know it.
fn known(fd: c_int) -> Option<&'static Desc> {
    if state() & TRACKING == 0 {
        return None;
    }
    fdtable::get(fd)?.desc()
}

/// The record of `fd`'s socket if it is adopted (waiting out an adoption in progress).
fn adopted(fd: c_int) -> Option<&'static Desc> {
    known(fd).filter(|d| d.settled_state() == ADOPTED)
}

/// After the kernel's `O_NONBLOCK` was set to the user's `want` on an fd that is not an
/// adopted socket: a pipe's record (POLLED) keeps the kernel's flag as the user's view.
/// On a socket, if an adoption ran meanwhile (on another thread), it may have read the
/// old flag, or this call may have made the real fd blocking again: record the user's
/// choice and make the real fd non-blocking.
fn user_nonblock_after_forward(fd: c_int, want: bool) {
    if let Some(desc) = known(fd).filter(|d| d.state() == POLLED) {
        desc.set_user_nonblock(want);
        return;
    }
    if let Some(desc) = adopted(fd) {
        desc.set_user_nonblock(want);
        if !want {
            let saved = errno();
            // SAFETY: F_GETFL takes no argument; F_SETFL an int flag word.
            unsafe {
                let fl = real::fcntl(fd, libc::F_GETFL, 0);
                if fl >= 0 && fl & libc::O_NONBLOCK == 0 {
                    real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as libc::c_ulong);
                }
            }
            set_errno(saved);
        }
    }
}

/// Hook for `fcntl(2)`: on adopted sockets, `F_GETFL`/`F_SETFL` see and set the user's
/// `O_NONBLOCK` while the real fd stays non-blocking; `F_DUPFD*` share the fd's record
/// with the new fd.
///
/// Declared with a fixed third argument: on the supported 64-bit Linux ABIs a variadic
/// int or pointer argument arrives in the same register.
///
/// # Safety
/// The libc contract of `fcntl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    match cmd {
        libc::F_GETFL => {
            // SAFETY: forwarded unchanged.
            let r = unsafe { real::fcntl(fd, cmd, arg) };
            match adopted(fd) {
                Some(desc) if r >= 0 => {
                    let nb = if desc.bits() & USER_NONBLOCK != 0 {
                        libc::O_NONBLOCK
                    } else {
                        0
                    };
                    (r & !libc::O_NONBLOCK) | nb
                }
                _ => r,
            }
        }
        libc::F_SETFL => {
            let want = arg as c_int & libc::O_NONBLOCK != 0;
            match adopted(fd) {
                Some(desc) => {
                    // SAFETY: F_SETFL with the user's flags plus O_NONBLOCK.
                    let r =
                        unsafe { real::fcntl(fd, cmd, arg | libc::O_NONBLOCK as libc::c_ulong) };
                    if r == 0 {
                        desc.set_user_nonblock(want);
                    }
                    r
                }
                None => {
                    // SAFETY: forwarded unchanged.
                    let r = unsafe { real::fcntl(fd, cmd, arg) };
                    if r == 0 {
                        user_nonblock_after_forward(fd, want);
                    }
                    r
                }
            }
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // SAFETY: forwarded unchanged.
            let r = unsafe { real::fcntl(fd, cmd, arg) };
            if r >= 0 {
                duplicated(fd, r);
            }
            r
        }
        // SAFETY: forwarded unchanged.
        _ => unsafe { real::fcntl(fd, cmd, arg) },
    }
}

/// Hook for `ioctl(2)`: `FIONBIO` (what `set_nonblocking` calls) on an adopted socket
/// only records the user's choice (for all its fds); the real fd stays non-blocking.
///
/// # Safety
/// The libc contract of `ioctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, req: libc::c_ulong, arg: libc::c_ulong) -> c_int {
    if req == libc::FIONBIO as libc::c_ulong && arg != 0 && known(fd).is_some() {
        // SAFETY: FIONBIO's argument is a pointer to an int.
        let on = unsafe { *(arg as *const c_int) } != 0;
        if let Some(desc) = adopted(fd) {
            desc.set_user_nonblock(on);
            return 0;
        }
        // SAFETY: forwarded unchanged.
        let r = unsafe { real::ioctl(fd, req, arg) };
        if r == 0 {
            user_nonblock_after_forward(fd, on);
        }
        return r;
    }
    // SAFETY: forwarded unchanged.
    unsafe { real::ioctl(fd, req, arg) }
}
