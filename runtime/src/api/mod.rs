//! Layer 3, the gevent API: spawning and joining, the synchronisation primitives and
//! the blocking monitor, built on the hub.

pub mod monitor;
pub(crate) mod spawn;
pub(crate) mod sync;
