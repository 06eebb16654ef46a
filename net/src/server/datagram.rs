//! [`DatagramServer`]: a UDP server running a handler in a greenlet per datagram.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{Bind, Core, Endpoint, Inner, Pause};
use crate::UdpSocket;

/// The largest datagram received whole: the largest UDP payload over IPv4 is
/// 65,507 bytes (longer ones, over IPv6 jumbograms, are cut to this length).
const MAX_DATAGRAM: usize = 65_536;

type Handler = dyn Fn(&[u8], SocketAddr, &UdpSocket);

/// A UDP server (gevent's `DatagramServer`): receives datagrams in a greenlet of its
/// own and calls the handler with each (its bytes, its sender, and the server's socket
/// to answer on) in a new greenlet, as gevent does by default.
///
/// A greenlet per datagram lets a handler wait (for a database, another socket, a
/// sleep) without holding up the datagrams behind it; each handler gets its own copy
/// of the bytes. For the least work per datagram and no concurrency, a plain
/// [`UdpSocket::recv_from`] loop does without the server.
///
/// It has the life of a [`StreamServer`](crate::StreamServer):
/// [`start`](DatagramServer::start) binds the address (before, datagrams to it are
/// answered with ICMP port unreachable, which a connected sender sees as
/// [`io::ErrorKind::ConnectionRefused`]); [`close`](DatagramServer::close) stops
/// receiving at once, while the running handlers can still answer on the socket (it is
/// released when they have ended); [`stop`](DatagramServer::stop) then gives them a
/// grace period, kills those left and waits until they are gone. With
/// [`max_handlers`](DatagramServer::max_handlers), the server stops receiving while
/// that many handlers run (datagrams wait in the socket's receive buffer, and the
/// kernel drops those that do not fit). A handler that panics ends its own greenlet
/// only (the runtime logs the panic); receive errors are logged and retried after a
/// pause (10 ms, doubling up to 1 s).
///
/// A handle (clones share it), bound to its thread (`!Send`). Dropping the last handle
/// closes the server.
///
/// # Examples
///
/// An upper-casing echo server:
///
/// ```
/// use std::time::Duration;
/// use green::net::{DatagramServer, UdpSocket};
///
/// let server = DatagramServer::new("127.0.0.1:0", |data: &[u8], from, sock: &UdpSocket| {
///     let _ = sock.send_to(&data.to_ascii_uppercase(), from);
/// });
/// server.start().unwrap();
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.connect(server.local_addr().unwrap()).unwrap();
/// client.send(b"ping").unwrap();
/// let mut buf = [0u8; 16];
/// let n = client.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"PING");
/// server.stop(Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct DatagramServer(Rc<Inner<UdpSocket>>);

impl Endpoint for UdpSocket {
    type Handler = Handler;
    const KIND: &'static str = "DatagramServer";
    const LIMIT: &'static str = "max_handlers";

    fn bind(addrs: &[SocketAddr], _backlog: u32) -> io::Result<UdpSocket> {
        UdpSocket::bind(addrs)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }

    fn serve(core: &Rc<Core>, socket: &Rc<UdpSocket>, handler: &Rc<Handler>) {
        receive_loop(core, socket, handler);
    }

    /// Kills the receive loop: the socket stays open for the running handlers to
    /// answer on (closing it would end their sends too).
    fn end_loop(core: &Core, _socket: Option<&UdpSocket>) {
        core.kill_driver();
    }
}

impl DatagramServer {
    /// A server that will receive on `listen` (see [`Bind`]: an address to bind when it
    /// starts, or a [`UdpSocket`]) and run `handler` in a new greenlet for each
    /// datagram, with its bytes, its sender and the socket. Nothing is bound until
    /// [`start`](DatagramServer::start).
    ///
    /// ```
    /// use green::net::DatagramServer;
    /// let server = DatagramServer::new("127.0.0.1:0", |data, from, _sock| {
    ///     println!("{from}: {} bytes", data.len());
    /// });
    /// assert!(!server.started());
    /// ```
    pub fn new<H>(listen: impl Bind<UdpSocket>, handler: H) -> DatagramServer
    where
        H: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        // (No backlog: a UDP socket has none.)
        DatagramServer(Rc::new(Inner::new(
            listen.into_source(),
            Rc::new(handler),
            0,
        )))
    }

    /// Limits the handlers running at once to `n`: while `n` run, the server receives
    /// nothing (datagrams queue in the socket's receive buffer). Takes effect at the
    /// next receive if the server is running. `n` = 0 makes
    /// [`start`](DatagramServer::start) fail with [`io::ErrorKind::InvalidInput`].
    ///
    /// ```
    /// use green::net::DatagramServer;
    /// let server = DatagramServer::new("127.0.0.1:0", |_, _, _| {}).max_handlers(100);
    /// server.start().unwrap();
    /// ```
    pub fn max_handlers(self, n: usize) -> DatagramServer {
        self.0.core.limit.set(Some(n));
        self
    }

    /// Binds the address (if the server was made with one) and starts receiving in a
    /// greenlet of its own; returns once bound.
    ///
    /// Errors: binding, an address that did not resolve, a limit of 0, and starting a
    /// server already started or closed.
    ///
    /// ```
    /// use green::net::DatagramServer;
    /// let a = DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// a.start().unwrap();
    /// let b = DatagramServer::new(a.local_addr().unwrap(), |_, _, _| {});
    /// assert_eq!(b.start().unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn start(&self) -> io::Result<()> {
        self.0.start()
    }

    /// Starts the server if it is not started, then waits until it is closed and no
    /// handler is left (see [`StreamServer::serve_forever`](crate::StreamServer::serve_forever)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::net::DatagramServer;
    /// let server = DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// let s = server.clone();
    /// green::spawn(move || s.stop(Duration::from_secs(1)));
    /// server.serve_forever().unwrap();
    /// assert!(server.closed());
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.0.serve_forever()
    }

    /// Stops receiving at once, gives the running handlers `grace` to end, then kills
    /// those left and returns when all are gone (the socket is then released). The
    /// caller may be a handler: it is neither waited for nor killed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::net::DatagramServer;
    /// let server = DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// server.start().unwrap();
    /// server.stop(Duration::from_secs(1));
    /// server.stop(Duration::from_secs(1)); // twice is fine
    /// assert!(server.closed());
    /// ```
    pub fn stop(&self, grace: Duration) {
        self.0.stop(grace);
    }

    /// Stops receiving at once, without waiting; running handlers go on and can still
    /// answer on the socket, which is released when they have ended (datagrams that
    /// arrive meanwhile are not received). Closing twice does nothing.
    ///
    /// ```
    /// let server = green::net::DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// server.start().unwrap();
    /// server.close();
    /// assert!(server.closed());
    /// ```
    pub fn close(&self) {
        self.0.close();
    }

    /// The address the server is bound to: known once started, or from the start when
    /// made with a socket ([`io::ErrorKind::NotConnected`] before).
    ///
    /// ```
    /// let server = green::net::DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// server.start().unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    /// Whether the server is receiving: started and not closed.
    ///
    /// ```
    /// let server = green::net::DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// server.start().unwrap();
    /// assert!(server.started());
    /// ```
    pub fn started(&self) -> bool {
        self.0.core.is_started()
    }

    /// Whether the server was closed.
    ///
    /// ```
    /// let server = green::net::DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// server.close();
    /// assert!(server.closed());
    /// ```
    pub fn closed(&self) -> bool {
        self.0.core.is_closed()
    }

    /// How many handlers are running.
    ///
    /// ```
    /// let server = green::net::DatagramServer::new("127.0.0.1:0", |_, _, _| {});
    /// assert_eq!(server.handlers(), 0);
    /// ```
    pub fn handlers(&self) -> usize {
        self.0.core.running()
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f, "handlers")
    }
}

/// The server's greenlet: receives while a handler slot is free and runs the handler
/// for each datagram in a new greenlet, until the server is closed.
fn receive_loop(core: &Rc<Core>, socket: &Rc<UdpSocket>, handler: &Rc<Handler>) {
    let mut pause = Pause::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while core.wait_for_slot() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let data = buf[..n].to_vec();
                let (h, s) = (handler.clone(), socket.clone());
                match core.spawn_handler(move || h(&data, from, &s)) {
                    Ok(()) => pause.succeeded(core.kind, "receive"),
                    Err(e) => core.pause(&mut pause, "spawning a datagram's handler", &e),
                }
            }
            Err(_) if core.is_closed() => break,
            Err(_) if socket.is_closed() => {
                // A handler closed the socket: the server is over.
                core.mark_closed();
                break;
            }
            Err(e) => core.pause(&mut pause, "receive", &e),
        }
    }
}
