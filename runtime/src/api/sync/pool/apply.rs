//! The calls of a group with a result: [`Group::apply`], [`Group::apply_async`] and
//! [`Group::map_async`].

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use super::{Group, TaskError};
use crate::api::sync::AsyncResult;
use crate::greenlet::error::{GreenletExit, JoinError};
use crate::greenlet::{Greenlet, getcurrent};

/// Runs `f`, setting `res` to its value, or to its panic (then the greenlet ends
/// normally: the panic went into the result) or its kill (then the kill goes on).
fn run_into<T>(res: &AsyncResult<T, TaskError>, f: impl FnOnce() -> T) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => res.set(v),
        Err(p) if p.is::<GreenletExit>() => {
            res.set_error(Rc::new(JoinError::Killed));
            resume_unwind(p);
        }
        Err(p) => res.set_error(Rc::new(JoinError::Panicked(p))),
    }
}

/// Makes `res` an error if `g` ends without setting it (killed before it started).
fn fail_unset_on_exit<T: 'static>(g: &Greenlet, res: AsyncResult<T, TaskError>) {
    g.on_exit(Box::new(move |_| {
        if !res.ready() {
            res.set_error(Rc::new(JoinError::Killed));
        }
    }));
}

impl Group {
    /// Runs `f` in a greenlet of the group and waits for its outcome (gevent's
    /// `apply`). Called from a greenlet of the group itself, `f` runs inline instead:
    /// waiting for a slot of a full pool from inside it could deadlock.
    ///
    /// ```
    /// let pool = green::Pool::new(1);
    /// let p = pool.clone();
    /// // Inside the pool (full: size 1), apply runs inline instead of deadlocking.
    /// let h = pool.spawn(move || p.apply(|| 2 + 2).unwrap());
    /// assert_eq!(h.join().unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn apply<F, T>(&self, f: F) -> Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.contains(&getcurrent()) {
            return Ok(f());
        }
        self.spawn(f).join()
    }

    /// Starts `f` in a greenlet of the group and returns at once with an
    /// [`AsyncResult`] for its outcome (gevent's `apply_async`): its value, or a
    /// [`TaskError`] saying how it failed ([`JoinError::Panicked`] with the panic,
    /// [`JoinError::Killed`]). A panic goes into the result rather than on up the
    /// greenlet. In a full [`Pool`](crate::Pool) it does not wait either: a greenlet
    /// outside the pool waits for the slot, as gevent's does.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated.
    ///
    /// ```
    /// let pool = green::Pool::new(1);
    /// let a = pool.apply_async(|| 6 * 7);
    /// let b = pool.apply_async(|| -> i32 { panic!("no") }); // full: does not wait
    /// assert_eq!(a.get().unwrap(), 42);
    /// let err = b.get().unwrap_err();
    /// assert!(matches!(err, green::AsyncError::Failed(e) if e.is_panic()));
    /// ```
    pub fn apply_async<F, T>(&self, f: F) -> AsyncResult<T, TaskError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let res = AsyncResult::new();
        let r = res.clone();
        let task = move || run_into(&r, f);
        if self.try_take_slot().is_ok() {
            match self.spawn_in_slot(task) {
                Ok(h) => fail_unset_on_exit(h.greenlet(), res.clone()),
                Err(e) => panic!("green: cannot spawn a greenlet: {e}"),
            }
            return res;
        }
        // Full: a helper outside the pool waits for the slot. Until it has spawned the
        // task, the helper's end (killed while waiting) ends the result; after, the
        // task's.
        let spawned = Rc::new(Cell::new(false));
        let (group, r, sp) = (self.clone(), res.clone(), spawned.clone());
        let helper = crate::api::spawn::spawn(move || {
            let h = group.spawn(task);
            sp.set(true);
            fail_unset_on_exit(h.greenlet(), r);
        });
        let r = res.clone();
        helper.greenlet().on_exit(Box::new(move |_| {
            if !spawned.get() && !r.ready() {
                r.set_error(Rc::new(JoinError::Killed));
            }
        }));
        res
    }

    /// Runs [`map`](Group::map) in a new greenlet (outside the group, as gevent's
    /// `map_async`) and returns at once with an [`AsyncResult`] for the results in
    /// input order, or the [`TaskError`] of the first task to fail.
    ///
    /// # Panics
    ///
    /// If no stack can be allocated.
    ///
    /// ```
    /// let pool = green::Pool::new(2);
    /// let squares = pool.map_async(|x: u32| x * x, vec![1, 2, 3]);
    /// assert!(!squares.ready());
    /// assert_eq!(squares.get().unwrap(), [1, 4, 9]);
    /// ```
    pub fn map_async<I, F, R>(&self, f: F, items: I) -> AsyncResult<Vec<R>, TaskError>
    where
        I: IntoIterator + 'static,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        let res = AsyncResult::new();
        let r = res.clone();
        let group = self.clone();
        let h = crate::api::spawn::spawn(move || run_into(&r, move || group.map(f, items)));
        fail_unset_on_exit(h.greenlet(), res.clone());
        res
    }
}
