//! The table of greenlets parked in a futex wait, keyed by the futex's address.
//!
//! The kernel keeps its futex waiters in hash buckets, each with a lock that a waiter
//! holds while it checks the futex word and queues itself, and that a waker holds while
//! it dequeues. This is the same design in user space, for waiters that are greenlets:
//! 256 buckets, each a lock and an intrusive list of [`Node`]s living on the parked
//! greenlets' stacks (so a wait allocates no list entry).
//!
//! No wake-up is lost, for the kernel's reason: a waiter checks the word and queues
//! itself under the bucket lock; a waker changed the word before it takes that lock. So
//! either the waiter's check saw the new value (it does not wait), or it was queued
//! before the waker took the lock (the waker finds it). A waker looks at the bucket's
//! count of waiters before taking the lock, with a full fence on both sides (waiter:
//! count, fence, read the word; waker: word written, fence, read the count), so a
//! bucket without green waiters costs a wake one load.
//!
//! The bucket lock never waits through the hooked `syscall`: it spins briefly, then
//! sleeps in glibc's `syscall(SYS_futex)` directly. Nothing that could switch greenlets
//! or take another lock runs while it is held.

use super::real;
use green_runtime::__net::RemoteWaker;
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, fence};

const BUCKETS: usize = 256;

/// A lock that never reaches the hooks: 0 free, 1 held, 2 held with sleepers.
struct RawLock(AtomicU32);

impl RawLock {
    const fn new() -> RawLock {
        RawLock(AtomicU32::new(0))
    }

    #[inline]
    fn lock(&self) {
        if self
            .0
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..100 {
            if self.0.load(Ordering::Relaxed) == 0
                && self
                    .0
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            std::hint::spin_loop();
        }
        while self.0.swap(2, Ordering::Acquire) != 0 {
            // SAFETY: a private FUTEX_WAIT on our own aligned word, no timeout.
            unsafe {
                real::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr() as libc::c_long,
                    (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                    2,
                    0,
                    0,
                    0,
                )
            };
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.0.swap(0, Ordering::Release) == 2 {
            // SAFETY: a private FUTEX_WAKE of one sleeper on our own word.
            unsafe {
                real::syscall(
                    libc::SYS_futex,
                    self.0.as_ptr() as libc::c_long,
                    (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as libc::c_long,
                    1,
                    0,
                    0,
                    0,
                )
            };
        }
    }
}

/// One bucket: its lock, how many nodes it holds, and their list (oldest first).
#[repr(align(64))]
struct Bucket {
    lock: RawLock,
    waiters: AtomicUsize,
    /// The oldest and the newest node; only touched with `lock` held.
    ends: UnsafeCell<(*const Node, *const Node)>,
}

// SAFETY: `ends` and the nodes' links are only touched with `lock` held.
unsafe impl Sync for Bucket {}

static TABLE: [Bucket; BUCKETS] = [const {
    Bucket {
        lock: RawLock::new(),
        waiters: AtomicUsize::new(0),
        ends: UnsafeCell::new((ptr::null(), ptr::null())),
    }
}; BUCKETS];

fn bucket(addr: usize) -> &'static Bucket {
    // Fibonacci hashing of the word index.
    let h = ((addr >> 2) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56;
    &TABLE[h as usize % BUCKETS]
}

/// What a thread's parker word shares with the greenlets parked through it and with
/// wakers on any thread (see `hooks::thread_park`); only touched with the word's bucket
/// lock held.
#[derive(Default)]
pub(crate) struct ParkShared {
    /// Nodes of this thread's greenlets queued on the word.
    pub(crate) linked: AtomicUsize,
    /// A wake came through the futex (an unpark that saw the word parked) since the
    /// owner last looked.
    pub(crate) visible: AtomicBool,
    /// The owner thread itself sleeps in the kernel on the word (a park from its hub):
    /// wakes must reach the kernel too.
    pub(crate) kernel_waiting: AtomicBool,
}

/// A parked greenlet's entry: lives on its stack from before it is queued until after
/// it is dequeued (by a waker, or by itself after a timeout or a kill). A greenlet that
/// its thread's end leaves parked (it cannot unwind) keeps its stack for ever: its node
/// stays valid, and the first wake of its address unlinks it.
pub(crate) struct Node {
    addr: usize,
    bitset: u32,
    waker: RemoteWaker,
    /// `Some` for a greenlet parked through its thread's parker word: a wake then wakes
    /// every such greenlet of the word.
    parker: Option<Arc<ParkShared>>,
    /// Links and the woken flag: only touched with the bucket lock held.
    links: UnsafeCell<Links>,
}

struct Links {
    prev: *const Node,
    next: *const Node,
    queued: bool,
    woken: bool,
}

impl Node {
    pub(crate) fn new(
        addr: usize,
        bitset: u32,
        waker: RemoteWaker,
        parker: Option<Arc<ParkShared>>,
    ) -> Node {
        Node {
            addr,
            bitset,
            waker,
            parker,
            links: UnsafeCell::new(Links {
                prev: ptr::null(),
                next: ptr::null(),
                queued: false,
                woken: false,
            }),
        }
    }
}

/// The bucket of a futex address, locked.
pub(crate) struct Locked {
    b: &'static Bucket,
}

/// Wakers taken off the table under the lock, used after it is released (a wake may
/// lock the target hub's list). The first few live inline.
pub(crate) struct Woken {
    inline: [Option<RemoteWaker>; 8],
    n: usize,
    more: Vec<RemoteWaker>,
}

impl Woken {
    pub(crate) fn new() -> Woken {
        Woken {
            inline: [const { None }; 8],
            n: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, w: RemoteWaker) {
        match self.inline.get_mut(self.n) {
            Some(slot) => {
                *slot = Some(w);
                self.n += 1;
            }
            None => self.more.push(w),
        }
    }

    /// Wakes them all (after the bucket lock is released).
    pub(crate) fn wake(&mut self) {
        for w in self.inline[..self.n].iter_mut() {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
        self.n = 0;
        for w in self.more.drain(..) {
            w.wake();
        }
    }
}

/// Locks the bucket of `addr`.
pub(crate) fn lock(addr: usize) -> Locked {
    let b = bucket(addr);
    b.lock.lock();
    Locked { b }
}

/// Whether the bucket of `addr` may hold a waiter. A waker calls this after writing the
/// futex word; it issues the fence that pairs with [`Locked::count_waiter`]'s.
#[inline]
pub(crate) fn may_have_waiters(addr: usize) -> bool {
    fence(Ordering::SeqCst);
    bucket(addr).waiters.load(Ordering::Relaxed) != 0
}

impl Locked {
    /// Counts a waiter about to check its word (see the module's ordering argument):
    /// call before reading the word; undo with [`uncount_waiter`](Self::uncount_waiter)
    /// if it does not queue.
    pub(crate) fn count_waiter(&mut self) {
        self.b.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub(crate) fn uncount_waiter(&mut self) {
        self.b.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// Queues `node` (counted already with [`count_waiter`](Self::count_waiter)).
    ///
    /// # Safety
    /// `node` stays at its address, and alive, until it is dequeued: by a waker, or by
    /// [`dequeue`](Self::dequeue).
    pub(crate) unsafe fn enqueue(&mut self, node: &Node) {
        // SAFETY: the bucket lock is held (we are a `Locked`): nobody else touches the
        // list or the nodes' links.
        unsafe {
            let ends = &mut *self.b.ends.get();
            let l = &mut *node.links.get();
            l.prev = ends.1;
            l.next = ptr::null();
            l.queued = true;
            l.woken = false;
            if ends.1.is_null() {
                ends.0 = node;
            } else {
                (*(*ends.1).links.get()).next = node;
            }
            ends.1 = node;
        }
        if let Some(p) = &node.parker {
            p.linked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a waker dequeued `node` (it was woken).
    pub(crate) fn is_woken(&self, node: &Node) -> bool {
        // SAFETY: the links are only touched with the bucket lock held, as now.
        unsafe { (*node.links.get()).woken }
    }

    /// Takes `node` off the list if it is still queued; returns whether it had been
    /// woken instead.
    pub(crate) fn dequeue(&mut self, node: &Node) -> bool {
        if self.is_woken(node) {
            return true;
        }
        // SAFETY: the bucket lock is held.
        if unsafe { (*node.links.get()).queued } {
            self.unlink(node);
        }
        false
    }

    fn unlink(&mut self, node: &Node) {
        // SAFETY: the bucket lock is held, and `node` is queued in this bucket: its
        // neighbours are live queued nodes.
        unsafe {
            let ends = &mut *self.b.ends.get();
            let l = &mut *node.links.get();
            if l.prev.is_null() {
                ends.0 = l.next;
            } else {
                (*(*l.prev).links.get()).next = l.next;
            }
            if l.next.is_null() {
                ends.1 = l.prev;
            } else {
                (*(*l.next).links.get()).prev = l.prev;
            }
            l.prev = ptr::null();
            l.next = ptr::null();
            l.queued = false;
        }
        self.b.waiters.fetch_sub(1, Ordering::Relaxed);
        if let Some(p) = &node.parker {
            p.linked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Dequeues up to `max` waiters of `addr` whose bitset meets `bitset`, oldest first,
    /// marking them woken, and collects their wakers into `out`.
    /// A waiter parked through a thread's parker word is woken with all the others of
    /// that word, whatever `max` says (see `hooks::thread_park`); `parker` then reports
    /// the word's shared state. Returns how many were taken.
    pub(crate) fn take(
        &mut self,
        addr: usize,
        bitset: u32,
        max: usize,
        out: &mut Woken,
        parker: &mut Option<Arc<ParkShared>>,
    ) -> usize {
        let mut taken = 0;
        // SAFETY: the bucket lock is held; the queued nodes are alive.
        let mut p = unsafe { (*self.b.ends.get()).0 };
        while !p.is_null() && (taken < max || parker.is_some()) {
            // SAFETY: as above; `next` is read before `p` is unlinked.
            let (node, next) = unsafe { (&*p, (*(*p).links.get()).next) };
            p = next;
            if node.addr != addr {
                continue;
            }
            if !node.waker.hub_alive() {
                // Left by a greenlet that its thread's end could not unwind (std retries
                // a wait that a kill interrupts): it never runs again, and a wake given
                // to it would be lost for a live waiter.
                self.unlink(node);
                continue;
            }
            match &node.parker {
                Some(s) if parker.is_none() => *parker = Some(s.clone()),
                Some(_) => {}
                None if taken >= max || node.bitset & bitset == 0 => continue,
                None => {}
            }
            self.unlink(node);
            // SAFETY: the bucket lock is held.
            unsafe { (*node.links.get()).woken = true };
            out.push(node.waker.clone());
            taken += 1;
        }
        taken
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.b.lock.unlock();
    }
}

/// Wakes up to `max` green waiters of `addr` matching `bitset` (and every waiter parked
/// through `addr` if it is a thread's parker word). Returns how many were woken and the
/// parker word's shared state if that is what `addr` is.
pub(crate) fn wake(addr: usize, bitset: u32, max: usize) -> (usize, Option<Arc<ParkShared>>) {
    let mut parker = None;
    let mut out = Woken::new();
    let n = {
        let mut b = lock(addr);
        let n = b.take(addr, bitset, max, &mut out, &mut parker);
        if let Some(p) = &parker {
            p.visible.store(true, Ordering::Relaxed);
        }
        n
    };
    out.wake();
    (n, parker)
}
