//! Layer 3, the gevent API: spawning and joining, sleeping, the synchronisation
//! primitives and the blocking monitor.

pub mod monitor;
pub(crate) mod spawn;
pub mod sync;
pub(crate) mod time;
