//! runtime placeholder

pub(crate) mod overflow;
pub mod stack;
