//! Pagination cursors: `Cursor::decode` of an untrusted token, and the
//! promise that every cursor the API issues decodes again.
//!
//! Input, UTF-8 text in up to three lines:
//! 1. the token to decode;
//! 2. the filter: `search TAB nationalities TAB hobbies TAB any|all`
//!    (lists comma-separated; a missing or empty line is no filter);
//! 3. a person, `last_name TAB first_name TAB id`: when it is a valid
//!    person, the cursor the API would issue after them must decode to
//!    their sort key (folded names, id).
#![no_main]

use libfuzzer_sys::fuzz_target;
use people_http::Cursor;
use people_core::domain::{HobbiesMatch, PeopleFilter, SortKey, validate_fields};
use people_core::text::fold;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let token = lines.next().unwrap_or("");
    let filter = filter(lines.next().unwrap_or(""));
    if let Ok(cursor) = Cursor::decode(token, &filter) {
        let again = Cursor::encode(&cursor.after, &filter);
        let decoded = Cursor::decode(&again, &filter).expect("a re-encoded cursor decodes");
        assert_eq!(decoded, cursor);
    }
    if let Some(person) = lines.next() {
        let mut fields = person.split('\t');
        let (last, first, id) = (
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
            fields.next().unwrap_or(""),
        );
        if validate_fields(id, first, last, "Nationality", &[] as &[&str]).is_ok() {
            let after = SortKey {
                last: fold(last),
                first: fold(first),
                id: id.to_owned(),
            };
            let token = Cursor::encode(&after, &filter);
            match Cursor::decode(&token, &filter) {
                Ok(c) => assert_eq!(c.after, after),
                Err(e) => panic!(
                    "the cursor issued after a valid person ({} bytes) is refused: {e:?}",
                    token.len()
                ),
            }
        }
    }
});

fn filter(line: &str) -> PeopleFilter {
    let mut fields = line.split('\t');
    let search = fields.next().unwrap_or("");
    let list = |s: Option<&str>| -> Vec<String> {
        s.unwrap_or("")
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let nationalities = list(fields.next());
    let hobbies = list(fields.next());
    let hobbies_match = match fields.next() {
        Some("all") => HobbiesMatch::All,
        _ => HobbiesMatch::Any,
    };
    PeopleFilter::new(search, nationalities, hobbies, hobbies_match)
}
