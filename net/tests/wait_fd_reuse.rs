//! Waiting by fd number on a `green::net` socket whose fd number belonged to another,
//! closed one. Alone in its test binary: it closes an fd and reuses its number with
//! `dup2`, which would race with other tests opening fds on other threads.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Waits by fd (as a hooked `poll` on a `green::net` socket's fd does) until one byte,
/// written 20 ms later on `a`, arrives on `b`; reads it.
fn wait_by_fd_for_a_byte(mut a: TcpStream, b: &TcpStream) {
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(20));
        a.write_all(b"x").unwrap();
        a
    });
    let deadline = Some(Instant::now() + Duration::from_secs(5));
    green::reactor::wait_fd(b.as_raw_fd(), mio::Interest::READABLE, deadline).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!((&*b).read(&mut buf).unwrap(), 1);
    drop(writer.join().unwrap());
}

#[test]
fn a_wait_by_fd_finds_the_registration_of_the_socket_now_on_that_fd() {
    let (a, b) = pair();
    // The reactor remembers where `b`'s registration is.
    wait_by_fd_for_a_byte(a, &b);
    // Another socket, to be registered on the same fd number once `b` is closed (made
    // first, so that none of its fds takes that number).
    let (c, d) = pair();
    let fd = b.as_raw_fd();
    drop(b);
    // SAFETY: `fd` is closed (its owner was dropped; no other thread of this binary
    // opens fds) and `d`'s fd is open: `dup2` makes `fd` refer to `d`'s socket, and
    // `from_raw_fd` takes sole ownership of the new fd.
    let d2 = unsafe {
        assert_eq!(libc::dup2(d.as_raw_fd(), fd), fd);
        std::net::TcpStream::from_raw_fd(fd)
    };
    drop(d);
    let d2 = TcpStream::from_std(d2).unwrap();
    assert_eq!(d2.as_raw_fd(), fd);
    wait_by_fd_for_a_byte(c, &d2);
}
