//! Backing off an accept loop that the kernel refuses for want of resources.
//!
//! When the process is out of fds (`EMFILE`), the system is (`ENFILE`) or the kernel is
//! short of memory (`ENOBUFS`, `ENOMEM`), `accept` fails at once and leaves the
//! connection queued: the listener stays readable, so a loop that retries at once spins
//! without ever letting its thread's other greenlets run, among them those whose work
//! would free the resources. Waiting is the only useful reaction; [`Backoff`] says how
//! long, and logs one line when an episode of such failures starts and one when it ends.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// The wait after the first refusal of an episode; each further one doubles it.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest wait between two tries.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(1);

/// Whether the error number `errno` says that an accept was refused for want of
/// resources (fds or kernel memory), which only waiting can cure.
pub(crate) fn is_exhaustion(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

/// The wait after `failures` failures in a row (at least one): [`FIRST_DELAY`] after
/// the first, doubling with each further one, up to [`MAX_DELAY`].
pub(crate) fn delay_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// [`is_exhaustion`] for an `io::Error`.
pub(crate) fn is_exhaustion_error(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(is_exhaustion)
}

/// An episode ends at the first accept that succeeds this long after its last refusal:
/// a server hovering at its fd limit (accepts failing and succeeding in turn as
/// connections close) logs one episode, not one per refusal that follows a success.
pub(crate) const QUIET: Duration = Duration::from_secs(1);

/// The back-off of one listener: how many accepts in a row were refused for want of
/// resources, and the episode they belong to. Small and `Copy`, to live in a `Cell`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Backoff {
    /// Refusals since the last successful accept: sets the delay.
    in_a_row: u32,
    /// Refusals in the current episode.
    refused: u32,
    /// When the episode started and when its last refusal was (`None`: no episode).
    episode: Option<(Instant, Instant)>,
}

impl Backoff {
    /// No episode.
    pub(crate) const fn new() -> Backoff {
        Backoff {
            in_a_row: 0,
            refused: 0,
            episode: None,
        }
    }

    /// How long to wait before the next try: [`FIRST_DELAY`] after the first refusal in
    /// a row, doubling with each further one, up to [`MAX_DELAY`].
    pub(crate) fn delay(&self) -> Duration {
        delay_after(self.in_a_row)
    }

    /// An accept on the listener `fd` was refused with `err` (one that
    /// [`is_exhaustion`] accepts): returns how long to wait before trying again. The
    /// first refusal of an episode logs a warning.
    pub(crate) fn refused(&mut self, fd: RawFd, err: &dyn std::fmt::Display) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.refused = self.refused.saturating_add(1);
        let now = Instant::now();
        match &mut self.episode {
            Some((_, last)) => *last = now,
            None => {
                self.episode = Some((now, now));
                log::warn!(
                    "green: accept on {} failed: {err}; backing off (retrying after {:?}, \
                     doubling up to {MAX_DELAY:?})",
                    describe(fd),
                    self.delay(),
                );
            }
        }
        self.delay()
    }

    /// An accept on the listener `fd` succeeded: the next refusal waits
    /// [`FIRST_DELAY`] again, and an episode whose last refusal is [`QUIET`] old ends,
    /// logging how long it lasted. Returns whether no episode is running now.
    #[inline]
    pub(crate) fn accepted(&mut self, fd: RawFd) -> bool {
        self.in_a_row = 0;
        self.episode.is_none() || self.maybe_end(fd, Instant::now())
    }

    /// Ends the episode if its last refusal is [`QUIET`] old at `now`; returns whether
    /// it did.
    #[cold]
    fn maybe_end(&mut self, fd: RawFd, now: Instant) -> bool {
        let Some((since, last)) = self.episode else {
            return true;
        };
        if now.saturating_duration_since(last) < QUIET {
            return false;
        }
        log::info!(
            "green: accept on {} works again, after {} refusals over {:?}",
            describe(fd),
            self.refused,
            last.duration_since(since),
        );
        self.episode = None;
        self.refused = 0;
        true
    }
}

/// `fd 7 (127.0.0.1:8080)`: a listener's fd and the address it is bound to, for logs.
fn describe(fd: RawFd) -> String {
    match local_name(fd) {
        Some(name) => format!("fd {fd} ({name})"),
        None => format!("fd {fd}"),
    }
}

/// The address the socket `fd` is bound to, as text: an IP address and port, or a
/// Unix socket's path (`@name` for an abstract one).
fn local_name(fd: RawFd) -> Option<String> {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes; a bad fd only makes the call fail.
    let r = unsafe {
        libc::getsockname(
            fd,
            (&raw mut storage).cast::<libc::sockaddr>(),
            &raw mut len,
        )
    };
    if r != 0 {
        return None;
    }
    let len = (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (the family says so); the storage
            // is larger than and aligned for it.
            let a = unsafe { *(&raw const storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))).to_string())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a sockaddr_in6.
            let a = unsafe { *(&raw const storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            let v6 = SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id);
            Some(SocketAddr::V6(v6).to_string())
        }
        libc::AF_UNIX => {
            // SAFETY: as above, for a sockaddr_un, of which the kernel wrote `len` bytes.
            let a = unsafe { &*(&raw const storage).cast::<libc::sockaddr_un>() };
            let path_len = len.saturating_sub(std::mem::size_of::<libc::sa_family_t>());
            let path: Vec<u8> = a.sun_path[..path_len.min(a.sun_path.len())]
                .iter()
                .map(|&c| c as u8)
                .collect();
            Some(match path.split_first() {
                None => "unnamed".to_string(),
                Some((0, name)) => format!("@{}", String::from_utf8_lossy(name)),
                Some(_) => {
                    let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                    String::from_utf8_lossy(&path[..end]).into_owned()
                }
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_and_caps_and_resets_after_an_accept() {
        let mut b = Backoff::new();
        let ms = |d: Duration| d.as_millis();
        let delays: Vec<u128> = (0..10).map(|_| ms(b.refused(-1, &"EMFILE"))).collect();
        assert_eq!(
            delays,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000],
            "starts at FIRST_DELAY, doubles, stops at MAX_DELAY"
        );
        // Many more refusals: still capped, no overflow.
        for _ in 0..100 {
            assert_eq!(b.refused(-1, &"EMFILE"), MAX_DELAY);
        }
        assert!(
            !b.accepted(-1),
            "the episode goes on until QUIET has passed"
        );
        assert_eq!(
            b.refused(-1, &"EMFILE"),
            FIRST_DELAY,
            "the delay starts again"
        );
        assert_eq!(b.refused(-1, &"EMFILE"), 2 * FIRST_DELAY);
    }

    #[test]
    fn an_episode_ends_at_the_first_accept_quiet_after_its_last_refusal() {
        let mut b = Backoff::new();
        assert!(b.accepted(-1), "no episode");
        b.refused(-1, &"EMFILE");
        let (_, last) = b.episode.unwrap();
        // Refusals and accepts in turn (a server at its fd limit): one episode.
        assert!(!b.maybe_end(-1, last + QUIET / 2));
        b.refused(-1, &"EMFILE");
        assert_eq!(b.refused, 2, "counted in the same episode");
        let (_, last) = b.episode.unwrap();
        assert!(b.maybe_end(-1, last + QUIET), "quiet for QUIET: over");
        assert!(b.episode.is_none() && b.refused == 0);
        assert!(b.accepted(-1));
    }

    #[test]
    fn only_resource_errors_are_exhaustion() {
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_exhaustion(e));
            assert!(is_exhaustion_error(&io::Error::from_raw_os_error(e)));
        }
        for e in [libc::EAGAIN, libc::ECONNABORTED, libc::EINTR, libc::EBADF] {
            assert!(!is_exhaustion(e));
        }
        assert!(!is_exhaustion_error(&io::Error::other("no errno")));
    }

    #[test]
    fn listeners_are_named_by_fd_and_address() {
        use std::os::fd::AsRawFd;
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let fd = tcp.as_raw_fd();
        assert_eq!(describe(fd), format!("fd {fd} ({addr})"));
        let v6 = std::net::TcpListener::bind("[::1]:0");
        if let Ok(v6) = v6 {
            let a = v6.local_addr().unwrap();
            assert_eq!(local_name(v6.as_raw_fd()), Some(a.to_string()));
        }
        let path = std::env::temp_dir().join(format!("green-backoff-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            local_name(unix.as_raw_fd()).as_deref(),
            path.to_str(),
            "a Unix listener's path"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(describe(-1), "fd -1", "no address to show");
    }
}
