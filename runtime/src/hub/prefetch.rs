//! Warming the memory of the greenlets about to run.
//!
//! With many greenlets taking turns (a server with a thousand connections), a
//! greenlet's stack and record have left the caches, and often the TLB, by the time
//! its turn comes again: resuming it stalls on the first access to its record (is its
//! input still pending?), then on the return into its switch frame, then on the
//! frames above. The hub hides part of that. Whenever it takes a greenlet off the
//! ready queue, it prefetches
//! - for the greenlet that runs *next* (the new front of the queue): the stack lines
//!   its resume touches first, around where its stack pointer was when its last park
//!   ended (a park is most often from the same place as the one before: the switch,
//!   park and IO frames, the caller's frame) and just below its stack's
//!   base (where corosensei links the parent on every resume, and the outermost
//!   frames, the greenlet's function among them);
//! - for the one *after* it: its record, whose stack pointer the next step reads.
//!
//! At 1000 echo connections this took 60–100 ns of user time off each message (about
//! a fifth) and added 1–3% msg/s (docs/benchmarks.md, §6, round 8). Prefetches are
//! hints: they never fault, whatever the address. On x86-64 only (a no-op elsewhere),
//! and only while at least [`MIN_QUEUE`] greenlets are queued: when two greenlets take
//! turns, everything is in the caches anyway.

use crate::greenlet::record::Record;

/// The shortest ready queue (after taking the greenlet to run) for which the hub
/// prefetches.
pub(crate) const MIN_QUEUE: usize = 2;

/// Stack lines prefetched around a parked greenlet's stack pointer (as noted when its
/// last park ended): (lines below the one it points into, lines from that one up).
/// Its line holds the bottom of the park frame and corosensei's switch frame; the
/// reactor's wait, the socket's read loop and the caller's frame with the start of an
/// echo server's buffer follow in the next four (measured with valgrind's `lackey` on
/// the echo bench's handler); one below in case the switch frame starts there.
const AROUND_SP: (usize, usize) = (1, 6);
/// Stack lines prefetched below the stack's base: corosensei's parent link in the
/// first, then the greenlet's entry frames (four lines), then the top of the
/// function's own frame (the echo handler's socket, in the bench).
const BELOW_BASE: usize = 7;

/// Prefetches the line holding `addr` into all cache levels.
#[inline(always)]
fn line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address, and changes
    // nothing a program can observe but timing.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Prefetches the record's lines that resuming it reads first: the reference counts
/// in front of it (an unparker clones the handle), the pending input and state, and
/// the saved stack pointer that [`stack`] reads.
#[inline(always)]
pub(crate) fn record(g: &Record) {
    // `Record` is `repr(C)` with these fields first: the counts, then up to
    // `stack_base`, about 130 bytes.
    line((g as *const Record as usize).wrapping_sub(16));
    line(&g.core.state as *const _ as usize);
    line(&g.core.stack_base as *const _ as usize);
}

/// Prefetches the stack lines that resuming `g` touches first (nothing if it never
/// suspended, or has no stack of its own: the main greenlet).
#[inline(always)]
pub(crate) fn stack(g: &Record) {
    let sp = g.core.park_sp.get();
    let base = g.core.stack_base;
    if sp == 0 || base == 0 {
        return;
    }
    let lo = (sp & !63).wrapping_sub(64 * AROUND_SP.0);
    for i in 0..AROUND_SP.1 {
        line(lo + 64 * i);
    }
    let top = base.wrapping_sub(1) & !63;
    for i in 0..BELOW_BASE {
        line(top.wrapping_sub(64 * i));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// What the hub prefetches from: after a park, the record notes a stack pointer
    /// inside the greenlet's own stack, below the frame that parked and above the
    /// stack's far end; the base lies above every frame. The main greenlet (the
    /// thread's stack) has no base, so nothing is prefetched for it.
    #[test]
    fn a_parked_greenlet_notes_where_its_frames_are() {
        let h = crate::spawn(|| {
            let local = 0u8;
            let here = std::ptr::addr_of!(local) as usize;
            let (before, base) = crate::greenlet::thread::with_current(|g| {
                (g.core.park_sp.get(), g.core.stack_base)
            });
            crate::sleep(Duration::from_millis(1));
            let after = crate::greenlet::thread::with_current(|g| g.core.park_sp.get());
            (here, before, base, after)
        });
        let (here, before, base, after) = h.join().unwrap();
        assert_eq!(before, 0, "noted before any park");
        assert!(here < base, "a frame at {here:#x} above the base {base:#x}");
        assert!(
            after < here,
            "park frames at {after:#x} above the caller's {here:#x}"
        );
        assert!(
            here - after < 4096,
            "park frames {} bytes below",
            here - after
        );
        crate::sleep(Duration::from_millis(1));
        assert_eq!(
            crate::greenlet::thread::with_current(|g| g.core.stack_base),
            0
        );
    }
}
