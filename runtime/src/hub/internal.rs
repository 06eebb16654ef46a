//! The interface between `green-runtime` and `green-net`: what `green::net`'s sockets
//! and the monkey patch's hooks need of the hub, published as `green::__net`. It is not
//! part of the API: hidden from the documentation and not covered by semver (the
//! benches use it too).
//!
//! - Readiness waits on file descriptors: a socket's [`FdRegistration`]; for the raw
//!   fds of std's sockets, [`wait_fd`] / [`wait_fd_tagged`], [`forget_fd`] and the
//!   readiness cache ([`fd_is_ready`], [`fd_clear_ready`]).
//! - The fairness budget of socket operations: [`spend_budget`].
//! - A kill that reached a greenlet inside an `extern "C"` call: [`defer_unwind`].
//! - Waking a parked greenlet from other threads (a helper thread's result, a futex
//!   wake, a future's waker): [`RemoteWait`] and its [`RemoteWaker`]s.
//! - Handing a job to the helper-thread pool without waiting for it: [`submit`].
//! - Parking inside a call that cannot fail while a kill is deferred:
//!   [`hold_deferred`]; functions run around the hub's poll: [`set_poll_hooks`].

pub use crate::hub::blocking::submit;
pub use crate::hub::budget::spend_budget;
pub use crate::hub::poll_hooks::set_poll_hooks;
pub use crate::hub::reactor::{
    FdRegistration, fd_clear_ready, fd_is_ready, forget_fd, wait_fd, wait_fd_tagged,
};
pub use crate::hub::remote::{RemoteWait, RemoteWaker};
pub use crate::hub::throw::{defer_unwind, hold_deferred};
