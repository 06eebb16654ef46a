//! The interposed libc entry points, one file per concern:
//! - [`sleep`]: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`;
//! - [`fd`]: `socket`, `socketpair`, `close`, `dup`, `dup2`, `dup3`;
//! - [`connect`]: `connect`; [`accept`]: `accept`, `accept4` (with its back-off);
//! - [`io`]: `read`, `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`, `send`,
//!   `sendto`, `sendmsg`;
//! - [`pipe`]: no entry point of its own: the path of the `io` family for pipes, FIFOs,
//!   ttys and eventfds;
//! - [`poll`]: `poll`, `ppoll`; [`select`]: `select`, `pselect`;
//! - [`event_loop`]: `epoll_wait`, `epoll_pwait`, `epoll_pwait2`, and the scope that
//!   lets them park;
//! - [`options`]: `setsockopt`, `fcntl`, `ioctl`;
//! - [`process`]: `waitpid`, `wait`, `wait4`, `waitid`;
//! - [`dns`]: `getaddrinfo`, `getnameinfo`, `gethostbyname_r`, `gethostbyname2_r`;
//! - [`file`](mod@file): `open`, `open64`, `openat`, `openat64`, `pread`, `pread64`,
//!   `pwrite`, `pwrite64`, `fsync`, `fdatasync` (regular files);
//! - `futex`: `syscall` for `SYS_futex` (std's locks, condition variables, `Once` and
//!   `thread::park`), with [`thread_park`] for `std::thread::park`'s per-thread word;
//! - [`thread`]: `pthread_join`, the join of an OS thread.
//!
//! This file holds what they share: `errno`, [`guarded`], the classification of an fd
//! ([`mode`]), the adoption of a socket and [`offload`] to the blocking pool; and
//! [`wait`] how they wait for readiness.
//!
//! Every hook follows the same rules:
//! - Every hook starts with one relaxed load of the patch state and forwards to glibc
//!   ([`super::real`]) unless the call concerns a socket the table knows and (for the
//!   patched path) runs in a greenlet: outside greenlets, unpatched, or for an fd or
//!   operation it does not handle, a hook behaves exactly like the real call.
//! - Hooks never allocate, never lock, and call glibc's originals (never themselves) for
//!   their own syscalls, so the reactor, the logger and signal handlers may go through
//!   them freely. (A greenlet that parks in a hook does allocate, in the runtime, as any
//!   park does; so does a call handed to the blocking pool, and an accept that backs
//!   off, which also logs.)
//! - A panic raised while a greenlet is parked inside a hook (a kill, a `Timeout`) must
//!   not unwind through std's frames: std calls these functions through `extern "C"`
//!   declarations (nounwind), and Rust aborts on such an unwind. The hook catches it
//!   ([`guarded`]), hands the payload to `green_runtime::__net::defer_unwind` (which
//!   raises it again at the greenlet's next switch point, or makes it the greenlet's
//!   outcome if its function returns first) and makes the call fail with `ECANCELED`
//!   (sleeps return early).

use super::fdtable::{
    self, ADOPTED, ADOPTING, CLASSIFIED, Desc, FILE, FRESH, POLLED, STATE_MASK, Slot, USER_NONBLOCK,
};
use super::{FILES, NET, PIPES, TRACKING, real, rt, state};
use libc::{c_int, socklen_t, ssize_t};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

mod accept;
mod connect;
pub(super) mod dns;
pub(super) mod event_loop;
mod fd;
mod file;
mod futex;
mod io;
mod options;
mod pipe;
mod poll;
mod process;
mod select;
mod sleep;
mod thread;
pub(super) mod thread_park;
mod wait;

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

/// A call and its `errno`, made on a helper thread.
struct Made {
    r: ssize_t,
    errno: c_int,
}

/// A call that uses the caller's memory, moved to a helper thread: sound because
/// `rt::run_borrowed` returns only after it ran.
struct Borrowed<'a>(&'a mut dyn FnMut() -> ssize_t);

// SAFETY: the call only makes a system call with the caller's arguments (raw pointers
// into memory that stays valid and untouched while the caller waits for it), and runs
// on one thread at a time.
unsafe impl Send for Borrowed<'_> {}

impl Borrowed<'_> {
    fn call(self) -> Made {
        let r = (self.0)();
        Made { r, errno: errno() }
    }
}

/// Runs `op`, a call that uses the caller's memory (a buffer to fill), on the blocking
/// pool and returns its result with its `errno` set here. The greenlet waits until the
/// call has run even if a kill or timeout arrives meanwhile: that is deferred to its next
/// switch point.
pub(super) fn offload(op: &mut dyn FnMut() -> ssize_t) -> ssize_t {
    let mut made = Made { r: -1, errno: 0 };
    let out = &mut made;
    let call = Borrowed(op);
    let held = rt::run_borrowed(Box::new(move || *out = call.call()));
    for p in held {
        rt::defer_unwind(p);
    }
    if made.r < 0 {
        set_errno(made.errno);
    }
    made.r
}

/// `op` through [`offload`] when `pooled` (a call of a greenlet that goes to the
/// pool), else here.
pub(super) fn offload_if(pooled: bool, mut op: impl FnMut() -> ssize_t) -> ssize_t {
    if pooled { offload(&mut op) } else { op() }
}

/// A call whose wait a kill or timeout ended (`p`): defers it to the greenlet's next
/// switch point, sets `errno` to `ECANCELED` and returns `ret`, the call's failure value.
fn canceled<T>(p: rt::Payload, ret: T) -> T {
    rt::defer_unwind(p);
    set_errno(libc::ECANCELED);
    ret
}

/// Cooperative sleep; false if the greenlet was interrupted by an unwind.
fn green_sleep(d: Duration) -> bool {
    d.is_zero() || guarded(|| rt::sleep(d)).is_some()
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
    /// Pipe, FIFO, tty, eventfd (see `fdtable::POLLED`), user-blocking, in a greenlet:
    /// wait for readiness, then the real call.
    Polled(Sock),
    /// Regular file, `patch_files()` on, in a greenlet: the blocking pool.
    File,
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
    let slot = fdtable::get(fd);
    if let Some(slot) = slot
        && let Some(desc) = slot.desc()
        && desc.state() != fdtable::UNKNOWN
    {
        return classify(fd, Sock { fd: slot, desc });
    }
    other_fd(fd, slot)
}

/// [`mode`] of an fd without a record: with `patch_pipes()` or `patch_files()` on, in a
/// greenlet, an fd never looked at is looked at once (`pipe::look_at`).
#[cold]
fn other_fd(fd: c_int, slot: Option<&'static Slot>) -> Mode {
    let s = state();
    if s & (PIPES | FILES) == 0 || !rt::in_greenlet() {
        return Mode::Pass;
    }
    let bits = slot.map_or(0, Slot::bits);
    if bits & CLASSIFIED == 0 {
        return pipe::look_at(fd);
    }
    if bits & FILE != 0 && s & FILES != 0 {
        Mode::File
    } else {
        Mode::Pass
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
            POLLED => {
                return if bits & USER_NONBLOCK == 0 && state() & PIPES != 0 && rt::in_greenlet() {
                    Mode::Polled(slot)
                } else {
                    Mode::Pass
                };
            }
            _ => return Mode::Pass,
        }
    }
}

/// Takes every hook's address, so that whoever calls `patch_*` links the hooks' object
/// code even if a future rustc stopped linking `#[no_mangle]` symbols unconditionally.
pub(super) fn keep_linked() {
    let hooks: &[*const ()] = &[
        sleep::nanosleep as *const (),
        sleep::clock_nanosleep as *const (),
        sleep::usleep as *const (),
        sleep::sleep as *const (),
        fd::socket as *const (),
        fd::socketpair as *const (),
        fd::close as *const (),
        fd::dup as *const (),
        fd::dup2 as *const (),
        fd::dup3 as *const (),
        connect::connect as *const (),
        accept::accept as *const (),
        accept::accept4 as *const (),
        io::read as *const (),
        io::readv as *const (),
        io::recv as *const (),
        io::recvfrom as *const (),
        io::recvmsg as *const (),
        io::write as *const (),
        io::writev as *const (),
        io::send as *const (),
        io::sendto as *const (),
        io::sendmsg as *const (),
        poll::poll as *const (),
        poll::ppoll as *const (),
        select::select as *const (),
        select::pselect as *const (),
        event_loop::epoll_wait as *const (),
        event_loop::epoll_pwait as *const (),
        event_loop::epoll_pwait2 as *const (),
        options::setsockopt as *const (),
        options::fcntl as *const (),
        options::ioctl as *const (),
        process::waitpid as *const (),
        process::wait as *const (),
        process::wait4 as *const (),
        process::waitid as *const (),
        dns::getaddrinfo as *const (),
        dns::getnameinfo as *const (),
        dns::gethostbyname_r as *const (),
        dns::gethostbyname2_r as *const (),
        file::open as *const (),
        file::open64 as *const (),
        file::openat as *const (),
        file::openat64 as *const (),
        file::pread as *const (),
        file::pread64 as *const (),
        file::pwrite as *const (),
        file::pwrite64 as *const (),
        file::fsync as *const (),
        file::fdatasync as *const (),
    ];
    std::hint::black_box(hooks);
}

/// [`keep_linked`] for the sync hooks (`syscall`, `pthread_join`).
pub(super) fn keep_sync_linked() {
    futex::keep_linked();
    std::hint::black_box(thread::pthread_join as *const ());
}
