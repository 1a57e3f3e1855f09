//! Opaque pagination cursors.
//!
//! A cursor holds the sort key of the last person on the page it came with
//! (keyset pagination: the next page starts right after that person, so
//! people added or changed between pages neither repeat nor skip the ones
//! already seen) and a fingerprint of the filter, so a cursor cannot be used
//! with a different search. A checksum rejects cursors that were edited or
//! truncated; cursors are not secrets and grant nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::ApiError;
use people_core::domain::{HobbiesMatch, PeopleFilter, SortKey};

const VERSION: u8 = 1;
/// Longest cursor accepted. A cursor carries two folded names, and folding
/// can expand a character a lot: NFKD turns U+FDFA (an Arabic ligature) into
/// 18 characters, 33 bytes of UTF-8. A name of 100 such characters folds to
/// 3.3 KB, so the longest real cursor (two such names and a 64-character id
/// of 4-byte characters, JSON, base64) is about 9.3 KB; this leaves room and
/// stays under the query string's 16 KiB. Real cursors are ~60 bytes.
/// (Found while writing the cursor fuzz target's checks: a 2 KiB bound
/// refused cursors this API had issued.)
const MAX_TOKEN: usize = 12 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub after: SortKey,
}

impl Cursor {
    pub fn encode(after: &SortKey, filter: &PeopleFilter) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&fingerprint(filter).to_be_bytes());
        bytes.extend_from_slice(
            &serde_json::to_vec(&(&after.last, &after.first, &after.id))
                .expect("strings serialize"),
        );
        let check = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&check.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(token: &str, filter: &PeopleFilter) -> Result<Self, ApiError> {
        let invalid = || ApiError::invalid("cursor", "cursor is not one this API issued");
        if token.len() > MAX_TOKEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() < 9 || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (body, check) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_be_bytes() != check {
            return Err(invalid());
        }
        let print = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
        let (last, first, id): (String, String, String) =
            serde_json::from_slice(&body[5..]).map_err(|_| invalid())?;
        if print != fingerprint(filter) {
            return Err(ApiError::invalid(
                "cursor",
                "cursor belongs to a different search; repeat the search, nationality, hobbies and hobbies_match it came with",
            ));
        }
        Ok(Cursor {
            after: SortKey { last, first, id },
        })
    }
}

/// The same for every spelling of the same filter.
fn fingerprint(filter: &PeopleFilter) -> u32 {
    let mut words = filter.words.clone();
    words.sort();
    words.dedup();
    let mut nats = filter.nationalities.clone();
    nats.sort();
    let mut hobbies = filter.hobbies.clone();
    hobbies.sort();
    let mut canonical = serde_json::to_vec(&(
        words,
        nats,
        hobbies,
        matches!(filter.hobbies_match, HobbiesMatch::All),
    ))
    .expect("strings serialize");
    // Appended only when on, so that cursors issued before typo tolerance
    // existed stay valid.
    if filter.typos {
        canonical.extend_from_slice(b"+typos");
    }
    crc32fast::hash(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SortKey {
        SortKey {
            last: "muller".into(),
            first: "jurgen".into(),
            id: "p0000042".into(),
        }
    }

    #[test]
    fn round_trip() {
        let filter = PeopleFilter::new("jo", vec!["German".into()], vec![], HobbiesMatch::Any);
        let token = Cursor::encode(&key(), &filter);
        assert_eq!(Cursor::decode(&token, &filter).unwrap().after, key());
        // Same filter, other spelling.
        let same = PeopleFilter::new("JO", vec!["German".into()], vec![], HobbiesMatch::Any);
        assert!(Cursor::decode(&token, &same).is_ok());
    }

    /// The longest names a person may have, folded to the longest keys,
    /// still make a cursor that is accepted (and fits the query string).
    #[test]
    fn the_longest_cursor_this_api_can_issue_is_accepted() {
        use people_core::domain::MAX_NAME_CHARS;
        let name: String = "\u{FDFA}".repeat(MAX_NAME_CHARS);
        let key = SortKey {
            last: people_core::text::fold(&name),
            first: people_core::text::fold(&name),
            id: "\u{1F600}".repeat(people_core::domain::MAX_ID_CHARS),
        };
        let filter = PeopleFilter::new("", vec![], vec![], HobbiesMatch::Any);
        let token = Cursor::encode(&key, &filter);
        assert!(token.len() <= MAX_TOKEN, "{} bytes", token.len());
        assert!(token.len() + "cursor=".len() <= super::super::params::MAX_QUERY_BYTES);
        assert_eq!(Cursor::decode(&token, &filter).unwrap().after, key);
    }

    #[test]
    fn other_filter_is_rejected() {
        let token = Cursor::encode(
            &key(),
            &PeopleFilter::new("jo", vec![], vec![], HobbiesMatch::Any),
        );
        let other = PeopleFilter::new("ja", vec![], vec![], HobbiesMatch::Any);
        assert!(Cursor::decode(&token, &other).is_err());
    }

    #[test]
    fn forged_or_damaged_cursors_are_rejected() {
        let filter = PeopleFilter::default();
        let token = Cursor::encode(&key(), &filter);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[7] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(&bytes);
        for bad in [
            edited.as_str(),
            &token[..token.len() - 2],
            "",
            "!!!",
            "AAAAAAAAAAAAAA",
        ] {
            assert!(Cursor::decode(bad, &filter).is_err(), "{bad}");
        }
    }
}
