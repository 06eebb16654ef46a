//! Layer 3, the gevent API: spawning and joining, the synchronisation primitives,
//! `block_on` for futures, and the diagnostics (the blocking monitor and the
//! process-wide stall report), built on the hub.

pub(crate) mod block_on;
pub mod monitor;
pub(crate) mod spawn;
pub(crate) mod stall;
pub(crate) mod sync;
