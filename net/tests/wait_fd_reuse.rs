//! Waiting by fd number on a `green::net` socket whose fd number belonged to another,
//! closed one. Alone in its test binary: it closes an fd and reuses its number with
//! `dup2`, which would race with other tests opening fds on other threads.

use std::os::fd::{AsRawFd, FromRawFd};

use green::net::TcpStream;

mod common;

use common::{pair, wait_by_fd_for_a_byte};

#[test]
fn a_wait_by_fd_finds_the_registration_of_the_socket_now_on_that_fd() {
    let (a, b) = pair();
    // The reactor remembers where `b`'s registration is.
    let _a = wait_by_fd_for_a_byte(a, &b);
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
    drop(wait_by_fd_for_a_byte(c, &d2));
}
