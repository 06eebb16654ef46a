//! net placeholder

#[cfg(feature = "monkey")]
pub mod monkey;
