//! Command-line parsing for the examples, on top of `lexopt`: `--help` (or `-h`) prints
//! the usage on stdout and exits 0; an unknown flag or a bad value prints ONE line on
//! stderr and exits 2. Every value is checked here, before anything starts.
//!
//! ```text
//! let mut args = cli::Args::new(USAGE);
//! while let Some(arg) = args.next() {
//!     match arg {
//!         cli::Long("duration") => duration = args.secs(),
//!         cli::Long("quiet") => quiet = true,
//!         other => cli::reject(other),
//!     }
//! }
//! ```

use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

#[allow(unused_imports)] // examples without options use neither
pub use lexopt::Arg::{self, Long};

/// The longest duration accepted, in seconds (about 31 years): far from overflowing
/// `Instant` arithmetic, and longer than anyone waits.
pub const MAX_SECS: f64 = 1e9;

/// The command line being parsed, with the usage text to print for `--help`.
pub struct Args {
    parser: lexopt::Parser,
    usage: &'static str,
    /// The option whose value is read next, for error messages.
    option: String,
}

/// Prints `msg` as one line on stderr, prefixed with the program's name, and exits 2.
pub fn fail(msg: impl Display) -> ! {
    let name = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "example".into());
    eprintln!("{name}: {msg} (see --help)");
    std::process::exit(2)
}

/// Rejects an argument no option matched: an unknown flag, or a positional argument.
pub fn reject(arg: Arg<'_>) -> ! {
    fail(arg.unexpected())
}

impl Args {
    /// The process's command line. `usage` is printed as it is for `--help`.
    pub fn new(usage: &'static str) -> Args {
        Args {
            parser: lexopt::Parser::from_env(),
            usage,
            option: String::new(),
        }
    }

    /// For an example without options: answers `--help`, rejects anything else.
    pub fn none(usage: &'static str) {
        let mut args = Args::new(usage);
        if let Some(arg) = args.next() {
            reject(arg);
        }
    }

    /// The next flag or argument; `--help` and `-h` print the usage and exit 0 here.
    pub fn next(&mut self) -> Option<Arg<'_>> {
        match self.parser.next() {
            Ok(Some(Arg::Long("help") | Arg::Short('h'))) => {
                print!("{}", self.usage);
                std::process::exit(0)
            }
            Ok(Some(arg)) => {
                self.option = match arg {
                    Arg::Long(name) => format!("--{name}"),
                    Arg::Short(c) => format!("-{c}"),
                    Arg::Value(_) => String::new(),
                };
                Some(arg)
            }
            Ok(None) => None,
            Err(e) => fail(e),
        }
    }

    /// The value of the current option, as text.
    fn text(&mut self) -> String {
        match self.parser.value() {
            Ok(v) => v
                .into_string()
                .unwrap_or_else(|v| fail(format!("{}: not valid UTF-8: {v:?}", self.option))),
            Err(e) => fail(e),
        }
    }

    /// The value of the current option, parsed as a `T`.
    pub fn value<T: FromStr>(&mut self) -> T
    where
        T::Err: Display,
    {
        let v = self.text();
        v.parse()
            .unwrap_or_else(|e| fail(format!("{}: invalid value '{v}': {e}", self.option)))
    }

    /// An integer value in `min..=max`.
    pub fn count(&mut self, min: u64, max: u64) -> u64 {
        let n: u64 = self.value();
        if n < min {
            fail(format!(
                "{}: {n} is too small (at least {min})",
                self.option
            ));
        }
        if n > max {
            fail(format!("{}: {n} is too large (at most {max})", self.option));
        }
        n
    }

    /// A number of seconds (a fraction is fine), above 0 and at most [`MAX_SECS`].
    pub fn secs(&mut self) -> Duration {
        self.seconds(false)
    }

    /// Like [`secs`](Args::secs), but 0 is allowed and means "none" (a timeout turned off).
    pub fn timeout(&mut self) -> Option<Duration> {
        Some(self.seconds(true)).filter(|d| !d.is_zero())
    }

    fn seconds(&mut self, zero_ok: bool) -> Duration {
        let v = self.text();
        match v.parse::<f64>() {
            Ok(s) if (0.0..=MAX_SECS).contains(&s) && (zero_ok || s > 0.0) => {
                Duration::from_secs_f64(s)
            }
            _ => fail(format!(
                "{}: invalid value '{v}': expected seconds, {} to {MAX_SECS:e}",
                self.option,
                if zero_ok {
                    "from 0 (off)"
                } else {
                    "above 0 and up"
                }
            )),
        }
    }

    /// A socket address, `HOST:PORT`; a host name is resolved here (first address).
    pub fn addr(&mut self) -> SocketAddr {
        let v = self.text();
        match v.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => a,
            Ok(None) => fail(format!("{}: '{v}' resolves to no address", self.option)),
            Err(e) => fail(format!("{}: invalid address '{v}': {e}", self.option)),
        }
    }
}
