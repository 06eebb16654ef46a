//! `green-runtime`: greenlets, the per-thread hub, timers and the reactor of
//! [`green`](https://docs.rs/green). Use it through the `green` facade crate.
//!
//! See `docs/architecture.md` for how the pieces fit.
#![warn(missing_docs)]

mod blocking;
mod budget;
mod driver;
mod error;
mod greenlet;
mod hub;
mod monkey_support;
pub(crate) mod overflow;
pub mod park;
mod prefetch;
pub mod reactor;
mod ready;
mod records;
mod remote;
mod spawn;
pub mod stack;
pub mod sync;
mod time;
pub mod timer;
mod value;
mod word;

pub use blocking::run_blocking;

/// Waking a parked greenlet from other threads: the interface that green-net's monkey
/// patch and `block_on` build on. Not covered by semver.
#[doc(hidden)]
pub mod __remote {
    pub use crate::monkey_support::{hold_deferred, run_detached, set_poll_hooks};
    pub use crate::remote::{RemoteWait, RemoteWaker};
}
#[doc(hidden)]
pub use budget::spend_budget;
pub use driver::throw_into;
pub use error::{BlockError, GreenletExit, JoinError, ParentError, SwitchError};
pub use greenlet::{Greenlet, defer_unwind, getcurrent};
pub use hub::{default_stack_size, is_greenlet_context, set_default_stack_size};
pub use spawn::{
    Builder, JoinHandle, joinall, joinall_timeout, spawn, spawn_later, try_joinall, try_spawn,
};
pub use stack::{DEFAULT_STACK_SIZE, StackError};
pub use sync::monitor;
pub use sync::{
    AsyncError, AsyncResult, BoundedSemaphore, Channel, Event, Group, LifoQueue, Lock, LockError,
    Pool, PriorityQueue, PutError, Queue, QueueError, RLock, Semaphore, Timeout, TimeoutGuard,
    Waitable, iwait, wait, with_deadline, with_timeout,
};
pub use time::{sleep, sleep_until, yield_now};
pub use value::{TypeMismatch, Value};
