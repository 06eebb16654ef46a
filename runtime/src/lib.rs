//! `green-runtime`: greenlets, the per-thread hub, timers and the reactor of
//! [`green`](https://docs.rs/green). Use it through the `green` facade crate.
//!
//! See `docs/architecture.md` for how the pieces fit.
#![warn(missing_docs)]

mod api;
mod greenlet;
mod hub;

pub use api::block_on::{JoinFuture, block_on};
pub use api::monitor;
pub use api::spawn::{
    Builder, JoinHandle, LinkId, joinall, joinall_timeout, killall, killall_nowait, spawn,
    spawn_later, try_joinall, try_spawn,
};
pub use api::sync::{
    AsyncError, AsyncResult, BoundedSemaphore, Channel, Event, Group, IMap, IWait, LifoQueue,
    LocalKey, Lock, LockError, Pool, PoolFull, PoolSizeError, PriorityQueue, PutError, Queue,
    QueueError, RLock, RLockGuard, Registration, Semaphore, SemaphorePermit, TaskError,
    TimeoutGuard, Waitable, iwait, wait, with_deadline, with_timeout,
};
pub use greenlet::dump::{format_run_info, print_run_info};
pub use greenlet::error::{BlockError, GreenletExit, JoinError, ParentError, SwitchError};
pub use greenlet::stack::{DEFAULT_STACK_SIZE, StackError};
pub use greenlet::thread::{default_stack_size, is_greenlet_context, set_default_stack_size};
pub use greenlet::trace::{TraceEvent, TraceHook, gettrace, settrace};
pub use greenlet::value::{TypeMismatch, Value};
pub use greenlet::{Greenlet, getcurrent};
pub use hub::blocking::run_blocking;

/// The helper-thread pool of [`run_blocking`]: its size and idle time.
pub mod blocking {
    pub use crate::hub::blocking::{Config, Stats, config, configure, stats};
}
pub use hub::signal::dump_on_signal;
pub use hub::throw::throw_into;
pub use hub::time::{sleep, sleep_until, yield_now};
pub use hub::timeout::Timeout;
pub use hub::{park, timer};

/// Greenlet stacks: the thread's pool and the kind of guard pages below them.
pub mod stack {
    pub use crate::greenlet::stack::{GuardKind, StackStats};
    pub use crate::greenlet::thread::pool_stats;
}

#[doc(hidden)]
pub use hub::internal as __net;
