//! The shared machinery of every queue type: [`Core`] over a [`Store`] ([`Fifo`],
//! [`Lifo`] or [`Heap`]), with its lines of waiting getters, putters and peekers.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use super::{PutError, QueueError};
use crate::api::sync::Event;
use crate::api::sync::waiters::{HandoffList, WaitFail, WakeAll, serve};
use crate::greenlet::record::ParkLabel;

/// How items are stored and in what order they come out.
pub(super) trait Store<T> {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    /// Puts back an item a killed getter had been handed: it comes out next.
    fn push_returned(&mut self, item: T);
    /// The item `pop` would return.
    fn peek(&self) -> Option<&T>;
    fn len(&self) -> usize;
}

pub(super) struct Fifo<T>(pub(super) VecDeque<T>);
impl<T> Store<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn push_returned(&mut self, item: T) {
        self.0.push_front(item)
    }
    fn peek(&self) -> Option<&T> {
        self.0.front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

pub(super) struct Lifo<T>(pub(super) Vec<T>);
impl<T> Store<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item)
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn push_returned(&mut self, item: T) {
        self.0.push(item)
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

pub(super) struct Heap<T: Ord>(pub(super) BinaryHeap<Reverse<T>>);
impl<T: Ord> Store<T> for Heap<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(t)| t)
    }
    fn push_returned(&mut self, item: T) {
        self.0.push(Reverse(item))
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(t)| t)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

pub(super) struct State<S> {
    pub(super) items: S,
    pub(super) closed: bool,
    pub(super) unfinished: usize,
}

/// The shared machinery of every queue type.
pub(super) struct Core<T, S> {
    pub(super) state: RefCell<State<S>>,
    /// `None`: unbounded; `Some(0)`: a channel.
    pub(super) cap: Option<usize>,
    /// Waiting getters: handed an item, or `Err(Closed)`.
    pub(super) getters: HandoffList<Result<T, QueueError>>,
    /// Waiting putters, holding their item: served with `Ok` once it is in the queue
    /// (or taken by a getter), `Err(Closed)` if the queue closes first.
    pub(super) putters: HandoffList<Result<(), QueueError>, T>,
    /// Greenlets in `peek`, woken when an item may have arrived (or the queue closed).
    peekers: WakeAll,
    /// Set while no task is unfinished (for `join`).
    pub(super) all_done: Event,
}

impl<T, S: Store<T>> Core<T, S> {
    pub(super) fn new(items: S, cap: Option<usize>) -> Core<T, S> {
        let all_done = Event::new();
        all_done.set();
        Core {
            state: RefCell::new(State {
                items,
                closed: false,
                unfinished: 0,
            }),
            cap,
            getters: HandoffList::default(),
            putters: HandoffList::default(),
            peekers: WakeAll::default(),
            all_done,
        }
    }

    pub(super) fn has_room(&self, len: usize) -> bool {
        match self.cap {
            Some(c) => len < c,
            None => true,
        }
    }

    fn count_put(&self) {
        let mut st = self.state.borrow_mut();
        st.unfinished += 1;
        if st.unfinished == 1 {
            drop(st);
            self.all_done.clear();
        }
    }

    /// Puts without waiting if possible; otherwise gives the item back.
    pub(super) fn put_now(&self, item: T) -> Result<(), PutError<T>> {
        if self.state.borrow().closed {
            return Err(PutError {
                kind: QueueError::Closed,
                item,
            });
        }
        // A waiting getter means the queue is empty: hand the item over.
        let item = match self.getters.hand(Ok(item)) {
            Ok(()) => {
                self.count_put();
                return Ok(());
            }
            Err(item) => item.unwrap_or_else(|_| unreachable!()),
        };
        let mut st = self.state.borrow_mut();
        if self.putters.is_empty() && self.has_room(st.items.len()) {
            st.items.push(item);
            drop(st);
            self.count_put();
            self.wake_peekers();
            return Ok(());
        }
        Err(PutError {
            kind: QueueError::Full,
            item,
        })
    }

    pub(super) fn put(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        let handed = self.cap == Some(0) && !self.getters.is_empty();
        let item = match self.put_now(item) {
            Err(e) if e.kind == QueueError::Full => e.item,
            Ok(()) if handed => {
                // A channel's put returns after the getter has its item: let the
                // getter run first, as gevent's `Channel` does (not from the hub, which
                // cannot yield: the getter runs after the callback).
                if !crate::greenlet::thread::in_scheduler() {
                    crate::hub::time::yield_now();
                }
                return Ok(());
            }
            r => return r,
        };
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(PutError {
                kind: QueueError::TimedOut,
                item,
            });
        }
        // Wait in line holding the item; whoever makes room moves it in (and counts
        // it), so a putter that leaves the line keeps its item. A peeker can see it
        // there (a channel's only items are its putters').
        self.wake_peekers();
        match self
            .putters
            .wait(ParkLabel::new("queue put"), Some(item), deadline, |_| {})
        {
            Ok((Ok(()), _)) => Ok(()),
            Ok((Err(kind), item)) => Err(PutError {
                kind,
                item: item.unwrap_or_else(unreachable_item),
            }),
            Err(WaitFail::TimedOut(item)) => Err(PutError {
                kind: QueueError::TimedOut,
                item: item.unwrap_or_else(unreachable_item),
            }),
            Err(WaitFail::Blocked(b, item)) => Err(PutError {
                kind: QueueError::Blocked(b),
                item: item.unwrap_or_else(unreachable_item),
            }),
        }
    }

    /// Moves waiting putters' items into the queue while there is room.
    fn admit_putters(&self) {
        loop {
            if !self.has_room(self.state.borrow().items.len()) {
                return;
            }
            let Some(p) = self.putters.pop() else { return };
            let item = p.data.borrow_mut().take();
            if let Some(item) = item {
                self.state.borrow_mut().items.push(item);
                self.count_put();
                self.wake_peekers();
            }
            serve(&p, Ok(()));
        }
    }

    /// Wakes the greenlets waiting in `peek` (only touches the list if there are any).
    fn wake_peekers(&self) {
        if !self.peekers.is_empty() {
            self.peekers.wake_all();
        }
    }

    /// The item `get_now` would take, cloned: queued first, else a waiting putter's.
    pub(super) fn peek_now(&self) -> Result<T, QueueError>
    where
        T: Clone,
    {
        let st = self.state.borrow();
        if let Some(item) = st.items.peek() {
            return Ok(item.clone());
        }
        if let Some(item) = self.putters.first_data(|d| d.cloned()) {
            return Ok(item);
        }
        if st.closed {
            Err(QueueError::Closed)
        } else {
            Err(QueueError::Empty)
        }
    }

    pub(super) fn peek(&self, deadline: Option<Instant>) -> Result<T, QueueError>
    where
        T: Clone,
    {
        loop {
            // Read before looking, so that a put after the look is not missed.
            let since = self.peekers.generation();
            match self.peek_now() {
                Err(QueueError::Empty) => {}
                r => return r,
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return Err(QueueError::TimedOut);
            }
            match self
                .peekers
                .wait(ParkLabel::new("queue peek"), since, deadline)
            {
                Ok(true) => {}
                Ok(false) => {
                    return match self.peek_now() {
                        Err(QueueError::Empty) => Err(QueueError::TimedOut),
                        r => r,
                    };
                }
                Err(b) => return Err(QueueError::Blocked(b)),
            }
        }
    }

    pub(super) fn get_now(&self) -> Result<T, QueueError> {
        let item = self.state.borrow_mut().items.pop();
        if let Some(item) = item {
            self.admit_putters();
            return Ok(item);
        }
        // Empty, but a putter may be waiting (a channel): take its item directly.
        while let Some(p) = self.putters.pop() {
            let item = p.data.borrow_mut().take();
            serve(&p, Ok(()));
            if let Some(item) = item {
                self.count_put();
                return Ok(item);
            }
        }
        if self.state.borrow().closed {
            Err(QueueError::Closed)
        } else {
            Err(QueueError::Empty)
        }
    }

    pub(super) fn get(self: &Rc<Self>, deadline: Option<Instant>) -> Result<T, QueueError> {
        match self.get_now() {
            Err(QueueError::Empty) => {}
            r => return r,
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(QueueError::TimedOut);
        }
        let me = self.clone();
        match self
            .getters
            .wait(ParkLabel::new("queue get"), None, deadline, move |v| {
                if let Ok(item) = v {
                    me.give_back(item);
                }
            }) {
            Ok((r, _)) => r,
            Err(WaitFail::TimedOut(_)) => Err(QueueError::TimedOut),
            Err(WaitFail::Blocked(b, _)) => Err(QueueError::Blocked(b)),
        }
    }

    /// A getter was handed `item` but unwound before taking it: the next getter gets it.
    fn give_back(&self, item: T) {
        if let Err(Ok(item)) = self.getters.hand(Ok(item)) {
            self.state.borrow_mut().items.push_returned(item);
            self.wake_peekers();
        }
    }

    pub(super) fn close(&self) {
        self.state.borrow_mut().closed = true;
        for g in self.getters.drain() {
            serve(&g, Err(QueueError::Closed));
        }
        for p in self.putters.drain() {
            // The putter keeps its item (it is still in its node).
            serve(&p, Err(QueueError::Closed));
        }
        self.peekers.wake_all();
    }

    /// Closes the queue and takes out what it holds, in the order gets would have
    /// taken it; each item taken out counts as done for `join`.
    pub(super) fn shutdown(&self) -> Vec<T> {
        let (left, all_done) = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            let mut left = Vec::with_capacity(st.items.len());
            while let Some(item) = st.items.pop() {
                left.push(item);
            }
            st.unfinished = st.unfinished.saturating_sub(left.len());
            (left, st.unfinished == 0)
        };
        // Waiters wake first; then `join` callers (the event may run user callbacks).
        self.close();
        if all_done {
            self.all_done.set();
        }
        left
    }

    pub(super) fn task_done(&self) -> Result<(), QueueError> {
        let mut st = self.state.borrow_mut();
        if st.unfinished == 0 {
            return Err(QueueError::NoUnfinishedTasks);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            drop(st);
            self.all_done.set();
        }
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        self.state.borrow().items.len()
    }
}

/// A putter served with an error still holds its item, and one that timed out too:
/// this is never called.
fn unreachable_item<T>() -> T {
    unreachable!("green: a queue putter lost track of its item")
}
