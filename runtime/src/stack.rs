//! TEMPORARY stub (replaced by the pooled, guarded implementation from branch `stack`).
use corosensei::stack::{DefaultStack, Stack, StackPointer};
use std::fmt;

/// Default usable stack size of a greenlet.
pub const DEFAULT_STACK_SIZE: usize = 128 * 1024;

pub(crate) struct GreenStack(DefaultStack, usize);

// SAFETY: forwards to DefaultStack, which upholds the trait's contract.
unsafe impl Stack for GreenStack {
    fn base(&self) -> StackPointer {
        self.0.base()
    }
    fn limit(&self) -> StackPointer {
        self.0.limit()
    }
}

impl GreenStack {
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let l = self.0.limit().get();
        (l - 4096, l)
    }
    pub(crate) fn size(&self) -> usize {
        self.1
    }
}

/// Failure to allocate a stack.
#[derive(Debug)]
pub struct StackError(std::io::Error);
impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot allocate a greenlet stack: {}", self.0)
    }
}
impl std::error::Error for StackError {}
impl From<StackError> for std::io::Error {
    fn from(e: StackError) -> Self {
        std::io::Error::new(std::io::ErrorKind::OutOfMemory, e.to_string())
    }
}

pub(crate) struct StackPool {
    free: Vec<GreenStack>,
}
impl StackPool {
    pub(crate) fn new() -> Self {
        StackPool { free: Vec::new() }
    }
    pub(crate) fn get(&mut self, size: usize) -> Result<GreenStack, StackError> {
        if let Some(i) = self.free.iter().rposition(|s| s.1 == size) {
            return Ok(self.free.swap_remove(i));
        }
        DefaultStack::new(size).map(|s| GreenStack(s, size)).map_err(StackError)
    }
    pub(crate) fn put(&mut self, s: GreenStack) {
        self.free.push(s)
    }
}
