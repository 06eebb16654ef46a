//! [`StreamServer`]: a TCP server running a handler in a greenlet per connection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{Bind, Core, Endpoint, Inner, Pause};
use crate::{TcpListener, TcpStream};

/// The listen backlog of a server made with an address, unless set with
/// [`StreamServer::backlog`]: the same as [`TcpListener::bind`]'s.
const DEFAULT_BACKLOG: u32 = 1024;

type Handler = dyn Fn(TcpStream, SocketAddr);

/// A TCP server (gevent's `StreamServer`): accepts connections in a greenlet of its own
/// and calls the handler with each, in a new greenlet, with the peer's address.
///
/// ```text
/// new(addr, handler) ──start()──▶ listening ──stop(grace) / close()──▶ closed
/// ```
///
/// - **Before [`start`](StreamServer::start)** nothing listens: made with an address,
///   the server binds it when it starts (connections before that are refused); made
///   with a [`TcpListener`], the kernel queues connections on it as on any listener.
/// - **[`close`](StreamServer::close)** stops accepting at once: the listener is shut
///   down, so new connections are refused, and the ones queued and not yet accepted are
///   reset. Handlers already running go on. **[`stop`](StreamServer::stop)** does the
///   same, then gives the running handlers a grace period, kills those still running
///   when it ends (an unwind at their switch point, so their destructors run and their
///   connections close) and returns when they are gone.
/// - **[`serve_forever`](StreamServer::serve_forever)** starts the server and waits
///   until it is closed and its handlers have ended.
/// - **The concurrency limit** ([`max_connections`](StreamServer::max_connections)):
///   while that many handlers run, the server accepts nothing; connections wait in the
///   kernel's queue, whose length is the [`backlog`](StreamServer::backlog).
/// - **Errors**: binding is reported by `start`. A handler that panics ends its own
///   greenlet (and connection) only; the runtime logs the panic through `log`. When the
///   process runs out of fds, [`TcpListener::accept`] waits and retries (10 ms,
///   doubling up to 1 s; the connections stay queued), and so the server's loop does.
///   Other errors of accept are logged and retried after a pause that doubles the same
///   way, except those about one connection (reset or aborted before it was accepted),
///   which are skipped.
///
/// The server is a handle (clones share it) bound to the thread of its hub (`!Send`).
/// Dropping the last handle closes it (without waiting for the handlers); a handler
/// holding a clone keeps it open until it is closed.
///
/// # Examples
///
/// An upper-casing echo server that serves two clients, then stops:
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use green::net::{StreamServer, TcpStream};
///
/// let server = StreamServer::new("127.0.0.1:0", |mut conn: TcpStream, _peer| {
///     let mut buf = [0u8; 64];
///     while let Ok(n @ 1..) = conn.read(&mut buf) {
///         if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
///             break;
///         }
///     }
/// });
/// server.start().unwrap();
/// let addr = server.local_addr().unwrap();
/// for word in ["ping", "pong"] {
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(word.as_bytes()).unwrap();
///     let mut reply = [0u8; 4];
///     client.read_exact(&mut reply).unwrap();
///     assert_eq!(reply, word.to_uppercase().as_bytes());
/// }
/// server.stop(Duration::from_secs(1));
/// assert!(TcpStream::connect(addr).is_err()); // refused
/// ```
#[derive(Clone)]
pub struct StreamServer(Rc<Inner<TcpListener>>);

impl Endpoint for TcpListener {
    type Handler = Handler;
    const KIND: &'static str = "StreamServer";
    const LIMIT: &'static str = "max_connections";

    fn bind(addrs: &[SocketAddr], backlog: u32) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(addrs, backlog)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    fn serve(core: &Rc<Core>, listener: &Rc<TcpListener>, handler: &Rc<Handler>) {
        accept_loop(core, listener, handler);
    }

    /// Shuts the listener down: new connections are refused, and the accept loop wakes.
    fn end_loop(_core: &Core, listener: Option<&TcpListener>) {
        if let Some(l) = listener {
            l.close();
        }
    }
}

impl StreamServer {
    /// A server that will listen on `listen` (see [`Bind`]: an address to bind when it
    /// starts, or a [`TcpListener`]) and run `handler` in a new greenlet for each
    /// connection, with the peer's address. The connection closes when the handler drops
    /// it. Nothing listens until [`start`](StreamServer::start).
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_conn, peer| println!("{peer}"));
    /// assert!(!server.started());
    /// ```
    pub fn new<H>(listen: impl Bind<TcpListener>, handler: H) -> StreamServer
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let inner = Inner::new(listen.into_source(), Rc::new(handler), DEFAULT_BACKLOG);
        StreamServer(Rc::new(inner))
    }

    /// Sets the listen backlog used when the server binds its address at start (default
    /// 1024; the kernel caps it at `net.core.somaxconn`): how many connections the
    /// kernel queues while the server is not accepting, as when it is at its
    /// [`max_connections`](StreamServer::max_connections). No effect on a server made
    /// with a [`TcpListener`] (use [`TcpListener::bind_with_backlog`]) or one already
    /// started.
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_, _| {}).backlog(4096);
    /// server.start().unwrap();
    /// ```
    pub fn backlog(self, backlog: u32) -> StreamServer {
        self.0.backlog.set(backlog);
        self
    }

    /// Limits the handlers running at once to `n` (gevent's `spawn=Pool(n)`): while `n`
    /// connections are being handled, the server accepts no more; new connections wait
    /// in the kernel's queue (see [`backlog`](StreamServer::backlog)) until a handler
    /// ends, instead of being accepted and dropped. Takes effect at the next accept if
    /// the server is running. `n` = 0 makes [`start`](StreamServer::start) fail with
    /// [`io::ErrorKind::InvalidInput`].
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_, _| {}).max_connections(1000);
    /// server.start().unwrap();
    /// ```
    pub fn max_connections(self, n: usize) -> StreamServer {
        self.0.core.limit.set(Some(n));
        self
    }

    /// Binds the address (if the server was made with one) and starts accepting in a
    /// greenlet of its own; returns once the server listens (connections made from now
    /// on queue until that greenlet runs).
    ///
    /// Errors: binding (say, [`io::ErrorKind::AddrInUse`]; a server whose start failed
    /// this way can be started again), an address that did not resolve, a limit of 0,
    /// and starting a server already started or closed.
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let a = StreamServer::new("127.0.0.1:0", |_, _| {});
    /// a.start().unwrap();
    /// assert!(a.started());
    /// // The same port again: the error, not a panic.
    /// let b = StreamServer::new(a.local_addr().unwrap(), |_, _| {});
    /// assert_eq!(b.start().unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn start(&self) -> io::Result<()> {
        self.0.start()
    }

    /// Starts the server if it is not started, then waits until it is closed (by
    /// [`stop`](StreamServer::stop) or [`close`](StreamServer::close) from another
    /// greenlet, or a handler) and no handler is left. If the greenlet waiting here is
    /// killed (or a [`Timeout`](green_runtime::Timeout) expires), the server is closed
    /// and its handlers are killed.
    ///
    /// Errors: those of [`start`](StreamServer::start), and waiting in the hub.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_, _| {});
    /// let s = server.clone();
    /// green::spawn(move || {
    ///     green::sleep(Duration::from_millis(10));
    ///     s.stop(Duration::from_secs(1));
    /// });
    /// server.serve_forever().unwrap(); // returns once stopped
    /// assert!(server.closed());
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.0.serve_forever()
    }

    /// Stops the server: stops accepting at once (as [`close`](StreamServer::close)
    /// does), gives the running handlers `grace` to end, then kills those left (they
    /// unwind at their switch point) and returns when all are gone. The caller may be a
    /// handler: it is neither waited for nor killed. Stopping a stopped server waits
    /// for its handlers again (none).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use green::net::{StreamServer, TcpStream};
    ///
    /// // A handler that would never end by itself:
    /// let server = StreamServer::new("127.0.0.1:0", |_conn, _| green::sleep(Duration::MAX));
    /// server.start().unwrap();
    /// let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    /// while server.connections() == 0 {
    ///     green::sleep(Duration::from_millis(1));
    /// }
    /// let t = Instant::now();
    /// server.stop(Duration::from_millis(50));
    /// assert!(t.elapsed() >= Duration::from_millis(50)); // the grace period, then the kill
    /// assert_eq!(server.connections(), 0);
    /// ```
    pub fn stop(&self, grace: Duration) {
        self.0.stop(grace);
    }

    /// Stops accepting at once, without waiting: the listener is shut down (new
    /// connections are refused, those queued are reset) and released once the accept
    /// greenlet has run; running handlers go on. Closing twice does nothing.
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_, _| {});
    /// server.start().unwrap();
    /// server.close();
    /// assert!(server.closed() && !server.started());
    /// assert!(server.start().is_err()); // a server starts once
    /// ```
    pub fn close(&self) {
        self.0.close();
    }

    /// The address the server listens on: known once started, or from the start when
    /// made with a listener ([`io::ErrorKind::NotConnected`] before). After it is
    /// closed, the address it listened on.
    ///
    /// ```
    /// use green::net::StreamServer;
    /// let server = StreamServer::new("127.0.0.1:0", |_, _| {});
    /// assert!(server.local_addr().is_err()); // not bound yet
    /// server.start().unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Whether the server is listening: started and not closed.
    ///
    /// ```
    /// let server = green::net::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// assert!(!server.started());
    /// server.start().unwrap();
    /// assert!(server.started());
    /// ```
    pub fn started(&self) -> bool {
        self.0.core.is_started()
    }

    /// Whether the server was closed (by [`close`](StreamServer::close),
    /// [`stop`](StreamServer::stop), or a fatal accept error, which is logged).
    ///
    /// ```
    /// let server = green::net::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// server.close();
    /// assert!(server.closed());
    /// ```
    pub fn closed(&self) -> bool {
        self.0.core.is_closed()
    }

    /// How many handlers are running (connections being handled).
    ///
    /// ```
    /// let server = green::net::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// assert_eq!(server.connections(), 0);
    /// ```
    pub fn connections(&self) -> usize {
        self.0.core.running()
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f, "connections")
    }
}

/// Whether an accept error concerns one connection only (it was reset or aborted while
/// queued): the next accept may succeed at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(libc::EPROTO)
}

/// Whether an accept error means that the listener is unusable (not a listening socket
/// any more): the server closes.
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EOPNOTSUPP)
    )
}

/// The server's greenlet: accepts while a handler slot is free and runs the handler
/// for each connection in a new greenlet, until the server is closed.
fn accept_loop(core: &Rc<Core>, listener: &TcpListener, handler: &Rc<Handler>) {
    let mut pause = Pause::default();
    while core.wait_for_slot() {
        match listener.accept() {
            Ok((conn, peer)) => {
                let h = handler.clone();
                // The connection is dropped (closed) if no greenlet can be made for it.
                match core.spawn_handler(move || h(conn, peer)) {
                    Ok(()) => pause.succeeded(core.kind, "accept"),
                    Err(e) => core.pause(&mut pause, "spawning a connection's handler", &e),
                }
            }
            Err(_) if core.is_closed() || listener.is_closed() => break,
            Err(e) if is_connection_error(&e) => {}
            Err(e) if is_fatal(&e) => {
                log::error!(
                    "green: {} on {:?}: accept failed: {e}; closing the server",
                    core.kind,
                    listener.local_addr().ok()
                );
                core.mark_closed();
                listener.close();
                break;
            }
            Err(e) => core.pause(&mut pause, "accept", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_sorted() {
        let os = io::Error::from_raw_os_error;
        assert!(is_connection_error(&os(libc::ECONNABORTED)));
        assert!(is_connection_error(&os(libc::EPROTO)));
        assert!(!is_connection_error(&os(libc::EPERM)));
        assert!(is_fatal(&os(libc::EBADF)));
        assert!(is_fatal(&os(libc::EINVAL)));
        assert!(!is_fatal(&os(libc::EPERM)));
        assert!(!is_fatal(&os(libc::EMFILE)));
    }
}
