//! TCP: [`TcpListener`], [`TcpStream`] and [`Incoming`], mirroring `std::net`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use mio::Interest;

use crate::backoff::Backoff;
use crate::resolve::{ToSocketAddrs, each_addr};
use crate::sys::{self, Evented};

/// Backlog of the listeners made by [`TcpListener::bind`] (the kernel caps it at
/// `net.core.somaxconn`).
const BACKLOG: libc::c_int = 1024;

/// A TCP server socket whose [`accept`](TcpListener::accept) switches to other
/// greenlets instead of blocking the thread (`std::net::TcpListener`'s counterpart).
///
/// The socket is non-blocking in the kernel and registered with the hub of the thread
/// that made it, so it is not `Send`; use [`into_std`](TcpListener::into_std) to move it
/// to another thread. Outside any greenlet (a plain thread) it works as an ordinary
/// blocking listener: the thread's main greenlet drives the hub while it waits.
///
/// # Examples
///
/// An echo server that serves each connection in its own greenlet:
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = green::spawn(move || {
///     let (mut conn, _peer) = listener.accept().unwrap();
///     let mut buf = [0u8; 64];
///     let n = conn.read(&mut buf).unwrap();
///     conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
/// });
/// let mut client = TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut reply = [0u8; 5];
/// client.read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"HELLO");
/// server.join().unwrap();
/// ```
pub struct TcpListener {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: mio::net::TcpListener,
    /// How long `accept` waits while the kernel refuses it for want of resources.
    backoff: Cell<Backoff>,
}

/// A TCP connection whose reads, writes and connect switch to other greenlets instead
/// of blocking the thread (`std::net::TcpStream`'s counterpart).
///
/// [`Read`](io::Read) and [`Write`](io::Write) are implemented for `&TcpStream` too, so
/// one greenlet may read while another writes (share it with an `Rc`).
/// [`close`](TcpStream::close) wakes every greenlet waiting on the stream with an error.
///
/// Timeouts set by [`set_read_timeout`](TcpStream::set_read_timeout) and
/// [`set_write_timeout`](TcpStream::set_write_timeout) are kept by the stream (not the
/// kernel) and expire with [`io::ErrorKind::TimedOut`] — std on Linux reports
/// `WouldBlock` for the kernel's `SO_RCVTIMEO`.
///
/// Not `Send`: the stream is registered with its thread's hub. Use
/// [`into_std`](TcpStream::into_std) to move it to another thread.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let (mut b, _) = listener.accept().unwrap();
/// a.write_all(b"ping").unwrap();
/// let mut buf = [0u8; 4];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// ```
pub struct TcpStream {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: std::net::TcpStream,
}

/// An endless iterator over the connections of a [`TcpListener`], made by
/// [`TcpListener::incoming`]. Each `next` is an [`accept`](TcpListener::accept).
///
/// ```
/// use green::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let conn = listener.incoming().next().unwrap().unwrap();
/// assert!(conn.peer_addr().unwrap().ip().is_loopback());
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpListener {
    /// Binds a listener to `addr` (trying each address it resolves to, like std), with
    /// `SO_REUSEADDR` and a backlog of 1024. Port 0 picks a free port.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            TcpListener::from_std(sys::tcp_listener(a, false, BACKLOG)?)
        })
    }

    /// Like [`bind`](TcpListener::bind) but with a listen backlog of `backlog`
    /// connections instead of 1024: how many fully open connections the kernel queues
    /// until [`accept`](TcpListener::accept) takes them (connections beyond it wait in
    /// the SYN stage or are dropped). The kernel caps it at `net.core.somaxconn`
    /// (4096 by default since Linux 5.4); values above `i32::MAX` are capped there.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind_with_backlog("127.0.0.1:0", 4096).unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind_with_backlog(addr: impl ToSocketAddrs, backlog: u32) -> io::Result<TcpListener> {
        let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
        each_addr(addr, |a| {
            TcpListener::from_std(sys::tcp_listener(a, false, backlog)?)
        })
    }

    /// Like [`bind`](TcpListener::bind) but also sets `SO_REUSEPORT`, so that several
    /// listeners (one per thread, each with its own hub) can share one port and the
    /// kernel spreads the connections between them. See `examples/multicore_echo.rs`.
    ///
    /// ```
    /// use green::net::TcpListener;
    /// let a = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
    /// let b = TcpListener::bind_reuseport(a.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            TcpListener::from_std(sys::tcp_listener(a, true, BACKLOG)?)
        })
    }

    /// Wraps a std listener: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = green::net::TcpListener::from_std(std_l).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        let ev = Evented::new(listener.as_raw_fd())?;
        Ok(TcpListener {
            ev,
            sock: mio::net::TcpListener::from_std(listener),
            backoff: Cell::new(Backoff::new()),
        })
    }

    /// Deregisters the listener and returns it as a blocking std listener, which may be
    /// sent to another thread.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_l = l.into_std().unwrap();
    /// std::thread::spawn(move || std_l.local_addr().unwrap()).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::from(self.deregister());
        l.set_nonblocking(false)?;
        Ok(l)
    }

    /// Accepts a connection, switching to other greenlets until one arrives.
    ///
    /// # Running out of fds
    ///
    /// When the kernel refuses the connection for want of resources (`EMFILE`: the
    /// process has no fd left; `ENFILE`, `ENOBUFS`, `ENOMEM`), `accept` does not return
    /// the error: the calling greenlet sleeps, letting the others run, and tries again,
    /// waiting 10 ms after the first refusal and twice as long after each further one,
    /// up to 1 s; an accepted connection starts the next episode at 10 ms again. The
    /// connection stays queued meanwhile. Retrying is the only useful reaction to these
    /// errors, and a caller that got them back would most likely retry at once: the
    /// listener stays readable, so such a loop never waits and keeps the whole thread,
    /// including the greenlets whose work would free fds. One warning is logged when an
    /// episode starts (with the error and the listener's fd and address) and one info
    /// line when it ends (how many retries, how long).
    ///
    /// In std's non-blocking mode ([`set_nonblocking`](TcpListener::set_nonblocking))
    /// these errors are returned at once, like any other. A listener
    /// [`close`](TcpListener::close)d while `accept` waits ends the wait with an error.
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, peer) = l.accept().unwrap();
    /// assert_eq!(peer, c.local_addr().unwrap());
    /// assert_eq!(s.peer_addr().unwrap(), peer);
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.ev.accept(&self.backoff, || self.sock.accept())?;
        Ok((TcpStream::from_connected(s.into())?, peer))
    }

    /// An iterator of [`accept`](TcpListener::accept)ed connections (which waits, as
    /// `accept` does, while the process is out of fds).
    ///
    /// ```
    /// use green::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// for conn in l.incoming().take(1) {
    ///     assert!(conn.is_ok());
    /// }
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address the listener is bound to.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sets `IP_TTL` for the connections accepted from now on.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(42).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 42);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// The value of `IP_TTL` (see [`set_ttl`](TcpListener::set_ttl)).
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Moves the socket in or out of std's non-blocking mode: when on, an operation that
    /// would have to wait returns [`io::ErrorKind::WouldBlock`] instead of switching to
    /// other greenlets. (In the kernel the socket is always non-blocking.)
    ///
    /// ```
    /// let s = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!(s.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Closes the listener for every greenlet sharing it (gevent's `socket.close()`):
    /// greenlets waiting in [`accept`](TcpListener::accept) wake with an error of kind
    /// [`io::ErrorKind::ConnectionAborted`], and so does every later call. The port is
    /// released when the listener is dropped.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let l = Rc::new(green::net::TcpListener::bind("127.0.0.1:0").unwrap());
    /// let l2 = l.clone();
    /// let acceptor = green::spawn(move || l2.accept().map(|_| ()));
    /// green::yield_now(); // the acceptor parks in accept
    /// l.close();
    /// let err = acceptor.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }

    /// Whether [`close`](TcpListener::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.ev.is_closed()
    }
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to in turn (like
    /// std). The connect is non-blocking: other greenlets run until it completes. A
    /// refused connection is [`io::ErrorKind::ConnectionRefused`].
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_inner(a, None))
    }

    /// Opens a connection to `addr`, failing with [`io::ErrorKind::TimedOut`] if it
    /// does not complete within `timeout`. A zero timeout is an
    /// [`io::ErrorKind::InvalidInput`] error, as in std.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let s = green::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), addr);
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_inner(addr, Some(timeout))
    }

    fn connect_inner(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let until = sys::deadline(timeout);
        // mio's connect is non-blocking (EINPROGRESS is its Ok).
        let stream = TcpStream::from_connected(mio::net::TcpStream::connect(*addr)?.into())?;
        loop {
            if let Some(e) = stream.sock.take_error()? {
                return Err(e);
            }
            match stream.sock.peer_addr() {
                Ok(_) => return Ok(stream),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    stream.ev.wait(Interest::WRITABLE, until)?
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Registers an already non-blocking stream.
    fn from_connected(sock: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            ev: Evented::new(sock.as_raw_fd())?,
            sock,
        })
    }

    /// Wraps a std stream: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = green::net::TcpStream::from_std(std_s).unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_connected(stream)
    }

    /// Deregisters the stream and returns it as a blocking std stream (without the
    /// timeouts), which may be sent to another thread.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let std_s = s.into_std().unwrap();
    /// std::thread::spawn(move || std_s.peer_addr().unwrap()).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let sock = self.deregister();
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// The remote address.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Shuts down the read half, the write half or both (see
    /// [`std::net::TcpStream::shutdown`]). Unlike [`close`](TcpStream::close), greenlets
    /// blocked on the stream see EOF or a broken pipe, not an abort.
    ///
    /// ```
    /// use std::io::Read;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// c.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0); // EOF
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Moves the socket in or out of std's non-blocking mode: when on, an operation that
    /// would have to wait returns [`io::ErrorKind::WouldBlock`] instead of switching to
    /// other greenlets. (In the kernel the socket is always non-blocking.)
    ///
    /// ```
    /// use std::io::Read;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!((&s).read(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Closes the stream for every greenlet sharing it (gevent's `socket.close()`): it
    /// shuts the connection down, greenlets waiting to read or write wake with an error
    /// of kind [`io::ErrorKind::ConnectionAborted`], and so does every later call. The
    /// file descriptor itself is released when the stream is dropped.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::rc::Rc;
    /// use green::net::{TcpListener, TcpStream};
    /// let l = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let _peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = Rc::new(l.accept().unwrap().0);
    /// let s2 = s.clone();
    /// let reader = green::spawn(move || (&*s2).read(&mut [0u8; 8]));
    /// green::yield_now(); // the reader parks: nothing to read
    /// s.close();
    /// let err = reader.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }

    /// Reads without removing the data from the queue, waiting for some like
    /// [`read`](io::Read::read).
    ///
    /// ```
    /// use std::io::Write;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// c.write_all(b"hi").unwrap();
    /// let mut buf = [0u8; 2];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 2);
    /// assert_eq!(s.peek(&mut buf).unwrap(), 2); // still there
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.ev.read(|| self.sock.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.set_nodelay(nodelay)
    }

    /// The value of `TCP_NODELAY`.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(9).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 9);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// The value of `IP_TTL`.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.ttl().unwrap() > 0);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Sets the read timeout: a read (or peek) that waits longer fails with
    /// [`io::ErrorKind::TimedOut`] (std on Linux says `WouldBlock`). `None` waits
    /// forever; `Some(Duration::ZERO)` is an [`io::ErrorKind::InvalidInput`] error.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// let err = s.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(dur)
    }

    /// Sets the write timeout: a write that waits longer for buffer space fails with
    /// [`io::ErrorKind::TimedOut`]. `None` waits forever.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(dur)
    }

    /// The read timeout (see [`set_read_timeout`](TcpStream::set_read_timeout)).
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.read_timeout())
    }

    /// The write timeout (see [`set_write_timeout`](TcpStream::set_write_timeout)).
    ///
    /// ```
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.write_timeout())
    }

    /// A second handle to the same connection (a `dup` of the fd, with its own
    /// registration and a copy of the timeouts), e.g. to move the write half into
    /// another greenlet by value. [`close`](TcpStream::close) on either shuts the
    /// connection down for both.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let l = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut a = green::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (b, _) = l.accept().unwrap();
    /// let mut b2 = b.try_clone().unwrap();
    /// b2.write_all(b"x").unwrap();
    /// let mut buf = [0u8; 1];
    /// a.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"x");
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let (ev, sock) = self.ev.try_clone(|| self.sock.try_clone())?;
        Ok(TcpStream { ev, sock })
    }
}

impl_stream_io!(TcpStream, true);

impl_conversions!(
    TcpStream(std::net::TcpStream),
    crate::socket::TCP,
    "a TCP socket"
);

impl_conversions!(
    TcpListener(std::net::TcpListener),
    crate::socket::TCP,
    "a TCP socket"
);

impl_fd!(TcpStream(std::net::TcpStream), "stream");

impl_fd!(TcpListener(mio::net::TcpListener), "listener");

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.sock.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.sock.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.sock.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}
