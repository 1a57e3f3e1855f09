//! `GET /people` and `GET /filters` query strings (what follows `?`):
//! `people_testkit::fuzz::query_params`.
//! The corpus replay (`shared/testkit/tests/fuzz_corpus.rs`) runs the same
//! check on every seed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = people_testkit::fuzz::query_params(data);
});
