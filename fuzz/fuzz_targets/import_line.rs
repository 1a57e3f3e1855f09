//! A line of an import file (`admin import`, `local --data`):
//! `jsonl::parse_person`, then the checks storage relies on. Input: one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use people_core::jsonl::parse_person;

fuzz_target!(|data: &[u8]| {
    if let Ok(person) = parse_person(data) {
        // parse_person checks exactly what validate checks.
        person.validate().expect("a parsed person is valid");
        // What the API sends back reads back as the same person.
        let line = serde_json::to_vec(&person).expect("a person serializes");
        assert_eq!(parse_person(&line).as_ref(), Ok(&person));
    }
});
