//! Hooks of the read/write family: `read`, `readv`, `recv`, `recvfrom`, `recvmsg`,
//! `write`, `writev`, `send`, `sendto`, `sendmsg`.
//!
//! A call on an fd the hooks do not handle, on a socket non-blocking for the user, or
//! with `MSG_DONTWAIT`, is glibc's. On an adopted socket a call that would block parks
//! the greenlet until the reactor reports readiness (blocks in `poll` on a plain thread),
//! and a user timeout ends it with `EAGAIN` as the kernel does. In a greenlet the call
//! first counts against its fairness budget; a kill arriving while it is parked makes it
//! fail with `ECANCELED`.

use super::wait::{Dir, Wait, timeout, wait};
use super::{Mode, Sock, errno, guarded, mode, offload, pipe, set_errno};
use crate::monkey::{fdtable, real, rt};
use libc::{c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};

/// What a call of the read/write family asks for, for the readiness cache of [`io_slow`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// Nothing: zero bytes. Never waits before its syscall: the kernel alone says whether
    /// a blocking call would wait (a zero-byte TCP `send` never does, whatever the send
    /// buffer holds; a zero-byte TCP `recv` waits for data, as does any datagram read).
    Nothing,
    /// `n > 0` bytes: a TCP call that does less drains the socket.
    Bytes(usize),
    /// Something whose shortfall proves nothing (vectored calls, peeks, urgent data,
    /// `accept`).
    Some,
}

impl Ask {
    /// `n` bytes.
    fn bytes(n: usize) -> Ask {
        if n == 0 { Ask::Nothing } else { Ask::Bytes(n) }
    }
    /// Something, or nothing at all (`empty`).
    fn some(empty: bool) -> Ask {
        if empty { Ask::Nothing } else { Ask::Some }
    }
}

/// Whether the `n` buffers at `iov` hold no byte at all (a negative or absurd count, left
/// for the kernel to refuse, counts as not empty).
///
/// # Safety
/// `iov` points to `n` readable `iovec`s when `0 < n <= IOV_MAX`.
unsafe fn iov_empty(iov: *const libc::iovec, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    if iov.is_null() || n > libc::UIO_MAXIOV as usize {
        return false;
    }
    // SAFETY: the caller's contract (checked non-null, count in range).
    unsafe { std::slice::from_raw_parts(iov, n) }
        .iter()
        .all(|v| v.iov_len == 0)
}

/// Whether the message `msg` carries no data byte (see [`iov_empty`]).
///
/// # Safety
/// `msg` is null or points to a readable `msghdr` whose `msg_iov` is valid.
unsafe fn msg_empty(msg: *const libc::msghdr) -> bool {
    if msg.is_null() {
        return false;
    }
    // SAFETY: the caller's contract.
    let m = unsafe { &*msg };
    // SAFETY: as above, for the message's buffers.
    unsafe { iov_empty(m.msg_iov, m.msg_iovlen) }
}

/// The common body of the read/write family: retry `op` until it stops saying EAGAIN,
/// waiting for readiness in between; a user timeout ends with EAGAIN as the kernel does.
/// `want` tells what the call asks for (only looked at for adopted sockets).
#[inline]
pub(super) fn io(
    fd: c_int,
    dir: Dir,
    dontwait: bool,
    want: impl FnOnce() -> Ask,
    mut op: impl FnMut() -> ssize_t,
) -> ssize_t {
    if dontwait {
        return op();
    }
    let (green, slot) = match mode(fd) {
        Mode::Pass => return op(),
        Mode::Green(s) => (true, s),
        Mode::Emulate(s) => (false, s),
        Mode::Polled(s) => return pipe::polled(fd, dir, s, &mut op),
        Mode::File => return offload(&mut op),
    };
    io_slow(fd, dir, green, slot, want(), &mut op)
}

/// [`io`] for an adopted socket. In a greenlet it keeps the reactor's readiness bit of
/// the fd right (as `green::net` does): a call that says EAGAIN, or on a TCP socket does
/// less than `want`, marks the fd drained, and the next call on a drained TCP socket
/// parks until the next readiness edge *before* its syscall, which would only say EAGAIN:
/// an echo costs two syscalls per message instead of three. A call for zero bytes makes
/// its syscall first whatever the cache says: only the kernel knows whether it would
/// block (an empty write on a full send buffer does not).
///
/// In a greenlet the call also counts against its fairness budget first (as
/// `green::net`'s operations do), which may park it to let the others run; a kill
/// arriving meanwhile makes the call fail with `ECANCELED` before its syscall.
#[cold]
fn io_slow(
    fd: c_int,
    dir: Dir,
    green: bool,
    slot: Sock,
    want: Ask,
    op: &mut dyn FnMut() -> ssize_t,
) -> ssize_t {
    if green && guarded(rt::spend_budget).is_none() {
        set_errno(libc::ECANCELED);
        return -1;
    }
    let tcp = green && slot.bits() & fdtable::TCP != 0;
    let mut deadline = None;
    // Wait before the syscall: the fd is drained (the last call said EAGAIN, or did less
    // than asked on a TCP socket, and no readiness edge came since).
    let mut drained = tcp && want != Ask::Nothing && !rt::fd_ready(fd, slot.tag(), dir.interest());
    loop {
        if drained {
            let dl = *deadline.get_or_insert_with(|| timeout(slot, dir));
            match wait(fd, slot, green, dir, dl) {
                Wait::Ready => {}
                Wait::TimedOut => {
                    set_errno(libc::EAGAIN);
                    return -1;
                }
                Wait::Failed(e) => {
                    set_errno(e);
                    return -1;
                }
            }
        }
        let r = op();
        if r >= 0 {
            if matches!(want, Ask::Bytes(n) if tcp && r > 0 && (r as usize) < n) {
                rt::fd_drained(fd, slot.tag(), dir.interest());
            }
            return r;
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
            return r;
        }
        if green {
            rt::fd_drained(fd, slot.tag(), dir.interest());
        }
        drained = true;
    }
}

/// Hook for `read(2)`.
///
/// # Safety
/// The libc contract of `read`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: forwarded unchanged, possibly several times.
    io(
        fd,
        Dir::Read,
        false,
        || Ask::bytes(n),
        || unsafe { real::read(fd, buf, n) },
    )
}

/// Hook for `readv(2)`.
///
/// # Safety
/// The libc contract of `readv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    // SAFETY: `iov` holds `n` iovecs (readv's contract).
    let want = || Ask::some(usize::try_from(n).is_ok_and(|k| unsafe { iov_empty(iov, k) }));
    // SAFETY: forwarded unchanged, possibly several times.
    io(fd, Dir::Read, false, want, || unsafe {
        real::readv(fd, iov, n)
    })
}

/// What a read of `n` bytes asks for, for the drained rule of [`io_slow`]: a shortfall
/// proves nothing for a peek, which leaves the data queued (a short peek does not drain
/// the socket), nor for urgent data (one byte, whatever is queued).
fn read_want(n: size_t, flags: c_int) -> Ask {
    if flags & (libc::MSG_PEEK | libc::MSG_OOB) != 0 {
        Ask::some(n == 0)
    } else {
        Ask::bytes(n)
    }
}

/// Hook for `recv(2)` (what `TcpStream::read` calls).
///
/// # Safety
/// The libc contract of `recv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    read_all_if_asked(fd, n, flags, |done| {
        io(
            fd,
            Dir::Read,
            dw,
            || read_want(n - done, flags),
            // SAFETY: forwarded unchanged (on the rest of the buffer), possibly
            // several times.
            || unsafe { real::recv(fd, buf.cast::<u8>().add(done).cast(), n - done, flags) },
        )
    })
}

/// `MSG_WAITALL` on a socket that blocks for the user: the kernel would wait for all `n`
/// bytes, but the real fd is non-blocking, so one call returns what is queued. Calls
/// `read(done)` (a read into the buffer past `done` bytes) until `n` bytes, end of
/// stream or an error; after an error or a timeout the bytes already read are returned,
/// as the kernel does. (A user timeout, `SO_RCVTIMEO`, restarts for each piece; the
/// kernel counts it for the whole call.) Anything else is one `read(0)`.
fn read_all_if_asked(
    fd: c_int,
    n: size_t,
    flags: c_int,
    mut read: impl FnMut(usize) -> ssize_t,
) -> ssize_t {
    let wait_all = flags & libc::MSG_WAITALL != 0
        && flags & (libc::MSG_DONTWAIT | libc::MSG_PEEK) == 0
        && !matches!(mode(fd), Mode::Pass);
    if !wait_all {
        return read(0);
    }
    let mut done = 0;
    while done < n {
        let r = read(done);
        if r < 0 {
            return if done > 0 { done as ssize_t } else { r };
        }
        if r == 0 {
            break;
        }
        done += r as usize;
    }
    done as ssize_t
}

/// Hook for `recvfrom(2)`.
///
/// # Safety
/// The libc contract of `recvfrom`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    read_all_if_asked(fd, n, flags, |done| {
        io(
            fd,
            Dir::Read,
            dw,
            || read_want(n - done, flags),
            // SAFETY: forwarded unchanged (on the rest of the buffer), possibly
            // several times.
            || unsafe {
                real::recvfrom(
                    fd,
                    buf.cast::<u8>().add(done).cast(),
                    n - done,
                    flags,
                    addr,
                    len,
                )
            },
        )
    })
}

/// Hook for `recvmsg(2)`.
///
/// # Safety
/// The libc contract of `recvmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    // SAFETY: `msg` is a valid msghdr (recvmsg's contract).
    let want = || Ask::some(unsafe { msg_empty(msg) });
    // SAFETY: forwarded unchanged, possibly several times.
    io(fd, Dir::Read, dw, want, || unsafe {
        real::recvmsg(fd, msg, flags)
    })
}

/// Hook for `write(2)`.
///
/// # Safety
/// The libc contract of `write`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if let Some(sock) = pipe::pieces_for(fd, n) {
        // SAFETY: `buf` holds `n` bytes (write's contract).
        return unsafe { pipe::write_in_pieces(fd, sock, buf.cast(), n) };
    }
    // SAFETY: forwarded unchanged, possibly several times.
    io(
        fd,
        Dir::Write,
        false,
        || Ask::bytes(n),
        || unsafe { real::write(fd, buf, n) },
    )
}

/// Hook for `writev(2)`.
///
/// # Safety
/// The libc contract of `writev`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t {
    // SAFETY: `iov` holds `n` iovecs (writev's contract).
    if let Some(r) = unsafe { writev_in_pieces(fd, iov, n) } {
        return r;
    }
    // SAFETY: `iov` holds `n` iovecs (writev's contract).
    let want = || Ask::some(usize::try_from(n).is_ok_and(|k| unsafe { iov_empty(iov, k) }));
    // SAFETY: forwarded unchanged, possibly several times.
    io(fd, Dir::Write, false, want, || unsafe {
        real::writev(fd, iov, n)
    })
}

/// Hook for `send(2)` (what `TcpStream::write` calls).
///
/// # Safety
/// The libc contract of `send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    // SAFETY: forwarded unchanged, possibly several times.
    io(
        fd,
        Dir::Write,
        dw,
        || Ask::bytes(n),
        || unsafe { real::send(fd, buf, n, flags) },
    )
}

/// Hook for `sendto(2)`.
///
/// # Safety
/// The libc contract of `sendto`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    // SAFETY: forwarded unchanged, possibly several times.
    io(
        fd,
        Dir::Write,
        dw,
        || Ask::bytes(n),
        || unsafe { real::sendto(fd, buf, n, flags, addr, len) },
    )
}

/// Hook for `sendmsg(2)`.
///
/// # Safety
/// The libc contract of `sendmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    let dw = flags & libc::MSG_DONTWAIT != 0;
    // SAFETY: `msg` is a valid msghdr (sendmsg's contract).
    let want = || Ask::some(unsafe { msg_empty(msg) });
    // SAFETY: forwarded unchanged, possibly several times.
    io(fd, Dir::Write, dw, want, || unsafe {
        real::sendmsg(fd, msg, flags)
    })
}

/// `writev` of more than `PIPE_BUF` bytes on a POLLED fd from a greenlet: each buffer
/// written in pieces (see `pipe`); `None` for any other call.
///
/// # Safety
/// `iov` holds `n` readable iovecs when `0 < n <= IOV_MAX`.
unsafe fn writev_in_pieces(fd: c_int, iov: *const libc::iovec, n: c_int) -> Option<ssize_t> {
    let k = usize::try_from(n)
        .ok()
        .filter(|&k| k > 0 && k <= libc::UIO_MAXIOV as usize)?;
    if iov.is_null() {
        return None;
    }
    // SAFETY: the caller's contract (checked non-null, count in range).
    let bufs = unsafe { std::slice::from_raw_parts(iov, k) };
    let total = bufs
        .iter()
        .try_fold(0usize, |t, v| t.checked_add(v.iov_len))?;
    let sock = pipe::pieces_for(fd, total)?;
    let mut done = 0usize;
    for v in bufs.iter().filter(|v| v.iov_len > 0) {
        // SAFETY: each iovec describes a readable buffer (writev's contract).
        let r = unsafe { pipe::write_in_pieces(fd, sock, v.iov_base.cast(), v.iov_len) };
        if r < 0 {
            return Some(if done > 0 { done as ssize_t } else { r });
        }
        done += r as usize;
        if (r as usize) < v.iov_len {
            break;
        }
    }
    Some(done as ssize_t)
}
