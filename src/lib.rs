//! `green`: green threads for Rust in the tradition of Python's greenlet and gevent.
//!
//! - **Explicit switching** ([`Greenlet`], [`Greenlet::switch`], [`getcurrent`]): the
//!   `greenlet` layer.
//! - **A hub per thread** that runs ready greenlets, timers and a `mio` reactor, so that
//!   sleeps and IO switch by themselves: [`spawn`], [`JoinHandle::join`], [`joinall`],
//!   [`sleep`], [`yield_now`] — the `gevent` layer.
//! - **Cooperative sockets** in [`net`], mirroring `std::net`.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let naps: Vec<_> = (0..10)
//!     .map(|i| green::spawn(move || { green::sleep(Duration::from_millis(100)); i }))
//!     .collect();
//! let done: Vec<_> = green::joinall(naps).into_iter().map(Result::unwrap).collect();
//! assert_eq!(done, (0..10).collect::<Vec<_>>());
//! assert!(start.elapsed() < Duration::from_millis(900)); // side by side: 0.1 s, not 1 s
//! ```
//!
//! Greenlets are bound to the thread that made them: [`Greenlet`] and [`JoinHandle`] are
//! not `Send`. For more cores, run a hub per thread (see `examples/multicore_echo.rs`).
//!
//! # Using green from a library
//!
//! The `monkey` feature, on by default, defines libc's blocking entry points (`recv`,
//! `send`, `accept4`, `poll`, `clock_nanosleep`, ...) in every binary that links `green`
//! with it, whether or not anything calls `monkey::patch_all()`. Until then the hooks
//! behave exactly like libc's, at the cost of one check per call, but the choice belongs
//! to the binary. Cargo features are additive, so one library that depends on `green`
//! with its default features turns the hooks on for every program that uses it.
//!
//! A library therefore depends on `green` without default features:
//!
//! ```toml
//! [dependencies]
//! green = { version = "0.1", default-features = false }
//! ```
//!
//! and a binary that wants std's blocking calls made cooperative opts in:
//!
//! ```toml
//! [dependencies]
//! green = { version = "0.1", features = ["monkey"] } # or simply green = "0.1"
//! ```
#![warn(missing_docs)]

pub use green_runtime::*;

/// Cooperative networking: sockets that switch greenlets instead of blocking.
pub use green_net as net;

/// The monkey patch: std's blocking sleeps and sockets switch greenlets
/// (`green::monkey::patch_all()`, like gevent's `monkey.patch_all()`).
#[cfg(feature = "monkey")]
pub use green_net::monkey;
