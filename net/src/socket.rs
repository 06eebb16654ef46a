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

/// `From<$std>` for a socket type `$t` with a `from_std` constructor, panicking (with
/// the type's name) where `from_std` would fail. The attributes (the impl's rustdoc)
/// are passed through.
macro_rules! impl_from_std {
    ($(#[$attr:meta])* impl From<$std:ty> for $t:ident;) => {
        $(#[$attr])*
        impl From<$std> for $t {
            fn from(sock: $std) -> $t {
                match $t::from_std(sock) {
                    Ok(s) => s,
                    Err(e) => panic!(
                        concat!("green: cannot register a ", stringify!($t), " with the hub: {}"),
                        e
                    ),
                }
            }
        }
    };
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
