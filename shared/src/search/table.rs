//! Compact, column-wise storage of people.
//!
//! A million people as `Person` values cost about 300 MB of small heap
//! allocations; here they cost about 45 MB: names, nationalities and hobbies
//! are interned (real data has a few thousand distinct names), ids live in one
//! arena, and each person is a handful of `u32`s. Hashing is foldhash (fast,
//! randomly seeded per process).

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::domain::Person;

/// Interned strings: each distinct string is stored once and named by a `u32`.
#[derive(Clone, Default)]
pub(crate) struct Symbols {
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Symbols {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct strings");
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub(crate) fn resolve(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.strings
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u32, &**s))
    }
}

/// A borrowed view of one person's fields, as parsed from a JSON line or a
/// DynamoDB item, so that loading does not allocate a `Person` per row.
#[derive(Debug, Clone, Copy)]
pub struct PersonRef<'a> {
    pub id: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub nationality: &'a str,
    pub hobbies: &'a [&'a str],
}

/// Rows of people, addressed by a dense row number. Rows are never removed;
/// an upsert of a known id rewrites that row in place.
#[derive(Clone, Default)]
pub struct PeopleTable {
    pub(crate) names: Symbols,
    pub(crate) nationalities: Symbols,
    pub(crate) hobby_names: Symbols,
    id_arena: String,
    id_end: Vec<u32>,
    pub(crate) first: Vec<u32>,
    pub(crate) last: Vec<u32>,
    pub(crate) nationality: Vec<u32>,
    /// Hobbies of row `r`: `hobbies[hobby_start[r]..hobby_start[r] + hobby_len[r]]`.
    hobby_start: Vec<u32>,
    hobby_len: Vec<u8>,
    hobbies: Vec<u32>,
    by_id: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// What an upsert did to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Inserted(u32),
    Replaced(u32),
    Unchanged(u32),
}

impl PeopleTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.id_end.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_end.is_empty()
    }

    pub fn id(&self, row: u32) -> &str {
        let row = row as usize;
        let start = if row == 0 {
            0
        } else {
            self.id_end[row - 1] as usize
        };
        &self.id_arena[start..self.id_end[row] as usize]
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.by_id.find(hash, |&row| self.id(row) == id).copied()
    }

    pub(crate) fn nationality_id(&self, row: u32) -> u32 {
        self.nationality[row as usize]
    }

    pub(crate) fn nationality_count(&self) -> usize {
        self.nationalities.len()
    }

    pub(crate) fn hobby_count(&self) -> usize {
        self.hobby_names.len()
    }

    pub(crate) fn nationality_name(&self, id: u32) -> &str {
        self.nationalities.resolve(id)
    }

    pub(crate) fn hobby_name(&self, id: u32) -> &str {
        self.hobby_names.resolve(id)
    }

    pub(crate) fn hobby_ids(&self, row: u32) -> &[u32] {
        let start = self.hobby_start[row as usize] as usize;
        &self.hobbies[start..start + self.hobby_len[row as usize] as usize]
    }

    pub fn first_name(&self, row: u32) -> &str {
        self.names.resolve(self.first[row as usize])
    }

    pub fn last_name(&self, row: u32) -> &str {
        self.names.resolve(self.last[row as usize])
    }

    pub fn nationality(&self, row: u32) -> &str {
        self.nationalities.resolve(self.nationality[row as usize])
    }

    pub fn person(&self, row: u32) -> Person {
        Person {
            id: self.id(row).to_owned(),
            first_name: self.first_name(row).to_owned(),
            last_name: self.last_name(row).to_owned(),
            nationality: self.nationality(row).to_owned(),
            hobbies: self
                .hobby_ids(row)
                .iter()
                .map(|&h| self.hobby_names.resolve(h).to_owned())
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<Person> {
        self.row_of(id).map(|row| self.person(row))
    }

    pub fn upsert(&mut self, p: &Person) -> Upserted {
        let hobbies: Vec<&str> = p.hobbies.iter().map(String::as_str).collect();
        self.upsert_ref(PersonRef {
            id: &p.id,
            first_name: &p.first_name,
            last_name: &p.last_name,
            nationality: &p.nationality,
            hobbies: &hobbies,
        })
    }

    /// Inserts a person, or rewrites the row of a known id.
    ///
    /// Hobbies are kept as a set, in the order given (first occurrence wins),
    /// at most 255 of them (validation elsewhere allows far fewer).
    pub fn upsert_ref(&mut self, p: PersonRef<'_>) -> Upserted {
        let first = self.names.intern(p.first_name);
        let last = self.names.intern(p.last_name);
        let nationality = self.nationalities.intern(p.nationality);
        let mut hobby_ids: Vec<u32> = Vec::with_capacity(p.hobbies.len());
        for h in p.hobbies.iter().take(255) {
            let id = self.hobby_names.intern(h);
            if !hobby_ids.contains(&id) {
                hobby_ids.push(id);
            }
        }
        if let Some(row) = self.row_of(p.id) {
            let r = row as usize;
            if self.first[r] == first
                && self.last[r] == last
                && self.nationality[r] == nationality
                && self.hobby_ids(row) == hobby_ids.as_slice()
            {
                return Upserted::Unchanged(row);
            }
            self.first[r] = first;
            self.last[r] = last;
            self.nationality[r] = nationality;
            if hobby_ids.len() <= self.hobby_len[r] as usize {
                let start = self.hobby_start[r] as usize;
                self.hobbies[start..start + hobby_ids.len()].copy_from_slice(&hobby_ids);
            } else {
                // The old slot is too small; the row gets a new one and the
                // old one is left unused (a few bytes per grown row).
                self.hobby_start[r] = self.hobby_offset();
                self.hobbies.extend_from_slice(&hobby_ids);
            }
            self.hobby_len[r] = hobby_ids.len() as u8;
            return Upserted::Replaced(row);
        }
        let row = u32::try_from(self.len()).expect("fewer than 2^32 people");
        self.id_arena.push_str(p.id);
        self.id_end
            .push(u32::try_from(self.id_arena.len()).expect("id arena under 4 GiB"));
        self.first.push(first);
        self.last.push(last);
        self.nationality.push(nationality);
        self.hobby_start.push(self.hobby_offset());
        self.hobby_len.push(hobby_ids.len() as u8);
        self.hobbies.extend_from_slice(&hobby_ids);
        let hasher = &self.hasher;
        let arena = &self.id_arena;
        let ends = &self.id_end;
        let hash = hasher.hash_one(p.id);
        self.by_id.insert_unique(hash, row, |&r| {
            let r = r as usize;
            let start = if r == 0 { 0 } else { ends[r - 1] as usize };
            hasher.hash_one(&arena[start..ends[r] as usize])
        });
        Upserted::Inserted(row)
    }

    fn hobby_offset(&self) -> u32 {
        u32::try_from(self.hobbies.len()).expect("fewer than 2^32 hobby entries")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, first: &str, last: &str, nat: &str, hobbies: &[&str]) -> Person {
        Person {
            id: id.into(),
            first_name: first.into(),
            last_name: last.into(),
            nationality: nat.into(),
            hobbies: hobbies.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn upsert_inserts_then_replaces_by_id() {
        let mut t = PeopleTable::new();
        let a = person("a", "Ann", "Lee", "Irish", &["Chess", "Golf"]);
        assert_eq!(t.upsert(&a), Upserted::Inserted(0));
        assert_eq!(
            t.upsert(&person("b", "Bo", "Kim", "Korean", &[])),
            Upserted::Inserted(1)
        );
        assert_eq!(t.upsert(&a), Upserted::Unchanged(0));
        let a2 = person("a", "Ann", "Lee", "Irish", &["Chess", "Golf", "Yoga"]);
        assert_eq!(t.upsert(&a2), Upserted::Replaced(0));
        assert_eq!(t.get("a"), Some(a2));
        let a3 = person("a", "Anne", "Lee", "Irish", &["Yoga"]);
        assert_eq!(t.upsert(&a3), Upserted::Replaced(0));
        assert_eq!(t.get("a"), Some(a3));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("b").map(|p| p.last_name), Some("Kim".into()));
        assert_eq!(t.get("c"), None);
    }

    #[test]
    fn duplicate_hobbies_are_kept_once() {
        let mut t = PeopleTable::new();
        t.upsert(&person("a", "A", "B", "C", &["X", "Y", "X"]));
        assert_eq!(
            t.get("a").map(|p| p.hobbies),
            Some(vec!["X".into(), "Y".into()])
        );
    }

    #[test]
    fn many_rows_are_found_by_id() {
        let mut t = PeopleTable::new();
        for i in 0..10_000 {
            t.upsert(&person(&format!("id{i}"), "F", "L", "N", &[]));
        }
        for i in (0..10_000).step_by(97) {
            assert_eq!(t.row_of(&format!("id{i}")), Some(i));
        }
        assert_eq!(t.row_of("id10000"), None);
    }
}
