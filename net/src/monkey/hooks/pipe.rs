//! Pipes, FIFOs, ttys, eventfds and any other pollable fd that is not a socket
//! (`patch_pipes()`): a read or write from a greenlet first waits for readiness on the
//! hub's reactor, then makes the real call, which completes without blocking.
//!
//! The fd's `O_NONBLOCK` flag is never changed: such an fd often shares its open file
//! description with other processes (a shell's pipe, a terminal, a parent's FIFO), and
//! the flag belongs to the description, so setting it would make their blocking calls
//! fail with `EAGAIN`. This is libgo's way (readiness first, then the blocking call),
//! not gevent's (`make_nonblocking` on the fds it wraps).
//!
//! Its one race: another thread or process may drain the pipe between the readiness
//! check and the call; the call then blocks the thread until data comes, as it would
//! unpatched. The check is made right before the call (a zero-timeout `poll`), so other
//! greenlets of the thread cannot cause it. A blocking write of more than `PIPE_BUF`
//! bytes waits for room for the whole buffer, so it is made in `PIPE_BUF` pieces, each
//! after a readiness check (writes that large are not atomic anyway); the call returns
//! once all bytes are written, as the blocking call does.
//!
//! An fd opened or inherited without the hooks seeing its birth is looked at once, at
//! its first greenlet call ([`look_at`], one `fstat`), and remembered in the fd table.

use libc::{c_int, ssize_t};

use super::wait::{Dir, Wait, park_fd};
use super::{Mode, Sock, classify, errno, guarded, set_errno, tracked};
use crate::monkey::fdtable;
use crate::monkey::{FILES, real, rt, state};

/// `ANON_INODE_FS_MAGIC`: the file system of eventfds, timerfds, signalfds, epoll fds.
const ANON_INODE_FS_MAGIC: libc::c_long = 0x0904_1934;

/// Looks at `fd`, which the fd table knows nothing about, once (`fstat`): a pollable fd
/// that is not a socket gets a POLLED record (with the kernel's `O_NONBLOCK` as the
/// user's view); anything else is marked in its slot (a regular file as such). Returns
/// how a call on it is to be made now.
#[cold]
pub(super) fn look_at(fd: c_int) -> Mode {
    let saved = errno();
    let mode = look_at_fd(fd);
    set_errno(saved);
    mode
}

fn look_at_fd(fd: c_int) -> Mode {
    let Some(slot) = fdtable::get_or_create(fd) else {
        return Mode::Pass;
    };
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        // Not an open fd: the real call reports it. Nothing is remembered.
        return Mode::Pass;
    }
    let pollable = match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFCHR | 0 => true,
        libc::S_IFREG => on_anon_inode_fs(fd),
        _ => false,
    };
    if !pollable {
        let file = matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFBLK);
        slot.set_classified(file);
        return if file && state() & FILES != 0 {
            Mode::File
        } else {
            Mode::Pass
        };
    }
    // SAFETY: F_GETFL takes no argument.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if fl < 0 {
        return Mode::Pass;
    }
    slot.set_polled(fl & libc::O_NONBLOCK != 0);
    match tracked(fd) {
        Some(sock) => classify(fd, sock),
        None => Mode::Pass,
    }
}

/// Whether `fd` is an anonymous inode (an eventfd, timerfd, ...) that reports itself
/// as a regular file.
fn on_anon_inode_fs(fd: c_int) -> bool {
    // SAFETY: an all-zero `statfs` is a valid value to be overwritten.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `sf` is writable.
    unsafe { libc::fstatfs(fd, &mut sf) == 0 && sf.f_type as libc::c_long == ANON_INODE_FS_MAGIC }
}

/// Whether `fd` has `events` (or an error or hang-up) right now; an error of `poll`
/// itself counts as ready, so that the real call reports it.
fn ready_now(fd: c_int, events: libc::c_short) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    unsafe { real::poll(&mut p, 1, 0) != 0 }
}

/// A read or write of the POLLED fd `fd` from a greenlet: waits until the fd is ready
/// in direction `dir` (parked on the reactor), then makes the call `op`. An `EAGAIN`
/// (someone else made the description non-blocking) waits for the next readiness edge
/// and tries again. In a greenlet the call first counts against its fairness budget; a
/// kill arriving while it waits makes it fail with `ECANCELED`.
pub(super) fn polled(fd: c_int, dir: Dir, sock: Sock, op: &mut dyn FnMut() -> ssize_t) -> ssize_t {
    if guarded(rt::spend_budget).is_none() {
        set_errno(libc::ECANCELED);
        return -1;
    }
    let mut drained = false;
    loop {
        if drained || !ready_now(fd, dir.events()) {
            match park_fd(fd, sock, dir.interest(), None) {
                Wait::Ready | Wait::TimedOut => {}
                // Not pollable after all (epoll refuses it): the call blocks, as unpatched.
                Wait::Failed(libc::EPERM) => return op(),
                Wait::Failed(e) => {
                    set_errno(e);
                    return -1;
                }
            }
            drained = false;
            if !ready_now(fd, dir.events()) {
                continue;
            }
        }
        let r = op();
        if r < 0 && errno() == libc::EAGAIN {
            drained = true;
            continue;
        }
        return r;
    }
}

/// A blocking write of `n > PIPE_BUF` bytes at `buf` to the POLLED fd `fd` from a
/// greenlet, in `PIPE_BUF` pieces (see the module docs). Returns `n`, or the bytes
/// written before an error (the error itself if none were).
///
/// # Safety
/// `buf` is readable for `n` bytes.
pub(super) unsafe fn write_in_pieces(fd: c_int, sock: Sock, buf: *const u8, n: usize) -> ssize_t {
    let mut done = 0;
    while done < n {
        let len = (n - done).min(libc::PIPE_BUF);
        // SAFETY: `done + len <= n`: within the caller's buffer.
        let r = polled(fd, Dir::Write, sock, &mut || unsafe {
            real::write(fd, buf.add(done).cast(), len)
        });
        if r < 0 {
            return if done > 0 { done as ssize_t } else { r };
        }
        done += r as usize;
    }
    done as ssize_t
}

/// The write hooks' check: the POLLED socket record of `fd` if a write of `n` bytes on
/// it is to be made in pieces.
pub(super) fn pieces_for(fd: c_int, n: usize) -> Option<Sock> {
    if n <= libc::PIPE_BUF {
        return None;
    }
    match super::mode(fd) {
        Mode::Polled(sock) => Some(sock),
        _ => None,
    }
}
