//! Servers: [`StreamServer`] (TCP, a greenlet per connection) and [`DatagramServer`]
//! (UDP, a greenlet per datagram), gevent's `gevent.server`.
//!
//! Both have the same life: made with an address (bound when the server
//! [`start`](StreamServer::start)s, so nothing listens before) or a socket already
//! bound; started; then closed for good by [`close`](StreamServer::close) (stop
//! accepting, leave the handlers running) or [`stop`](StreamServer::stop) (stop
//! accepting, give the handlers a grace period, kill the rest, wait until all are
//! gone). A closed server does not start again: make a new one.
//!
//! What they share lives here: [`Bind`], what a server listens on; `Inner`, a server
//! of either kind, made specific by the private `Endpoint` trait (how to bind, the
//! loop, how closing ends it); and [`Core`], the state, the handler greenlets, the
//! concurrency limit and the error pause of the loop that accepts connections or
//! receives datagrams.

mod datagram;
mod stream;

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green_runtime::{Event, Greenlet, GreenletExit, JoinHandle};
use slab::Slab;

use crate::resolve::ToSocketAddrs;
use crate::{TcpListener, UdpSocket};

pub use datagram::DatagramServer;
pub use stream::StreamServer;

/// What a server listens on: an address, bound when the server starts (any
/// [`ToSocketAddrs`]: `"127.0.0.1:8080"`, a `SocketAddr`, `("localhost", 80)`, ...), or
/// a socket already bound ([`TcpListener`] for a [`StreamServer`], [`UdpSocket`] for a
/// [`DatagramServer`]), used as it is.
///
/// A host name is resolved when the server is made. An address that does not resolve
/// is reported by [`start`](StreamServer::start).
///
/// Sealed: implemented by this crate only.
///
/// # Examples
///
/// ```
/// use green::net::{StreamServer, TcpListener};
///
/// // An address: bound by start(), with the server's backlog.
/// let a = StreamServer::new("127.0.0.1:0", |_conn, _peer| {});
/// a.start().unwrap();
/// // A listener made beforehand (its own backlog and options).
/// let listener = TcpListener::bind_with_backlog("127.0.0.1:0", 16).unwrap();
/// let b = StreamServer::new(listener, |_conn, _peer| {});
/// b.start().unwrap();
/// assert_ne!(a.local_addr().unwrap(), b.local_addr().unwrap());
/// ```
pub trait Bind<S>: sealed::Sealed<S> {}

pub(crate) mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// The conversion behind [`Bind`](super::Bind), out of users' reach.
    pub trait Sealed<S> {
        /// What the server will listen on.
        fn into_source(self) -> Source<S>;
    }

    /// Addresses to bind at start (or why there are none), or a bound socket.
    pub enum Source<S> {
        /// The resolved addresses, tried in turn at start.
        Addrs(io::Result<Vec<SocketAddr>>),
        /// A socket already bound.
        Socket(S),
    }
}

use sealed::Source;

impl<A: ToSocketAddrs> sealed::Sealed<TcpListener> for A {
    fn into_source(self) -> Source<TcpListener> {
        Source::Addrs(self.resolve_addrs())
    }
}

impl<A: ToSocketAddrs> Bind<TcpListener> for A {}

impl sealed::Sealed<TcpListener> for TcpListener {
    fn into_source(self) -> Source<TcpListener> {
        Source::Socket(self)
    }
}

impl Bind<TcpListener> for TcpListener {}

impl<A: ToSocketAddrs> sealed::Sealed<UdpSocket> for A {
    fn into_source(self) -> Source<UdpSocket> {
        Source::Addrs(self.resolve_addrs())
    }
}

impl<A: ToSocketAddrs> Bind<UdpSocket> for A {}

impl sealed::Sealed<UdpSocket> for UdpSocket {
    fn into_source(self) -> Source<UdpSocket> {
        Source::Socket(self)
    }
}

impl Bind<UdpSocket> for UdpSocket {}

/// What differs between the two servers: the socket they serve on, their handler, and
/// their loop.
trait Endpoint: Sized + 'static {
    /// The handler's type (a closure behind an `Rc`).
    type Handler: ?Sized + 'static;
    /// The server's name, for errors and logs.
    const KIND: &'static str;
    /// The builder method that sets the limit, for the error that refuses 0.
    const LIMIT: &'static str;
    /// A socket bound to the first of `addrs` that works.
    fn bind(addrs: &[SocketAddr], backlog: u32) -> io::Result<Self>;
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The server's loop, run in a greenlet of its own until the server is closed.
    fn serve(core: &Rc<Core>, socket: &Rc<Self>, handler: &Rc<Self::Handler>);
    /// Ends the loop of a server being closed (`socket`: `None` if it never started).
    fn end_loop(core: &Core, socket: Option<&Self>);
}

/// A server of either kind: what the public types wrap.
struct Inner<S: Endpoint> {
    core: Rc<Core>,
    /// The handler, until started: then the loop owns it (and drops it when the
    /// server closes, so a handler holding a clone of the server makes no cycle).
    handler: RefCell<Option<Rc<S::Handler>>>,
    /// What to listen on, until started.
    source: RefCell<Option<Source<S>>>,
    /// The socket, while started.
    socket: RefCell<Option<Rc<S>>>,
    /// The address listened on, once known.
    addr: Cell<Option<SocketAddr>>,
    /// The listen backlog, for an address bound at start (TCP only).
    backlog: Cell<u32>,
}

impl<S: Endpoint> Inner<S> {
    fn new(source: Source<S>, handler: Rc<S::Handler>, backlog: u32) -> Inner<S> {
        let addr = match &source {
            Source::Socket(s) => s.local_addr().ok(),
            Source::Addrs(_) => None,
        };
        Inner {
            core: Core::new(S::KIND),
            handler: RefCell::new(Some(handler)),
            source: RefCell::new(Some(source)),
            socket: RefCell::new(None),
            addr: Cell::new(addr),
            backlog: Cell::new(backlog),
        }
    }

    fn start(&self) -> io::Result<()> {
        self.core.check_start(S::LIMIT)?;
        let socket = self.open()?;
        self.addr.set(Some(socket.local_addr()?));
        let handler = self.handler.borrow_mut().take();
        let Some(handler) = handler else {
            return Err(io::Error::other(format!("{} has no handler", S::KIND)));
        };
        let socket = Rc::new(socket);
        let (core, s) = (self.core.clone(), socket.clone());
        self.core.launch(move || S::serve(&core, &s, &handler))?;
        *self.socket.borrow_mut() = Some(socket);
        Ok(())
    }

    /// Takes the socket to serve on: the given one, or one bound to the resolved
    /// addresses. Addresses stay (a failed start can be tried again); a given socket
    /// is taken.
    fn open(&self) -> io::Result<S> {
        let taken = self.source.borrow_mut().take();
        match taken {
            Some(Source::Socket(s)) => Ok(s),
            Some(Source::Addrs(Ok(addrs))) => {
                let r = S::bind(&addrs, self.backlog.get());
                *self.source.borrow_mut() = Some(Source::Addrs(Ok(addrs)));
                r
            }
            Some(Source::Addrs(Err(e))) => {
                let err = io::Error::new(e.kind(), e.to_string());
                *self.source.borrow_mut() = Some(Source::Addrs(Err(e)));
                Err(err)
            }
            None => Err(io::Error::other("the server has nothing to listen on")),
        }
    }

    /// Marks the server closed, ends its loop and drops what it no longer needs (also
    /// when the loop marked the server closed itself).
    fn close(&self) {
        let first = self.core.mark_closed();
        let socket = self.socket.borrow_mut().take();
        if first {
            S::end_loop(&self.core, socket.as_deref());
        }
        drop(socket);
        drop(self.source.borrow_mut().take());
        drop(self.handler.borrow_mut().take());
    }

    fn serve_forever(&self) -> io::Result<()> {
        if !self.core.is_started() {
            self.start()?;
        }
        let _stop = StopOnUnwind(self);
        self.core.wait_stopped()
    }

    fn stop(&self, grace: Duration) {
        self.close();
        self.core.finish(grace);
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.addr.get().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the server has not started: no address is bound yet",
            )
        })
    }

    /// The `Debug` form: `handlers` names the count of running handlers.
    fn debug(&self, f: &mut std::fmt::Formatter<'_>, handlers: &str) -> std::fmt::Result {
        f.debug_struct(S::KIND)
            .field("addr", &self.addr.get())
            .field("state", &self.core.state.get())
            .field(handlers, &self.core.running())
            .field(S::LIMIT, &self.core.limit.get())
            .finish()
    }
}

impl<S: Endpoint> Drop for Inner<S> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where a server is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Made, not listening (if made with an address, nothing is bound).
    New,
    /// Listening, its loop running.
    Started,
    /// Closed: no longer accepting, for good.
    Closed,
}

/// What both servers share: their state, the greenlets running their handlers, the
/// concurrency limit, and the greenlet of their accept (receive) loop.
pub(crate) struct Core {
    /// "StreamServer" or "DatagramServer", for errors and logs.
    kind: &'static str,
    state: Cell<State>,
    /// The most handlers run at once (`None`: no limit).
    limit: Cell<Option<usize>>,
    /// The handler greenlets running (or spawned and not yet run).
    handlers: RefCell<Slab<Greenlet>>,
    /// Set when a handler ends and when the server closes: wakes the loop waiting for
    /// a free slot and the greenlets waiting for the handlers to end.
    changed: Event,
    /// Set when the server closes.
    closed: Event,
    /// The loop's greenlet, once started.
    driver: RefCell<Option<JoinHandle<()>>>,
}

impl Core {
    fn new(kind: &'static str) -> Rc<Core> {
        Rc::new(Core {
            kind,
            state: Cell::new(State::New),
            limit: Cell::new(None),
            handlers: RefCell::new(Slab::new()),
            changed: Event::new(),
            closed: Event::new(),
            driver: RefCell::new(None),
        })
    }

    /// Checks that the server may start: it is new and `limit_name` (the builder
    /// method setting the limit) was not given 0.
    fn check_start(&self, limit_name: &str) -> io::Result<()> {
        match self.state.get() {
            State::New => {}
            State::Started => {
                return Err(io::Error::other(format!(
                    "{} is already started",
                    self.kind
                )));
            }
            State::Closed => {
                return Err(io::Error::other(format!(
                    "{} was closed: a server starts once, make a new one",
                    self.kind
                )));
            }
        }
        if self.limit.get() == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}::{limit_name} must be at least 1", self.kind),
            ));
        }
        Ok(())
    }

    /// Spawns the server's loop, `f`, and marks the server started.
    fn launch(&self, f: impl FnOnce() + 'static) -> io::Result<()> {
        let h = green_runtime::try_spawn(f)?;
        *self.driver.borrow_mut() = Some(h);
        self.state.set(State::Started);
        Ok(())
    }

    fn is_started(&self) -> bool {
        self.state.get() == State::Started
    }

    fn is_closed(&self) -> bool {
        self.state.get() == State::Closed
    }

    /// Marks the server closed and wakes its loop; returns false if it already was.
    fn mark_closed(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        self.state.set(State::Closed);
        self.closed.set();
        self.changed.set();
        true
    }

    /// How many handlers are running.
    fn running(&self) -> usize {
        self.handlers.borrow().len()
    }

    /// How many handlers are running, the caller apart if it is one.
    fn running_others(&self) -> usize {
        self.handlers
            .borrow()
            .iter()
            .filter(|(_, g)| !g.is_current())
            .count()
    }

    /// For the loop: waits while the limit of handlers is reached (the connections
    /// wait in the kernel's queue meanwhile). Returns false once the server is closed.
    fn wait_for_slot(&self) -> bool {
        loop {
            if self.is_closed() {
                return false;
            }
            match self.limit.get() {
                Some(n) if self.running() >= n => {}
                _ => return true,
            }
            self.changed.clear();
            if let Err(e) = self.changed.wait() {
                log::error!("green: {} cannot wait for a free slot: {e}", self.kind);
                return false;
            }
        }
    }

    /// Runs `f` in a new handler greenlet.
    fn spawn_handler(self: &Rc<Self>, f: impl FnOnce() + 'static) -> io::Result<()> {
        let h = green_runtime::try_spawn(f)?;
        let key = self.handlers.borrow_mut().insert(h.greenlet().clone());
        let core = Rc::downgrade(self);
        // The handle is dropped below: the greenlet is detached, and the runtime logs
        // its panic if it panics.
        h.link(move |_| {
            if let Some(core) = core.upgrade() {
                core.handlers.borrow_mut().try_remove(key);
                core.changed.set();
            }
        });
        Ok(())
    }

    /// For the loop, after an error that waiting may cure: waits as `pause` says, or
    /// until the server closes.
    fn pause(&self, pause: &mut Pause, what: &str, err: &dyn std::fmt::Display) {
        let delay = pause.failed(self.kind, what, err);
        let _ = self.closed.wait_timeout(delay);
    }

    /// Waits until no handler but the caller runs, or until `deadline`; returns
    /// whether none runs. Returns at once where it cannot wait (in the hub).
    fn wait_handlers(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.running_others() == 0 {
                return true;
            }
            self.changed.clear();
            let waited = match deadline {
                None => self.changed.wait(),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.changed.wait_timeout(left)
                }
            };
            if waited.is_err() {
                return self.running_others() == 0;
            }
        }
    }

    /// Kills every handler but the caller (without waiting).
    fn kill_handlers(&self) {
        let victims: Vec<Greenlet> = self
            .handlers
            .borrow()
            .iter()
            .map(|(_, g)| g.clone())
            .filter(|g| !g.is_current())
            .collect();
        for g in &victims {
            green_runtime::throw_into(g, Box::new(GreenletExit));
        }
    }

    /// Kills the loop's greenlet (without waiting): for a loop that the closing of its
    /// socket cannot wake, because the handlers still use the socket.
    fn kill_driver(&self) {
        let driver = self.driver.borrow();
        if let Some(h) = driver.as_ref()
            && !h.is_finished()
            && !h.greenlet().is_current()
        {
            green_runtime::throw_into(h.greenlet(), Box::new(GreenletExit));
        }
    }

    /// Waits for the loop's greenlet to end (the server is closed).
    fn wait_driver(&self) {
        let driver = self.driver.borrow_mut().take();
        if let Some(h) = driver
            && !h.greenlet().is_current()
        {
            let _ = h.wait();
        }
    }

    /// The end of `stop`, once the server is closed: waits for the loop to end and for
    /// the handlers, at most `grace`; kills those left and waits until they are gone.
    fn finish(&self, grace: Duration) {
        self.wait_driver();
        let deadline = Instant::now().checked_add(grace);
        if !self.wait_handlers(deadline) {
            self.kill_handlers();
            self.wait_handlers(None);
        }
    }

    /// `serve_forever`'s wait: until the server is closed, its loop has ended and no
    /// handler is left.
    fn wait_stopped(&self) -> io::Result<()> {
        self.closed.wait()?;
        self.wait_driver();
        self.wait_handlers(None);
        Ok(())
    }
}

/// Pauses a server's loop after an error that waiting may cure (an accept refused for
/// a reason other than the ones [`TcpListener::accept`] already waits out, no memory
/// for a handler's stack): [`FIRST_DELAY`](crate::backoff::FIRST_DELAY) after the
/// first, doubling up to [`MAX_DELAY`](crate::backoff::MAX_DELAY), like the accept
/// back-off. Logs a warning when a run of errors starts and a line when it ends.
#[derive(Debug, Default)]
struct Pause {
    in_a_row: u32,
}

impl Pause {
    /// An error: how long to wait.
    fn failed(&mut self, kind: &str, what: &str, err: &dyn std::fmt::Display) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        let delay = crate::backoff::delay_after(self.in_a_row);
        if self.in_a_row == 1 {
            log::warn!("green: {kind}: {what} failed: {err}; retrying after {delay:?}");
        }
        delay
    }

    /// A success: the next error waits the shortest delay again.
    fn succeeded(&mut self, kind: &str, what: &str) {
        if self.in_a_row > 0 {
            log::info!(
                "green: {kind}: {what} works again after {} failures",
                self.in_a_row
            );
            self.in_a_row = 0;
        }
    }
}

/// Closes a server whose `serve_forever` unwinds (its greenlet was killed, or a
/// timeout expired) and kills its handlers, as gevent's `serve_forever` stops the
/// server when it exits.
struct StopOnUnwind<'a, S: Endpoint>(&'a Inner<S>);

impl<S: Endpoint> Drop for StopOnUnwind<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close();
            self.0.core.kill_handlers();
        }
    }
}
