//! Per-fd bookkeeping for the net hooks: a lock-free table indexed by fd.
//!
//! The hooks run inside `malloc`-free, possibly re-entrant contexts (the reactor, the
//! logger, a signal handler writing to a pipe), so the table never takes a lock and never
//! calls the allocator: it is a fixed directory of [`CHUNKS`] lazily `mmap`ed chunks of
//! [`CHUNK`] slots each, covering fds below `CHUNKS * CHUNK` (1 048 576, Linux's default
//! `nr_open`). Larger fds have no slot and are always passed through unchanged. Chunks
//! are never freed.
//!
//! A slot's life, for a socket the hooks have seen being born:
//!
//! ```text
//!   UNKNOWN --socket()/accept()/socketpair() while patched--> FRESH
//!   FRESH --first blocking-style call from a greenlet--> ADOPTED (real fd O_NONBLOCK)
//!   any --close()--> UNKNOWN
//! ```
//!
//! Fds we never saw being born (stdio, inherited sockets, files, pipes, sockets made
//! before `patch_net`) stay `UNKNOWN` and are never touched: making a shared open file
//! description non-blocking would leak into other processes.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// log2 of the slots per chunk.
const CHUNK_BITS: u32 = 12;
/// Slots per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks in the directory.
pub(crate) const CHUNKS: usize = 256;

/// Slot state: not ours, pass through.
pub(crate) const UNKNOWN: u32 = 0;
/// A socket created while patched; still in its original (user-chosen) blocking mode.
pub(crate) const FRESH: u32 = 1;
/// Transient: a thread is adopting it.
pub(crate) const ADOPTING: u32 = 2;
/// Adopted: the real fd is `O_NONBLOCK`; the user's view is [`USER_NONBLOCK`].
pub(crate) const ADOPTED: u32 = 3;
/// Mask of the state bits.
pub(crate) const STATE_MASK: u32 = 0b11;
/// The user asked for non-blocking mode (the user's view of `O_NONBLOCK`).
pub(crate) const USER_NONBLOCK: u32 = 1 << 2;
/// A greenlet waited on it through the reactor: `forget_fd` before `close`.
pub(crate) const REGISTERED: u32 = 1 << 3;
/// A TCP stream socket: a read or write that does less than asked for means its buffer
/// is drained (epoll(7)), so the next one waits for readiness first.
pub(crate) const TCP: u32 = 1 << 4;

/// What the hooks remember about one fd.
pub(crate) struct Slot {
    /// State and flag bits.
    pub(crate) flags: AtomicU32,
    /// `SO_RCVTIMEO` in microseconds, plus one (0: none).
    rcv: AtomicU64,
    /// `SO_SNDTIMEO` in microseconds, plus one (0: none).
    snd: AtomicU64,
    /// The number of the socket on this fd (unique in the process, given at its birth;
    /// copied by `dup`): tells the reactor's entry for the fd number apart from one of an
    /// earlier socket whose close another thread's hub never saw.
    tag: AtomicU64,
}

/// The next socket number (`Slot::tag`); 0 is never given.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

static DIR: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

fn split(fd: libc::c_int) -> Option<(usize, usize)> {
    let fd = usize::try_from(fd).ok()?;
    let (c, i) = (fd >> CHUNK_BITS, fd & (CHUNK - 1));
    (c < CHUNKS).then_some((c, i))
}

/// The slot of `fd` if its chunk exists. Never allocates.
#[inline]
pub(crate) fn get(fd: libc::c_int) -> Option<&'static Slot> {
    let (c, i) = split(fd)?;
    let p = DIR[c].load(Ordering::Acquire);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null directory entry points to a live, never-freed chunk of CHUNK
    // zero-initialised `Slot`s (all-zero bytes are a valid `Slot`); `i < CHUNK`.
    Some(unsafe { &*p.add(i) })
}

/// The slot of `fd`, mapping its chunk if needed; `None` for out-of-range fds or if
/// `mmap` fails. Uses `mmap`, not `malloc`.
pub(crate) fn get_or_create(fd: libc::c_int) -> Option<&'static Slot> {
    if let Some(s) = get(fd) {
        return Some(s);
    }
    let (c, _) = split(fd)?;
    let bytes = CHUNK * std::mem::size_of::<Slot>();
    // SAFETY: anonymous private mapping, no fd; the result is checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    if let Err(_winner) = DIR[c].compare_exchange(
        std::ptr::null_mut(),
        p.cast(),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: `p` is our own mapping of `bytes` bytes, never published.
        unsafe { libc::munmap(p, bytes) };
    }
    get(fd)
}

fn enc(d: Option<Duration>) -> u64 {
    match d {
        Some(d) => u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1),
        None => 0,
    }
}
fn dec(v: u64) -> Option<Duration> {
    (v != 0).then(|| Duration::from_micros(v - 1))
}

impl Slot {
    /// State bits.
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.flags.load(Ordering::Acquire) & STATE_MASK
    }
    /// All bits.
    #[inline]
    pub(crate) fn bits(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }
    /// Forgets everything: the fd number is free (or reused by a stranger).
    pub(crate) fn clear(&self) -> u32 {
        self.rcv.store(0, Ordering::Relaxed);
        self.snd.store(0, Ordering::Relaxed);
        self.flags.swap(UNKNOWN, Ordering::AcqRel)
    }
    /// A socket was just born on this fd while patched (`tcp`: a TCP stream socket).
    pub(crate) fn set_fresh(&self, tcp: bool) {
        self.rcv.store(0, Ordering::Relaxed);
        self.snd.store(0, Ordering::Relaxed);
        self.tag
            .store(NEXT_TAG.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.flags
            .store(if tcp { FRESH | TCP } else { FRESH }, Ordering::Release);
    }
    /// Copies `other` (a `dup` of the same open file description), minus `REGISTERED`.
    pub(crate) fn copy_from(&self, other: &Slot) {
        self.tag
            .store(other.tag.load(Ordering::Relaxed), Ordering::Relaxed);
        self.rcv
            .store(other.rcv.load(Ordering::Relaxed), Ordering::Relaxed);
        self.snd
            .store(other.snd.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut f = other.bits() & !REGISTERED;
        if f & STATE_MASK == ADOPTING {
            f = (f & !STATE_MASK) | ADOPTED;
        }
        self.flags.store(f, Ordering::Release);
    }
    /// Moves FRESH to ADOPTING; false if someone else owns the transition or it is done.
    pub(crate) fn begin_adopt(&self) -> bool {
        let f = self.bits();
        f & !TCP == FRESH
            && self
                .flags
                .compare_exchange(f, (f & TCP) | ADOPTING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
    /// Ends an adoption started by [`Slot::begin_adopt`].
    pub(crate) fn finish_adopt(&self, user_nonblock: bool, ok: bool) {
        let tcp = self.bits() & TCP;
        let f = if !ok {
            UNKNOWN
        } else if user_nonblock {
            ADOPTED | USER_NONBLOCK | tcp
        } else {
            ADOPTED | tcp
        };
        self.flags.store(f, Ordering::Release);
    }
    /// Sets or clears the user's non-blocking view.
    pub(crate) fn set_user_nonblock(&self, on: bool) {
        if on {
            self.flags.fetch_or(USER_NONBLOCK, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!USER_NONBLOCK, Ordering::AcqRel);
        }
    }
    /// Notes that the reactor knows this fd.
    pub(crate) fn mark_registered(&self) {
        if self.bits() & REGISTERED == 0 {
            self.flags.fetch_or(REGISTERED, Ordering::AcqRel);
        }
    }
    /// The socket's number (see the field).
    #[inline]
    pub(crate) fn tag(&self) -> u64 {
        self.tag.load(Ordering::Relaxed)
    }
    /// `SO_RCVTIMEO` as the user set it.
    pub(crate) fn rcv_timeout(&self) -> Option<Duration> {
        dec(self.rcv.load(Ordering::Relaxed))
    }
    /// `SO_SNDTIMEO` as the user set it.
    pub(crate) fn snd_timeout(&self) -> Option<Duration> {
        dec(self.snd.load(Ordering::Relaxed))
    }
    /// Records `SO_RCVTIMEO`.
    pub(crate) fn set_rcv_timeout(&self, d: Option<Duration>) {
        self.rcv.store(enc(d), Ordering::Relaxed);
    }
    /// Records `SO_SNDTIMEO`.
    pub(crate) fn set_snd_timeout(&self, d: Option<Duration>) {
        self.snd.store(enc(d), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lifecycle() {
        let fd = 70_000; // lands in chunk 17; no real fd needed
        let s = get_or_create(fd).unwrap();
        assert!(std::ptr::eq(s, get(fd).unwrap()));
        assert_eq!(s.state(), UNKNOWN);
        s.set_fresh(false);
        assert!(s.begin_adopt());
        assert!(!s.begin_adopt());
        s.finish_adopt(false, true);
        assert_eq!(s.bits(), ADOPTED);
        s.set_rcv_timeout(Some(Duration::from_millis(5)));
        assert_eq!(s.rcv_timeout(), Some(Duration::from_millis(5)));
        assert_eq!(s.snd_timeout(), None);
        s.set_user_nonblock(true);
        s.mark_registered();
        let t = get_or_create(fd + 1).unwrap();
        t.copy_from(s);
        assert_eq!(t.bits(), ADOPTED | USER_NONBLOCK);
        assert_eq!(t.rcv_timeout(), Some(Duration::from_millis(5)));
        assert_eq!(s.clear(), ADOPTED | USER_NONBLOCK | REGISTERED);
        assert_eq!(s.bits(), UNKNOWN);
        // The TCP mark survives adoption and is copied by `dup`.
        let u = get_or_create(fd + 2).unwrap();
        u.set_fresh(true);
        assert_eq!(u.state(), FRESH);
        assert!(u.begin_adopt());
        assert_eq!(u.bits(), ADOPTING | TCP);
        u.finish_adopt(false, true);
        assert_eq!(u.bits(), ADOPTED | TCP);
        t.copy_from(u);
        assert_eq!(t.bits(), ADOPTED | TCP);
        u.finish_adopt(false, false);
        assert_eq!(u.bits(), UNKNOWN);
        assert!(get(-1).is_none());
        assert!(get_or_create((CHUNKS * CHUNK) as i32).is_none());
    }
}
