//! The application's tests, one binary with a module per subject (one
//! binary links once, where a binary per file would link each).

mod search;
