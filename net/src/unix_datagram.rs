//! Unix datagram sockets: [`UnixDatagram`], mirroring
//! `std::os::unix::net::UnixDatagram`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mio::Interest;

use crate::sys::{self, Evented};
use crate::unix::{UNIX_CONNECT_FIRST_NAP, UNIX_CONNECT_MAX_NAP};

/// A Unix datagram socket whose sends and receives switch to other greenlets instead of
/// blocking the thread (`std::os::unix::net::UnixDatagram`'s counterpart).
///
/// Timeouts expire with [`io::ErrorKind::TimedOut`]. A send to a receiver whose queue is
/// full waits until the receiver has room (std's blocking socket does the same). Not
/// `Send` (registered with its thread's hub); [`into_std`](UnixDatagram::into_std) gives
/// a std socket for another thread.
///
/// # Examples
///
/// ```
/// use green::net::UnixDatagram;
///
/// let (a, b) = UnixDatagram::pair().unwrap();
/// let echo = green::spawn(move || {
///     let mut buf = [0u8; 64];
///     let n = b.recv(&mut buf).unwrap();
///     b.send(&buf[..n].to_ascii_uppercase()).unwrap();
/// });
/// a.send(b"ping").unwrap();
/// let mut buf = [0u8; 64];
/// let n = a.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"PING");
/// echo.join().unwrap();
/// ```
pub struct UnixDatagram {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: std::os::unix::net::UnixDatagram,
}

impl UnixDatagram {
    /// Makes a socket bound to the filesystem path `path` (which must not exist).
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-udb-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let s = green::net::UnixDatagram::bind(&p).unwrap();
    /// assert_eq!(s.local_addr().unwrap().as_pathname(), Some(p.as_path()));
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// Makes a socket bound to `addr` (a path, or on Linux an abstract name).
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// let name = format!("green-doc-udba-{}", std::process::id());
    /// let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let s = green::net::UnixDatagram::bind_addr(&addr).unwrap();
    /// assert_eq!(s.local_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    /// ```
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// Makes a socket bound to no address: it can send, but its receivers see an
    /// unnamed sender and cannot reply.
    ///
    /// ```
    /// let s = green::net::UnixDatagram::unbound().unwrap();
    /// assert!(s.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A pair of sockets connected to each other.
    ///
    /// ```
    /// let (a, b) = green::net::UnixDatagram::pair().unwrap();
    /// a.send(b"x").unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 1);
    /// ```
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std socket: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    /// assert!(green::net::UnixDatagram::from_std(s).is_ok());
    /// ```
    pub fn from_std(sock: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        sock.set_nonblocking(true)?;
        Ok(UnixDatagram {
            ev: Evented::new(sock.as_raw_fd())?,
            sock,
        })
    }

    /// Deregisters the socket and returns it as a blocking std socket.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// let a = a.into_std().unwrap();
    /// std::thread::spawn(move || a.send(b"x").unwrap()).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        let sock = self.deregister();
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// Sets the default destination (and the only accepted source) of datagrams to
    /// the socket at `path`.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-udc-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let server = green::net::UnixDatagram::bind(&p).unwrap();
    /// let client = green::net::UnixDatagram::unbound().unwrap();
    /// client.connect(&p).unwrap();
    /// assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
    /// # drop(server);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        // A Unix datagram connect completes at once: nothing to wait for.
        self.sock.connect(path)
    }

    /// Like [`connect`](UnixDatagram::connect), to a socket address (a path, or on Linux
    /// an abstract name).
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("green-doc-udca-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let server = green::net::UnixDatagram::bind_addr(&addr).unwrap();
    /// let client = green::net::UnixDatagram::unbound().unwrap();
    /// client.connect_addr(&server.local_addr().unwrap()).unwrap();
    /// assert_eq!(client.peer_addr().unwrap().as_abstract_name(), Some(name.as_bytes()));
    /// ```
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.connect_addr(addr)
    }

    /// Sends `buf` to the connected peer, waiting while the peer's queue is full.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.send(b"abc").unwrap(), 3);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        // The kernel reports room in a connected peer's queue as an edge.
        self.ev.write(|| self.sock.send(buf))
    }

    /// Sends `buf` to the socket at `path`, waiting while that socket's queue is full.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-udst-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let server = green::net::UnixDatagram::bind(&p).unwrap();
    /// let client = green::net::UnixDatagram::unbound().unwrap();
    /// assert_eq!(client.send_to(b"hi", &p).unwrap(), 2);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(server.recv(&mut buf).unwrap(), 2);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_unconnected(|| self.sock.send_to(buf, path))
    }

    /// Like [`send_to`](UnixDatagram::send_to), to a socket address (a path, or on Linux
    /// an abstract name).
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// let name = format!("green-doc-udsa-{}", std::process::id());
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    /// let server = green::net::UnixDatagram::bind_addr(&addr).unwrap();
    /// let client = green::net::UnixDatagram::unbound().unwrap();
    /// assert_eq!(client.send_to_addr(b"hi", &addr).unwrap(), 2);
    /// assert_eq!(server.recv(&mut [0u8; 8]).unwrap(), 2);
    /// ```
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_unconnected(|| self.sock.send_to_addr(buf, addr))
    }

    /// Runs a send to an address other than a connected peer's, with the write timeout.
    ///
    /// When the destination's queue is full the kernel refuses the send and does not
    /// tell this socket when room appears (it does for a connected peer); instead each
    /// refused send raises a writable edge at once, so waiting for edges would spin.
    /// After a refusal the send is tried again after naps of 1 ms doubling to 50 ms, as
    /// `UnixStream::connect` does for a full backlog.
    fn send_unconnected(&self, mut f: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        let until = sys::deadline(self.ev.write_timeout());
        // One try through `op`, which checks the closed flag and returns `WouldBlock`
        // in std's non-blocking mode; in blocking mode a refusal ends its wait at once
        // with `TimedOut`.
        match self.ev.op(Interest::WRITABLE, Some(Duration::ZERO), &mut f) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            r => return r,
        }
        let mut nap = UNIX_CONNECT_FIRST_NAP;
        loop {
            let nap_now = match until {
                Some(u) => match u.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => nap.min(left),
                    _ => return Err(io::ErrorKind::TimedOut.into()),
                },
                None => nap,
            };
            green_runtime::sleep(nap_now);
            nap = (nap * 2).min(UNIX_CONNECT_MAX_NAP);
            if self.ev.is_closed() {
                return Err(sys::closed_error());
            }
            match f() {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                r => return r,
            }
        }
    }

    /// Receives a datagram, waiting for one; returns its length and sender.
    ///
    /// ```
    /// let (a, b) = green::net::UnixDatagram::pair().unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0u8; 8];
    /// let (n, from) = b.recv_from(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"hi");
    /// assert!(from.is_unnamed());
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.ev.read(|| match self.sock.recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.read_shut() => {
                // What std's blocking call returns: nothing, from no one.
                Ok((0, SocketAddr::from_pathname("")?))
            }
            r => r,
        })
    }

    /// Receives a datagram, waiting for one; returns its length.
    ///
    /// ```
    /// let (a, b) = green::net::UnixDatagram::pair().unwrap();
    /// let reader = green::spawn(move || {
    ///     let mut buf = [0u8; 8];
    ///     let n = b.recv(&mut buf).unwrap();
    ///     buf[..n].to_vec()
    /// });
    /// a.send(b"later").unwrap();
    /// assert_eq!(reader.join().unwrap(), b"later");
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| match self.sock.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.read_shut() => Ok(0),
            r => r,
        })
    }

    /// Whether the receiving half is shut down. Then std's blocking receive returns 0 at
    /// once, but the non-blocking one returns `WouldBlock` and no edge follows: asked
    /// after each `WouldBlock`, before the receive would wait.
    #[cfg(target_os = "linux")]
    fn read_shut(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `p` and `zero` are live for the call; one pollfd; no signal mask.
        // `ppoll` itself, not libc's `poll`, which the monkey patch hooks.
        let r = unsafe {
            crate::sys::raw_syscall(
                libc::SYS_ppoll,
                [
                    &mut p as *mut libc::pollfd as libc::c_long,
                    1,
                    &zero as *const libc::timespec as libc::c_long,
                    0,
                    0,
                    0,
                ],
            )
        };
        r == 1 && p.revents & libc::POLLRDHUP != 0
    }

    #[cfg(not(target_os = "linux"))]
    fn read_shut(&self) -> bool {
        false
    }

    /// The local address.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The connected peer's address ([`io::ErrorKind::NotConnected`] if none).
    ///
    /// ```
    /// let s = green::net::UnixDatagram::unbound().unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Sets the receive timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// let err = a.recv(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(dur)
    }

    /// Sets the send timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// a.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(dur)
    }

    /// The receive timeout.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.read_timeout())
    }

    /// The send timeout.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.write_timeout())
    }

    /// Moves the socket in or out of std's non-blocking mode: when on, an operation that
    /// would have to wait returns [`io::ErrorKind::WouldBlock`] instead of switching to
    /// other greenlets. (In the kernel the socket is always non-blocking.)
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// assert_eq!(a.recv(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Shuts down the receiving half, the sending half or both.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(a.send(b"x").unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let s = green::net::UnixDatagram::unbound().unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// A second handle to the same socket (a `dup`, with its own registration).
    ///
    /// ```
    /// let (a, b) = green::net::UnixDatagram::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// a2.send(b"y").unwrap();
    /// assert_eq!(b.recv(&mut [0u8; 4]).unwrap(), 1);
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let (ev, sock) = self.ev.try_clone(|| self.sock.try_clone())?;
        Ok(UnixDatagram { ev, sock })
    }

    /// Closes the socket for every greenlet sharing it: waiting receivers and senders
    /// wake with [`io::ErrorKind::ConnectionAborted`], as does every later call. The fd
    /// is released on drop.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let (a, _b) = green::net::UnixDatagram::pair().unwrap();
    /// let a = Rc::new(a);
    /// let a2 = a.clone();
    /// let rx = green::spawn(move || a2.recv(&mut [0u8; 8]));
    /// green::yield_now();
    /// a.close();
    /// let err = rx.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }
}

impl_conversions!(
    UnixDatagram(std::os::unix::net::UnixDatagram),
    crate::socket::UNIX_DGRAM,
    "a Unix datagram socket"
);

impl_fd!(UnixDatagram(std::os::unix::net::UnixDatagram), "socket");

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}
