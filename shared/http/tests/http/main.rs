//! The HTTP layer's tests, one binary with a module per subject.

mod faults;
