//! `green-net`: cooperative sockets for [`green`](https://docs.rs/green), used through
//! the facade as `green::net`.
//!
//! The types mirror `std::net` (and `std::os::unix::net`), so porting blocking std code
//! is a change of `use` line: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! [`UnixListener`], [`UnixStream`], [`UnixDatagram`]. Where std blocks the thread,
//! these switch to other greenlets: one thread serves thousands of connections, one
//! greenlet each, as gevent does with `monkey.patch_all()`.
//!
//! [`StreamServer`] and [`DatagramServer`] (gevent's `gevent.server`) run a handler in
//! a greenlet per connection or datagram, with a concurrency limit and a graceful stop.
//!
//! # How it works
//!
//! Every socket is non-blocking in the kernel and registered (edge-triggered) with the
//! reactor of the hub of the thread that made it. Each operation first tries the
//! syscall; only on `WouldBlock` does the greenlet park until the socket's next
//! readiness edge (or its timeout), then it tries again.
//!
//! - **Timeouts** (`set_read_timeout`, `set_write_timeout`, `connect_timeout`) are
//!   deadlines of that wait and expire with [`std::io::ErrorKind::TimedOut`] (std on
//!   Linux reports `WouldBlock` for an expired `SO_RCVTIMEO`).
//! - **Closing**: `close(&self)` (gevent's `socket.close()`) wakes every greenlet
//!   waiting on the socket with [`std::io::ErrorKind::ConnectionAborted`]; share a
//!   socket between greenlets with an `Rc` to use it. `Read`/`Write` are implemented for
//!   `&TcpStream`, so one greenlet can read while another writes.
//! - **Names** are resolved on a helper thread ([`lookup_host`], [`ToSocketAddrs`]);
//!   addresses and IP literals are parsed in place.
//! - **Threads**: sockets are not `Send`; they belong to their thread's hub. `into_std`
//!   gives a blocking std socket that can move. Outside any greenlet (a plain thread)
//!   the types still work, as ordinary blocking sockets.
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<green::net::TcpStream>(); // not Send: bound to its thread's hub
//! ```
//!
//! # Conversions
//!
//! Wrapping a socket registers it with the hub, which can fail, so the conversions that
//! std has as `From` are `TryFrom` here (with [`std::io::Error`]): from the std type
//! (like `from_std`) and from an [`OwnedFd`](std::os::fd::OwnedFd), which must be a
//! socket of the type's kind (else [`std::io::ErrorKind::InvalidInput`]). Every type
//! also has `AsFd`, `AsRawFd`, `IntoRawFd` and `From<T> for OwnedFd` (which give up the
//! fd, still non-blocking), and `FromRawFd`, which cannot return an error: if the
//! registration fails it aborts the process with a message (see each type's impl).
//!
//! ```
//! use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
//! use green::net::{TcpStream, UdpSocket};
//!
//! let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! let sock = UdpSocket::try_from(std_sock).unwrap();
//! let fd: OwnedFd = sock.into();
//! // The wrong kind of socket is an error, not a panic:
//! let err = TcpStream::try_from(fd.try_clone().unwrap()).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
//! let sock = UdpSocket::try_from(fd).unwrap();
//! // SAFETY: `into_raw_fd` hands over the sole ownership of an open UDP socket.
//! let sock = unsafe { UdpSocket::from_raw_fd(sock.into_raw_fd()) };
//! assert!(sock.local_addr().unwrap().ip().is_loopback());
//! ```
//!
//! # Examples
//!
//! An upper-casing echo server and one client, in one thread:
//!
//! ```
//! use std::io::{Read, Write};
//! use green::net::{TcpListener, TcpStream};
//!
//! let server = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = server.local_addr().unwrap();
//! green::spawn(move || {
//!     for conn in server.incoming() {
//!         let mut conn = conn.unwrap();
//!         green::spawn(move || {
//!             let mut buf = [0u8; 1024];
//!             loop {
//!                 match conn.read(&mut buf) {
//!                     Ok(0) | Err(_) => break,
//!                     Ok(n) => conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap(),
//!                 }
//!             }
//!         });
//!     }
//! });
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"greenlet 0").unwrap();
//! let mut reply = [0u8; 10];
//! client.read_exact(&mut reply).unwrap();
//! assert_eq!(&reply, b"GREENLET 0");
//! ```
#![warn(missing_docs)]

mod backoff;
mod resolve;
mod server;
#[macro_use]
mod socket;
mod sys;
mod tcp;
mod udp;
mod unix;
mod unix_datagram;

pub use resolve::{ToSocketAddrs, lookup_host};
pub use server::{Bind, DatagramServer, StreamServer};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;

#[cfg(feature = "monkey")]
pub mod monkey;
