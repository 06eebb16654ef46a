//! The trait impls that every cooperative socket type has in the same form, written
//! once. Each socket type is a struct `{ ev: Evented, sock: S }` (the [`Evented`] first,
//! so that it deregisters before the fd closes); the macros expand inside the type's
//! own module and reach those private fields there.
//!
//! [`Evented`]: crate::sys::Evented

/// For a socket type `$t` holding a `sock: $sock`: `AsRawFd`, `AsFd` and `IntoRawFd`,
/// plus a private `deregister(self) -> $sock` that drops the registration and gives back
/// the (still non-blocking) socket, for `into_std` and `into_raw_fd`. `$what` names the
/// kind of socket in `IntoRawFd`'s rustdoc ("stream", "listener", "socket").
macro_rules! impl_fd {
    ($t:ident($sock:ty), $what:literal) => {
        impl $t {
            /// Drops the registration with the hub (before the fd can close) and returns
            /// the socket, still non-blocking in the kernel.
            fn deregister(self) -> $sock {
                let $t { ev, sock, .. } = self;
                drop(ev);
                sock
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.sock)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.sock)
            }
        }

        #[doc = concat!("Deregisters the ", $what, " and gives up its fd, still in non-blocking mode.")]
        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.deregister())
            }
        }
    };
}

/// The conversions into a socket type `$t` (which has a `from_std($std)` constructor)
/// that std has as `From` and green makes fallible, because wrapping registers the
/// socket with the hub: `TryFrom<$std>`; `TryFrom<OwnedFd>`, which first checks that
/// the fd is a socket of `$kind` (a [`Kind`], which `$what` names: "a TCP socket", ...);
/// `FromRawFd`, which cannot report an error (see [`unregistrable`]); and
/// `From<$t> for OwnedFd`.
macro_rules! impl_conversions {
    ($t:ident($std:ty), $kind:expr, $what:literal) => {
        #[doc = concat!("Wraps a std socket like [`", stringify!($t), "::from_std`]: makes it")]
        /// non-blocking and registers it with this thread's hub, which can fail.
        impl TryFrom<$std> for $t {
            type Error = std::io::Error;

            fn try_from(sock: $std) -> std::io::Result<$t> {
                $t::from_std(sock)
            }
        }

        #[doc = concat!("Takes ownership of an fd that must be ", $what, ", makes it")]
        /// non-blocking and registers it with this thread's hub. A socket of another kind
        /// is an [`InvalidInput`](std::io::ErrorKind::InvalidInput) error, an fd that is
        /// no socket the kernel's `ENOTSOCK`; on any error the fd is closed.
        impl TryFrom<std::os::fd::OwnedFd> for $t {
            type Error = std::io::Error;

            fn try_from(fd: std::os::fd::OwnedFd) -> std::io::Result<$t> {
                crate::socket::check_kind(std::os::fd::AsRawFd::as_raw_fd(&fd), &$kind, $what)?;
                $t::from_std(<$std>::from(fd))
            }
        }

        #[doc = concat!("Takes ownership of `fd`, which must be an open fd of ", $what, ",")]
        #[doc = concat!("like `", stringify!($std), "::from_raw_fd`, and wraps it like")]
        #[doc = concat!("[`", stringify!($t), "::from_std`].")]
        ///
        /// # Aborts
        ///
        /// `from_raw_fd` cannot return an error. If the socket cannot be registered with
        /// this thread's hub (the hub's reactor could not be created, say for lack of
        /// file descriptors, or the kernel refused the epoll registration), the process
        /// aborts with a message on stderr. `TryFrom<OwnedFd>` is the fallible form:
        /// `T::try_from(unsafe { OwnedFd::from_raw_fd(fd) })`.
        impl std::os::fd::FromRawFd for $t {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller passes an open fd of the right kind that it owns
                // (this function's contract, the same as std's).
                let sock = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                match $t::from_std(sock) {
                    Ok(s) => s,
                    Err(e) => crate::socket::unregistrable(stringify!($t), &e),
                }
            }
        }

        /// Deregisters the socket and gives up its fd, still in non-blocking mode.
        impl From<$t> for std::os::fd::OwnedFd {
            fn from(sock: $t) -> std::os::fd::OwnedFd {
                std::os::fd::OwnedFd::from(sock.deregister())
            }
        }
    };
}

/// The kind of socket that a socket type wraps, as `TryFrom<OwnedFd>` checks it.
pub(crate) struct Kind {
    /// The address families accepted (`AF_INET`, ...).
    pub(crate) families: &'static [libc::c_int],
    /// The socket type (`SOCK_STREAM`, `SOCK_DGRAM`).
    pub(crate) ty: libc::c_int,
}

pub(crate) const TCP: Kind = Kind {
    families: &[libc::AF_INET, libc::AF_INET6],
    ty: libc::SOCK_STREAM,
};

pub(crate) const UDP: Kind = Kind {
    families: &[libc::AF_INET, libc::AF_INET6],
    ty: libc::SOCK_DGRAM,
};

pub(crate) const UNIX_STREAM: Kind = Kind {
    families: &[libc::AF_UNIX],
    ty: libc::SOCK_STREAM,
};

pub(crate) const UNIX_DGRAM: Kind = Kind {
    families: &[libc::AF_UNIX],
    ty: libc::SOCK_DGRAM,
};

/// Checks that `fd` is a socket of `kind` (`what` names it in the error): its family
/// (from `getsockname`, which reports it for an unbound socket too) and its `SO_TYPE`.
pub(crate) fn check_kind(fd: std::os::fd::RawFd, kind: &Kind, what: &str) -> std::io::Result<()> {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` is live and `len` is its exact size; the kernel writes at most that.
    if unsafe {
        libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } == -1
    {
        return Err(std::io::Error::last_os_error());
    }
    let mut ty: libc::c_int = 0;
    let mut ty_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` is a live c_int and `ty_len` its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut ty_len,
        )
    };
    if r == -1 {
        return Err(std::io::Error::last_os_error());
    }
    let family = libc::c_int::from(addr.ss_family);
    if kind.families.contains(&family) && ty == kind.ty {
        return Ok(());
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("expected {what} (fd {fd} has address family {family}, socket type {ty})"),
    ))
}

/// What `FromRawFd` does when the socket cannot be registered with the hub: it has no
/// way to return the error and must not panic, so it writes the error to stderr and
/// aborts, as std does when memory runs out (the failures here are of that kind: no fd
/// left for the reactor, no kernel memory for the registration).
#[cold]
#[inline(never)]
pub(crate) fn unregistrable(what: &str, e: &std::io::Error) -> ! {
    use std::io::Write;
    // Nothing to do if stderr is gone: the abort still tells.
    let _ = writeln!(
        std::io::stderr(),
        "green: {what}::from_raw_fd cannot register the socket with this thread's hub \
         ({e}); aborting (use TryFrom<OwnedFd> to handle this error)"
    );
    std::process::abort()
}

/// `Read` and `Write` for a stream type `$t`, for `&$t` (so that one greenlet can read
/// while another writes) and for `$t` (through `&$t`). Reads wait with the read
/// timeout, writes with the write timeout; `flush` has nothing to do.
macro_rules! impl_stream_io {
    // `$short_drains`: a read (write) that does less than asked for means the socket is
    // drained (full) — true for TCP on Linux (see `Evented::drained`).
    ($t:ident, $short_drains:expr_2021) => {
        impl std::io::Read for &$t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self
                    .ev
                    .read(|| crate::sys::StreamIo::recv(&self.sock, buf))?;
                if $short_drains && n > 0 && n < buf.len() {
                    self.ev.drained(mio::Interest::READABLE);
                }
                Ok(n)
            }

            // A short vectored read says nothing about the socket being drained: std
            // passes at most `IOV_MAX` slices to the kernel.
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.ev
                    .read(|| std::io::Read::read_vectored(&mut &self.sock, bufs))
            }
        }

        impl std::io::Write for &$t {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if buf.is_empty() {
                    // As std: `send` of nothing returns at once, even with the send
                    // buffer full. (An empty read, as in std, waits for data or EOF.)
                    return crate::sys::StreamIo::send(&self.sock, buf);
                }
                let n = self
                    .ev
                    .write(|| crate::sys::StreamIo::send(&self.sock, buf))?;
                if $short_drains && n < buf.len() {
                    self.ev.drained(mio::Interest::WRITABLE);
                }
                Ok(n)
            }

            // As for `read_vectored`: a short vectored write does not mean a full buffer.
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                if bufs.iter().all(|b| b.is_empty()) {
                    return std::io::Write::write_vectored(&mut &self.sock, bufs);
                }
                self.ev
                    .write(|| std::io::Write::write_vectored(&mut &self.sock, bufs))
            }

            /// std's `write_all` (the same loop and errors), inlined into the caller:
            /// no frame of its own between the caller and the write.
            #[inline]
            fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
                while !buf.is_empty() {
                    match std::io::Write::write(self, buf) {
                        Ok(0) => return Err(crate::sys::write_zero()),
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            #[inline]
            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                std::io::Write::write_all(&mut &*self, buf)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}
