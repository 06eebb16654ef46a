//! Set-ups shared by the tests of Unix connects to a listener whose backlog is full
//! (`monkey_green.rs`, for std's connect through the hook, and `udp_unix.rs`, for
//! `green::net::UnixStream::connect`).

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

/// A Unix listener on a fresh path (named after `name` and the process) with a backlog
/// of 0: one pending connection fits, the next finds the backlog full.
pub fn backlog_zero_listener(name: &str) -> (UnixListener, PathBuf) {
    let path = std::env::temp_dir().join(format!("green-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    // SAFETY: listen on a socket we own.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    (l, path)
}

/// Accepts `n` connections on a plain thread, starting after `delay`; gives up (and
/// returns what it has) after 5 s, so that the test ends even if the connects fail.
pub fn delayed_acceptor(
    l: UnixListener,
    delay: Duration,
    n: usize,
) -> thread::JoinHandle<Vec<UnixStream>> {
    thread::spawn(move || {
        thread::sleep(delay);
        l.set_nonblocking(true).unwrap();
        let t = Instant::now();
        let mut v = Vec::new();
        while v.len() < n && t.elapsed() < Duration::from_secs(5) {
            match l.accept() {
                Ok((s, _)) => v.push(s),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        v
    })
}
