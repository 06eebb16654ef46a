//! Set-ups shared by the TCP test binaries.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

/// A connected loopback pair: (client, server side).
pub fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

/// Waits by fd (as a hooked `poll` on a `green::net` socket's fd does) until one byte,
/// written 20 ms later on `a`, arrives on `b`; reads it. Gives `a` back.
pub fn wait_by_fd_for_a_byte(mut a: TcpStream, b: &TcpStream) -> TcpStream {
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(20));
        a.write_all(b"x").unwrap();
        a
    });
    let deadline = Some(Instant::now() + Duration::from_secs(5));
    green::__net::wait_fd(b.as_raw_fd(), mio::Interest::READABLE, deadline).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!((&*b).read(&mut buf).unwrap(), 1);
    writer.join().unwrap()
}
