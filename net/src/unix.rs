//! Unix domain sockets: [`UnixListener`] and [`UnixStream`], mirroring
//! `std::os::unix::net`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::sys::Evented;

/// A Unix stream server socket whose [`accept`](UnixListener::accept) switches to
/// other greenlets instead of blocking (`std::os::unix::net::UnixListener`'s
/// counterpart). Not `Send`; see [`into_std`](UnixListener::into_std).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("green-doc-ul-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let listener = UnixListener::bind(&dir).unwrap();
/// let server = green::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     conn.write_all(b"hi").unwrap();
/// });
/// let mut c = UnixStream::connect(&dir).unwrap();
/// let mut buf = [0u8; 2];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// server.join().unwrap();
/// std::fs::remove_file(&dir).unwrap();
/// ```
pub struct UnixListener {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: std::os::unix::net::UnixListener,
    /// How long `accept` waits while the kernel refuses it for want of resources.
    backoff: Cell<Backoff>,
}

/// A Unix stream socket whose reads and writes switch to other greenlets instead of
/// blocking (`std::os::unix::net::UnixStream`'s counterpart). [`Read`](io::Read) and
/// [`Write`](io::Write) are implemented for `&UnixStream` too. Timeouts expire with
/// [`io::ErrorKind::TimedOut`]. Not `Send`; see [`into_std`](UnixStream::into_std).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// let (mut a, mut b) = green::net::UnixStream::pair().unwrap();
/// let writer = green::spawn(move || a.write_all(b"ping").unwrap());
/// let mut buf = [0u8; 4];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"ping");
/// writer.join().unwrap();
/// ```
pub struct UnixStream {
    // Declared first: deregisters before the fd closes.
    ev: Evented,
    sock: std::os::unix::net::UnixStream,
}

impl UnixListener {
    /// Binds a listener to the filesystem path `path` (which must not exist).
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ub-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = green::net::UnixListener::bind(&p).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(p.as_path()));
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Wraps a std listener: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ufs-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
    /// assert!(green::net::UnixListener::from_std(l).is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn from_std(sock: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        sock.set_nonblocking(true)?;
        Ok(UnixListener {
            ev: Evented::new(sock.as_raw_fd())?,
            sock,
            backoff: Cell::new(Backoff::new()),
        })
    }

    /// Deregisters the listener and returns it as a blocking std listener.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-uis-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = green::net::UnixListener::bind(&p).unwrap().into_std().unwrap();
    /// assert!(l.local_addr().is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        let sock = self.deregister();
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// Accepts a connection, switching to other greenlets until one arrives.
    ///
    /// When the process is out of fds (or the system out of resources), the calling
    /// greenlet waits and tries again instead of returning the error, exactly as
    /// [`TcpListener::accept`](crate::TcpListener::accept) does (see there why); in
    /// std's non-blocking mode the error is returned at once.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ua-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = green::net::UnixListener::bind(&p).unwrap();
    /// let _c = green::net::UnixStream::connect(&p).unwrap();
    /// let (s, _addr) = l.accept().unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.ev.accept(&self.backoff, || self.sock.accept())?;
        Ok((UnixStream::from_std(s)?, addr))
    }

    /// The local address.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ula-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = green::net::UnixListener::bind(&p).unwrap();
    /// assert!(l.local_addr().unwrap().as_pathname().is_some());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ute-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = green::net::UnixListener::bind(&p).unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Moves the socket in or out of std's non-blocking mode: when on, an operation that
    /// would have to wait returns [`io::ErrorKind::WouldBlock`] instead of switching to
    /// other greenlets. (In the kernel the socket is always non-blocking.)
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-unb-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let s = green::net::UnixListener::bind(&p).unwrap();
    /// # std::fs::remove_file(&p).unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!(s.accept().map(|_| ()).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Closes the listener for every greenlet sharing it: waiters in
    /// [`accept`](UnixListener::accept) wake with [`io::ErrorKind::ConnectionAborted`].
    ///
    /// ```
    /// use std::rc::Rc;
    /// let p = std::env::temp_dir().join(format!("green-doc-uc-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let l = Rc::new(green::net::UnixListener::bind(&p).unwrap());
    /// let l2 = l.clone();
    /// let acceptor = green::spawn(move || l2.accept().map(|_| ()));
    /// green::yield_now();
    /// l.close();
    /// let err = acceptor.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }
}

/// The first nap before retrying a Unix `connect` to a listener whose backlog is full
/// (the kernel reports no progress through readiness, so there is nothing to park on);
/// each retry doubles it, up to [`UNIX_CONNECT_MAX_NAP`]. Shared with the monkey patch's
/// `connect` hook.
pub(crate) const UNIX_CONNECT_FIRST_NAP: Duration = Duration::from_millis(1);
/// The longest nap between two attempts of a Unix `connect` to a full backlog.
pub(crate) const UNIX_CONNECT_MAX_NAP: Duration = Duration::from_millis(50);

impl UnixStream {
    /// Connects to the socket at `path`. If the listener's backlog is full the
    /// connect is retried after naps of 1 ms doubling to 50 ms (other greenlets run
    /// meanwhile).
    ///
    /// ```
    /// let p = std::env::temp_dir().join(format!("green-doc-ucn-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&p);
    /// let _l = green::net::UnixListener::bind(&p).unwrap();
    /// assert!(green::net::UnixStream::connect(&p).is_ok());
    /// std::fs::remove_file(&p).unwrap();
    /// ```
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let mut nap = UNIX_CONNECT_FIRST_NAP;
        loop {
            match mio::net::UnixStream::connect(path.as_ref()) {
                Ok(s) => return UnixStream::from_std(s.into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Unix connects do not report progress through readiness.
                    green_runtime::sleep(nap);
                    nap = (nap * 2).min(UNIX_CONNECT_MAX_NAP);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair of streams.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut a, mut b) = green::net::UnixStream::pair().unwrap();
    /// a.write_all(b"x").unwrap();
    /// let mut buf = [0u8; 1];
    /// b.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"x");
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a std stream: makes it non-blocking and registers it with this thread's
    /// hub.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// assert!(green::net::UnixStream::from_std(a).is_ok());
    /// ```
    pub fn from_std(sock: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        sock.set_nonblocking(true)?;
        Ok(UnixStream {
            ev: Evented::new(sock.as_raw_fd())?,
            sock,
        })
    }

    /// Deregisters the stream and returns it as a blocking std stream.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// let a = a.into_std().unwrap();
    /// std::thread::spawn(move || a.local_addr().unwrap()).join().unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let sock = self.deregister();
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// The local address.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = green::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 4]).unwrap(), 0);
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
    /// let (s, _peer) = green::net::UnixStream::pair().unwrap();
    /// s.set_nonblocking(true).unwrap();
    /// assert_eq!((&s).read(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.ev.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Closes the stream for every greenlet sharing it: waiters wake with
    /// [`io::ErrorKind::ConnectionAborted`], as does every later call.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::rc::Rc;
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// let a = Rc::new(a);
    /// let a2 = a.clone();
    /// let reader = green::spawn(move || (&*a2).read(&mut [0u8; 4]));
    /// green::yield_now();
    /// a.close();
    /// let err = reader.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
    /// ```
    pub fn close(&self) {
        self.ev.close()
    }

    /// Sets the read timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let (mut a, _b) = green::net::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.read(&mut [0u8; 4]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_read_timeout(dur)
    }

    /// Sets the write timeout ([`io::ErrorKind::TimedOut`] when it expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// a.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), Some(Duration::from_secs(2)));
    /// ```
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.ev.set_write_timeout(dur)
    }

    /// The read timeout.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// assert_eq!(a.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.read_timeout())
    }

    /// The write timeout.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// assert_eq!(a.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.ev.write_timeout())
    }

    /// Takes the pending `SO_ERROR`, if any.
    ///
    /// ```
    /// let (a, _b) = green::net::UnixStream::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// A second handle to the same stream (a `dup`, with its own registration).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (a, mut b) = green::net::UnixStream::pair().unwrap();
    /// let mut a2 = a.try_clone().unwrap();
    /// a2.write_all(b"y").unwrap();
    /// let mut buf = [0u8; 1];
    /// b.read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"y");
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let (ev, sock) = self.ev.try_clone(|| self.sock.try_clone())?;
        Ok(UnixStream { ev, sock })
    }
}

impl_stream_io!(UnixStream, false);

impl_conversions!(
    UnixStream(std::os::unix::net::UnixStream),
    crate::socket::UNIX_STREAM,
    "a Unix stream socket"
);

impl_conversions!(
    UnixListener(std::os::unix::net::UnixListener),
    crate::socket::UNIX_STREAM,
    "a Unix stream socket"
);

impl_fd!(UnixStream(std::os::unix::net::UnixStream), "stream");

impl_fd!(UnixListener(std::os::unix::net::UnixListener), "listener");

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.sock.as_raw_fd())
            .field("closed", &self.ev.is_closed())
            .finish()
    }
}
