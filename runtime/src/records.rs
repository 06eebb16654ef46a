//! Records of dead greenlets, kept for reuse: a spawn takes one instead of allocating.
//!
//! A greenlet's record (`greenlet::Inner`: its state, coroutine, parent, result, ...)
//! lives in an `Rc`. When the last handle to a *dead* greenlet is dropped, the record is
//! emptied — everything it still owned (the result, the name, the parent handle, ...)
//! is dropped right then, as it would be by freeing it — and kept on the thread's free
//! list, up to [`MAX_KEPT`] records. `Greenlet::create` takes a kept record first. A
//! spawn then costs neither an allocation nor a free, and it reuses memory that is
//! likely still in the cache.

use std::cell::RefCell;
use std::rc::Rc;

use crate::greenlet::Inner;
use crate::hub;

/// How many emptied records a thread keeps (a few hundred bytes each).
pub(crate) const MAX_KEPT: usize = 256;

/// The free list of one hub.
#[derive(Default)]
pub(crate) struct Records {
    kept: RefCell<Vec<Rc<Inner>>>,
}

impl Records {
    /// A kept record: emptied, and with no other handle.
    #[inline]
    pub(crate) fn take(&self) -> Option<Rc<Inner>> {
        self.kept.try_borrow_mut().ok()?.pop()
    }

    /// Keeps `rc` (emptied, the only handle) if there is room; drops it otherwise.
    fn keep(&self, rc: Rc<Inner>) {
        if let Ok(mut kept) = self.kept.try_borrow_mut() {
            if kept.len() < MAX_KEPT {
                kept.push(rc);
            }
        }
    }

    /// How many records are kept (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept.borrow().len()
    }
}

/// Called by `Greenlet::drop` with the last handle to a dead greenlet: empties the record
/// and keeps it for reuse (or frees it, when it cannot be reused or the list is full or
/// the thread's hub is gone).
#[inline(never)]
pub(crate) fn recycle(mut rc: Rc<Inner>) {
    let Some(inner) = Rc::get_mut(&mut rc) else {
        return;
    };
    // Dropping what it owns may run user code, which may spawn (and take records): no
    // borrow of the list is held meanwhile.
    if !inner.empty() {
        return;
    }
    // (If the hub is gone, the closure and `rc` with it are dropped unused.)
    let _ = hub::try_with_hub(move |h| h.records.keep(rc));
}
