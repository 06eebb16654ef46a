//! What every cooperative socket shares: its registration with the hub, the emulated
//! timeouts, the closed flag, and the try-then-wait loop.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use green_runtime::__net::FdRegistration;
use mio::Interest;

use crate::backoff::{self, Backoff};

/// One read or write of a connected stream socket, as `Read::read` / `Write::write` on
/// the std type would do it.
pub(crate) trait StreamIo {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
}

/// A byte count, or the error, from a system call's return value (`-errno` on error).
#[cfg(target_os = "linux")]
#[inline]
fn syscall_len(r: libc::c_long) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::from_raw_os_error(-r as i32))
    } else {
        Ok(r as usize)
    }
}

/// System call `n` with six arguments, made with the `syscall` (x86-64) or `svc`
/// (AArch64) instruction: never through libc, so never through the monkey patch's
/// hooks. Returns the kernel's value: `-errno` on error (`errno` is not set).
///
/// # Safety
/// The kernel's contract of system call `n` for these arguments.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[inline]
pub(crate) unsafe fn raw_syscall(n: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let [a1, a2, a3, a4, a5, a6] = args;
    let r: libc::c_long;
    // SAFETY: the Linux x86-64 system call convention: the number in rax, the arguments
    // in rdi, rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11 and returns in rax.
    // The memory the arguments point at is the caller's contract.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n => r,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    r
}

/// [`raw_syscall`] on AArch64: `svc 0`, the number in x8, the arguments in x0–x5.
///
/// # Safety
/// The kernel's contract of system call `n` for these arguments.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
#[inline]
pub(crate) unsafe fn raw_syscall(n: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let [a1, a2, a3, a4, a5, a6] = args;
    let r: libc::c_long;
    // SAFETY: the Linux AArch64 system call convention: the number in x8, the arguments
    // in x0–x5, the result in x0. The memory they point at is the caller's contract.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a1 => r,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            in("x5") a6,
            options(nostack),
        );
    }
    r
}

/// [`raw_syscall`] elsewhere: glibc's `syscall(2)` (resolved past the monkey patch's
/// hook), turned into the kernel's `-errno` convention.
///
/// # Safety
/// The kernel's contract of system call `n` for these arguments.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
#[inline]
pub(crate) unsafe fn raw_syscall(n: libc::c_long, args: [libc::c_long; 6]) -> libc::c_long {
    let [a1, a2, a3, a4, a5, a6] = args;
    #[cfg(feature = "monkey")]
    // SAFETY: forwarded to the caller.
    let r = unsafe { crate::monkey::real::syscall(n, a1, a2, a3, a4, a5, a6) };
    #[cfg(not(feature = "monkey"))]
    // SAFETY: forwarded to the caller; every argument is a full register.
    let r = unsafe { libc::syscall(n, a1, a2, a3, a4, a5, a6) };
    if r < 0 {
        -libc::c_long::from(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    } else {
        r
    }
}

/// TCP on Linux: the very system calls std makes (`recvfrom(fd, buf, len, 0)`, which
/// `recv` is; `sendto(fd, buf, len, MSG_NOSIGNAL)`), made directly with the `syscall`
/// instruction ([`raw_syscall`]).
///
/// What this buys: the libc `recv`/`send` wrappers add a pthread cancellation point
/// around the call (nothing in Rust cancels threads), and in a build with the `monkey`
/// feature they are hooked (the hook would find the fd unknown to it and pass
/// through); glibc's `syscall(2)` is hooked too (the futex hook). Through glibc's
/// `syscall` resolved past the hook, an echo round trip takes 1617 instructions; with
/// the instruction, 1555 (`benches/instr.rs`, `green_echo`).
#[cfg(target_os = "linux")]
impl StreamIo for std::net::TcpStream {
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(isize::MAX as usize);
        // SAFETY: `buf` is valid for writes of `len` bytes for the whole call; the fd is
        // open (owned by `self`); the null address and length pointers tell the kernel
        // not to report the peer's address.
        let r = unsafe {
            raw_syscall(
                libc::SYS_recvfrom,
                [
                    libc::c_long::from(self.as_raw_fd()),
                    buf.as_mut_ptr() as libc::c_long,
                    len as libc::c_long,
                    0,
                    0,
                    0,
                ],
            )
        };
        syscall_len(r)
    }

    #[inline]
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len().min(isize::MAX as usize);
        // SAFETY: `buf` is valid for reads of `len` bytes for the whole call; the fd is
        // open (owned by `self`); no destination address (a connected socket).
        let r = unsafe {
            raw_syscall(
                libc::SYS_sendto,
                [
                    libc::c_long::from(self.as_raw_fd()),
                    buf.as_ptr() as libc::c_long,
                    len as libc::c_long,
                    libc::c_long::from(libc::MSG_NOSIGNAL),
                    0,
                    0,
                ],
            )
        };
        syscall_len(r)
    }
}

#[cfg(not(target_os = "linux"))]
impl StreamIo for std::net::TcpStream {
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut &*self, buf)
    }

    #[inline]
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &*self, buf)
    }
}

impl StreamIo for std::os::unix::net::UnixStream {
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut &*self, buf)
    }

    #[inline]
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut &*self, buf)
    }
}

/// The hub side of a socket. Declared as the first field of every socket type, so that
/// it drops (deregisters) before the socket's fd is closed.
pub(crate) struct Evented {
    reg: FdRegistration,
    closed: Cell<bool>,
    /// The user asked for std's non-blocking mode: `WouldBlock` is returned, not waited.
    nonblocking: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl std::fmt::Debug for Evented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evented")
            .field("fd", &self.reg.fd())
            .field("closed", &self.closed.get())
            .finish()
    }
}

pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "socket was closed")
}

fn check_timeout(dur: Option<Duration>) -> io::Result<Option<Duration>> {
    if dur == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(dur)
}

/// `now + timeout`, or no deadline if that does not fit in an `Instant`.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl Evented {
    /// Registers `fd`, which must already be non-blocking, with this thread's hub.
    pub(crate) fn new(fd: RawFd) -> io::Result<Evented> {
        Ok(Evented {
            reg: FdRegistration::new(fd)?,
            closed: Cell::new(false),
            nonblocking: Cell::new(false),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }

    /// A registration for a duplicate `fd` of the same socket, with the same timeouts.
    pub(crate) fn clone_for(&self, fd: RawFd) -> io::Result<Evented> {
        let ev = Evented::new(fd)?;
        ev.read_timeout.set(self.read_timeout.get());
        ev.write_timeout.set(self.write_timeout.get());
        ev.nonblocking.set(self.nonblocking.get());
        Ok(ev)
    }

    /// The pieces of a socket's `try_clone`: unless the socket is closed, duplicates it
    /// with `dup` and registers the duplicate with the same settings as `self`.
    pub(crate) fn try_clone<S: AsRawFd>(
        &self,
        dup: impl FnOnce() -> io::Result<S>,
    ) -> io::Result<(Evented, S)> {
        if self.is_closed() {
            return Err(closed_error());
        }
        let sock = dup()?;
        Ok((self.clone_for(sock.as_raw_fd())?, sock))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.reg.fd()
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(dur)?);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(dur)?);
        Ok(())
    }

    pub(crate) fn set_nonblocking(&self, on: bool) {
        self.nonblocking.set(on);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Marks the socket closed and shuts it down in both directions. The shutdown makes
    /// the kernel report a hang-up, which wakes every greenlet waiting on the socket;
    /// each then sees the closed flag and returns [`closed_error`].
    pub(crate) fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        // SAFETY: the fd is open (it is owned by the socket that owns `self`); shutdown
        // does not close it or touch memory. Errors (ENOTCONN for a socket that never
        // connected) are irrelevant: the kernel still raises the hang-up for waiters.
        unsafe {
            libc::shutdown(self.fd(), libc::SHUT_RDWR);
        }
    }

    /// Runs a read-side operation with the read timeout.
    #[inline]
    pub(crate) fn read<T>(&self, f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        self.op(Interest::READABLE, self.read_timeout.get(), f)
    }

    /// Runs a write-side operation with the write timeout.
    #[inline]
    pub(crate) fn write<T>(&self, f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        self.op(Interest::WRITABLE, self.write_timeout.get(), f)
    }

    /// Tries `f`; on `WouldBlock` waits for the next `interest` edge (at most until
    /// `timeout` after the first wait began) and tries again.
    ///
    /// While the registration's readiness cache says the socket is drained in that
    /// direction, `f` is not tried: the wait comes first (saving a syscall that would
    /// return `WouldBlock`). In std's non-blocking mode `f` is always tried, since the
    /// caller may not have let the hub poll since the drain.
    ///
    /// Each operation counts against the greenlet's fairness budget first
    /// (`green_runtime::__net::spend_budget`): one that has made many operations without
    /// waiting lets the other greenlets run before this one.
    #[inline]
    pub(crate) fn op<T>(
        &self,
        interest: Interest,
        timeout: Option<Duration>,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        green_runtime::__net::spend_budget();
        let mut until: Option<Instant> = None;
        loop {
            if self.closed.get() {
                return Err(closed_error());
            }
            if self.reg.is_ready(interest) || self.nonblocking.get() {
                match f() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.reg.clear_ready(interest);
                        if self.nonblocking.get() {
                            return Err(e);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            if until.is_none() {
                until = deadline(timeout);
            }
            self.wait(interest, until)?;
        }
    }

    /// An accept: [`read`](Evented::read) with `f`, except that when the kernel refuses
    /// it for want of resources (see [`crate::backoff`]) the greenlet waits, as
    /// `backoff` says, and tries again instead of returning the error. In std's
    /// non-blocking mode the error is returned at once. A close ends the wait with the
    /// closed error.
    pub(crate) fn accept<T>(
        &self,
        backoff: &Cell<Backoff>,
        mut f: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match self.read(&mut f) {
                Ok(v) => {
                    let mut b = backoff.get();
                    let _ = b.accepted(self.fd());
                    backoff.set(b);
                    return Ok(v);
                }
                Err(e) if backoff::is_exhaustion_error(&e) && !self.nonblocking.get() => {
                    let mut b = backoff.get();
                    let delay = b.refused(self.fd(), &e);
                    backoff.set(b);
                    self.nap(delay)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for `delay` (the listener's next readiness edges, new connections, do not
    /// end it), or until the socket is closed (the closed error).
    #[cold]
    fn nap(&self, delay: Duration) -> io::Result<()> {
        let until = deadline(Some(delay));
        loop {
            match self.wait(Interest::READABLE, until) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Records that a stream read (or write) did less than asked for, which on Linux
    /// means the socket's receive queue is empty (or its send buffer full): the next
    /// read (write) waits for an edge instead of trying a syscall that would return
    /// `WouldBlock` (tokio does the same). Only for stream sockets whose reads are not
    /// cut short otherwise (TCP; not Unix streams, whose reads stop between messages
    /// of different senders).
    #[inline]
    pub(crate) fn drained(&self, interest: Interest) {
        self.reg.clear_ready(interest);
    }

    /// Waits for the next `interest` edge, or `deadline` (`TimedOut`).
    #[inline]
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        if self.closed.get() {
            return Err(closed_error());
        }
        self.reg.wait(interest, deadline)?;
        if self.closed.get() {
            return Err(closed_error());
        }
        Ok(())
    }
}

/// The error of a `write_all` whose write wrote nothing (std's kind and message).
#[cold]
pub(crate) fn write_zero() -> io::Error {
    io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer")
}

/// Sets `SO_REUSEPORT` on `fd`.
pub(crate) fn set_reuseport(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `fd` is an open socket owned by the caller; we pass a pointer to a live
    // c_int and its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `addr` as a `sockaddr_storage` and its length.
fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A non-blocking, close-on-exec TCP listener bound to `addr` with `SO_REUSEADDR`
/// (like std) and, if asked, `SO_REUSEPORT`.
pub(crate) fn tcp_listener(
    addr: &SocketAddr,
    reuseport: bool,
    backlog: libc::c_int,
) -> io::Result<std::net::TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain syscall with constant arguments; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: `fd` is open; we pass a live c_int and its size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    if reuseport {
        set_reuseport(fd)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of length `len` for the socket's family.
    cvt(unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })?;
    // SAFETY: `fd` is an open, bound stream socket.
    cvt(unsafe { libc::listen(fd, backlog) })?;
    Ok(std::net::TcpListener::from(owned))
}
