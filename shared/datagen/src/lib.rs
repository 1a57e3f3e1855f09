//! The benchmark kit's people generator (`gen_people.py`), ported exactly:
//! for every `(count, seed)`, [`write_jsonl`] writes the same bytes as
//! `python3 gen_people.py --count N --seed S`, so the project's built-in
//! data set is the data set of the kit's benchmarks and reference checks.
//! The crate's tests hold it to the kit's published SHA-256 sums and to the
//! kit's script itself.
//!
//! # What the kit's generator does
//!
//! Randomness is splitmix64 on wrapping `u64` arithmetic, and every choice
//! is integer-weighted: `(z * total) >> 64` over a table of cumulative
//! integer weights, then the first entry above it (Python's
//! `bisect_right`). No floats, no RNG crate, so the output depends only on
//! `count` and `seed`. One stream of draws runs through the whole data set
//! (nationality, first name, last name, number of hobbies, then hobbies
//! until that many are distinct), so the first `K` people of a larger run
//! equal a run of `K` people while the id width is the same.
//!
//! * `id`: `p` and the 1-based index, zero-padded to 7 digits, or to as
//!   many as `count` has.
//! * 60 nationalities with Zipf weights `1/k` (German about 21%); each has
//!   its own pools of first and last names, picked with weights
//!   `1/(k + 2)`.
//! * 80 hobbies with Zipf weights `1/k`; 0 to 6 distinct hobbies per person
//!   (weights 5, 14, 22, 22, 17, 12, 8 percent), sorted.

use std::io::{self, Write};
use std::iter::FusedIterator;
use std::sync::LazyLock;

mod tables;

/// One generated person, as the kit writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub nationality: &'static str,
    /// Distinct, sorted by byte order.
    pub hobbies: Vec<&'static str>,
}

impl Record {
    /// Appends this record's line, without its newline, exactly as the kit
    /// prints it: `json.JSONEncoder(ensure_ascii=False, separators=(", ",
    /// ": "))` over the keys in this order.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\": ");
        json_string(&self.id, out);
        out.extend_from_slice(b", \"first_name\": ");
        json_string(self.first_name, out);
        out.extend_from_slice(b", \"last_name\": ");
        json_string(self.last_name, out);
        out.extend_from_slice(b", \"nationality\": ");
        json_string(self.nationality, out);
        out.extend_from_slice(b", \"hobbies\": [");
        for (i, hobby) in self.hobbies.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            json_string(hobby, out);
        }
        out.extend_from_slice(b"]}");
    }
}

/// A JSON string as Python's encoder writes it with `ensure_ascii=False`:
/// only `"`, `\` and the control characters below U+0020 are escaped. The
/// tables hold none of them; this is here so the writer stays exact for
/// any text.
fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// `count` people for `seed`, lazily. The kit takes any integer seed modulo
/// 2^64; a negative kit seed `s` is `s as u64` here.
pub fn generate(count: usize, seed: u64) -> People {
    People {
        tables: &TABLES,
        state: seed,
        next: 1,
        count,
        width: id_width(count),
    }
}

/// `count` people for `seed` as the kit's JSON lines, each ending in `\n`.
pub fn write_jsonl(count: usize, seed: u64, mut out: impl Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 20);
    for record in generate(count, seed) {
        record.write_json(&mut buf);
        buf.push(b'\n');
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// The kit's `--check`: validates the tables (no duplicate nationality,
/// hobby or name within a pool; names and hobbies of the allowed letters
/// and single spaces) and prints the same summary line, e.g. `60
/// nationalities, N first names, M last names, 80 hobbies`.
pub fn check() -> Result<String, String> {
    let mut demonyms = std::collections::HashSet::new();
    for (demonym, _, _) in tables::NATIONALITIES {
        if !demonyms.insert(demonym) {
            return Err("duplicate nationality".into());
        }
    }
    let mut hobbies = std::collections::HashSet::new();
    for hobby in tables::HOBBIES {
        if !hobbies.insert(hobby) {
            return Err("duplicate hobby".into());
        }
    }
    for hobby in tables::HOBBIES {
        if !words_of(hobby, |c| c.is_ascii_alphabetic()) {
            return Err(format!("invalid hobby: {hobby:?}"));
        }
    }
    let (mut firsts, mut lasts) = (0, 0);
    for (_, first_names, last_names) in tables::NATIONALITIES {
        firsts += checked_pool(first_names)?.len();
        lasts += checked_pool(last_names)?.len();
    }
    Ok(format!(
        "{} nationalities, {firsts} first names, {lasts} last names, {} hobbies",
        tables::NATIONALITIES.len(),
        tables::HOBBIES.len()
    ))
}

fn checked_pool(text: &'static str) -> Result<Vec<&'static str>, String> {
    let names = pool(text);
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        let letter = |c: char| c.is_ascii_alphabetic() || tables::ALLOWED_ACCENTED.contains(c);
        if !words_of(name, letter) {
            return Err(format!("invalid name in pool: {name:?}"));
        }
        if !seen.insert(name) {
            return Err(format!("duplicate name in pool: {name:?}"));
        }
    }
    Ok(names)
}

/// The kit's `^[letters]+( [letters]+)*$`.
fn words_of(s: &str, letter: impl Fn(char) -> bool) -> bool {
    s.split(' ')
        .all(|w| !w.is_empty() && w.chars().all(&letter))
}

fn pool(text: &'static str) -> Vec<&'static str> {
    text.split('|').collect()
}

/// The kit's `max(7, len(str(count)))`.
fn id_width(count: usize) -> usize {
    count.to_string().len().max(7)
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Cumulative integer weights and a draw over them.
struct Cumulative(Vec<u64>);

impl Cumulative {
    fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        Self(
            weights
                .into_iter()
                .scan(0, |acc, w| {
                    *acc += w;
                    Some(*acc)
                })
                .collect(),
        )
    }

    /// The kit's `zipf_cumulative(n)`: weight `10^9 / k` for rank `k`.
    fn zipf(n: u64) -> Self {
        Self::new((1..=n).map(|k| 1_000_000_000 / k))
    }

    /// The kit's `mild_cumulative(n)`: weight `10^6 / (k + 2)`.
    fn mild(n: usize) -> Self {
        Self::new((1..=n as u64).map(|k| 1_000_000 / (k + 2)))
    }

    /// `bisect_right(cum, (z * total) >> 64)`.
    fn pick(&self, z: u64) -> usize {
        let total = *self.0.last().expect("a table is never empty");
        let x = ((u128::from(z) * u128::from(total)) >> 64) as u64;
        self.0.partition_point(|&c| c <= x)
    }
}

struct Pool {
    demonym: &'static str,
    first_names: Vec<&'static str>,
    first_cum: Cumulative,
    last_names: Vec<&'static str>,
    last_cum: Cumulative,
}

struct Tables {
    pools: Vec<Pool>,
    nationality: Cumulative,
    hobby: Cumulative,
    hobby_count: Cumulative,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let pools = tables::NATIONALITIES
        .iter()
        .map(|&(demonym, firsts, lasts)| {
            let (first_names, last_names) = (pool(firsts), pool(lasts));
            Pool {
                demonym,
                first_cum: Cumulative::mild(first_names.len()),
                first_names,
                last_cum: Cumulative::mild(last_names.len()),
                last_names,
            }
        })
        .collect::<Vec<_>>();
    Tables {
        nationality: Cumulative::zipf(pools.len() as u64),
        pools,
        hobby: Cumulative::zipf(tables::HOBBIES.len() as u64),
        hobby_count: Cumulative::new(tables::HOBBY_COUNT_WEIGHTS),
    }
});

/// The people of [`generate`], in id order.
pub struct People {
    tables: &'static Tables,
    state: u64,
    next: usize,
    count: usize,
    width: usize,
}

impl People {
    /// splitmix64's next output.
    fn draw(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for People {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.next > self.count {
            return None;
        }
        let tables = self.tables;
        let pool = &tables.pools[tables.nationality.pick(self.draw())];
        let first_name = pool.first_names[pool.first_cum.pick(self.draw())];
        let last_name = pool.last_names[pool.last_cum.pick(self.draw())];
        let k = tables.hobby_count.pick(self.draw());
        // The kit's `set` of hobby ranks, as bits: a repeated rank is drawn
        // again.
        const _: () = assert!(tables::HOBBIES.len() <= 128);
        let mut chosen = 0u128;
        while chosen.count_ones() < k as u32 {
            chosen |= 1 << tables.hobby.pick(self.draw());
        }
        let mut hobbies: Vec<&'static str> = (0..tables::HOBBIES.len())
            .filter(|&j| chosen & (1 << j) != 0)
            .map(|j| tables::HOBBIES[j])
            .collect();
        hobbies.sort_unstable();
        let id = format!("p{:0width$}", self.next, width = self.width);
        self.next += 1;
        Some(Record {
            id,
            first_name,
            last_name,
            nationality: pool.demonym,
            hobbies,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.next > self.count {
            0
        } else {
            self.count - self.next + 1
        };
        (left, Some(left))
    }
}

impl ExactSizeIterator for People {}

impl FusedIterator for People {}
