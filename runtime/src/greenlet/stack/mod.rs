//! Greenlet stacks: chunk allocation, the per-thread pool, guard pages.
//!
//! # Strategy
//!
//! Every greenlet runs on its own machine stack of [`DEFAULT_STACK_SIZE`] usable bytes
//! (or whatever `Builder::stack_size` asked for, rounded up to the page size). Below the
//! lowest usable address of every stack sits one **guard page**: a stack overflow walks
//! down into it and faults instead of silently overwriting the neighbouring stack.
//! `overflow.rs` turns that fault into a message that names the greenlet.
//!
//! Stacks are never mapped one by one. A `StackPool` (one per OS thread) maps **chunks**
//! of many stack slots with a single
//! `mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|MAP_STACK)` and
//! carves slots from the newest chunk on demand. A slot is `[guard page][usable stack]`,
//! so the guard of slot *i* separates it from the top of slot *i − 1*:
//!
//! ```text
//! chunk:  | guard | stack 0 ........ | guard | stack 1 ........ | guard | ...
//!         ^ limit()         base() ^
//! ```
//!
//! The first chunk of the default size class holds 64 slots; each further chunk of the
//! class doubles, up to 4096 slots or 1 GiB of address space per chunk (whichever is
//! smaller). Other sizes form their own size class with the same growth, starting at 16 MiB
//! worth of slots (at least 1, at most 64); a huge stack therefore gets a chunk of its own.
//! `MAP_NORESERVE` means untouched stack pages cost address space only: an idle greenlet
//! costs the pages its frames actually touched plus page tables (measured for a suspended
//! corosensei coroutine on Linux 6.18, x86_64: 4 KiB of RSS and 264 bytes of page tables).
//! If a chunk mapping fails for lack of memory, the pool retries with half as many slots
//! before giving up with a [`StackError`]. How the guard pages are installed, and what a
//! stack costs in kernel mappings, is `guard`'s.
//!
//! # Memory policy of the pool
//!
//! `StackPool::put` returns a stack's slot to the pool; `StackPool::get` prefers, in
//! order: a *warm* pooled stack (its touched pages still resident, so reusing it costs
//! nothing), a *released* pooled stack, a fresh slot carved from the newest chunk, a new
//! chunk. At most 1024 stacks and at most 128 MiB of usable stack bytes are kept warm per
//! pool; a stack returned beyond that high-water mark gets its usable pages released with
//! `madvise(MADV_DONTNEED)` (its guard page is left alone, and guard markers survive
//! `MADV_DONTNEED` anyway) and keeps its slot in the pool. With guard markers, stacks
//! returned one after the other from adjacent slots (a crowd of greenlets that started
//! together ending together) are released in runs of up to 64 with one `madvise` over the
//! run, the guards between them included: one system call and one TLB flush instead of
//! 64. A run waits until a stack that does not extend it comes back, or until the pool
//! has no warm stack to hand out. Address space is never returned while the pool lives;
//! dropping the pool unmaps every chunk none of whose stacks is still out (chunks with
//! stacks still in use are leaked, which is safe).

use std::io;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};

use corosensei::stack::{MIN_STACK_SIZE, STACK_ALIGNMENT, Stack, StackPointer};

pub(crate) use guard::page_size;
pub use guard::{GuardKind, StackError};
use guard::{MADV_GUARD_INSTALL, map_anonymous, near_map_count_limit};

/// The usable size in bytes of a greenlet stack unless `Builder::stack_size` says
/// otherwise, excluding the guard page below it: 128 KiB.
///
/// ```
/// use green::DEFAULT_STACK_SIZE;
/// assert_eq!(DEFAULT_STACK_SIZE, 128 * 1024);
/// // A greenlet that recurses deeply or keeps big arrays on its stack needs more:
/// let big = 8 * DEFAULT_STACK_SIZE;
/// assert!(big > DEFAULT_STACK_SIZE);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

/// Distinct stack sizes one pool serves (a stack keeps its class index in a `u16`).
const MAX_CLASSES: usize = 4096;
/// Slots in the first chunk of the default size class.
const FIRST_CHUNK_SLOTS: usize = 64;
/// Upper bound of slots per chunk.
const MAX_CHUNK_SLOTS: usize = 4096;
/// Address space of the first chunk of a non-default size class (at least one slot).
const FIRST_CHUNK_BYTES: usize = 16 << 20;
/// Upper bound of address space per chunk (at least one slot).
const MAX_CHUNK_BYTES: usize = 1 << 30;
/// High-water mark: at most this many pooled stacks keep their pages.
pub(crate) const WARM_LIMIT: usize = 1024;
/// High-water mark: at most this many usable bytes of pooled stacks keep their pages.
pub(crate) const WARM_BYTES_LIMIT: usize = 128 << 20;
/// Longest run of adjacent stacks whose pages are released with one `madvise` (see
/// `StackPool::release`).
const RELEASE_RUN: usize = 64;

static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// One greenlet stack: the usable range `[guard_hi, base)` and the guard page
/// `[guard_lo, guard_hi)` directly below it, a slot in a chunk owned by a [`StackPool`].
///
/// Hand it back with [`StackPool::put`] to the pool it came from. Dropping it instead
/// leaks its slot (safe: the memory stays mapped, the chunk is never unmapped).
#[derive(Debug)]
pub(crate) struct GreenStack {
    guard_lo: usize,
    base: usize,
    /// See [`color`](Self::color); computed once, since corosensei reads the stack's
    /// base on every resume.
    color: u16,
    /// The index of its size class in its pool (so `put` need not search for it).
    class: u16,
    chunk: u32,
    pool: u64,
}

impl GreenStack {
    /// The guard page's address range `(lo, hi)`: an access in `lo..hi` is a stack
    /// overflow. `hi` is the lowest usable address of the stack.
    #[inline]
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard_lo, self.guard_lo + page_size())
    }

    /// How far below the top of its slot the stack starts: 0, 512, 1024 or 1536 bytes
    /// by slot ("cache coloring"). Every slot's top sits at the same offset in its page,
    /// so without it the hottest lines of every greenlet's stack (the frames of its
    /// switch path) fall into the same quarter of the cache's sets, and a thousand
    /// greenlets evict each other's; shifted by a quarter page in turn, they use all of
    /// them. The top page keeps them (one resident page per idle greenlet).
    #[inline]
    pub(crate) fn color(&self) -> usize {
        self.color as usize
    }

    /// The color of the slot whose guard page starts at `guard_lo`.
    fn color_of(guard_lo: usize) -> u16 {
        // The page size is a power of two (checked by `page_size`): a shift, not a division.
        let page_index = guard_lo >> page_size().trailing_zeros();
        ((page_index % 4) * 512) as u16
    }

    /// Usable bytes (excluding the guard page).
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.base - self.guard_lo - page_size()
    }
}

// SAFETY: `base` is the high end of a mapped, writable, page-aligned (hence
// STACK_ALIGNMENT-aligned) range of at least MIN_STACK_SIZE bytes that only this
// GreenStack hands out (the pool never gives a slot to two owners, and the chunk is not
// unmapped while the stack is out). `limit` is the low end *including* the guard page,
// as the trait asks; the guard page below the usable range faults on access.
unsafe impl Stack for GreenStack {
    #[inline]
    fn base(&self) -> StackPointer {
        debug_assert_eq!(self.base % STACK_ALIGNMENT, 0);
        // base > guard_lo >= page size > 0, and the color is far below the usable size.
        NonZeroUsize::new(self.base - self.color()).expect("stack base is not null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        debug_assert_eq!(self.guard_lo % STACK_ALIGNMENT, 0);
        NonZeroUsize::new(self.guard_lo).expect("stack limit is not null")
    }
}

/// Counters of a greenlet stack pool (one per thread), from
/// [`pool_stats`](crate::stack::pool_stats).
///
/// ```
/// green::spawn(|| ()).join().unwrap();
/// let s = green::stack::pool_stats();
/// assert_eq!(s.allocated, s.in_use + s.pooled);
/// assert!(s.released <= s.pooled && s.chunks >= 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackStats {
    /// Stack slots carved from chunks so far (`in_use + pooled`).
    pub allocated: usize,
    /// Stacks waiting in the pool for reuse (warm and released).
    pub pooled: usize,
    /// Stacks handed out by `get` and not yet `put` back.
    pub in_use: usize,
    /// How guard pages are installed.
    pub guard: GuardKind,
    /// Pooled stacks whose pages were released with `MADV_DONTNEED` (part of `pooled`),
    /// or are about to be: the last run of adjacent ones (at most 64) waits for the next
    /// stack that does not extend it.
    pub released: usize,
    /// Chunk mappings made.
    pub chunks: usize,
    /// Address space of all chunks, in bytes (not memory use: untouched pages are free).
    pub mapped_bytes: usize,
}

/// A mapped chunk of stack slots.
struct Chunk {
    addr: usize,
    len: usize,
    /// Stacks of this chunk currently handed out.
    in_use: usize,
}

/// A pooled slot: the address of its guard page and its chunk.
#[derive(Clone, Copy)]
struct FreeSlot {
    guard_lo: usize,
    chunk: u32,
    /// `GreenStack::color_of(guard_lo)`, computed once when the slot is carved.
    color: u16,
}

/// Stacks of one usable size.
struct SizeClass {
    usable: usize,
    /// Pooled stacks with their pages resident (LIFO: the most recently used is hottest).
    warm: Vec<FreeSlot>,
    /// Pooled stacks whose pages were released.
    cold: Vec<FreeSlot>,
    /// The chunk slots are currently carved from: (chunk index, next slot address, end).
    carve: Option<(u32, usize, usize)>,
    /// Slots in the next chunk of this class.
    next_chunk_slots: usize,
}

impl SizeClass {
    fn new(usable: usize) -> SizeClass {
        let slot = usable + page_size();
        let first = if usable == DEFAULT_STACK_SIZE {
            FIRST_CHUNK_SLOTS
        } else {
            (FIRST_CHUNK_BYTES / slot).clamp(1, FIRST_CHUNK_SLOTS)
        };
        SizeClass {
            usable,
            warm: Vec::new(),
            cold: Vec::new(),
            carve: None,
            next_chunk_slots: first,
        }
    }

    fn max_chunk_slots(&self) -> usize {
        (MAX_CHUNK_BYTES / (self.usable + page_size())).clamp(1, MAX_CHUNK_SLOTS)
    }
}

/// The per-thread pool of greenlet stacks (see the [module docs](self) for the strategy).
pub(crate) struct StackPool {
    id: u64,
    guard: GuardKind,
    chunks: Vec<Chunk>,
    /// Size classes; few in practice, so a linear search.
    classes: Vec<SizeClass>,
    /// The class of the last `get` (nearly every greenlet has the default size).
    last_class: usize,
    in_use: usize,
    pooled: usize,
    released: usize,
    warm_bytes: usize,
    mapped_bytes: usize,
    warm_limit: usize,
    warm_bytes_limit: usize,
    /// Slots beyond the high-water marks whose pages are still to be released: adjacent
    /// slots of class `pending_class` in address order, released together (`release`).
    /// Counted in `released`; not in their class's `cold` list until released.
    pending: Vec<FreeSlot>,
    pending_class: usize,
    /// `madvise` calls made to release pooled stacks (for tests).
    release_calls: usize,
    /// Stacks are per-thread; keep the pool on its thread.
    _not_send: PhantomData<*const ()>,
}

impl StackPool {
    /// An empty pool using [`GuardKind::detect`]. Maps nothing until the first `get`.
    pub(crate) fn new() -> Self {
        Self::with_options(GuardKind::detect(), WARM_LIMIT, WARM_BYTES_LIMIT)
    }

    /// An empty pool with an explicit guard kind and warm high-water marks (tests and
    /// measurements). `GuardKind::MadviseGuard` must only be passed when
    /// [`GuardKind::detect`] returned it.
    pub(crate) fn with_options(
        guard: GuardKind,
        warm_limit: usize,
        warm_bytes_limit: usize,
    ) -> Self {
        StackPool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            guard,
            chunks: Vec::new(),
            classes: Vec::new(),
            last_class: 0,
            in_use: 0,
            pooled: 0,
            released: 0,
            warm_bytes: 0,
            mapped_bytes: 0,
            warm_limit,
            warm_bytes_limit,
            pending: Vec::new(),
            pending_class: 0,
            release_calls: 0,
            _not_send: PhantomData,
        }
    }

    /// A stack with at least `size` usable bytes (rounded up to the page size and to
    /// corosensei's minimum), reusing a pooled stack of that size when there is one.
    #[inline]
    pub(crate) fn get(&mut self, size: usize) -> Result<GreenStack, StackError> {
        // Fast path: a warm stack of the last size class (nearly every spawn).
        if let Some(class) = self.classes.get_mut(self.last_class)
            && class.usable == size
            && let Some(slot) = class.warm.pop()
        {
            self.warm_bytes -= size;
            self.pooled -= 1;
            return Ok(self.hand_out(slot, self.last_class, size));
        }
        self.get_slow(size)
    }

    #[inline(never)]
    fn get_slow(&mut self, size: usize) -> Result<GreenStack, StackError> {
        let usable = round_size(size)?;
        let idx = self.class_index(usable)?;
        self.last_class = idx;
        let slot = if let Some(slot) = self.classes[idx].warm.pop() {
            self.warm_bytes -= usable;
            self.pooled -= 1;
            slot
        } else {
            // A slot waiting in the release run must not be handed out before its pages
            // are released (the `madvise` would wipe a live stack): end the run first.
            self.flush_released();
            if let Some(slot) = self.classes[idx].cold.pop() {
                self.released -= 1;
                self.pooled -= 1;
                slot
            } else {
                self.carve(idx)?
            }
        };
        Ok(self.hand_out(slot, idx, usable))
    }

    /// Makes the stack of `slot` (of class `idx`, `usable` bytes) in use.
    #[inline]
    fn hand_out(&mut self, slot: FreeSlot, idx: usize, usable: usize) -> GreenStack {
        self.chunks[slot.chunk as usize].in_use += 1;
        self.in_use += 1;
        GreenStack {
            color: slot.color,
            class: idx as u16,
            guard_lo: slot.guard_lo,
            base: slot.guard_lo + page_size() + usable,
            chunk: slot.chunk,
            pool: self.id,
        }
    }

    /// Returns `stack` to the pool for reuse. Beyond the high-water mark its pages are
    /// released first. A stack from another pool is leaked (and logged), never reused.
    #[inline(always)]
    pub(crate) fn put(&mut self, stack: GreenStack) {
        if stack.pool != self.id {
            wrong_pool();
            return;
        }
        let usable = stack.size();
        let idx = stack.class as usize;
        let slot = FreeSlot {
            guard_lo: stack.guard_lo,
            chunk: stack.chunk,
            color: stack.color,
        };
        self.chunks[stack.chunk as usize].in_use -= 1;
        self.in_use -= 1;
        let warm = self.pooled - self.released < self.warm_limit
            && self.warm_bytes + usable <= self.warm_bytes_limit;
        self.pooled += 1;
        if warm {
            self.warm_bytes += usable;
            self.classes[idx].warm.push(slot);
        } else {
            self.release(idx, slot, usable);
        }
    }

    /// Pools `slot` (of class `idx`) with its pages released: beyond the high-water marks.
    ///
    /// With guard markers, a slot right above the previous one released (same class and
    /// chunk) joins its run, and the run is released with one `madvise` when it ends
    /// ([`flush_released`](Self::flush_released)): greenlets spawned together tend to end
    /// together, and their stacks were carved one above the other. With `mprotect` guards
    /// every guard page is a mapping of its own, so each slot is released alone.
    #[cold]
    #[inline(never)]
    fn release(&mut self, idx: usize, slot: FreeSlot, usable: usize) {
        self.released += 1;
        if let Some(last) = self.pending.last() {
            let extends = self.guard == GuardKind::MadviseGuard
                && self.pending_class == idx
                && last.chunk == slot.chunk
                && last.guard_lo + page_size() + usable == slot.guard_lo;
            if !extends {
                self.flush_released();
            }
        }
        // (A run that reaches RELEASE_RUN is released at once: one never waits full.)
        self.pending_class = idx;
        self.pending.push(slot);
        if self.guard != GuardKind::MadviseGuard || self.pending.len() == RELEASE_RUN {
            self.flush_released();
        }
    }

    /// Releases the pages of the pending run of slots with one `madvise` and pools them
    /// as released (nothing to do without a run).
    fn flush_released(&mut self) {
        let (Some(first), Some(last)) = (self.pending.first(), self.pending.last()) else {
            return;
        };
        let class = &mut self.classes[self.pending_class];
        let low = first.guard_lo + page_size();
        let high = last.guard_lo + page_size() + class.usable;
        // SAFETY: `[low, high)` lies in one of our live chunks: from the usable range of
        // the run's first slot to the end of its last, the slots adjacent (`release`
        // checked). Every slot of the run was handed back by value and is not handed out
        // again before this call (`get_slow` ends the run first), so nobody uses that
        // memory any more. MADV_DONTNEED on private anonymous memory just zero-fills it on
        // the next touch; the guard pages between the slots keep their guard markers
        // (they survive MADV_DONTNEED), and a run of more than one slot is only made with
        // guard markers.
        let rc =
            unsafe { libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED) };
        self.release_calls += 1;
        if rc != 0 {
            log::debug!(
                "madvise(MADV_DONTNEED) of {} pooled stacks failed: {}",
                self.pending.len(),
                io::Error::last_os_error()
            );
        }
        class.cold.append(&mut self.pending);
    }

    /// How many `madvise` calls released pooled stacks so far.
    #[cfg(test)]
    pub(crate) fn release_calls(&self) -> usize {
        self.release_calls
    }

    /// Counters of this pool.
    pub(crate) fn stats(&self) -> StackStats {
        StackStats {
            allocated: self.in_use + self.pooled,
            pooled: self.pooled,
            in_use: self.in_use,
            guard: self.guard,
            released: self.released,
            chunks: self.chunks.len(),
            mapped_bytes: self.mapped_bytes,
        }
    }

    fn class_index(&mut self, usable: usize) -> Result<usize, StackError> {
        match self.classes.iter().position(|c| c.usable == usable) {
            Some(i) => Ok(i),
            // The index is kept in a `u16` in each stack.
            None if self.classes.len() >= MAX_CLASSES => {
                Err(StackError::too_many_sizes(MAX_CLASSES))
            }
            None => {
                self.classes.push(SizeClass::new(usable));
                Ok(self.classes.len() - 1)
            }
        }
    }

    /// Carves a fresh slot (guard installed) for class `idx`, mapping a chunk if needed.
    fn carve(&mut self, idx: usize) -> Result<FreeSlot, StackError> {
        let page = page_size();
        let usable = self.classes[idx].usable;
        let slot_len = usable + page;
        let (chunk, next, end) = match self.classes[idx].carve {
            Some((chunk, next, end)) if next < end => (chunk, next, end),
            _ => {
                let (chunk, addr, len) = self.map_chunk(idx)?;
                (chunk, addr, addr + len)
            }
        };
        // Record the chunk before installing the guard so that a failed guard leaves the
        // slot (and the chunk) available to the next attempt.
        self.classes[idx].carve = Some((chunk, next, end));
        self.install_guard(next)?;
        self.classes[idx].carve = Some((chunk, next + slot_len, end));
        Ok(FreeSlot {
            guard_lo: next,
            chunk,
            color: GreenStack::color_of(next),
        })
    }

    fn install_guard(&self, guard_lo: usize) -> Result<(), StackError> {
        let page = page_size();
        let addr = guard_lo as *mut libc::c_void;
        let rc = match self.guard {
            // SAFETY: `[guard_lo, guard_lo + page)` is the first page of a never-used slot
            // of one of our chunks; nothing references it. Guard markers only make later
            // accesses fault.
            GuardKind::MadviseGuard => unsafe { libc::madvise(addr, page, MADV_GUARD_INSTALL) },
            // SAFETY: as above; PROT_NONE on an unreferenced page of our own mapping.
            GuardKind::Mprotect => unsafe { libc::mprotect(addr, page, libc::PROT_NONE) },
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        Err(match (self.guard, err.raw_os_error()) {
            (GuardKind::Mprotect, Some(libc::ENOMEM)) => StackError::map_count(libc::ENOMEM),
            (GuardKind::MadviseGuard, _) => {
                StackError::out_of_memory("madvise(MADV_GUARD_INSTALL)", page, err)
            }
            (GuardKind::Mprotect, _) => {
                StackError::out_of_memory("mprotect of a guard page", page, err)
            }
        })
    }

    /// Maps a new chunk for class `idx`: returns (chunk index, address, length).
    fn map_chunk(&mut self, idx: usize) -> Result<(u32, usize, usize), StackError> {
        let slot_len = self.classes[idx].usable + page_size();
        let mut slots = self.classes[idx].next_chunk_slots;
        let (addr, len) = loop {
            let len = slots
                .checked_mul(slot_len)
                .ok_or_else(|| StackError::too_large(slot_len))?;
            match map_anonymous(len) {
                Ok(addr) => break (addr, len),
                Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && slots > 1 => slots /= 2,
                Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && near_map_count_limit() => {
                    return Err(StackError::map_count(libc::ENOMEM));
                }
                Err(err) => {
                    return Err(StackError::out_of_memory("mmap of a stack chunk", len, err));
                }
            }
        };
        let chunk =
            u32::try_from(self.chunks.len()).map_err(|_| StackError::too_large(slot_len))?;
        self.chunks.push(Chunk {
            addr,
            len,
            in_use: 0,
        });
        self.mapped_bytes += len;
        let class = &mut self.classes[idx];
        class.next_chunk_slots = (slots * 2).min(class.max_chunk_slots());
        log::trace!("mapped a stack chunk of {slots} slots of {slot_len} bytes at {addr:#x}");
        Ok((chunk, addr, len))
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        for chunk in &self.chunks {
            if chunk.in_use == 0 {
                // SAFETY: the chunk is our own mapping and none of its stacks is handed
                // out; pooled slots die with the pool.
                unsafe { libc::munmap(chunk.addr as *mut libc::c_void, chunk.len) };
            } else {
                log::warn!(
                    "green: stack pool dropped while {} of its stacks are in use; leaking their chunk",
                    chunk.in_use
                );
            }
        }
    }
}

/// The usable size for a request of `size` bytes: at least corosensei's minimum, rounded
/// up to the page size.
/// A stack came back to a pool that did not hand it out: it is leaked, never reused.
#[cold]
fn wrong_pool() {
    log::error!("green: a stack was returned to the wrong pool; leaking it");
    debug_assert!(false, "stack returned to the wrong pool");
}

fn round_size(size: usize) -> Result<usize, StackError> {
    let page = page_size();
    let size = size.max(MIN_STACK_SIZE);
    // Keep the slot length (usable + guard) far from overflowing.
    if size > isize::MAX as usize / 4 {
        return Err(StackError::too_large(size));
    }
    Ok((size + page - 1) & !(page - 1))
}

pub(crate) mod guard;
pub(crate) mod overflow;
#[cfg(test)]
mod tests;
