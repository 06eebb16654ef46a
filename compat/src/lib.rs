//! The compatibility suite of `green`'s monkey patch: real third-party crates that
//! block (HTTP servers and clients, WebSocket, TLS, std's and crossbeam's channels,
//! locks) run inside greenlets of one thread after `green::monkey::patch_all()`, each
//! against a server the test starts on 127.0.0.1:0. Everything is in `tests/`; this
//! library holds nothing.
