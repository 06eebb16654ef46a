//! The ready queue: greenlets with something to resume them with, in FIFO order.
//!
//! A queued greenlet's input waits in the greenlet itself (`Record::set_pending`); an
//! entry whose input was taken meanwhile (the greenlet was switched to directly) is
//! stale and skipped by the hub.

use std::cell::UnsafeCell;
use std::collections::VecDeque;

use crate::greenlet::Greenlet;

/// A FIFO of greenlets, for one thread's hub.
///
/// An `UnsafeCell` rather than a `RefCell`: pushing and popping are on the path of
/// every yield and wake, and no operation here runs code that could reach the queue
/// again (moving a `Greenlet` handle in or out drops nothing, and no reference to the
/// inside ever leaves a method), so a borrow flag would only cost: with a `RefCell` a
/// yield round trip takes about 18 instructions more than its 285 (`benches/instr.rs`).
pub(crate) struct ReadyQueue {
    q: UnsafeCell<VecDeque<Greenlet>>,
}

impl ReadyQueue {
    pub(crate) fn new() -> ReadyQueue {
        ReadyQueue {
            q: UnsafeCell::new(VecDeque::new()),
        }
    }

    /// Appends `g`.
    #[inline]
    pub(crate) fn push(&self, g: Greenlet) {
        // SAFETY: no other reference to the deque exists while a method of this
        // `!Sync` type runs (none is ever returned), and `push_back` runs no code of
        // ours that could re-enter (it may only allocate).
        unsafe { (*self.q.get()).push_back(g) }
    }

    /// Removes the greenlet at the front.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Greenlet> {
        // SAFETY: as in `push`; `pop_front` moves the handle out and drops nothing.
        unsafe { (*self.q.get()).pop_front() }
    }

    /// Whether no greenlet (not even a stale entry) is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: as in `push`; a shared read that ends before returning.
        unsafe { (*self.q.get()).is_empty() }
    }

    /// How many entries are queued (stale ones included; tests).
    #[cfg(test)]
    pub(crate) fn len(&mut self) -> usize {
        self.q.get_mut().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_and_emptiness() {
        let mut q = ReadyQueue::new();
        assert!(q.is_empty());
        let (a, b) = (
            crate::getcurrent(),
            crate::Greenlet::new(|_: crate::Value| ()),
        );
        q.push(a.clone());
        q.push(b.clone());
        assert_eq!(q.len(), 2);
        assert!(q.pop().is_some_and(|g| g.ptr_eq(&a)));
        assert!(q.pop().is_some_and(|g| g.ptr_eq(&b)));
        assert!(q.pop().is_none() && q.is_empty());
    }
}
