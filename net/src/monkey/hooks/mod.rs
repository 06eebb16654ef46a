//! The interposed libc entry points, one file per concern: [`sleep`] (`nanosleep`,
//! `clock_nanosleep`), [`fd`] (socket creation, `dup*`, `close`), [`connect`], [`accept`]
//! (with its back-off), [`io`] (the read/write/recv/send family), [`poll`] and
//! [`options`] (`setsockopt`, `fcntl`, `ioctl`); `futex` (`syscall(SYS_futex)`: std's
//! locks, condition variables and `Once`), [`thread_park`] (`std::thread::park`'s
//! per-thread word) and [`thread`] (`pthread_join`). This file holds what they share: `errno`,
//! [`guarded`], the classification of an fd ([`mode`]) and the adoption of a socket; and
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
//!   park does; so does an accept that backs off, which also logs.)
//! - A panic raised while a greenlet is parked inside a hook (a kill, a `Timeout`) must
//!   not unwind through std's frames: std calls these functions through `extern "C"`
//!   declarations (nounwind), and Rust aborts on such an unwind. The hook catches it
//!   ([`guarded`]), hands the payload to `green_runtime::defer_unwind` (which raises it
//!   again at the greenlet's next switch point, or makes it the greenlet's outcome if its
//!   function returns first) and makes the call fail with `ECANCELED` (sleeps return
//!   early).

use super::fdtable::{self, ADOPTED, ADOPTING, Desc, FRESH, STATE_MASK, Slot, USER_NONBLOCK};
use super::{NET, TRACKING, real, rt, state};
use libc::{c_int, socklen_t};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

mod accept;
mod connect;
mod fd;
mod futex;
mod io;
mod options;
mod poll;
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

/// Takes every hook's address, so that whoever calls `patch_*` links the hooks' object
/// code even if a future rustc stopped linking `#[no_mangle]` symbols unconditionally.
pub(super) fn keep_linked() {
    let hooks: [*const (); 25] = [
        sleep::nanosleep as *const (),
        sleep::clock_nanosleep as *const (),
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
        options::setsockopt as *const (),
        options::fcntl as *const (),
        options::ioctl as *const (),
    ];
    std::hint::black_box(hooks);
}

/// [`keep_linked`] for the sync hooks (`syscall`, `pthread_join`).
pub(super) fn keep_sync_linked() {
    futex::keep_linked();
    std::hint::black_box(thread::pthread_join as *const ());
}
