//! Compact, column-wise storage of people.
//!
//! A million people as `Person` values cost about 300 MB of small heap
//! allocations; here they cost about 45 MB: names, nationalities and hobbies
//! are interned (real data has a few thousand distinct names), ids live in one
//! arenas, and each person is a handful of `u32`s. Hashing is foldhash (fast,
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

/// Rows per chunk of a table. A clone of a table shares its chunks, and a
/// chunk is copied only when a row in it is rewritten, so an index merge
/// (clone the base's table, append the changed people, drop the removed
/// ones) copies the few chunks it touches, not a million rows.
const CHUNK_ROWS: usize = 4096;

/// Up to `CHUNK_ROWS` rows, column-wise.
#[derive(Clone, Default)]
struct Chunk {
    id_arena: String,
    /// End of each row's id in `id_arena`.
    id_end: Vec<u32>,
    first: Vec<u32>,
    last: Vec<u32>,
    nationality: Vec<u32>,
    /// Hobbies of row `r`: `hobbies[hobby_start[r]..hobby_start[r] + hobby_len[r]]`.
    hobby_start: Vec<u32>,
    hobby_len: Vec<u8>,
    hobbies: Vec<u32>,
}

impl Chunk {
    fn id(&self, r: usize) -> &str {
        let start = if r == 0 {
            0
        } else {
            self.id_end[r - 1] as usize
        };
        &self.id_arena[start..self.id_end[r] as usize]
    }

    fn hobby_ids(&self, r: usize) -> &[u32] {
        let start = self.hobby_start[r] as usize;
        &self.hobbies[start..start + self.hobby_len[r] as usize]
    }

    fn hobby_offset(&self) -> u32 {
        u32::try_from(self.hobbies.len()).expect("fewer than 2^32 hobby entries")
    }
}

/// The id of `row` among `chunks` (for the id table's closures, which
/// cannot borrow the whole table).
fn id_in(chunks: &[Arc<Chunk>], row: u32) -> &str {
    let r = row as usize;
    chunks[r / CHUNK_ROWS].id(r % CHUNK_ROWS)
}

/// Rows of people, addressed by a dense row number. An upsert of a known id
/// rewrites that row in place; a removed row stays, unreachable by id and
/// skipped by [`PeopleTable::rows`], until the table is compacted.
#[derive(Clone, Default)]
pub struct PeopleTable {
    pub(crate) names: Symbols,
    pub(crate) nationalities: Symbols,
    pub(crate) hobby_names: Symbols,
    chunks: Vec<Arc<Chunk>>,
    len: usize,
    /// Rows that were removed.
    removed: roaring::RoaringBitmap,
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

    /// Rows, removed ones included (row numbers are below this).
    pub fn rows_len(&self) -> usize {
        self.len
    }

    /// People held (rows not removed).
    pub fn len(&self) -> usize {
        self.len - self.removed.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows removed and not yet compacted away.
    pub fn removed_len(&self) -> usize {
        self.removed.len() as usize
    }

    /// Every row that holds a person, in row order.
    pub fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len as u32).filter(|r| !self.removed.contains(*r))
    }

    pub fn is_removed(&self, row: u32) -> bool {
        self.removed.contains(row)
    }

    fn chunk(&self, row: u32) -> (&Chunk, usize) {
        let row = row as usize;
        (&self.chunks[row / CHUNK_ROWS], row % CHUNK_ROWS)
    }

    pub fn id(&self, row: u32) -> &str {
        let (c, r) = self.chunk(row);
        c.id(r)
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        self.by_id.find(hash, |&row| self.id(row) == id).copied()
    }

    pub(crate) fn first_id(&self, row: u32) -> u32 {
        let (c, r) = self.chunk(row);
        c.first[r]
    }

    pub(crate) fn last_id(&self, row: u32) -> u32 {
        let (c, r) = self.chunk(row);
        c.last[r]
    }

    pub(crate) fn nationality_id(&self, row: u32) -> u32 {
        let (c, r) = self.chunk(row);
        c.nationality[r]
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
        let (c, r) = self.chunk(row);
        c.hobby_ids(r)
    }

    pub fn first_name(&self, row: u32) -> &str {
        self.names.resolve(self.first_id(row))
    }

    pub fn last_name(&self, row: u32) -> &str {
        self.names.resolve(self.last_id(row))
    }

    pub fn nationality(&self, row: u32) -> &str {
        self.nationalities.resolve(self.nationality_id(row))
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

    /// Whether row `row` holds exactly `p`.
    pub(crate) fn holds(&self, row: u32, p: &Person) -> bool {
        let (c, r) = self.chunk(row);
        let same = |sym: u32, s: &Symbols, v: &str| s.get(v) == Some(sym);
        same(c.first[r], &self.names, &p.first_name)
            && same(c.last[r], &self.names, &p.last_name)
            && same(c.nationality[r], &self.nationalities, &p.nationality)
            && {
                let mut seen: Vec<u32> = Vec::with_capacity(p.hobbies.len());
                for h in p.hobbies.iter().take(255) {
                    match self.hobby_names.get(h) {
                        Some(id) if !seen.contains(&id) => seen.push(id),
                        Some(_) => {}
                        None => return false,
                    }
                }
                c.hobby_ids(r) == seen.as_slice()
            }
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
            let (c, r) = self.chunk(row);
            if c.first[r] == first
                && c.last[r] == last
                && c.nationality[r] == nationality
                && c.hobby_ids(r) == hobby_ids.as_slice()
            {
                return Upserted::Unchanged(row);
            }
            let c = Arc::make_mut(&mut self.chunks[row as usize / CHUNK_ROWS]);
            let r = row as usize % CHUNK_ROWS;
            c.first[r] = first;
            c.last[r] = last;
            c.nationality[r] = nationality;
            if hobby_ids.len() <= c.hobby_len[r] as usize {
                let start = c.hobby_start[r] as usize;
                c.hobbies[start..start + hobby_ids.len()].copy_from_slice(&hobby_ids);
            } else {
                // The old slot is too small; the row gets a new one and the
                // old one is left unused (a few bytes per grown row).
                c.hobby_start[r] = c.hobby_offset();
                c.hobbies.extend_from_slice(&hobby_ids);
            }
            c.hobby_len[r] = hobby_ids.len() as u8;
            return Upserted::Replaced(row);
        }
        Upserted::Inserted(self.append(p.id, first, last, nationality, &hobby_ids))
    }

    /// Appends a row for a new id whose symbols are interned already.
    fn append(
        &mut self,
        id: &str,
        first: u32,
        last: u32,
        nationality: u32,
        hobby_ids: &[u32],
    ) -> u32 {
        let row = self.append_unindexed(id, first, last, nationality, hobby_ids);
        let hash = self.hasher.hash_one(id);
        let (hasher, chunks) = (&self.hasher, &self.chunks);
        self.by_id
            .insert_unique(hash, row, |&r| hasher.hash_one(id_in(chunks, r)));
        row
    }

    /// Appends a row that [`PeopleTable::row_of`] does not find until
    /// [`PeopleTable::index_ids`] runs.
    fn append_unindexed(
        &mut self,
        id: &str,
        first: u32,
        last: u32,
        nationality: u32,
        hobby_ids: &[u32],
    ) -> u32 {
        let row = u32::try_from(self.len).expect("fewer than 2^32 rows");
        if self.len.is_multiple_of(CHUNK_ROWS) {
            self.chunks.push(Arc::default());
        }
        let c = Arc::make_mut(self.chunks.last_mut().expect("a chunk was pushed"));
        c.id_arena.push_str(id);
        c.id_end
            .push(u32::try_from(c.id_arena.len()).expect("id arena under 4 GiB"));
        c.first.push(first);
        c.last.push(last);
        c.nationality.push(nationality);
        c.hobby_start.push(c.hobby_offset());
        c.hobby_len.push(hobby_ids.len() as u8);
        c.hobbies.extend_from_slice(hobby_ids);
        self.len += 1;
        row
    }

    /// Indexes every row by id, in one pass at the table's exact size (no
    /// rehash as it grows, each id hashed once), after rows were appended
    /// with [`PeopleTable::push_interned`]; an id held twice is an error.
    pub(crate) fn index_ids(&mut self) -> Result<(), &'static str> {
        let mut by_id = HashTable::with_capacity(self.len);
        let (hasher, chunks) = (&self.hasher, &self.chunks);
        for (c, chunk) in chunks.iter().enumerate() {
            for r in 0..chunk.id_end.len() {
                let id = chunk.id(r);
                let row = (c * CHUNK_ROWS + r) as u32;
                let same = |&other: &u32| id_in(chunks, other) == id;
                let rehash = |&other: &u32| hasher.hash_one(id_in(chunks, other));
                match by_id.entry(hasher.hash_one(id), same, rehash) {
                    hashbrown::hash_table::Entry::Occupied(_) => return Err("an id appears twice"),
                    hashbrown::hash_table::Entry::Vacant(slot) => {
                        slot.insert(row);
                    }
                }
            }
        }
        self.by_id = by_id;
        Ok(())
    }

    /// A table whose rows will name these symbols by position (an index
    /// image's); `None` when a list holds a string twice.
    pub(crate) fn with_symbols(
        names: Vec<String>,
        nationalities: Vec<String>,
        hobbies: Vec<String>,
    ) -> Option<Self> {
        let symbols = |strings: Vec<String>| {
            let mut out = Symbols::default();
            for (i, s) in strings.iter().enumerate() {
                if out.intern(s) as usize != i {
                    return None;
                }
            }
            Some(out)
        };
        Some(Self {
            names: symbols(names)?,
            nationalities: symbols(nationalities)?,
            hobby_names: symbols(hobbies)?,
            ..Self::default()
        })
    }

    /// Appends a person given by symbol numbers, or says why not: a symbol
    /// out of range, a hobby twice. The row is not found by id until
    /// [`PeopleTable::index_ids`] ran (which refuses an id held twice).
    pub(crate) fn push_interned(
        &mut self,
        id: &str,
        first: u32,
        last: u32,
        nationality: u32,
        hobby_ids: &[u32],
    ) -> Result<u32, &'static str> {
        let names = self.names.len() as u32;
        if first >= names || last >= names {
            return Err("a name number is out of range");
        }
        if nationality >= self.nationalities.len() as u32 {
            return Err("a nationality number is out of range");
        }
        let hobbies = self.hobby_names.len() as u32;
        for (i, &h) in hobby_ids.iter().enumerate() {
            if h >= hobbies {
                return Err("a hobby number is out of range");
            }
            if hobby_ids[..i].contains(&h) {
                return Err("a person has the same hobby twice");
            }
        }
        Ok(self.append_unindexed(id, first, last, nationality, hobby_ids))
    }

    /// Removes the person with `id`, if any, and returns their row. The row
    /// stays (it is garbage until [`PeopleTable::compacted`]), so no other
    /// row moves and no chunk is copied.
    pub fn remove(&mut self, id: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(id);
        let chunks = &self.chunks;
        let entry = self
            .by_id
            .find_entry(hash, |&row| id_in(chunks, row) == id)
            .ok()?;
        let (row, _) = entry.remove();
        self.removed.insert(row);
        Some(row)
    }

    /// The same people in a new table without removed rows.
    pub fn compacted(&self) -> PeopleTable {
        let mut out = PeopleTable::new();
        for row in self.rows() {
            let (c, r) = self.chunk(row);
            let hobbies: Vec<&str> = c
                .hobby_ids(r)
                .iter()
                .map(|&h| self.hobby_names.resolve(h))
                .collect();
            out.upsert_ref(PersonRef {
                id: c.id(r),
                first_name: self.names.resolve(c.first[r]),
                last_name: self.names.resolve(c.last[r]),
                nationality: self.nationalities.resolve(c.nationality[r]),
                hobbies: &hobbies,
            });
        }
        out
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
    fn a_removed_row_is_unreachable_and_a_clone_shares_chunks() {
        let mut t = PeopleTable::new();
        for i in 0..(CHUNK_ROWS + 10) {
            t.upsert(&person(&format!("id{i}"), "F", "L", "N", &["X"]));
        }
        let copy = t.clone();
        assert!(Arc::ptr_eq(&t.chunks[0], &copy.chunks[0]));
        assert_eq!(t.remove("id3"), Some(3));
        assert_eq!(t.remove("id3"), None);
        assert_eq!(t.get("id3"), None);
        assert_eq!(t.len(), CHUNK_ROWS + 9);
        assert_eq!(t.rows_len(), CHUNK_ROWS + 10);
        assert!(!t.rows().any(|r| r == 3));
        // Removing and appending touch no shared chunk but the last.
        t.upsert(&person("id3", "G", "L", "N", &[]));
        assert_eq!(t.row_of("id3"), Some((CHUNK_ROWS + 10) as u32));
        assert!(Arc::ptr_eq(&t.chunks[0], &copy.chunks[0]));
        assert_eq!(copy.get("id3").map(|p| p.first_name), Some("F".into()));
        let compact = t.compacted();
        assert_eq!(compact.rows_len(), compact.len());
        assert_eq!(compact.len(), t.len());
        assert_eq!(compact.get("id3"), t.get("id3"));
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
