//! The compatibility suite of `green`'s monkey patch: std APIs and real third-party
//! crates that block (HTTP servers and clients, WebSocket, TLS, std's and crossbeam's
//! channels, locks, tokio, postgres, redis) run inside greenlets of one thread after
//! `green::monkey::patch_all()`, each against a server the test starts on 127.0.0.1.
//! Everything is in `tests/`; this library holds nothing.
