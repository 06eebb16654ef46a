//! `green`: green threads for Rust in the tradition of greenlet and gevent.
pub use green_runtime::*;
