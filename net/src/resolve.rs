//! Name resolution that does not block the hub (gevent's threadpool resolver).
//!
//! `getaddrinfo` blocks, so a host name is resolved on a helper thread through
//! [`green::run_blocking`](green_runtime::run_blocking) while the calling greenlet parks
//! and the others run. Socket addresses and IP literals (`"127.0.0.1:80"`,
//! `("::1", 80)`) are parsed in place, with no thread involved.
//!
//! [`ToSocketAddrs`] is this crate's counterpart of [`std::net::ToSocketAddrs`],
//! implemented for the same types, so `TcpStream::connect("example.com:80")` and
//! `TcpListener::bind(("127.0.0.1", 0))` read as with std.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Values that name one or more socket addresses: what [`TcpStream::connect`],
/// [`TcpListener::bind`] and [`UdpSocket::bind`] accept.
///
/// Implemented for the same types as [`std::net::ToSocketAddrs`]. A host name is
/// resolved with `getaddrinfo` on a helper thread through
/// [`green::run_blocking`](green_runtime::run_blocking) (gevent's threadpool resolver):
/// the calling greenlet parks and the others run. Socket addresses and IP literals
/// (`"127.0.0.1:80"`, `("::1", 80)`) are parsed in place, with no thread involved.
///
/// [`TcpStream::connect`]: crate::TcpStream::connect
/// [`TcpListener::bind`]: crate::TcpListener::bind
/// [`UdpSocket::bind`]: crate::UdpSocket::bind
///
/// # Examples
///
/// ```
/// use green::net::ToSocketAddrs;
/// let addrs = ("127.0.0.1", 80).resolve_addrs().unwrap();
/// assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// ```
pub trait ToSocketAddrs {
    /// Resolves `self` to socket addresses, parking the greenlet (not the thread) while a
    /// host name is looked up.
    ///
    /// ```
    /// use green::net::ToSocketAddrs;
    /// let a: std::net::SocketAddr = "10.0.0.1:7".parse().unwrap();
    /// assert_eq!(a.resolve_addrs().unwrap(), [a]);
    /// ```
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>>;
}

impl ToSocketAddrs for SocketAddr {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V4(self.0), self.1)])
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V6(self.0), self.1)])
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        let (host, port) = *self;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        lookup(host.to_owned(), port)
    }
}

impl ToSocketAddrs for (String, u16) {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).resolve_addrs()
    }
}

impl ToSocketAddrs for str {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr]);
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("invalid socket address {self:?}: no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(format!("invalid port in socket address {self:?}")))?;
        (host, port).resolve_addrs()
    }
}

impl ToSocketAddrs for String {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().resolve_addrs()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn resolve_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve_addrs()
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Resolves `host` and `port` with `getaddrinfo` on a helper thread.
fn lookup(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let name = host.clone();
    let res = green_runtime::run_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port)).map(Vec::from_iter)
    });
    match res {
        Ok(v) if v.is_empty() => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cannot resolve host {host:?}: no addresses"),
        )),
        Ok(v) => Ok(v),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot resolve host {host:?}: {e}"),
        )),
    }
}

/// Resolves `addr` to socket addresses, looking host names up on a helper thread
/// (gevent's `socket.getaddrinfo` with the threadpool resolver; tokio's `lookup_host`).
///
/// An unknown host is an error naming the host; other greenlets keep running during the
/// lookup.
///
/// # Examples
///
/// ```
/// let addrs = green::net::lookup_host("localhost:80").unwrap();
/// assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
///
/// let err = green::net::lookup_host(("no-such-host.invalid", 80)).unwrap_err();
/// assert!(err.to_string().contains("no-such-host.invalid"));
/// ```
pub fn lookup_host(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    addr.resolve_addrs()
}

/// Calls `f` on each address `addr` resolves to until one succeeds, like std does;
/// returns the last error otherwise.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.resolve_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}
