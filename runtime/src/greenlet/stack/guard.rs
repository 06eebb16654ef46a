//! Guard pages and kernel mappings: the page size, how guards are installed
//! ([`GuardKind`]), mapping chunks of stacks, and [`StackError`].
//!
//! Which [`GuardKind`] is used is detected once per process ([`GuardKind::detect`]):
//!
//! * [`GuardKind::MadviseGuard`] (Linux 6.13 and later): `madvise(guard, page,
//!   MADV_GUARD_INSTALL)` installs a guard marker in the page tables *without splitting
//!   the mapping*. A chunk stays **one** kernel mapping (VMA) however many stacks it holds:
//!   50,000 default stacks take 18 chunks (measured: 4 more lines in `/proc/self/maps`, as
//!   the kernel merges adjacent chunks), 1,000,000 take about 250 chunks, far below the
//!   default `vm.max_map_count` of 65530.
//! * [`GuardKind::Mprotect`] (older kernels, or `GREEN_STACK_GUARD=mprotect` in the
//!   environment): `mprotect(guard, page, PROT_NONE)` splits the chunk's mapping, so every
//!   stack costs **two** mappings (its guard and its usable range). With the default
//!   `vm.max_map_count=65530` that limits a process to about 32,700 stacks; beyond it the
//!   kernel answers `ENOMEM` and `StackPool::get` returns a [`StackError`] that names the
//!   sysctl to raise (it never aborts or panics).

use std::fmt;
use std::io;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13); not every libc release has it.
pub(crate) const MADV_GUARD_INSTALL: libc::c_int = 102;

static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The system page size (cached).
#[inline]
pub(crate) fn page_size() -> usize {
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    page_size_slow()
}

#[cold]
fn page_size_slow() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 && (page as usize).is_power_of_two() {
        page as usize
    } else {
        4096
    };
    PAGE.store(page, Ordering::Relaxed);
    page
}

/// How guard pages are put below greenlet stacks: what a stack costs in kernel mappings
/// (`vm.max_map_count`, 65530 by default), which limits how many stacks a process can
/// have.
///
/// ```
/// use green::stack::GuardKind;
/// match GuardKind::detect() {
///     GuardKind::MadviseGuard => println!("guard pages do not cost kernel mappings"),
///     GuardKind::Mprotect => println!("every stack costs 2 of vm.max_map_count mappings"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GuardKind {
    /// `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+): the guard lives in the page tables
    /// and does not split the chunk's mapping: a chunk of many stacks stays one mapping.
    MadviseGuard,
    /// `mprotect(PROT_NONE)` on the guard page: portable, but splits the mapping, so each
    /// stack costs two kernel mappings (`vm.max_map_count`).
    Mprotect,
}

impl GuardKind {
    /// The guard kind this process uses, detected once by trying `MADV_GUARD_INSTALL` on a
    /// scratch mapping (`EINVAL` means the kernel is older than 6.13).
    ///
    /// Setting the environment variable `GREEN_STACK_GUARD=mprotect` before the first
    /// stack is allocated forces [`GuardKind::Mprotect`] (for testing and measurements).
    ///
    /// ```
    /// use green::stack::GuardKind;
    /// let kind = GuardKind::detect();
    /// assert!(matches!(kind, GuardKind::MadviseGuard | GuardKind::Mprotect));
    /// assert_eq!(GuardKind::detect(), kind); // detected once
    /// ```
    pub fn detect() -> GuardKind {
        static KIND: OnceLock<GuardKind> = OnceLock::new();
        *KIND.get_or_init(|| {
            if std::env::var_os("GREEN_STACK_GUARD").is_some_and(|v| v == "mprotect") {
                return GuardKind::Mprotect;
            }
            if madvise_guard_supported() {
                GuardKind::MadviseGuard
            } else {
                GuardKind::Mprotect
            }
        })
    }
}

#[cfg(target_os = "linux")]
fn madvise_guard_supported() -> bool {
    let page = page_size();
    // SAFETY: a fresh anonymous private mapping of two pages; no memory is aliased.
    let probe = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if probe == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: `probe` is our own mapping of 2 pages; the advice only affects its first
    // page, which nothing references.
    let ok = unsafe { libc::madvise(probe, page, MADV_GUARD_INSTALL) } == 0;
    if !ok {
        log::debug!(
            "MADV_GUARD_INSTALL unsupported ({}); using mprotect guard pages",
            io::Error::last_os_error()
        );
    }
    // SAFETY: unmapping exactly the mapping created above, which nothing references.
    unsafe { libc::munmap(probe, 2 * page) };
    ok
}

#[cfg(not(target_os = "linux"))]
fn madvise_guard_supported() -> bool {
    false
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    /// The kernel ran out of mappings for this process (`vm.max_map_count`).
    MapCount,
    /// Not enough memory (or address space) for the mapping.
    OutOfMemory,
    /// The requested size does not fit the address space.
    TooLarge,
}

/// A greenlet stack could not be allocated.
///
/// Returned when spawning a greenlet fails for lack of memory or of kernel memory
/// mappings; its message says which, and names the `vm.max_map_count` sysctl when that is
/// the limit that was hit. It converts into an [`std::io::Error`] of kind
/// [`OutOfMemory`](std::io::ErrorKind::OutOfMemory).
///
/// ```
/// use green::StackError;
///
/// fn report(err: StackError) -> std::io::Error {
///     if err.is_map_count_limit() {
///         eprintln!("too many greenlets for this kernel's limits: {err}");
///     }
///     err.into() // std::io::ErrorKind::OutOfMemory
/// }
/// ```
#[derive(Debug)]
pub struct StackError(Box<StackErrorRepr>);

/// What a [`StackError`] says, boxed: the error is one pointer, so the `Result` of every
/// spawn stays small.
#[derive(Debug)]
struct StackErrorRepr {
    kind: ErrorKind,
    errno: Option<i32>,
    message: String,
}

impl StackError {
    /// Whether the kernel's limit on memory mappings per process (`vm.max_map_count`) was
    /// hit (only happens with [`GuardKind::Mprotect`] guard pages or a huge number of
    /// chunks).
    ///
    /// ```
    /// // A stack larger than the address space: refused, and not for the map count.
    /// let err = green::Builder::new().stack_size(usize::MAX / 2).spawn(|| ()).unwrap_err();
    /// let err = err.into_inner().unwrap().downcast::<green::StackError>().unwrap();
    /// assert!(!err.is_map_count_limit());
    /// ```
    pub fn is_map_count_limit(&self) -> bool {
        self.0.kind == ErrorKind::MapCount
    }

    /// The OS error code (`errno`) of the failed system call, if there was one.
    ///
    /// ```
    /// // Refused before any system call: no error code.
    /// let err = green::Builder::new().stack_size(usize::MAX / 2).spawn(|| ()).unwrap_err();
    /// let err = err.into_inner().unwrap().downcast::<green::StackError>().unwrap();
    /// assert_eq!(err.raw_os_error(), None);
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        self.0.errno
    }

    pub(crate) fn map_count(errno: i32) -> StackError {
        StackError(Box::new(StackErrorRepr {
            kind: ErrorKind::MapCount,
            errno: Some(errno),
            message: map_count_message(read_max_map_count()),
        }))
    }

    pub(crate) fn out_of_memory(what: &str, bytes: usize, err: io::Error) -> StackError {
        StackError(Box::new(StackErrorRepr {
            kind: ErrorKind::OutOfMemory,
            errno: err.raw_os_error(),
            message: format!(
                "cannot allocate greenlet stacks: {what} of {bytes} bytes failed: {err}"
            ),
        }))
    }

    pub(crate) fn too_many_sizes(max: usize) -> StackError {
        StackError(Box::new(StackErrorRepr {
            kind: ErrorKind::TooLarge,
            errno: None,
            message: format!(
                "cannot allocate a greenlet stack: more than {max} distinct stack sizes"
            ),
        }))
    }

    pub(crate) fn too_large(size: usize) -> StackError {
        StackError(Box::new(StackErrorRepr {
            kind: ErrorKind::TooLarge,
            errno: None,
            message: format!("cannot allocate a greenlet stack of {size} bytes: too large"),
        }))
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for StackError {}

impl From<StackError> for io::Error {
    fn from(err: StackError) -> io::Error {
        io::Error::new(io::ErrorKind::OutOfMemory, err)
    }
}

/// The current `vm.max_map_count`, if readable.
pub(crate) fn read_max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Number of mappings of this process (lines of `/proc/self/maps`), if readable.
pub(crate) fn count_mappings() -> Option<usize> {
    let maps = std::fs::read("/proc/self/maps").ok()?;
    Some(maps.iter().filter(|&&b| b == b'\n').count())
}

/// The message of a [`StackError`] caused by `vm.max_map_count`.
pub(crate) fn map_count_message(max: Option<u64>) -> String {
    let (current, suggested) = match max {
        Some(max) => (
            max.to_string(),
            (max.saturating_mul(4)).max(262_144).to_string(),
        ),
        None => ("unknown".to_string(), "262144".to_string()),
    };
    format!(
        "cannot allocate a greenlet stack: out of kernel memory mappings \
         (vm.max_map_count={current}); with mprotect guard pages (Linux before 6.13) every \
         stack costs 2 mappings; raise it with `sysctl -w vm.max_map_count={suggested}`"
    )
}

/// Whether an `ENOMEM` from `mmap` is more likely the mapping limit than lack of memory.
pub(crate) fn near_map_count_limit() -> bool {
    match (count_mappings(), read_max_map_count()) {
        (Some(count), Some(max)) => count as u64 + 16 >= max,
        _ => false,
    }
}

/// An anonymous, private, read-write, lazily committed mapping of `len` bytes.
pub(crate) fn map_anonymous(len: usize) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
    #[cfg(not(target_os = "linux"))]
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; it aliases
    // nothing.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Stacks want small pages: a transparent huge page would make one greenlet's first
    // touch commit 2 MiB. (MAP_STACK implies this since Linux 6.7.) Failure is harmless.
    #[cfg(target_os = "linux")]
    // SAFETY: advice on our own fresh mapping; it changes no contents.
    unsafe {
        libc::madvise(addr, len, libc::MADV_NOHUGEPAGE)
    };
    Ok(addr as usize)
}
