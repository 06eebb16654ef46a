//! Regular files (`patch_files()`): `open`, `open64`, `openat`, `openat64`, `pread`,
//! `pread64`, `pwrite`, `pwrite64`, `fsync`, `fdatasync`, and (through `io`) `read`,
//! `readv`, `write`, `writev`, from a greenlet, run on the blocking pool while the
//! greenlet parks.
//!
//! A read or write uses the caller's buffer, so the greenlet waits until the call has
//! run even if it is killed meanwhile: the kill is then deferred to its next switch
//! point and the call returns what it did. An `open` owns a copy of the path, so a kill
//! ends the wait at once (`ECANCELED`), and the fd the open makes later is closed.
//!
//! Anything else (a plain thread, the patch off, an fd that is not a regular file, see
//! `pipe::look_at`) is glibc's.

use std::ffi::{CStr, CString};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use libc::{c_char, c_int, c_void, size_t, ssize_t};

use super::{Mode, canceled, errno, mode, offload_if, set_errno};
use crate::monkey::real::{self, Open};
use crate::monkey::{FILES, rt, state};

/// Whether a call on `fd` goes to the pool.
fn offloaded(fd: c_int) -> bool {
    state() & FILES != 0 && matches!(mode(fd), Mode::File)
}

/// `path`, copied, if an `open` of it from here goes to the pool.
fn owned_path(path: *const c_char) -> Option<CString> {
    if state() & FILES == 0 || path.is_null() || !rt::in_greenlet() {
        return None;
    }
    // SAFETY: a non-null `path` is a NUL-terminated string (open's contract).
    Some(unsafe { CStr::from_ptr(path) }.to_owned())
}

/// Opens `path` on the pool (see the module docs).
fn open_on_pool(which: Open, dir: c_int, path: CString, flags: c_int, mode: libc::c_uint) -> c_int {
    let r = rt::run_owned(move || {
        // SAFETY: `path` is a NUL-terminated string owned by this job.
        let fd = unsafe { real::open(which, dir, path.as_ptr(), flags, mode) };
        if fd < 0 {
            Err(errno())
        } else {
            // SAFETY: `fd` was just opened and belongs to no one else; if the caller is
            // gone, dropping this closes it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    });
    match r {
        Ok(Ok(fd)) => fd.into_raw_fd(),
        Ok(Err(e)) => {
            set_errno(e);
            -1
        }
        Err(p) => canceled(p, -1),
    }
}

macro_rules! open_hook {
    ($(#[$doc:meta])* $name:ident, $which:expr) => {
        $(#[$doc])*
        ///
        /// Declared with a fixed `mode` argument: on the supported 64-bit Linux ABIs a
        /// variadic int arrives in the same register.
        ///
        /// # Safety
        /// The libc contract of the function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(path: *const c_char, flags: c_int, mode: libc::c_uint) -> c_int {
            match owned_path(path) {
                Some(p) => open_on_pool($which, libc::AT_FDCWD, p, flags, mode),
                // SAFETY: forwarded unchanged.
                None => unsafe { real::open($which, libc::AT_FDCWD, path, flags, mode) },
            }
        }
    };
}

macro_rules! openat_hook {
    ($(#[$doc:meta])* $name:ident, $which:expr) => {
        $(#[$doc])*
        ///
        /// Declared with a fixed `mode` argument (see `open`).
        ///
        /// # Safety
        /// The libc contract of the function.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            dir: c_int,
            path: *const c_char,
            flags: c_int,
            mode: libc::c_uint,
        ) -> c_int {
            match owned_path(path) {
                Some(p) => open_on_pool($which, dir, p, flags, mode),
                // SAFETY: forwarded unchanged.
                None => unsafe { real::open($which, dir, path, flags, mode) },
            }
        }
    };
}

open_hook!(
    /// Hook for `open(2)`.
    open,
    Open::Path
);
open_hook!(
    /// Hook for `open64` (what `std::fs::File::open` calls).
    open64,
    Open::Path64
);
openat_hook!(
    /// Hook for `openat(2)`.
    openat,
    Open::At
);
openat_hook!(
    /// Hook for `openat64`.
    openat64,
    Open::At64
);

/// Hook for `pread(2)`.
///
/// # Safety
/// The libc contract of `pread`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pread(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: libc::off_t,
) -> ssize_t {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(offloaded(fd), || unsafe { real::pread(fd, buf, n, off) })
}

/// Hook for `pread64` (what `FileExt::read_at` calls).
///
/// # Safety
/// The libc contract of `pread64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pread64(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: libc::off64_t,
) -> ssize_t {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(offloaded(fd), || unsafe { real::pread64(fd, buf, n, off) })
}

/// Hook for `pwrite(2)`.
///
/// # Safety
/// The libc contract of `pwrite`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    off: libc::off_t,
) -> ssize_t {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(offloaded(fd), || unsafe { real::pwrite(fd, buf, n, off) })
}

/// Hook for `pwrite64` (what `FileExt::write_at` calls).
///
/// # Safety
/// The libc contract of `pwrite64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    off: libc::off64_t,
) -> ssize_t {
    // SAFETY: forwarded unchanged (here or on a helper thread, while the caller waits).
    offload_if(offloaded(fd), || unsafe { real::pwrite64(fd, buf, n, off) })
}

/// Hook for `fsync(2)` (what `File::sync_all` calls).
///
/// # Safety
/// The libc contract of `fsync`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    offload_if(offloaded(fd), || unsafe { real::fsync(fd) } as ssize_t) as c_int
}

/// Hook for `fdatasync(2)` (what `File::sync_data` calls).
///
/// # Safety
/// The libc contract of `fdatasync`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    offload_if(offloaded(fd), || unsafe { real::fdatasync(fd) } as ssize_t) as c_int
}
