//! Per-socket bookkeeping for the net hooks: lock-free tables indexed by fd, and one
//! record per open file description.
//!
//! The hooks run inside `malloc`-free, possibly re-entrant contexts (the reactor, the
//! logger, a signal handler writing to a pipe), so the tables never take a lock and never
//! call the allocator: each is a fixed directory of [`CHUNKS`] lazily `mmap`ed chunks of
//! [`CHUNK`] entries, covering indices below `CHUNKS * CHUNK` (1 048 576, Linux's default
//! `nr_open`). Fds above that have no slot and are always passed through unchanged.
//! Chunks are never freed.
//!
//! What the user sees of a socket's mode — `O_NONBLOCK`, `SO_RCVTIMEO`, `SO_SNDTIMEO` —
//! belongs to the *open file description*, which `dup` (and so `try_clone`) shares, not to
//! the fd. So the user's view lives in a [`Desc`], one per socket born while patched, and
//! each fd's [`Slot`] points to its socket's record: an fd and its dups share one record
//! (counted references; the last `close` frees it for reuse). Adopting a socket, or
//! changing its mode through any of its fds, is seen by all of them at once.
//!
//! A record's life, for a socket the hooks have seen being born:
//!
//! ```text
//!   socket()/accept()/socketpair() while patched --> FRESH
//!   FRESH --first blocking-style call from a greenlet on any of its fds--> ADOPTED
//!                                                  (real O_NONBLOCK)
//!   last close() of its fds --> freed
//! ```
//!
//! Fds we never saw being born (stdio, inherited sockets, files, pipes, sockets made
//! before `patch_net`) are never made non-blocking: making a shared open file
//! description non-blocking would leak into other processes. With `patch_pipes()`, the
//! first greenlet call on such an fd looks at it once (`fstat`): a pipe, FIFO, tty,
//! eventfd or other pollable non-socket gets a POLLED record (a greenlet waits for
//! readiness, then makes the real blocking call); anything else is marked CLASSIFIED
//! (and FILE for a regular file) in its slot and passed through from then on.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// log2 of the entries per chunk.
const CHUNK_BITS: u32 = 12;
/// Entries per chunk.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;
/// Chunks in a directory.
pub(crate) const CHUNKS: usize = 256;

/// Record state: not ours (no record, or adoption failed): pass through.
pub(crate) const UNKNOWN: u32 = 0;
/// A socket created while patched; still in its original (user-chosen) blocking mode.
pub(crate) const FRESH: u32 = 1;
/// Transient: a thread is adopting it.
pub(crate) const ADOPTING: u32 = 2;
/// Adopted: the real fd is `O_NONBLOCK`; the user's view is [`USER_NONBLOCK`].
pub(crate) const ADOPTED: u32 = 3;
/// A pipe, FIFO, tty, eventfd or other pollable fd that is not a socket: never made
/// non-blocking (its open file description may be shared with other processes); a
/// greenlet waits for readiness before the real, blocking call. [`USER_NONBLOCK`]
/// caches the kernel's flag.
pub(crate) const POLLED: u32 = 4;
/// Mask of the state bits.
pub(crate) const STATE_MASK: u32 = 0b111;
/// The user asked for non-blocking mode (the user's view of `O_NONBLOCK`).
pub(crate) const USER_NONBLOCK: u32 = 1 << 3;
/// A TCP stream socket: a read or write that does less than asked for means its buffer
/// is drained (epoll(7)), so the next one waits for readiness first.
pub(crate) const TCP: u32 = 1 << 4;
/// Slot bit: a greenlet waited on this fd through the reactor: `forget_fd` before
/// `close`. (Per fd: the reactor registers fd numbers.)
pub(crate) const REGISTERED: u32 = 1 << 3;
/// Slot bit: the fd was looked at (`fstat`) and is neither a socket born while patched
/// nor pollable: calls on it pass through (or go to the blocking pool, see [`FILE`]).
pub(crate) const CLASSIFIED: u32 = 1 << 4;
/// Slot bit, with [`CLASSIFIED`]: a regular file (or block device), which
/// `patch_files()` sends to the blocking pool.
pub(crate) const FILE: u32 = 1 << 5;

/// A directory of lazily mapped chunks of `T`, for which all-zero bytes must be a valid
/// value (only atomics here).
struct Chunks<T> {
    dir: [AtomicPtr<T>; CHUNKS],
}

impl<T> Chunks<T> {
    const fn new() -> Self {
        Chunks {
            dir: [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS],
        }
    }

    fn split(i: usize) -> Option<(usize, usize)> {
        let (c, k) = (i >> CHUNK_BITS, i & (CHUNK - 1));
        (c < CHUNKS).then_some((c, k))
    }

    /// Entry `i` if its chunk exists. Never allocates.
    #[inline]
    fn get(&'static self, i: usize) -> Option<&'static T> {
        let (c, k) = Self::split(i)?;
        let p = self.dir[c].load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null directory entry points to a live, never-freed chunk of CHUNK
        // zero-initialised `T`s (all-zero bytes are a valid `T`, see the type); `k < CHUNK`.
        Some(unsafe { &*p.add(k) })
    }

    /// Entry `i`, mapping its chunk if needed; `None` out of range or if `mmap` fails.
    /// Uses `mmap`, not `malloc`.
    fn get_or_create(&'static self, i: usize) -> Option<&'static T> {
        if let Some(s) = self.get(i) {
            return Some(s);
        }
        let (c, _) = Self::split(i)?;
        let bytes = CHUNK * std::mem::size_of::<T>();
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
        if let Err(_winner) = self.dir[c].compare_exchange(
            std::ptr::null_mut(),
            p.cast(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `p` is our own mapping of `bytes` bytes, never published.
            unsafe { libc::munmap(p, bytes) };
        }
        self.get(i)
    }
}

/// What the hooks remember about one fd.
pub(crate) struct Slot {
    /// The index of the fd's socket record in [`DESCS`], plus one (0: not ours).
    desc: AtomicU32,
    /// Per-fd bits ([`REGISTERED`]).
    flags: AtomicU32,
}

/// What the hooks remember about one socket (open file description): the user's view of
/// its mode, shared by all the fds that name it.
pub(crate) struct Desc {
    /// State and flag bits.
    flags: AtomicU32,
    /// The fds (slots) pointing here; 0: free.
    refs: AtomicU32,
    /// `SO_RCVTIMEO` in microseconds, plus one (0: none).
    rcv: AtomicU64,
    /// `SO_SNDTIMEO` in microseconds, plus one (0: none).
    snd: AtomicU64,
    /// The number of the socket (unique in the process, given at its birth): tells the
    /// reactor's entry for an fd number apart from one of an earlier socket whose close
    /// another thread's hub never saw.
    tag: AtomicU64,
    /// The next free record's index plus one, while this one is free.
    next_free: AtomicU32,
}

/// The next socket number (`Desc::tag`); 0 is never given.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// The fd table.
static SLOTS: Chunks<Slot> = Chunks::new();
/// The socket records.
static DESCS: Chunks<Desc> = Chunks::new();
/// Records handed out so far (the free list holds those given back).
static DESCS_USED: AtomicU32 = AtomicU32::new(0);
/// The free records: a stack, `(pops << 32) | (index + 1)` of its top (the pop count
/// keeps a stale compare-and-swap from succeeding: ABA).
static FREE: AtomicU64 = AtomicU64::new(0);

fn fd_index(fd: libc::c_int) -> Option<usize> {
    usize::try_from(fd).ok()
}

/// The slot of `fd` if its chunk exists. Never allocates.
#[inline]
pub(crate) fn get(fd: libc::c_int) -> Option<&'static Slot> {
    SLOTS.get(fd_index(fd)?)
}

/// The slot of `fd`, mapping its chunk if needed; `None` for out-of-range fds or if
/// `mmap` fails. Uses `mmap`, not `malloc`.
pub(crate) fn get_or_create(fd: libc::c_int) -> Option<&'static Slot> {
    SLOTS.get_or_create(fd_index(fd)?)
}

/// The record `id` (an index plus one, as in `Slot::desc`).
#[inline]
fn desc_at(id: u32) -> Option<&'static Desc> {
    DESCS.get(id.checked_sub(1)? as usize)
}

/// A free record (`refs` 0), or `None` if all are taken or `mmap` fails.
fn alloc_desc() -> Option<(u32, &'static Desc)> {
    let mut top = FREE.load(Ordering::Acquire);
    loop {
        let id = top as u32;
        if id == 0 {
            break;
        }
        let next = desc_at(id)?.next_free.load(Ordering::Relaxed);
        let new = (((top >> 32) + 1) << 32) | u64::from(next);
        match FREE.compare_exchange_weak(top, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some((id, desc_at(id)?)),
            Err(t) => top = t,
        }
    }
    let i = DESCS_USED
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            ((n as usize) < CHUNKS * CHUNK).then_some(n + 1)
        })
        .ok()?;
    let d = DESCS.get_or_create(i as usize)?;
    Some((i + 1, d))
}

/// Gives record `id` back to the free list (its last reference is gone).
fn free_desc(id: u32, d: &Desc) {
    d.flags.store(UNKNOWN, Ordering::Release);
    let mut top = FREE.load(Ordering::Acquire);
    loop {
        d.next_free.store(top as u32, Ordering::Relaxed);
        let new = (top & !u64::from(u32::MAX)) | u64::from(id);
        match FREE.compare_exchange_weak(top, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(t) => top = t,
        }
    }
}

/// Drops one reference to record `id`.
fn release(id: u32) {
    if let Some(d) = desc_at(id)
        && d.refs.fetch_sub(1, Ordering::AcqRel) == 1
    {
        free_desc(id, d);
    }
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
    /// The record of the socket on this fd, if the hooks know it.
    #[inline]
    pub(crate) fn desc(&self) -> Option<&'static Desc> {
        desc_at(self.desc.load(Ordering::Acquire))
    }
    /// Per-fd bits.
    #[inline]
    pub(crate) fn bits(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }
    /// Forgets everything: the fd number is free (or reused by a stranger). Returns the
    /// per-fd bits it had.
    pub(crate) fn clear(&self) -> u32 {
        let bits = self.flags.swap(0, Ordering::AcqRel);
        let id = self.desc.swap(0, Ordering::AcqRel);
        if id != 0 {
            release(id);
        }
        bits
    }
    /// A socket was just born on this fd while patched (`tcp`: a TCP stream socket): a new
    /// record, FRESH. (If no record can be had, the fd is left unknown: passed through.)
    pub(crate) fn set_fresh(&self, tcp: bool) {
        self.new_record(if tcp { FRESH | TCP } else { FRESH });
    }
    /// A pollable fd that is not a socket (see [`POLLED`]) was found on this fd, in
    /// blocking mode for the user or not (`nonblock`): a new record, POLLED. (If no
    /// record can be had, calls on the fd pass through.)
    pub(crate) fn set_polled(&self, nonblock: bool) {
        if !self.new_record(if nonblock {
            POLLED | USER_NONBLOCK
        } else {
            POLLED
        }) {
            self.set_classified(false);
        }
    }
    /// Gives this fd a new record with state and flag bits `flags` and a new tag; false
    /// if no record can be had (the fd is then cleared).
    fn new_record(&self, flags: u32) -> bool {
        self.clear();
        let Some((id, d)) = alloc_desc() else {
            return false;
        };
        d.rcv.store(0, Ordering::Relaxed);
        d.snd.store(0, Ordering::Relaxed);
        d.tag
            .store(NEXT_TAG.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        d.flags.store(flags, Ordering::Relaxed);
        d.refs.store(1, Ordering::Release);
        self.desc.store(id, Ordering::Release);
        true
    }
    /// The fd is neither a known socket nor pollable (`file`: a regular file): calls
    /// on it pass through without looking again.
    pub(crate) fn set_classified(&self, file: bool) {
        self.clear();
        let bits = if file { CLASSIFIED | FILE } else { CLASSIFIED };
        self.flags.store(bits, Ordering::Release);
    }
    /// This fd is a `dup` of `other`: it shares `other`'s record (if any).
    pub(crate) fn share(&self, other: &Slot) {
        self.clear();
        let id = other.desc.load(Ordering::Acquire);
        let Some(d) = desc_at(id) else {
            return;
        };
        // Take a reference unless the record is being freed; `other` still naming it
        // afterwards means it was not freed and reused meanwhile (a dup racing a close
        // of its source, whose outcome is the user's race anyway).
        let mut refs = d.refs.load(Ordering::Acquire);
        loop {
            if refs == 0 {
                return;
            }
            match d
                .refs
                .compare_exchange_weak(refs, refs + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(r) => refs = r,
            }
        }
        if other.desc.load(Ordering::Acquire) == id {
            self.desc.store(id, Ordering::Release);
        } else {
            release(id);
        }
    }
    /// Notes that the reactor knows this fd.
    pub(crate) fn mark_registered(&self) {
        if self.bits() & REGISTERED == 0 {
            self.flags.fetch_or(REGISTERED, Ordering::AcqRel);
        }
    }
}

impl Desc {
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
    /// The state once no adoption is in progress (another thread's takes a few syscalls).
    pub(crate) fn settled_state(&self) -> u32 {
        loop {
            match self.state() {
                ADOPTING => std::thread::yield_now(),
                s => return s,
            }
        }
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
    /// Ends an adoption started by [`Desc::begin_adopt`].
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
        assert!(s.desc().is_none());
        s.set_fresh(false);
        let d = s.desc().unwrap();
        assert_eq!(d.state(), FRESH);
        assert!(d.begin_adopt());
        assert!(!d.begin_adopt());
        d.finish_adopt(false, true);
        assert_eq!(d.bits(), ADOPTED);
        d.set_rcv_timeout(Some(Duration::from_millis(5)));
        assert_eq!(d.rcv_timeout(), Some(Duration::from_millis(5)));
        assert_eq!(d.snd_timeout(), None);
        s.mark_registered();
        // A dup shares the record: a change through either is seen by both.
        let t = get_or_create(fd + 1).unwrap();
        t.share(s);
        assert!(std::ptr::eq(t.desc().unwrap(), d));
        assert_eq!(t.bits(), 0, "REGISTERED is per fd");
        t.desc().unwrap().set_user_nonblock(true);
        assert_eq!(d.bits(), ADOPTED | USER_NONBLOCK);
        let tag = d.tag();
        assert_eq!(s.clear(), REGISTERED);
        assert!(s.desc().is_none());
        // The dup keeps the record alive.
        assert_eq!(t.desc().unwrap().tag(), tag);
        assert_eq!(d.bits(), ADOPTED | USER_NONBLOCK);
        // The TCP mark survives adoption and is shared by `dup`.
        let u = get_or_create(fd + 2).unwrap();
        u.set_fresh(true);
        let e = u.desc().unwrap();
        assert_ne!(e.tag(), tag);
        assert_eq!(e.state(), FRESH);
        assert!(e.begin_adopt());
        assert_eq!(e.bits(), ADOPTING | TCP);
        e.finish_adopt(false, true);
        assert_eq!(e.bits(), ADOPTED | TCP);
        t.share(u); // dup2 over t: t's old record loses its last reference
        assert!(
            d.refs.load(Ordering::Relaxed) == 0 || d.tag() != tag,
            "freed"
        );
        assert_eq!(t.desc().unwrap().bits(), ADOPTED | TCP);
        e.finish_adopt(false, false);
        assert_eq!(e.bits(), UNKNOWN);
        t.clear();
        u.clear();
        assert!(get(-1).is_none());
        assert!(get_or_create((CHUNKS * CHUNK) as i32).is_none());
    }

    #[test]
    fn freed_records_are_reused() {
        let fd = 74_000;
        let s = get_or_create(fd).unwrap();
        let mut seen = Vec::new();
        for _ in 0..16 {
            s.set_fresh(false);
            seen.push(s.desc().unwrap() as *const Desc);
            s.clear();
        }
        // The free list hands records back (other tests run in parallel and may take
        // one meanwhile, but not every one).
        seen.sort();
        seen.dedup();
        assert!(seen.len() < 16, "{seen:?}");
    }
}
