//! The fd and std conversions of every `green::net` socket type: `TryFrom<std type>`,
//! `TryFrom<OwnedFd>` (with its check of the socket's kind), `FromRawFd`, and
//! `From<T> for OwnedFd`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use green::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

/// One socket of each kind, as `OwnedFd`s: (TCP listener, TCP stream, UDP, Unix
/// listener, Unix stream, Unix datagram). The TCP stream is connected to the listener.
fn one_of_each(name: &str) -> [OwnedFd; 6] {
    let tcp_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_s = std::net::TcpStream::connect(tcp_l.local_addr().unwrap()).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let path =
        std::env::temp_dir().join(format!("green-fdconv-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let unix_l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let (unix_s, _) = std::os::unix::net::UnixStream::pair().unwrap();
    let unix_d = std::os::unix::net::UnixDatagram::unbound().unwrap();
    [
        tcp_l.into(),
        tcp_s.into(),
        udp.into(),
        unix_l.into(),
        unix_s.into(),
        unix_d.into(),
    ]
}

/// Which of `one_of_each`'s fds `convert` accepts, as a bitmask (bit i: fd i).
fn accepted(name: &str, convert: impl Fn(OwnedFd) -> std::io::Result<()>) -> u32 {
    let mut mask = 0;
    for (i, fd) in one_of_each(name).into_iter().enumerate() {
        match convert(fd) {
            Ok(()) => mask |= 1 << i,
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "fd {i}: {e}"),
        }
    }
    mask
}

/// A conversion from an `OwnedFd`, its result dropped.
type Convert = fn(OwnedFd) -> std::io::Result<()>;

#[test]
fn try_from_owned_fd_accepts_only_its_kind() {
    // TCP listeners and streams are both TCP stream sockets; likewise for Unix.
    let cases: [(&str, Convert, u32); 6] = [
        ("tl", |fd| TcpListener::try_from(fd).map(drop), 0b000011),
        ("ts", |fd| TcpStream::try_from(fd).map(drop), 0b000011),
        ("u", |fd| UdpSocket::try_from(fd).map(drop), 0b000100),
        ("ul", |fd| UnixListener::try_from(fd).map(drop), 0b011000),
        ("us", |fd| UnixStream::try_from(fd).map(drop), 0b011000),
        ("ud", |fd| UnixDatagram::try_from(fd).map(drop), 0b100000),
    ];
    for (name, convert, expected) in cases {
        assert_eq!(accepted(name, convert), expected, "{name}");
    }
}

#[test]
fn try_from_owned_fd_rejects_a_non_socket() {
    let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let err = TcpStream::try_from(file).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{err}");
    let (r, _w) = std::io::pipe().unwrap();
    let err = UdpSocket::try_from(OwnedFd::from(r)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{err}");
}

#[test]
fn wrong_kind_error_names_the_expected_kind() {
    let udp: OwnedFd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into();
    let err = UnixStream::try_from(udp).unwrap_err();
    assert!(err.to_string().contains("a Unix stream socket"), "{err}");
}

#[test]
fn tcp_round_trip_through_fds() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // Listener: out to an OwnedFd and back; then out to a raw fd and back.
    let l = TcpListener::try_from(OwnedFd::from(l)).unwrap();
    // SAFETY: `into_raw_fd` hands over the sole ownership of an open TCP listener.
    let l = unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) };
    assert_eq!(l.local_addr().unwrap(), addr);
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    let s = TcpStream::try_from(OwnedFd::from(s)).unwrap();
    // SAFETY: as above, an open TCP stream.
    let mut s = unsafe { TcpStream::from_raw_fd(s.into_raw_fd()) };
    // Still cooperative: a read parks until the peer writes.
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(10));
        c.write_all(b"through fds").unwrap();
        c
    });
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"through fds");
    writer.join().unwrap();
    assert_eq!(s.as_fd().as_raw_fd(), s.as_raw_fd());
}

#[test]
fn std_conversions_are_fallible_not_panicking() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    assert!(TcpStream::try_from(s).is_ok());
    assert!(TcpListener::try_from(l).is_ok());
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(UdpSocket::try_from(u).is_ok());
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(UnixStream::try_from(a).is_ok());
    let d = std::os::unix::net::UnixDatagram::unbound().unwrap();
    assert!(UnixDatagram::try_from(d).is_ok());
}

#[test]
fn udp_and_unix_round_trip_through_fds() {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = u.local_addr().unwrap();
    // SAFETY: `into_raw_fd` hands over the sole ownership of an open UDP socket.
    let u = unsafe {
        UdpSocket::from_raw_fd(UdpSocket::try_from(OwnedFd::from(u)).unwrap().into_raw_fd())
    };
    u.send_to(b"self", addr).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(u.recv_from(&mut buf).unwrap(), (4, addr));

    let (a, b) = UnixStream::pair().unwrap();
    // SAFETY: as above, an open Unix stream socket.
    let mut a = unsafe { UnixStream::from_raw_fd(OwnedFd::from(a).into_raw_fd()) };
    let mut b = UnixStream::try_from(OwnedFd::from(b)).unwrap();
    a.write_all(b"u").unwrap();
    b.read_exact(&mut buf[..1]).unwrap();
    assert_eq!(buf[0], b'u');

    let (a, b) = UnixDatagram::pair().unwrap();
    // SAFETY: as above, an open Unix datagram socket.
    let a = unsafe { UnixDatagram::from_raw_fd(OwnedFd::from(a).into_raw_fd()) };
    let b = UnixDatagram::try_from(OwnedFd::from(b)).unwrap();
    a.send(b"d").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 1);

    let path = std::env::temp_dir().join(format!("green-fdconv-{}-rt.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    // SAFETY: as above, an open Unix listener.
    let l = unsafe { UnixListener::from_raw_fd(OwnedFd::from(l).into_raw_fd()) };
    let _c = UnixStream::connect(&path).unwrap();
    assert!(l.accept().is_ok());
    std::fs::remove_file(&path).unwrap();
}
