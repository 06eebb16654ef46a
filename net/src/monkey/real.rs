//! The original libc entry points, found with `dlsym(RTLD_NEXT, ..)` and cached.
//!
//! Our `#[no_mangle]` definitions in [`super::hooks`] shadow glibc's for every call made
//! from code linked into the executable, so the hooks reach the real functions through
//! these wrappers. The address is resolved on first use (or eagerly by
//! [`resolve_all`], which `patch_*` call) and kept in an atomic; after that a call costs
//! one relaxed load and an indirect call.
//!
//! `dlsym` is not async-signal-safe, so [`resolve_all`] runs before any hook can take the
//! patched path; the unpatched path of a hook may resolve lazily, exactly once per symbol
//! in practice (a race only resolves twice, to the same address).

use libc::{c_char, c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Looks `name` (NUL-terminated) up in the objects after ours; aborts if it is missing.
#[cold]
fn resolve(name: &'static str) -> usize {
    debug_assert!(name.ends_with('\0'));
    // SAFETY: `name` is a NUL-terminated string literal; RTLD_NEXT is a valid pseudo-handle.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) };
    if p.is_null() {
        unsafe extern "C" {
            fn dprintf(fd: c_int, format: *const libc::c_char, ...) -> c_int;
        }
        let msg =
            c"green::monkey: dlsym(RTLD_NEXT) found no libc symbol (static binary?); aborting\n";
        // SAFETY: a constant format without conversions. glibc's stdio writes through its
        // internal `write`, which no hook interposes (`write` and `syscall` are hooked,
        // and their originals are what failed to resolve).
        unsafe { dprintf(2, msg.as_ptr()) };
        std::process::abort();
    }
    p as usize
}

macro_rules! real_fns {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )*) => {
        $(
            pub(crate) mod $name {
                use super::*;
                pub(crate) static ADDR: AtomicUsize = AtomicUsize::new(0);
                #[inline]
                pub(crate) fn get() -> unsafe extern "C" fn($($ty),*) -> $ret {
                    let mut p = ADDR.load(Ordering::Relaxed);
                    if p == 0 {
                        p = resolve(concat!(stringify!($name), "\0"));
                        ADDR.store(p, Ordering::Relaxed);
                    }
                    // SAFETY: `p` is the non-null address of glibc's function of this name,
                    // whose C prototype is the one written here.
                    unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($ty),*) -> $ret>(p) }
                }
            }
            /// Calls glibc's function of the same name.
            ///
            /// # Safety
            /// The libc contract of that function.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: forwarded to the caller.
                unsafe { $name::get()($($arg),*) }
            }
        )*
        /// Resolves every original up front (called by `patch_*`, outside any hook).
        pub(crate) fn resolve_all() {
            $( let _ = $name::get(); )*
            let _ = fcntl_fn();
            let _ = ioctl_fn();
            for (slot, name) in OPENS {
                let _ = variadic_addr(slot, name);
            }
            let _ = syscall_fn();
        }
    };
}

real_fns! {
    fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn clock_nanosleep(clock: libc::clockid_t, flags: c_int, req: *const libc::timespec, rem: *mut libc::timespec) -> c_int;
    fn pthread_join(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int;
    fn pthread_tryjoin_np(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int;
    fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    fn socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int;
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn readv(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    fn recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t;
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    fn writev(fd: c_int, iov: *const libc::iovec, n: c_int) -> ssize_t;
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    fn sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t;
    fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(fd: c_int, new: c_int) -> c_int;
    fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int;
    fn ppoll(fds: *mut libc::pollfd, n: libc::nfds_t, ts: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    fn select(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, tv: *mut libc::timeval) -> c_int;
    fn pselect(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, ts: *const libc::timespec, mask: *const libc::sigset_t) -> c_int;
    fn epoll_wait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int;
    fn epoll_pwait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int, mask: *const libc::sigset_t) -> c_int;
    fn usleep(usec: libc::useconds_t) -> c_int;
    fn sleep(secs: libc::c_uint) -> libc::c_uint;
    fn wait(status: *mut c_int) -> libc::pid_t;
    fn waitpid(pid: libc::pid_t, status: *mut c_int, options: c_int) -> libc::pid_t;
    fn wait4(pid: libc::pid_t, status: *mut c_int, options: c_int, usage: *mut libc::rusage) -> libc::pid_t;
    fn waitid(idtype: libc::idtype_t, id: libc::id_t, info: *mut libc::siginfo_t, options: c_int) -> c_int;
    fn getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int;
    fn getnameinfo(sa: *const sockaddr, salen: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int;
    fn gethostbyname_r(name: *const c_char, ret: *mut libc::hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn gethostbyname2_r(name: *const c_char, af: c_int, ret: *mut libc::hostent, buf: *mut c_char, buflen: size_t, result: *mut *mut libc::hostent, h_errnop: *mut c_int) -> c_int;
    fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: libc::off_t) -> ssize_t;
    fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: libc::off64_t) -> ssize_t;
    fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: libc::off_t) -> ssize_t;
    fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: libc::off64_t) -> ssize_t;
    fn fsync(fd: c_int) -> c_int;
    fn fdatasync(fd: c_int) -> c_int;
}

type Variadic = unsafe extern "C" fn(c_int, libc::c_ulong, ...) -> c_int;
static FCNTL: AtomicUsize = AtomicUsize::new(0);
static IOCTL: AtomicUsize = AtomicUsize::new(0);

fn variadic_addr(slot: &AtomicUsize, name: &'static str) -> usize {
    let mut p = slot.load(Ordering::Relaxed);
    if p == 0 {
        p = resolve(name);
        slot.store(p, Ordering::Relaxed);
    }
    p
}

fn variadic(slot: &AtomicUsize, name: &'static str) -> Variadic {
    let p = variadic_addr(slot, name);
    // SAFETY: `p` is glibc's `fcntl(int, int, ...)` / `ioctl(int, unsigned long, ...)`;
    // an `int` second argument is passed in the same register as an `unsigned long`
    // on the 64-bit Linux ABIs we support, and the callers only pass values that fit.
    unsafe { std::mem::transmute::<usize, Variadic>(p) }
}
fn fcntl_fn() -> Variadic {
    variadic(&FCNTL, "fcntl\0")
}
fn ioctl_fn() -> Variadic {
    variadic(&IOCTL, "ioctl\0")
}

/// glibc's `fcntl(fd, cmd, arg)`; `arg` is the int or pointer argument (ignored by
/// commands that take none).
///
/// # Safety
/// The libc contract of `fcntl` for `cmd`.
pub(crate) unsafe fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: forwarded to the caller.
    unsafe { fcntl_fn()(fd, cmd as libc::c_ulong, arg) }
}

/// glibc's `ioctl(fd, req, arg)`.
///
/// # Safety
/// The libc contract of `ioctl` for `req`.
pub(crate) unsafe fn ioctl(fd: c_int, req: libc::c_ulong, arg: libc::c_ulong) -> c_int {
    // SAFETY: forwarded to the caller.
    unsafe { ioctl_fn()(fd, req, arg) }
}

static OPEN: AtomicUsize = AtomicUsize::new(0);
static OPEN64: AtomicUsize = AtomicUsize::new(0);
static OPENAT: AtomicUsize = AtomicUsize::new(0);
static OPENAT64: AtomicUsize = AtomicUsize::new(0);
/// The `open` family, resolved with the others by `resolve_all`.
static OPENS: [(&AtomicUsize, &str); 4] = [
    (&OPEN, "open\0"),
    (&OPEN64, "open64\0"),
    (&OPENAT, "openat\0"),
    (&OPENAT64, "openat64\0"),
];

/// Which of glibc's `open` functions to call: `open`, `open64`, `openat`, `openat64`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Open {
    Path,
    Path64,
    At,
    At64,
}

/// glibc's `open`, `open64` (`dir` ignored), `openat` or `openat64` of `path` with
/// `flags` and `mode` (ignored by glibc unless `flags` creates a file).
///
/// # Safety
/// The libc contract of that function.
pub(crate) unsafe fn open(
    which: Open,
    dir: c_int,
    path: *const c_char,
    flags: c_int,
    mode: libc::c_uint,
) -> c_int {
    type Path = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
    type At = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
    let (slot, name) = match which {
        Open::Path => OPENS[0],
        Open::Path64 => OPENS[1],
        Open::At => OPENS[2],
        Open::At64 => OPENS[3],
    };
    let p = variadic_addr(slot, name);
    match which {
        Open::Path | Open::Path64 => {
            // SAFETY: `p` is glibc's `open`/`open64(const char *, int, ...)`.
            let f = unsafe { std::mem::transmute::<usize, Path>(p) };
            // SAFETY: forwarded to the caller.
            unsafe { f(path, flags, mode) }
        }
        Open::At | Open::At64 => {
            // SAFETY: `p` is glibc's `openat`/`openat64(int, const char *, int, ...)`.
            let f = unsafe { std::mem::transmute::<usize, At>(p) };
            // SAFETY: forwarded to the caller.
            unsafe { f(dir, path, flags, mode) }
        }
    }
}

/// `epoll_pwait2(2)`, made as a system call (glibc has it only from 2.35).
///
/// # Safety
/// The contract of `epoll_pwait2`.
pub(crate) unsafe fn epoll_pwait2(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    ts: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // The kernel's sigset is 64 bits: _NSIG / 8.
    const SIGSET_SIZE: usize = 8;
    // SAFETY: forwarded to the caller; the pointers travel as the kernel's longs.
    let r = unsafe {
        syscall(
            libc::SYS_epoll_pwait2,
            libc::c_long::from(ep),
            ev as libc::c_long,
            libc::c_long::from(max),
            ts as libc::c_long,
            mask as libc::c_long,
            SIGSET_SIZE as libc::c_long,
        )
    };
    r as c_int
}
type SyscallFn = unsafe extern "C" fn(libc::c_long, ...) -> libc::c_long;
static SYSCALL: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn syscall_fn() -> SyscallFn {
    let mut p = SYSCALL.load(Ordering::Relaxed);
    if p == 0 {
        p = resolve("syscall\0");
        SYSCALL.store(p, Ordering::Relaxed);
    }
    // SAFETY: `p` is glibc's `long syscall(long number, ...)`.
    unsafe { std::mem::transmute::<usize, SyscallFn>(p) }
}

/// glibc's `syscall(n, a1, ..., a6)`, never the hook of the same name: all six
/// arguments are passed (a system call ignores those it does not take, as glibc's own
/// `syscall` reads all six registers whatever the caller passed).
///
/// # Safety
/// The kernel's contract of system call `n` for these arguments.
#[inline]
pub(crate) unsafe fn syscall(
    n: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    // SAFETY: forwarded to the caller.
    unsafe { syscall_fn()(n, a1, a2, a3, a4, a5, a6) }
}
