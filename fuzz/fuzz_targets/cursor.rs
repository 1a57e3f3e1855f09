//! Cursor tokens against a filter, and the cursor issued after a valid
//! person: `people_testkit::fuzz::cursor`.
//! The corpus replay (`shared/testkit/tests/fuzz_corpus.rs`) runs the same
//! check on every seed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = people_testkit::fuzz::cursor(data);
});
