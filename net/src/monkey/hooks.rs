//! The interposed libc entry points.
//!
//! Every hook starts with one relaxed load of the patch state and forwards to glibc
//! ([`super::real`]) unless the call concerns a socket the table knows and (for the
//! patched path) runs in a greenlet. Hooks never allocate, never lock, and call glibc's
//! originals (never themselves) for their own syscalls, so the reactor, the logger and
//! signal handlers may go through them freely. (A greenlet that parks in a hook does
//! allocate, in the runtime, as any park does; so does an accept that backs off, which
//! also logs.)
//!
//! A panic raised while a greenlet is parked inside a hook (a kill, a `Timeout`) must not
//! unwind through std's frames: std calls these functions through `extern "C"`
//! declarations (nounwind), and Rust aborts on such an unwind. The hook catches it,
//! hands the payload to `green_runtime::defer_unwind` (which raises it again at the
//! greenlet's next switch point, or makes it the greenlet's outcome if its function
//! returns first) and makes the call fail with `ECANCELED` (sleeps return early).

use super::fdtable::{
    self, ADOPTED, ADOPTING, Desc, FRESH, REGISTERED, STATE_MASK, Slot, USER_NONBLOCK,
};
use super::{NET, SLEEP, TRACKING, real, rt, state};
use crate::backoff::{self, Backoff};
use crate::unix::{UNIX_CONNECT_FIRST_NAP, UNIX_CONNECT_MAX_NAP};
use libc::{c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

fn errno() -> c_int {
    // SAFETY: __errno_location always returns this thread's valid errno slot.
    unsafe { *libc::__errno_location() }
}
fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Runs a runtime call that may park (and so may unwind); `None` if it unwound, in which
/// case the payload has been deferred to the greenlet's next switch point.
pub(super) fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            rt::defer_unwind(payload);
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

impl Dir {
    fn interest(self) -> mio::Interest {
        match self {
            Dir::Read => mio::Interest::READABLE,
            Dir::Write => mio::Interest::WRITABLE,
        }
    }
    fn events(self) -> libc::c_short {
        match self {
            Dir::Read => libc::POLLIN,
            Dir::Write => libc::POLLOUT,
        }
    }
}

/// A socket the hooks know, seen through one of its fds: the fd's slot and the socket's
/// record (shared with the fd's dups).
#[derive(Clone, Copy)]
struct Sock {
    fd: &'static Slot,
    desc: &'static Desc,
}

impl Sock {
    fn bits(self) -> u32 {
        self.desc.bits()
    }
    fn tag(self) -> u64 {
        self.desc.tag()
    }
    fn rcv_timeout(self) -> Option<Duration> {
        self.desc.rcv_timeout()
    }
    fn snd_timeout(self) -> Option<Duration> {
        self.desc.snd_timeout()
    }
    fn mark_registered(self) {
        self.fd.mark_registered()
    }
}

/// How a call on an fd is to be made.
enum Mode {
    /// Straight to glibc.
    Pass,
    /// Adopted socket, user-blocking, in a greenlet: park on the reactor.
    Green(Sock),
    /// Adopted socket, user-blocking, outside greenlets: block in `poll`.
    Emulate(Sock),
}

/// Switches a FRESH socket's real fd (and so all its dups: `O_NONBLOCK` belongs to the
/// open file description) to non-blocking mode, keeping the user's view in its record.
/// While the record is FRESH no hook changes the kernel's flag on the user's behalf, so
/// the kernel's flag is the user's view of every fd of the socket.
fn adopt(fd: c_int, desc: &Desc) {
    let saved = errno();
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    let user_nb = fl >= 0 && fl & libc::O_NONBLOCK != 0;
    let ok = fl >= 0
        && (user_nb
            // SAFETY: F_SETFL takes an int flag word.
            || unsafe { real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as libc::c_ulong) } == 0);
    if ok {
        desc.set_rcv_timeout(kernel_timeout(fd, libc::SO_RCVTIMEO));
        desc.set_snd_timeout(kernel_timeout(fd, libc::SO_SNDTIMEO));
    }
    desc.finish_adopt(user_nb, ok);
    set_errno(saved);
}

fn kernel_timeout(fd: c_int, name: c_int) -> Option<Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    // SAFETY: `tv`/`len` are valid for writes of a timeval.
    let r = unsafe { real::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut tv).cast(), &mut len) };
    timeval_to(r, &tv)
}

fn timeval_to(r: c_int, tv: &libc::timeval) -> Option<Duration> {
    if r != 0 || tv.tv_sec < 0 || tv.tv_usec < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64))
}

#[inline]
fn mode(fd: c_int) -> Mode {
    if state() & TRACKING == 0 {
        return Mode::Pass;
    }
    match tracked(fd) {
        Some(sock) => classify(fd, sock),
        None => Mode::Pass,
    }
}

/// The socket on `fd`, if the hooks know it (and did not give up on it).
#[inline]
fn tracked(fd: c_int) -> Option<Sock> {
    let slot = fdtable::get(fd)?;
    let desc = slot.desc()?;
    (desc.state() != fdtable::UNKNOWN).then_some(Sock { fd: slot, desc })
}

#[cold]
fn classify(fd: c_int, slot: Sock) -> Mode {
    loop {
        let bits = slot.bits();
        match bits & STATE_MASK {
            FRESH => {
                if state() & NET == 0 || !rt::in_greenlet() {
                    return Mode::Pass;
                }
                if slot.desc.begin_adopt() {
                    adopt(fd, slot.desc);
                }
            }
            ADOPTING => std::thread::yield_now(),
            ADOPTED => {
                if bits & USER_NONBLOCK != 0 {
                    return Mode::Pass;
                }
                return if rt::in_greenlet() {
                    Mode::Green(slot)
                } else {
                    Mode::Emulate(slot)
                };
            }
            _ => return Mode::Pass,
        }
    }
}

/// Outcome of waiting for readiness.
enum Wait {
    Ready,
    TimedOut,
    Failed(c_int),
}

fn remaining_ms(deadline: Option<Instant>) -> Option<c_int> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        let ms = left.as_micros().div_ceil(1000);
        c_int::try_from(ms).unwrap_or(c_int::MAX)
    })
}

/// Blocks the thread in glibc's `poll` until `fd` has `events` or `deadline` passes.
fn poll_block(fd: c_int, events: libc::c_short, deadline: Option<Instant>) -> Wait {
    loop {
        let ms = remaining_ms(deadline);
        if ms == Some(0) {
            return Wait::TimedOut;
        }
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { real::poll(&mut p, 1, ms.unwrap_or(-1)) };
        match r {
            1.. => return Wait::Ready,
            0 => continue,
            _ if errno() == libc::EINTR => continue,
            _ => return Wait::Failed(errno()),
        }
    }
}

/// Parks the greenlet on the reactor until `fd` is ready for `interest`.
fn park_fd(fd: c_int, slot: Sock, interest: mio::Interest, deadline: Option<Instant>) -> Wait {
    slot.mark_registered();
    match guarded(|| rt::wait_fd(fd, slot.tag(), interest, deadline)) {
        Some(Ok(())) => Wait::Ready,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Wait::TimedOut,
        Some(Err(e)) => Wait::Failed(match (e.raw_os_error(), e.kind()) {
            (Some(n), _) => n,
            // forget_fd: the fd was closed under us (gevent says EBADF too).
            (None, std::io::ErrorKind::ConnectionAborted) => libc::EBADF,
            // The hub found nothing that could ever wake us.
            (None, _) => libc::EDEADLK,
        }),
        None => Wait::Failed(libc::ECANCELED),
    }
}

fn wait(fd: c_int, slot: Sock, green: bool, dir: Dir, deadline: Option<Instant>) -> Wait {
    if green {
        park_fd(fd, slot, dir.interest(), deadline)
    } else {
        poll_block(fd, dir.events(), deadline)
    }
}

fn timeout(slot: Sock, dir: Dir) -> Option<Instant> {
    let t = match dir {
        Dir::Read => slot.rcv_timeout(),
        Dir::Write => slot.snd_timeout(),
    };
    t.map(|t| Instant::now() + t)
}

/// What a call of the read/write family asks for, for the readiness cache of [`io_slow`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
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
fn io(
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

/// A socket was born on `fd` (socket, accept, socketpair); `tcp`: a TCP stream socket.
fn born(fd: c_int, tcp: bool) {
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
fn is_tcp(fd: c_int) -> bool {
    fdtable::get(fd)
        .and_then(Slot::desc)
        .is_some_and(|d| d.bits() & fdtable::TCP != 0)
}

/// `new` is a duplicate of `old` (same open file description): it shares `old`'s record.
fn duplicated(old: c_int, new: c_int) {
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

// ---------------------------------------------------------------------------------------
// Sleeping

fn valid(ts: &libc::timespec) -> bool {
    ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec)
}

fn ts_dur(ts: &libc::timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Cooperative sleep; false if the greenlet was interrupted by an unwind.
fn green_sleep(d: Duration) -> bool {
    d.is_zero() || guarded(|| rt::sleep(d)).is_some()
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

// ---------------------------------------------------------------------------------------
// Socket lifetime

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

// ---------------------------------------------------------------------------------------
// Connecting and accepting

/// Hook for `connect(2)`.
///
/// # Safety
/// The libc contract of `connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let (green, slot) = match mode(fd) {
        // SAFETY: forwarded unchanged.
        Mode::Pass => return unsafe { real::connect(fd, addr, len) },
        Mode::Green(s) => (true, s),
        Mode::Emulate(s) => (false, s),
    };
    // SAFETY: forwarded unchanged (the fd is non-blocking underneath).
    let r = unsafe { real::connect(fd, addr, len) };
    if r == 0 {
        return r;
    }
    let e = errno();
    if e == libc::EAGAIN && is_unix_addr(addr, len) {
        return connect_unix_full_backlog(fd, addr, len, green, slot);
    }
    if e != libc::EINPROGRESS {
        return r;
    }
    let deadline = timeout(slot, Dir::Write);
    loop {
        match wait(fd, slot, green, Dir::Write, deadline) {
            Wait::Ready => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout.
                if unsafe { real::poll(&mut p, 1, 0) } == 0 {
                    continue;
                }
                let mut err: c_int = 0;
                let mut l = std::mem::size_of::<c_int>() as socklen_t;
                // SAFETY: `err`/`l` are valid for writes of an int.
                let r = unsafe {
                    real::getsockopt(
                        fd,
                        libc::SOL_SOCKET,
                        libc::SO_ERROR,
                        (&raw mut err).cast(),
                        &mut l,
                    )
                };
                if r != 0 {
                    return r;
                }
                if err == 0 {
                    return 0;
                }
                set_errno(err);
                return -1;
            }
            Wait::TimedOut => {
                set_errno(libc::EINPROGRESS);
                return -1;
            }
            Wait::Failed(e) => {
                set_errno(e);
                return -1;
            }
        }
    }
}

/// Whether `addr` is an `AF_UNIX` address (`connect` reads its family the same way).
fn is_unix_addr(addr: *const sockaddr, len: socklen_t) -> bool {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return false;
    }
    // SAFETY: the caller of `connect` passes `len` readable bytes at `addr`, and the
    // address family is their first field.
    let family = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>()) };
    c_int::from(family) == libc::AF_UNIX
}

/// A `connect` to a Unix stream listener whose backlog is full: the non-blocking real fd
/// says `EAGAIN` where a blocking one waits for room (the kernel reports no progress
/// through readiness, so there is nothing to park on). Retries after naps of
/// [`UNIX_CONNECT_FIRST_NAP`] doubling to [`UNIX_CONNECT_MAX_NAP`], as
/// `green::net::UnixStream::connect` does (cooperative in a greenlet, plain sleeps on a
/// thread) until it connects, fails otherwise, or the user's send timeout
/// (`SO_SNDTIMEO`, which bounds the kernel's wait too) passes: then `EAGAIN`, as the
/// kernel says.
#[cold]
fn connect_unix_full_backlog(
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
    green: bool,
    slot: Sock,
) -> c_int {
    let deadline = timeout(slot, Dir::Write);
    let mut nap = UNIX_CONNECT_FIRST_NAP;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            set_errno(libc::EAGAIN);
            return -1;
        }
        let d = left.map_or(nap, |l| nap.min(l));
        if green {
            if !green_sleep(d) {
                set_errno(libc::ECANCELED);
                return -1;
            }
        } else {
            thread_sleep(d);
        }
        nap = (nap * 2).min(UNIX_CONNECT_MAX_NAP);
        // SAFETY: forwarded unchanged, as the first attempt.
        let r = unsafe { real::connect(fd, addr, len) };
        if r == 0 {
            return 0;
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EINTR {
            return r;
        }
    }
}

/// Blocks the thread for `d` in glibc's `nanosleep` (for calls outside greenlets).
fn thread_sleep(d: Duration) {
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid timespec and a null remainder; an early return (EINTR) only
    // shortens the nap.
    unsafe { real::nanosleep(&ts, std::ptr::null_mut()) };
}

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
    /// episode lasts: empty otherwise.
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
        if ACCEPT_BACKOFF.with(|l| !l.borrow().is_empty()) {
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
    ACCEPT_BACKOFF.with(|l| {
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
    let mut b = ACCEPT_BACKOFF.with(|l| {
        let mut l = l.borrow_mut();
        // Entries of listeners closed during their episode name another socket now.
        l.retain(|&(f, t, _)| f == fd || tracked(f).is_some_and(|s| s.tag() == t));
        match l.iter().find(|&&(f, t, _)| f == fd && t == tag) {
            Some(&(_, _, b)) => b,
            None => Backoff::new(),
        }
    });
    // (No borrow is held while logging or parking: another greenlet of the thread may
    // accept meanwhile.)
    let delay = b.refused(fd, &std::io::Error::from_raw_os_error(e));
    ACCEPT_BACKOFF.with(|l| {
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

// ---------------------------------------------------------------------------------------
// Reading and writing

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
    // SAFETY: forwarded unchanged (on the rest of the buffer), possibly several times.
    read_all_if_asked(fd, n, flags, |done| {
        io(
            fd,
            Dir::Read,
            dw,
            || read_want(n - done, flags),
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
    // SAFETY: forwarded unchanged (on the rest of the buffer), possibly several times.
    read_all_if_asked(fd, n, flags, |done| {
        io(
            fd,
            Dir::Read,
            dw,
            || read_want(n - done, flags),
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

// ---------------------------------------------------------------------------------------
// poll

/// Hook for `poll(2)` (what `TcpStream::connect_timeout` waits with).
///
/// From a greenlet, a poll on one tracked socket parks on the reactor; a poll on several
/// fds of which one is tracked is approximated by non-blocking polls with short
/// cooperative sleeps; anything else is glibc's.
///
/// # Safety
/// The libc contract of `poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if state() & TRACKING == 0 || n == 0 || timeout == 0 || fds.is_null() || !rt::in_greenlet() {
        // SAFETY: forwarded unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    // SAFETY: the caller passes `n` valid pollfds.
    let set = unsafe { std::slice::from_raw_parts(fds, n as usize) };
    let first = if n == 1 { tracked(set[0].fd) } else { None };
    if first.is_none() && !set.iter().any(|p| tracked(p.fd).is_some()) {
        // SAFETY: forwarded unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    let mut backoff = Duration::from_millis(1);
    loop {
        // SAFETY: forwarded with a zero timeout.
        let r = unsafe { real::poll(fds, n, 0) };
        if r != 0 || remaining_ms(deadline) == Some(0) {
            return r;
        }
        if let Some(slot) = first {
            let ev = set[0].events;
            let mut interest = None::<mio::Interest>;
            if ev & (libc::POLLIN | libc::POLLPRI) != 0 {
                interest = Some(mio::Interest::READABLE);
            }
            if ev & libc::POLLOUT != 0 {
                interest =
                    Some(interest.map_or(mio::Interest::WRITABLE, |i| i | mio::Interest::WRITABLE));
            }
            match park_fd(
                set[0].fd,
                slot,
                interest.unwrap_or(mio::Interest::READABLE),
                deadline,
            ) {
                Wait::Ready | Wait::TimedOut => {}
                Wait::Failed(e) => {
                    set_errno(e);
                    return -1;
                }
            }
        } else {
            let left = deadline.map_or(backoff, |d| d.saturating_duration_since(Instant::now()));
            if !green_sleep(backoff.min(left)) {
                set_errno(libc::EINTR);
                return -1;
            }
            backoff = (backoff * 2).min(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options and flags

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

/// After the kernel's `O_NONBLOCK` was set to the user's `want` on a socket that was not
/// adopted: if an adoption ran meanwhile (on another thread), it may have read the old
/// flag, or this call may have made the real fd blocking again: record the user's choice
/// and make the real fd non-blocking.
fn user_nonblock_after_forward(fd: c_int, want: bool) {
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

/// Takes every hook's address, so that whoever calls `patch_*` links this object file
/// even if a future rustc stopped linking `#[no_mangle]` symbols unconditionally.
pub(super) fn keep_linked() {
    let hooks: [*const (); 25] = [
        nanosleep as *const (),
        clock_nanosleep as *const (),
        socket as *const (),
        socketpair as *const (),
        close as *const (),
        dup as *const (),
        dup2 as *const (),
        dup3 as *const (),
        connect as *const (),
        accept as *const (),
        accept4 as *const (),
        read as *const (),
        readv as *const (),
        recv as *const (),
        recvfrom as *const (),
        recvmsg as *const (),
        write as *const (),
        writev as *const (),
        send as *const (),
        sendto as *const (),
        sendmsg as *const (),
        poll as *const (),
        setsockopt as *const (),
        fcntl as *const (),
        ioctl as *const (),
    ];
    std::hint::black_box(hooks);
}
