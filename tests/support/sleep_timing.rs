//! Timing of `green::sleep`, shared by the test binaries of every crate of the
//! workspace through `#[path]`.
#![allow(dead_code)] // each test binary uses a part

use std::time::{Duration, Instant};

/// The fastest of `n` sleeps of `d` from the calling greenlet: what the hub can do when
/// the machine lets it, whatever the load did to the other sleeps.
pub fn fastest_sleep(d: Duration, n: usize) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            green::sleep(d);
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}
