//! Queues between greenlets: [`Queue`] (FIFO, optionally bounded), [`LifoQueue`],
//! [`PriorityQueue`] and [`Channel`] (no buffer: a rendezvous) — gevent's `queue`
//! module.
//!
//! Waiting getters and putters are served first come, first served, and an item is
//! handed directly to the first waiting getter. A waiter that times out or is killed
//! leaves the line; if it is killed just after an item was handed to it, the item goes
//! back to the queue for the next getter: items are never lost.
//!
//! This file holds the public types and their errors; `core.rs` holds the machinery
//! they share.

use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use crate::greenlet::error::BlockError;
use crate::hub::timer::deadline_after;

mod core;

use self::core::{Core, Fifo, Heap, Lifo, Store};

/// Why a queue operation failed.
///
/// ```
/// let q: green::Queue<i32> = green::Queue::bounded(1);
/// assert_eq!(q.try_get(), Err(green::QueueError::Empty));
/// q.try_put(1).unwrap();
/// assert_eq!(q.try_put(2).unwrap_err().kind(), green::QueueError::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// Nothing to get without waiting.
    Empty,
    /// No room to put without waiting.
    Full,
    /// The queue was closed or shut down (and, for gets, is drained).
    Closed,
    /// The wait timed out.
    TimedOut,
    /// The wait could not happen (see [`BlockError`]).
    Blocked(BlockError),
    /// [`task_done`](Queue::task_done) was called more times than items were put.
    NoUnfinishedTasks,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Empty => f.write_str("the queue is empty"),
            QueueError::Full => f.write_str("the queue is full"),
            QueueError::Closed => f.write_str("the queue is closed"),
            QueueError::TimedOut => f.write_str("timed out waiting on the queue"),
            QueueError::Blocked(b) => b.fmt(f),
            QueueError::NoUnfinishedTasks => f.write_str("task_done() called too many times"),
        }
    }
}

impl std::error::Error for QueueError {}

/// A failed put: why, and the item back.
///
/// ```
/// let q = green::Queue::new();
/// q.close();
/// let err = q.put("x").unwrap_err();
/// assert_eq!(err.kind(), green::QueueError::Closed);
/// assert_eq!(err.into_inner(), "x");
/// ```
pub struct PutError<T> {
    kind: QueueError,
    item: T,
}

impl<T> PutError<T> {
    /// Why the put failed.
    ///
    /// ```
    /// let q = green::Queue::bounded(0);
    /// assert_eq!(q.try_put(1).unwrap_err().kind(), green::QueueError::Full);
    /// ```
    pub fn kind(&self) -> QueueError {
        self.kind
    }

    /// The item that was not put.
    ///
    /// ```
    /// let q = green::Queue::bounded(0);
    /// assert_eq!(q.try_put(7).unwrap_err().into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.item
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl<T> std::error::Error for PutError<T> {}

macro_rules! queue_common {
    ($ty:ident, [$($bound:path)?], $doc_new:literal) => {
        impl<T $(: $bound)?> $ty<T> {
            /// Puts `item`, waiting while the queue is full.
            ///
            /// Errors: [`QueueError::Closed`], or [`QueueError::Blocked`] when nothing
            /// could ever make room; the item comes back in the [`PutError`].
            ///
            /// ```
            #[doc = $doc_new]
            /// let rx = q.clone();
            /// let getter = green::spawn(move || rx.get());
            /// q.put(1).unwrap();
            /// assert_eq!(getter.join().unwrap(), Ok(1));
            /// ```
            pub fn put(&self, item: T) -> Result<(), PutError<T>> {
                self.core.put(item, None)
            }

            /// Like [`put`](Self::put) but gives up after `timeout`
            /// ([`QueueError::TimedOut`]).
            ///
            /// ```
            #[doc = $doc_new]
            /// let rx = q.clone();
            /// let getter = green::spawn(move || rx.get());
            /// q.put_timeout(1, std::time::Duration::from_secs(5)).unwrap();
            /// assert_eq!(getter.join().unwrap(), Ok(1));
            /// ```
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
                self.core.put(item, Some(deadline_after(timeout)))
            }

            /// Puts `item` if that needs no wait ([`QueueError::Full`] otherwise).
            ///
            /// ```
            #[doc = $doc_new]
            /// let rx = q.clone();
            /// let getter = green::spawn(move || rx.get());
            /// green::yield_now(); // the getter waits
            /// q.try_put(1).unwrap();
            /// assert_eq!(getter.join().unwrap(), Ok(1));
            /// ```
            pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
                self.core.put_now(item)
            }

            /// Takes the next item, waiting while the queue is empty.
            ///
            /// Errors: [`QueueError::Closed`] once the queue is closed and drained;
            /// [`QueueError::Blocked`] when nothing could ever put an item.
            ///
            /// ```
            #[doc = $doc_new]
            /// let tx = q.clone();
            /// green::spawn(move || tx.put(5).unwrap());
            /// assert_eq!(q.get(), Ok(5));
            /// ```
            pub fn get(&self) -> Result<T, QueueError> {
                self.core.get(None)
            }

            /// Like [`get`](Self::get) but gives up after `timeout`
            /// ([`QueueError::TimedOut`]).
            ///
            /// ```
            #[doc = $doc_new]
            /// let r = q.get_timeout(std::time::Duration::from_millis(1));
            /// assert_eq!(r, Err(green::QueueError::TimedOut));
            /// ```
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, QueueError> {
                self.core.get(Some(deadline_after(timeout)))
            }

            /// Takes the next item if there is one ([`QueueError::Empty`] otherwise).
            ///
            /// ```
            #[doc = $doc_new]
            /// assert_eq!(q.try_get(), Err(green::QueueError::Empty));
            /// ```
            pub fn try_get(&self) -> Result<T, QueueError> {
                self.core.get_now()
            }

            /// A clone of the item [`get`](Self::get) would take next, left in the
            /// queue; waits while there is none (gevent's `peek`). An item handed
            /// straight to a waiting getter is never seen by a peek. On a [`Channel`],
            /// the item of the first waiting putter.
            ///
            /// Errors: as [`get`](Self::get).
            ///
            /// ```
            #[doc = $doc_new]
            /// let tx = q.clone();
            /// green::spawn(move || tx.put(5).unwrap());
            /// assert_eq!(q.peek(), Ok(5));
            /// assert_eq!(q.get(), Ok(5)); // still there
            /// ```
            pub fn peek(&self) -> Result<T, QueueError>
            where
                T: Clone,
            {
                self.core.peek(None)
            }

            /// Like [`peek`](Self::peek) but gives up after `timeout`
            /// ([`QueueError::TimedOut`]).
            ///
            /// ```
            #[doc = $doc_new]
            /// let r = q.peek_timeout(std::time::Duration::from_millis(1));
            /// assert_eq!(r, Err(green::QueueError::TimedOut));
            /// ```
            pub fn peek_timeout(&self, timeout: Duration) -> Result<T, QueueError>
            where
                T: Clone,
            {
                self.core.peek(Some(deadline_after(timeout)))
            }

            /// A clone of the next item if there is one ([`QueueError::Empty`]
            /// otherwise, [`QueueError::Closed`] once closed and drained).
            ///
            /// ```
            #[doc = $doc_new]
            /// assert_eq!(q.try_peek(), Err(green::QueueError::Empty));
            /// ```
            pub fn try_peek(&self) -> Result<T, QueueError>
            where
                T: Clone,
            {
                self.core.peek_now()
            }

            /// Marks one item taken earlier as processed (Python's `task_done`).
            ///
            /// ```
            #[doc = $doc_new]
            /// let tx = q.clone();
            /// green::spawn(move || tx.put(1).unwrap());
            /// q.get().unwrap();
            /// q.task_done().unwrap();
            /// assert_eq!(q.task_done(), Err(green::QueueError::NoUnfinishedTasks));
            /// ```
            pub fn task_done(&self) -> Result<(), QueueError> {
                self.core.task_done()
            }

            /// How many items put have not been marked done with
            /// [`task_done`](Self::task_done) yet (Python's `unfinished_tasks`):
            /// [`join`](Self::join) waits while it is not 0.
            ///
            /// ```
            #[doc = $doc_new]
            /// let tx = q.clone();
            /// green::spawn(move || tx.put(1).unwrap());
            /// q.get().unwrap();
            /// assert_eq!(q.unfinished_tasks(), 1); // taken, not yet done
            /// q.task_done().unwrap();
            /// assert_eq!(q.unfinished_tasks(), 0);
            /// ```
            pub fn unfinished_tasks(&self) -> usize {
                self.core.state.borrow().unfinished
            }

            /// Waits until every item put has been marked done with
            /// [`task_done`](Self::task_done) (Python's `JoinableQueue.join`).
            ///
            /// ```
            #[doc = $doc_new]
            /// q.join().unwrap(); // nothing put: returns at once
            /// ```
            pub fn join(&self) -> Result<(), BlockError> {
                while !self.core.all_done.is_set() {
                    self.core.all_done.wait()?;
                }
                Ok(())
            }

            /// Closes the queue: waiting getters and putters wake with
            /// [`QueueError::Closed`], later puts fail; items already queued can still
            /// be taken, then gets fail too (Python 3.13's `Queue.shutdown()`).
            /// [`shutdown`](Self::shutdown) also takes out what is queued.
            ///
            /// ```
            #[doc = $doc_new]
            /// let rx = q.clone();
            /// let getter = green::spawn(move || rx.get());
            /// green::yield_now(); // the getter waits
            /// q.close();
            /// assert_eq!(getter.join().unwrap(), Err(green::QueueError::Closed));
            /// assert_eq!(q.put(2).unwrap_err().kind(), green::QueueError::Closed);
            /// ```
            pub fn close(&self) {
                self.core.close()
            }

            /// Closes the queue at once (Python 3.13's `Queue.shutdown(immediate=True)`):
            /// like [`close`](Self::close), but the items still queued are taken out
            /// and returned (in the order gets would have taken them), so gets fail
            /// with [`QueueError::Closed`] from now on instead of draining them. Each
            /// item taken out counts as done: [`join`](Self::join) returns once the
            /// items already taken are done. Every waiter wakes with
            /// [`QueueError::Closed`] (a waiting putter gets its item back in the
            /// [`PutError`]); later puts fail the same way.
            ///
            /// ```
            #[doc = $doc_new]
            /// let rx = q.clone();
            /// let getter = green::spawn(move || rx.get());
            /// green::yield_now(); // the getter waits
            /// assert!(q.shutdown().is_empty());
            /// assert_eq!(getter.join().unwrap(), Err(green::QueueError::Closed));
            /// assert_eq!(q.put(2).unwrap_err().kind(), green::QueueError::Closed);
            /// ```
            pub fn shutdown(&self) -> Vec<T> {
                self.core.shutdown()
            }

            /// Whether [`close`](Self::close) was called.
            ///
            /// ```
            #[doc = $doc_new]
            /// q.close();
            /// assert!(q.is_closed());
            /// ```
            pub fn is_closed(&self) -> bool {
                self.core.state.borrow().closed
            }

            /// How many items are queued.
            ///
            /// ```
            #[doc = $doc_new]
            /// assert_eq!(q.len(), 0);
            /// ```
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether no item is queued.
            ///
            /// ```
            #[doc = $doc_new]
            /// assert!(q.is_empty());
            /// ```
            pub fn is_empty(&self) -> bool {
                self.core.len() == 0
            }

            /// Whether a put would have to wait (never for an unbounded queue).
            ///
            /// ```
            #[doc = $doc_new]
            /// let _full = q.is_full(); // always true for a `Channel`
            /// ```
            pub fn is_full(&self) -> bool {
                !self.core.has_room(self.core.len())
            }

            /// The bound, `None` when unbounded.
            ///
            /// ```
            #[doc = $doc_new]
            /// let _ = q.capacity();
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                self.core.cap
            }

            /// How many greenlets wait in `get` (gevent's `getters`).
            ///
            /// ```
            #[doc = $doc_new]
            /// assert_eq!(q.getters(), 0);
            /// ```
            pub fn getters(&self) -> usize {
                self.core.getters.len()
            }

            /// How many greenlets wait in `put` (gevent's `putters`).
            ///
            /// ```
            #[doc = $doc_new]
            /// assert_eq!(q.putters(), 0);
            /// ```
            pub fn putters(&self) -> usize {
                self.core.putters.len()
            }
        }

        impl<T $(: $bound)?> Clone for $ty<T> {
            fn clone(&self) -> Self {
                $ty {
                    core: self.core.clone(),
                }
            }
        }

        impl<T $(: $bound)?> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("len", &self.core.state.borrow().items.len())
                    .field("capacity", &self.core.cap)
                    .finish_non_exhaustive()
            }
        }
    };
}

/// A first-in, first-out queue between greenlets, unbounded or bounded (gevent's
/// `Queue`, with `JoinableQueue`'s `task_done`/`join`).
///
/// Cloning gives another handle to the same queue. Bound to the thread's hub
/// (`!Send`): use it between greenlets of one thread.
///
/// # Examples
///
/// ```
/// let q = green::Queue::bounded(2);
/// let tx = q.clone();
/// let producer = green::spawn(move || for i in 0..5 { tx.put(i).unwrap() });
/// let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
pub struct Queue<T> {
    core: Rc<Core<T, Fifo<T>>>,
}

impl<T> Queue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q: green::Queue<u8> = green::Queue::new();
    /// assert_eq!(q.capacity(), None);
    /// ```
    pub fn new() -> Queue<T> {
        Queue {
            core: Rc::new(Core::new(Fifo(VecDeque::new()), None)),
        }
    }

    /// A queue holding at most `cap` items; `put` waits while it is full. A bound of
    /// 0 makes a rendezvous, like [`Channel`].
    ///
    /// ```
    /// let q = green::Queue::bounded(1);
    /// q.try_put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(cap: usize) -> Queue<T> {
        Queue {
            core: Rc::new(Core::new(Fifo(VecDeque::new()), Some(cap))),
        }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

queue_common!(Queue, [], "let q: green::Queue<i32> = green::Queue::new();");

/// A last-in, first-out queue (gevent's `LifoQueue`); otherwise like [`Queue`].
///
/// ```
/// let q = green::LifoQueue::new();
/// for i in 1..=3 { q.put(i).unwrap(); }
/// assert_eq!(q.get(), Ok(3));
/// ```
pub struct LifoQueue<T> {
    core: Rc<Core<T, Lifo<T>>>,
}

impl<T> LifoQueue<T> {
    /// An unbounded LIFO queue.
    ///
    /// ```
    /// let q: green::LifoQueue<u8> = green::LifoQueue::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> LifoQueue<T> {
        LifoQueue {
            core: Rc::new(Core::new(Lifo(Vec::new()), None)),
        }
    }

    /// A LIFO queue holding at most `cap` items.
    ///
    /// ```
    /// let q: green::LifoQueue<u8> = green::LifoQueue::bounded(4);
    /// assert_eq!(q.capacity(), Some(4));
    /// ```
    pub fn bounded(cap: usize) -> LifoQueue<T> {
        LifoQueue {
            core: Rc::new(Core::new(Lifo(Vec::new()), Some(cap))),
        }
    }
}

impl<T> Default for LifoQueue<T> {
    fn default() -> Self {
        LifoQueue::new()
    }
}

queue_common!(
    LifoQueue,
    [],
    "let q: green::LifoQueue<i32> = green::LifoQueue::new();"
);

/// A queue that hands out its smallest item first, like Python's `heapq`-based
/// `PriorityQueue`; otherwise like [`Queue`].
///
/// ```
/// let q = green::PriorityQueue::new();
/// for i in [3, 1, 2] { q.put(i).unwrap(); }
/// assert_eq!(q.get(), Ok(1));
/// ```
pub struct PriorityQueue<T: Ord> {
    core: Rc<Core<T, Heap<T>>>,
}

impl<T: Ord> PriorityQueue<T> {
    /// An unbounded priority queue.
    ///
    /// ```
    /// let q: green::PriorityQueue<u8> = green::PriorityQueue::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> PriorityQueue<T> {
        PriorityQueue {
            core: Rc::new(Core::new(Heap(BinaryHeap::new()), None)),
        }
    }

    /// A priority queue holding at most `cap` items.
    ///
    /// ```
    /// let q: green::PriorityQueue<u8> = green::PriorityQueue::bounded(2);
    /// assert_eq!(q.capacity(), Some(2));
    /// ```
    pub fn bounded(cap: usize) -> PriorityQueue<T> {
        PriorityQueue {
            core: Rc::new(Core::new(Heap(BinaryHeap::new()), Some(cap))),
        }
    }
}

impl<T: Ord> Default for PriorityQueue<T> {
    fn default() -> Self {
        PriorityQueue::new()
    }
}

queue_common!(
    PriorityQueue,
    [Ord],
    "let q: green::PriorityQueue<i32> = green::PriorityQueue::new();"
);

/// A queue without a buffer: `put` waits until a getter takes the item (gevent's
/// `Channel`, Go's unbuffered channel). Otherwise like [`Queue`].
///
/// ```
/// let ch = green::Channel::new();
/// let tx = ch.clone();
/// let sender = green::spawn(move || { tx.put("ping").unwrap(); "delivered" });
/// assert_eq!(ch.get(), Ok("ping"));
/// assert_eq!(sender.join().unwrap(), "delivered");
/// ```
pub struct Channel<T> {
    core: Rc<Core<T, Fifo<T>>>,
}

impl<T> Channel<T> {
    /// A new channel.
    ///
    /// ```
    /// let ch: green::Channel<u8> = green::Channel::new();
    /// assert_eq!(ch.capacity(), Some(0));
    /// ```
    pub fn new() -> Channel<T> {
        Channel {
            core: Rc::new(Core::new(Fifo(VecDeque::new()), Some(0))),
        }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

queue_common!(
    Channel,
    [],
    "let q: green::Channel<i32> = green::Channel::new();"
);
