//! The mapping calls of a group ([`Group::map`], [`Group::imap`],
//! [`Group::imap_unordered`]) and their iterator, [`IMap`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use super::Group;
use crate::api::sync::Queue;
use crate::greenlet::error::GreenletExit;
use crate::greenlet::getcurrent;

impl Group {
    /// Applies `f` to every item in greenlets of the group and returns the results in
    /// input order (gevent's `map`). In a [`Pool`](crate::Pool), at most its size run at
    /// once.
    ///
    /// # Panics
    ///
    /// Re-raises the panic of a task that panicked (or its kill, as an unwind with
    /// [`GreenletExit`]).
    ///
    /// ```
    /// let pool = green::Pool::new(3);
    /// let squares = pool.map(|x: u32| x * x, 1..=5);
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// ```
    pub fn map<I, F, R>(&self, f: F, items: I) -> Vec<R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        self.imap(f, items).collect()
    }

    /// Like [`map`](Group::map) but lazily: an iterator of the results in input order,
    /// spawning a task when a slot is free (gevent's `imap`).
    ///
    /// ```
    /// let pool = green::Pool::new(2);
    /// let mut it = pool.imap(|x: i32| -x, 0..100);
    /// assert_eq!(it.next(), Some(0));
    /// assert_eq!(it.next(), Some(-1));
    /// ```
    pub fn imap<I, F, R>(&self, f: F, items: I) -> IMap<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        IMap::new(self.clone(), f, items.into_iter(), true)
    }

    /// Like [`imap`](Group::imap) but yields the results in completion order (gevent's
    /// `imap_unordered`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = green::Pool::new(3);
    /// let order: Vec<u64> = pool
    ///     .imap_unordered(|ms: u64| { green::sleep(Duration::from_millis(ms)); ms }, [30, 10, 20])
    ///     .collect();
    /// assert_eq!(order, [10, 20, 30]);
    /// ```
    pub fn imap_unordered<I, F, R>(&self, f: F, items: I) -> IMap<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        IMap::new(self.clone(), f, items.into_iter(), false)
    }
}

type Outcome<R> = Result<R, Box<dyn Any + Send + 'static>>;

/// The iterator of [`Group::imap`] and [`Group::imap_unordered`].
///
/// A task's panic (or kill) is re-raised in the greenlet iterating. Dropping the
/// iterator early leaves the tasks already started running.
///
/// Tasks start as slots free up; in a [`Group`] (no size) they all start on the first
/// `next`. [`max_in_flight`](IMap::max_in_flight) bounds how many run or wait to be
/// yielded at once.
///
/// ```
/// let group = green::Group::new();
/// let squares: green::IMap<_, _, u32> = group.imap(|x: u32| x * x, 1..=3);
/// assert_eq!(squares.collect::<Vec<_>>(), [1, 4, 9]);
/// ```
pub struct IMap<I, F, R> {
    group: Group,
    input: I,
    f: Rc<F>,
    results: Queue<(usize, Outcome<R>)>,
    spawned: usize,
    next_out: usize,
    /// Results returned so far.
    yielded: usize,
    /// The most tasks started and not yet yielded.
    max_in_flight: usize,
    in_flight: usize,
    buffer: BTreeMap<usize, Outcome<R>>,
    ordered: bool,
    exhausted: bool,
}

impl<I, F, R> IMap<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    fn new(group: Group, f: F, input: I, ordered: bool) -> Self {
        IMap {
            group,
            input,
            f: Rc::new(f),
            results: Queue::new(),
            spawned: 0,
            next_out: 0,
            yielded: 0,
            max_in_flight: usize::MAX,
            in_flight: 0,
            buffer: BTreeMap::new(),
            ordered,
            exhausted: false,
        }
    }

    /// Allows at most `n` tasks started and not yet yielded at once, running or
    /// finished with their result held for the order of the results (gevent's
    /// `imap(maxsize=)`): for an input much faster than its consumer, or results that
    /// take much memory. A bound of 0 is taken as 1 (one task at a time), the least
    /// that makes progress. Set it before the first `next`.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let started = Rc::new(Cell::new(0));
    /// let s = started.clone();
    /// let group = green::Group::new(); // no size: without a bound, all would start
    /// let mut it = group
    ///     .imap(move |x: u32| { s.set(s.get() + 1); x * 2 }, 0..100)
    ///     .max_in_flight(3);
    /// assert_eq!(it.next(), Some(0));
    /// assert!(started.get() <= 3);
    /// assert_eq!(it.sum::<u32>(), 9900);
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Starts tasks while the pool has room (at least one if none is running) and the
    /// bound on tasks in flight allows.
    fn top_up(&mut self) {
        while !self.exhausted && self.spawned - self.yielded < self.max_in_flight {
            let free = self.group.free_slots();
            if free == 0 && self.in_flight > 0 {
                return; // wait for a result instead of for a slot
            }
            let Some(item) = self.input.next() else {
                self.exhausted = true;
                return;
            };
            let i = self.spawned;
            self.spawned += 1;
            self.in_flight += 1;
            if free == 0 && self.group.contains(&getcurrent()) {
                // A full pool used from inside: waiting for a slot could deadlock
                // (our own slot is one of them), so run the task here.
                let f = self.f.clone();
                let r = catch_unwind(AssertUnwindSafe(move || f(item)));
                let _ = self.results.try_put((i, r));
                continue;
            }
            let f = self.f.clone();
            let slot: Rc<RefCell<Option<Outcome<R>>>> = Rc::default();
            let s = slot.clone();
            let h = self.group.spawn(move || {
                let r = catch_unwind(AssertUnwindSafe(move || f(item)));
                let killed = matches!(&r, Err(p) if p.is::<GreenletExit>());
                *s.borrow_mut() = Some(r);
                if killed {
                    resume_unwind(Box::new(GreenletExit));
                }
            });
            // Deliver in the hub when the task dies, however it dies (a task killed
            // before it started never ran its closure).
            let results = self.results.clone();
            let delivered = Cell::new(false);
            h.greenlet().on_exit(Box::new(move |_| {
                if !delivered.replace(true) {
                    let r = slot
                        .borrow_mut()
                        .take()
                        .unwrap_or_else(|| Err(Box::new(GreenletExit)));
                    let _ = results.try_put((i, r));
                }
            }));
        }
    }
}

fn unwrap_outcome<R>(r: Outcome<R>) -> R {
    match r {
        Ok(v) => v,
        Err(p) => resume_unwind(p),
    }
}

impl<I, F, R> Iterator for IMap<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    type Item = R;

    fn next(&mut self) -> Option<R> {
        loop {
            if self.ordered
                && let Some(r) = self.buffer.remove(&self.next_out)
            {
                self.next_out += 1;
                self.yielded += 1;
                return Some(unwrap_outcome(r));
            }
            self.top_up();
            if self.in_flight == 0 {
                return None;
            }
            let (i, r) = match self.results.get() {
                Ok(x) => x,
                Err(e) => panic!("green: imap cannot wait for its tasks: {e}"),
            };
            self.in_flight -= 1;
            if !self.ordered {
                self.yielded += 1;
                return Some(unwrap_outcome(r));
            }
            self.buffer.insert(i, r);
        }
    }
}

impl<I, F, R> fmt::Debug for IMap<I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.ordered)
            .field("in_flight", &self.in_flight)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}
