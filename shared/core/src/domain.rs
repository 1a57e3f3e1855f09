//! Domain types shared by every layer. No I/O here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A person as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub nationality: String,
    pub hobbies: Vec<String>,
}

/// One change of the directory, as the change feed carries it and the
/// index applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Inserted or replaced.
    Put(Person),
    /// Deleted (a tombstone in the feed).
    Delete(String),
}

impl Change {
    pub fn id(&self) -> &str {
        match self {
            Change::Put(p) => &p.id,
            Change::Delete(id) => id,
        }
    }
}

/// How several `hobbies` values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HobbiesMatch {
    /// A person has at least one of them.
    #[default]
    Any,
    /// A person has every one of them.
    All,
}

/// Which people a search or a report is about. Empty lists and no words mean
/// no filter; the filters combine with AND.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeopleFilter {
    /// Folded query words; each must be a prefix of one of a person's name words.
    pub words: Vec<String>,
    /// A person matches if their nationality is any of these (exact).
    pub nationalities: Vec<String>,
    pub hobbies: Vec<String>,
    pub hobbies_match: HobbiesMatch,
    /// Typo tolerance (opt-in, `typos=1`): a query word of 5 or more
    /// characters also matches a name word's prefix within one edit, 9 or
    /// more within two (`search::features`). Off, the reference semantics.
    pub typos: bool,
}

impl PeopleFilter {
    /// A filter from what a person typed and picked.
    pub fn new(
        search: &str,
        nationalities: Vec<String>,
        hobbies: Vec<String>,
        hobbies_match: HobbiesMatch,
    ) -> Self {
        Self {
            words: crate::text::words(search),
            nationalities,
            hobbies,
            hobbies_match,
            typos: false,
        }
    }

    /// The same filter with typo tolerance on or off.
    pub fn with_typos(mut self, typos: bool) -> Self {
        self.typos = typos;
        self
    }
}

/// The position in the defined order of a person: folded last name, folded
/// first name, id, each compared as bytes. A total order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SortKey {
    pub last: String,
    pub first: String,
    pub id: String,
}

/// A count of people per value, for filter options and reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: u64,
}

pub const MAX_ID_CHARS: usize = 64;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_HOBBIES: usize = 20;
pub const MAX_HOBBY_CHARS: usize = 50;

impl Person {
    /// Checks what storage and the index rely on; the error says which field
    /// is wrong and why, in words fit for a client.
    pub fn validate(&self) -> Result<(), String> {
        validate_fields(
            &self.id,
            &self.first_name,
            &self.last_name,
            &self.nationality,
            &self.hobbies,
        )
    }
}

/// [`Person::validate`] on borrowed fields, for bulk loads that never build
/// a `Person`.
pub fn validate_fields<H: AsRef<str>>(
    id: &str,
    first_name: &str,
    last_name: &str,
    nationality: &str,
    hobbies: &[H],
) -> Result<(), String> {
    text_field("id", id, MAX_ID_CHARS)?;
    text_field("first_name", first_name, MAX_NAME_CHARS)?;
    text_field("last_name", last_name, MAX_NAME_CHARS)?;
    text_field("nationality", nationality, MAX_NAME_CHARS)?;
    if hobbies.len() > MAX_HOBBIES {
        return Err(format!("hobbies: more than {MAX_HOBBIES}"));
    }
    for (i, h) in hobbies.iter().enumerate() {
        let h = h.as_ref();
        text_field("hobbies", h, MAX_HOBBY_CHARS)?;
        if hobbies[..i].iter().any(|x| x.as_ref() == h) {
            return Err(format!("hobbies: {h:?} is listed twice"));
        }
    }
    Ok(())
}

fn text_field(name: &str, value: &str, max_chars: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{name}: must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(format!("{name}: longer than {max_chars} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name}: contains a control character"));
    }
    if value.trim() != value {
        return Err(format!("{name}: has leading or trailing white space"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Person {
        Person {
            id: "p1".into(),
            first_name: "Zoë".into(),
            last_name: "O'Brien-Łukasz".into(),
            nationality: "Irish".into(),
            hobbies: vec!["Chess".into()],
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(ok().validate(), Ok(()));
        type Edit = fn(&mut Person);
        let cases: Vec<(Edit, &str)> = vec![
            (|p| p.id.clear(), "id"),
            (|p| p.first_name = "  ".into(), "first_name"),
            (|p| p.last_name = "x".repeat(101), "last_name"),
            (|p| p.nationality = "Ir\u{7}ish".into(), "nationality"),
            (|p| p.hobbies = vec!["a".into(); 21], "hobbies"),
            (
                |p| p.hobbies = vec!["Chess".into(), "Chess".into()],
                "hobbies",
            ),
            (|p| p.hobbies = vec!["".into()], "hobbies"),
            (|p| p.first_name = " Ann".into(), "first_name"),
        ];
        for (edit, field) in cases {
            let mut p = ok();
            edit(&mut p);
            let err = p.validate().unwrap_err();
            assert!(err.starts_with(field), "{err}");
        }
    }
}

/// Limits of a filter, in a query and in a report request alike.
/// Longer input is not a name anybody types.
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_SEARCH_WORDS: usize = 10;
/// Per list parameter (`nationality`, `hobbies`).
pub const MAX_VALUES: usize = 100;
pub const MAX_VALUE_CHARS: usize = 100;

/// A person as a client writes one: the body of `PUT /people/{id}` (its
/// `id` may be left out, and must be the path's if given) and a line of
/// an import (an `id` left out is derived from the request). Every field
/// is then validated (`Person::validate`: lengths, no blank or padded
/// text, no control characters).
#[derive(Deserialize, ToSchema)]
pub struct PersonInput {
    #[serde(default)]
    pub id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub nationality: String,
    /// Each hobby once.
    pub hobbies: Vec<String>,
}
