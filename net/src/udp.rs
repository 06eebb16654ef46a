//! UDP: [`UdpSocket`], mirroring `std::net::UdpSocket`.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::resolve::{ToSocketAddrs, each_addr};
use crate::sys::Evented;

/// A UDP socket whose sends and receives switch to other greenlets instead of blocking
/// the thread (`std::net::UdpSocket`'s counterpart).
///
/// Timeouts expire with [`io::ErrorKind::TimedOut`]. Not `Send` (registered with its
/// thread's hub); [`into_std`](UdpSocket::into_std) gives a std socket for another
/// thread.
///
/// # Examples
///
/// ```
/// use green::net::UdpSocket;
/// let server = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let addr = server.local_addr().unwrap();
/// let echo = green::spawn(move || {
///     let mut buf = [0u8; 64];
///     let (n, from) = server.recv_from(&mut buf).unwrap();
///     server.send_to(&buf[..n], from).unwrap();
/// });
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.connect(addr).unwrap();
/// client.send(b"ping").unwrap();
/// let mut buf = [0u8; 64];
/// let n = client.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// echo.join().unwrap();
/// ```
pub struct UdpSocket {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: std::net::UdpSocket,
}

impl UdpSocket {
    /// Binds a socket to `addr`, trying each address it resolves to.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        // bind(2) does not block: std's bind on a resolved address is fine.
        each_addr(addr, |a| UdpSocket::from_std(std::net::UdpSocket::bind(a)?))
    }

    /// Wraps a std socket: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(green::net::UdpSocket::from_std(s).is_ok());
    /// ```
    pub fn from_std(sock: std::net::UdpSocket) -> io::Result<UdpSocket> {
        sock.set_nonblocking(true)?;
        Ok(UdpSocket {
            ev: Evented::new(sock.as_raw_fd())?,
            sock,
        })
    }

    /// Deregisters the socket and returns it as a blocking std socket.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = s.into_std().unwrap();
    /// std::thread::spawn(move || s.local_addr().unwrap()).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        let sock = self.deregister();
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// Sends `buf` to `addr` (its first resolved address, like std).
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.send_to(b"hi", s.local_addr().unwrap()).unwrap(), 2);
    /// ```
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = *addr.resolve_addrs()?.first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.ev.write(|| self.sock.send_to(buf, to))
    }

    /// Receives a datagram, waiting for one; returns its length and sender.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.send_to(b"hi", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 8];
    /// let (n, from) = s.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"hi"[..], s.local_addr().unwrap()));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.ev.read(|| self.sock.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from) but leaves the datagram queued.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.send_to(b"hi", s.local_addr().unwrap()).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.peek_from(&mut buf).unwrap().0, 2);
    /// assert_eq!(s.recv_from(&mut buf).unwrap().0, 2);
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.ev.read(|| self.sock.peek_from(buf))
    }

    /// Sets the default destination (and the only accepted source) of datagrams.
    ///
    /// ```
    /// let a = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |a| self.sock.connect(a))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.send(b"abc").unwrap(), 3);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.ev.write(|| self.sock.send(buf))
    }

    /// Receives a datagram from the connected peer, waiting for one.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"abc").unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| self.sock.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv) but leaves the datagram queued.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.connect(s.local_addr().unwrap()).unwrap();
    /// s.send(b"abc").unwrap();
    /// assert_eq!(s.peek(&mut [0u8; 8]).unwrap(), 3);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| self.sock.peek(buf))
    }

    /// The local address.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The connected peer's address ([`io::ErrorKind::NotConnected`] if none).
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Sets the receive timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// let err = s.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(dur)
    }

    /// Sets the send timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(dur)
    }

    /// The receive timeout.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.read_timeout())
    }

    /// The send timeout.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.write_timeout())
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_broadcast(true).unwrap();
    /// assert!(s.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sock.set_broadcast(on)
    }

    /// The value of `SO_BROADCAST`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(!s.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_ttl(7).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 7);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with the address
    /// `interface` (`IP_ADD_MEMBERSHIP`; `0.0.0.0` lets the kernel pick one).
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let group = Ipv4Addr::new(224, 0, 0, 123);
    /// s.join_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
    /// s.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).unwrap();
    /// ```
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.join_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](UdpSocket::join_multicast_v4) (`IP_DROP_MEMBERSHIP`).
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let group = Ipv4Addr::new(224, 0, 0, 123);
    /// // Not a member: the kernel says so.
    /// assert!(s.leave_multicast_v4(&group, &Ipv4Addr::LOCALHOST).is_err());
    /// ```
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.leave_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on the interface with the index
    /// `interface` (`IPV6_ADD_MEMBERSHIP`; 0 lets the kernel pick one).
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// // Skipped where the machine has no IPv6 loopback.
    /// if let Ok(s) = green::net::UdpSocket::bind("[::1]:0") {
    ///     let group: Ipv6Addr = "ff02::123".parse().unwrap();
    ///     let lo = 1; // the loopback interface's usual index
    ///     if s.join_multicast_v6(&group, lo).is_ok() {
    ///         s.leave_multicast_v6(&group, lo).unwrap();
    ///     }
    /// }
    /// ```
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](UdpSocket::join_multicast_v6) (`IPV6_DROP_MEMBERSHIP`).
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(s) = green::net::UdpSocket::bind("[::1]:0") {
    ///     let group: Ipv6Addr = "ff02::123".parse().unwrap();
    ///     // Not a member: the kernel says so.
    ///     assert!(s.leave_multicast_v6(&group, 1).is_err());
    /// }
    /// ```
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host receives the IPv4 multicast
    /// datagrams the socket sends.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_multicast_loop_v4(false).unwrap();
    /// assert!(!s.multicast_loop_v4().unwrap());
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock.set_multicast_loop_v4(on)
    }

    /// The value of `IP_MULTICAST_LOOP`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.multicast_loop_v4().unwrap()); // Linux's default
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`, the time-to-live of the IPv4 multicast datagrams the
    /// socket sends (1, the default, keeps them on the local network).
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_multicast_ttl_v4(4).unwrap();
    /// assert_eq!(s.multicast_ttl_v4().unwrap(), 4);
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_multicast_ttl_v4(ttl)
    }

    /// The value of `IP_MULTICAST_TTL`.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.multicast_ttl_v4().unwrap(), 1);
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`: whether this host receives the IPv6 multicast
    /// datagrams the socket sends.
    ///
    /// ```
    /// if let Ok(s) = green::net::UdpSocket::bind("[::1]:0") {
    ///     s.set_multicast_loop_v6(false).unwrap();
    ///     assert!(!s.multicast_loop_v6().unwrap());
    /// }
    /// ```
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock.set_multicast_loop_v6(on)
    }

    /// The value of `IPV6_MULTICAST_LOOP`.
    ///
    /// ```
    /// if let Ok(s) = green::net::UdpSocket::bind("[::1]:0") {
    ///     assert!(s.multicast_loop_v6().unwrap()); // Linux's default
    /// }
    /// ```
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.multicast_loop_v6()
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// A second handle to the same socket (a `dup`, with its own registration).
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let t = s.try_clone().unwrap();
    /// assert_eq!(s.local_addr().unwrap(), t.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let (ev, sock) = self.ev.try_clone(|| self.sock.try_clone())?;
        Ok(UdpSocket { ev, sock })
    }

    /// Moves the socket in or out of std's non-blocking mode: when on, an operation that
    /// would have to wait returns [`io::ErrorKind::WouldBlock`] instead of switching to
    /// other greenlets. (In the kernel the socket is always non-blocking.)
    ///
    /// ```
    /// let s = green::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!(s.recv_from(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Closes the socket for every greenlet sharing it: waiting receivers and senders
    /// wake with [`io::ErrorKind::ConnectionAborted`], as does every later call. The fd
    /// is released on drop.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let s = Rc::new(green::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    /// let s2 = s.clone();
    /// let rx = green::spawn(move || s2.recv_from(&mut [0u8; 8]).map(|_| ()));
    /// green::yield_now();
    /// s.close();
    /// let err = rx.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }

    /// Whether [`close`](UdpSocket::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.ev.is_closed()
    }
}

impl_conversions!(
    UdpSocket(std::net::UdpSocket),
    crate::socket::UDP,
    "a UDP socket"
);

impl_fd!(UdpSocket(std::net::UdpSocket), "socket");

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.sock.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}
