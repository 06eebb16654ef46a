//! The compatibility tests of `green`'s monkey patch: third-party crates and std APIs
//! run inside greenlets of one thread. The tests are in `tests/`; this crate has no code.
