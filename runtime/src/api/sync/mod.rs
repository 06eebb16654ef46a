//! Coordinating greenlets: timeouts, events, queues, locks, pools, waiting for several
//! things and greenlet-local storage — gevent's `Timeout`, `event`, `queue`, `lock`,
//! `pool`, `wait`/`iwait` and `local`. One file or folder per family; their items are
//! published at the crate root (`green::Queue`, ...).
//!
//! Everything here is cooperative: waiting parks the current greenlet and lets the
//! others run. All types are bound to the thread whose hub they use (they are `!Send`):
//! they coordinate the greenlets of one thread. Handles are cheap to clone; clones
//! share the same object. Waiters are served first come, first served, and a waiter
//! that times out or is killed leaves the line without losing anything.
//!
//! See the guide chapter "4. Coordinating greenlets" (`docs/guide.md`).
//!
//! # Examples
//!
//! ```
//! let q = green::Queue::new();
//! let tx = q.clone();
//! let producer = green::spawn(move || for i in 0..3 { tx.put(i).unwrap() });
//! let got: Vec<i32> = (0..3).map(|_| q.get().unwrap()).collect();
//! assert_eq!(got, [0, 1, 2]);
//! producer.join().unwrap();
//! ```

mod async_result;
mod event;
pub(crate) mod local;
mod lock;
mod pool;
mod queue;
pub(crate) mod registration;
mod timeout;
mod wait;
mod waiters;

pub use async_result::{AsyncError, AsyncResult};
pub use event::Event;
pub use local::LocalKey;
pub use lock::{BoundedSemaphore, Lock, LockError, RLock, RLockGuard, Semaphore, SemaphorePermit};
pub use pool::{Group, IMap, Pool, PoolFull, PoolSizeError, TaskError};
pub use queue::{Channel, LifoQueue, PriorityQueue, PutError, Queue, QueueError};
pub use registration::Registration;
pub use timeout::{TimeoutGuard, with_deadline, with_timeout};
pub use wait::{IWait, Waitable, iwait, wait};
