//! net placeholder
