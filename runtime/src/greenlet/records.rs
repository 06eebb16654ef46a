//! Records of dead greenlets, kept for reuse: a spawn takes one instead of allocating.
//!
//! A greenlet's record (`greenlet::Inner`: its state, coroutine, parent, result, ...)
//! lives in an `Rc`. When the last handle to a *dead* greenlet is dropped, the record is
//! emptied — everything it still owned (the result, the name, the parent handle, ...)
//! is dropped right then, as it would be by freeing it — and kept on the thread's free
//! list, up to [`MAX_KEPT`] records. `Greenlet::create` takes a kept record first. A
//! spawn then costs neither an allocation nor a free, and it reuses memory that is
//! likely still in the cache.

use std::cell::UnsafeCell;
use std::rc::Rc;

use crate::greenlet::Inner;
use crate::hub;

/// How many emptied records a thread keeps (a few hundred bytes each).
pub(crate) const MAX_KEPT: usize = 256;

/// The free list of one hub.
///
/// An `UnsafeCell`, as the ready queue: taking and keeping run no code of ours that could
/// reach the list again (the records in it are emptied: popping and pushing one drops
/// nothing, and a record refused because the list is full is dropped after the list's
/// borrow ends), and no reference to the inside leaves a method.
#[derive(Default)]
pub(crate) struct Records {
    kept: UnsafeCell<Vec<Rc<Inner>>>,
}

impl Records {
    /// A kept record: emptied, and with no other handle.
    #[inline]
    pub(crate) fn take(&self) -> Option<Rc<Inner>> {
        // SAFETY: see the type's comment; `pop` only moves a handle out.
        unsafe { (*self.kept.get()).pop() }
    }

    /// Keeps `rc` (emptied, the only handle) if there is room; drops it otherwise.
    #[inline]
    fn keep(&self, rc: Rc<Inner>) {
        // SAFETY: see the type's comment; `push` may only allocate.
        let refused = unsafe {
            let kept = &mut *self.kept.get();
            if kept.len() < MAX_KEPT {
                kept.push(rc);
                None
            } else {
                Some(rc)
            }
        };
        drop(refused);
    }

    /// How many records are kept (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        // SAFETY: see the type's comment; a shared read that ends before returning.
        unsafe { (*self.kept.get()).len() }
    }
}

/// Called by `Greenlet::drop` with the last handle to a dead greenlet: empties the record
/// and keeps it for reuse (or frees it, when it cannot be reused or the list is full or
/// the thread's hub is gone).
#[inline]
pub(crate) fn recycle(mut rc: Rc<Inner>) {
    let Some(inner) = Rc::get_mut(&mut rc) else {
        return;
    };
    // Dropping what it owns may run user code, which may spawn (and take records): no
    // borrow of the list is held meanwhile. In the hub (the driver dropped the last
    // handle, right after the greenlet died) a panicking destructor must not unwind
    // through the driver: it is logged, as a panic in any hub callback is, and the record
    // is freed rather than kept.
    let emptied = if hub::context() == hub::CTX_HUB {
        crate::greenlet::switch::run_hub_callback(|| inner.empty()).unwrap_or(false)
    } else {
        inner.empty()
    };
    if !emptied {
        return;
    }
    // (If the hub is gone, the closure and `rc` with it are dropped unused.)
    let _ = hub::try_with_hub(move |h| h.records.keep(rc));
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use crate::api::spawn::{Builder, spawn};
    use crate::hub::with_hub;

    fn kept() -> usize {
        with_hub(|h| h.records.len())
    }

    /// Sets its flag when dropped.
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn a_joined_greenlets_record_is_reused_by_the_next_spawn() {
        let before = kept();
        let h = Builder::new().name("first").spawn(|| 1).unwrap();
        let first_id = h.greenlet().id();
        assert_eq!(h.join().unwrap(), 1);
        assert_eq!(kept(), before + 1, "the record is kept");
        let h = spawn(crate::greenlet::getcurrent);
        assert_eq!(kept(), before, "and taken by the next spawn");
        let g = h.join().unwrap();
        // A new greenlet in the old record: new id, no name of the old one.
        assert_ne!(g.id(), first_id);
        assert_eq!(g.name(), None);
        assert!(g.dead());
        drop(g);
        assert_eq!(kept(), before + 1);
    }

    #[test]
    fn the_free_list_is_bounded() {
        let hs: Vec<_> = (0..super::MAX_KEPT + 50)
            .map(|i| spawn(move || i))
            .collect();
        let total: usize = crate::api::spawn::joinall(hs)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        assert_eq!(total, (0..super::MAX_KEPT + 50).sum());
        assert_eq!(kept(), super::MAX_KEPT);
    }

    #[test]
    fn a_result_is_dropped_with_the_last_handle_not_kept_in_the_list() {
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let h = spawn(move || Flag(d));
        h.wait().unwrap();
        let g = h.greenlet().clone();
        drop(h);
        assert!(!dropped.get(), "another handle still reaches the greenlet");
        drop(g);
        assert!(dropped.get(), "emptied when its record was kept");
        // A result that was taken is the caller's.
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        let flag = spawn(move || Flag(d)).join().unwrap();
        assert!(!dropped.get());
        drop(flag);
        assert!(dropped.get());
    }

    #[test]
    fn locals_and_callbacks_do_not_leak_into_the_next_greenlet() {
        crate::green_local!(static N: Cell<u32> = Cell::new(0));
        spawn(|| N.with(|n| n.set(7))).join().unwrap();
        assert_eq!(spawn(|| N.with(|n| n.get())).join().unwrap(), 0);
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let h = spawn(|| ());
        h.link(move |_| r.set(r.get() + 1));
        h.join().unwrap();
        spawn(|| ()).join().unwrap();
        assert_eq!(runs.get(), 1);
    }
}
