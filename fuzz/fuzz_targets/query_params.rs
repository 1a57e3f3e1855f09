//! `GET /people` and `GET /filters` query strings: `parse_query`, then
//! `PeopleQuery::from_pairs` (which also decodes a `cursor`) and
//! `filter_limit`. Input: the raw query string (what follows `?`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use people_http::params::{MAX_FILTER_LIMIT, MAX_PAGE_SIZE, MAX_SEARCH_WORDS, MAX_VALUES};
use people_http::{PeopleQuery, params, parse_query};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = parse_query(Some(raw)) else {
        return;
    };
    if let Ok(q) = PeopleQuery::from_pairs(&pairs) {
        // A PeopleQuery can only exist valid.
        assert!((1..=MAX_PAGE_SIZE).contains(&q.page_size));
        assert!(q.filter.words.len() <= MAX_SEARCH_WORDS);
        for list in [&q.filter.nationalities, &q.filter.hobbies] {
            assert!(list.len() <= MAX_VALUES);
            assert!(list.iter().all(|v| !v.is_empty()));
        }
    }
    if let Ok(limit) = params::filter_limit(&pairs) {
        assert!((1..=MAX_FILTER_LIMIT).contains(&limit));
    }
});
