//! Reading people in bulk: a JSON-lines file (as `gen_people.py` writes it)
//! or the built-in generator, straight into a compact `PeopleTable`.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::domain::{Person, validate_fields};
use crate::search::{PeopleTable, PersonRef};
use rayon::prelude::*;
use serde::Deserialize;

/// Bytes read and parsed (in parallel) at a time.
const BLOCK_BYTES: usize = 8 << 20;

/// The longest line accepted. A person is a few hundred bytes; a file
/// without newlines (a wrong file) stops at its first line, numbered,
/// instead of being read to its end into memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
}

/// One line of a people file. Strings borrow from the line unless they
/// contain escapes, so a million lines cost no million allocations.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    first_name: Cow<'a, str>,
    #[serde(borrow)]
    last_name: Cow<'a, str>,
    #[serde(borrow)]
    nationality: Cow<'a, str>,
    #[serde(borrow)]
    hobbies: Vec<Cow<'a, str>>,
}

/// Reads `path` (one person a line, as gen_people.py writes; blank lines are
/// skipped). The first bad line stops the load, named by its number; a later
/// line with a known id replaces the earlier one. `progress` gets the number
/// of people read after every block.
pub fn read_jsonl(path: &Path, progress: &mut dyn FnMut(usize)) -> Result<PeopleTable, LoadError> {
    let shown = path.display().to_string();
    let io = |source| LoadError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut table = PeopleTable::new();
    let mut block: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + 4096);
    let mut first_line = 1usize;
    let mut read = 0usize;
    let mut at_end = false;
    while !at_end {
        // Fill the block, keeping what followed the last newline last time.
        let start = block.len();
        block.resize(BLOCK_BYTES.max(start * 2), 0);
        let mut filled = start;
        while filled < block.len() {
            match file.read(&mut block[filled..]) {
                Ok(0) => {
                    at_end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        block.truncate(filled);
        let complete = if at_end {
            block.len()
        } else {
            match block.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => {
                    // No newline in a whole block: the line is over the bound.
                    return Err(LoadError::BadLine {
                        path: shown.clone(),
                        line: first_line,
                        reason: format!("longer than {MAX_LINE_BYTES} bytes"),
                    });
                }
            }
        };
        let lines: Vec<(usize, &[u8])> = block[..complete]
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| (first_line + i, l))
            .filter(|(_, l)| !l.trim_ascii().is_empty())
            .collect();
        first_line += block[..complete].iter().filter(|&&b| b == b'\n').count();
        let parsed: Vec<Line<'_>> = lines
            .par_iter()
            .map(|&(n, bytes)| parse_line(bytes).map_err(|reason| (n, reason)))
            .collect::<Result<_, _>>()
            .map_err(|(line, reason)| LoadError::BadLine {
                path: shown.clone(),
                line,
                reason,
            })?;
        for p in &parsed {
            let hobbies: Vec<&str> = p.hobbies.iter().map(|h| &**h).collect();
            table.upsert_ref(PersonRef {
                id: &p.id,
                first_name: &p.first_name,
                last_name: &p.last_name,
                nationality: &p.nationality,
                hobbies: &hobbies,
            });
        }
        read += parsed.len();
        drop(parsed);
        progress(read);
        block.drain(..complete);
    }
    Ok(table)
}

fn parse_line(bytes: &[u8]) -> Result<Line<'_>, String> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_owned())?;
    let line: Line<'_> = serde_json::from_str(text).map_err(|e| {
        // serde_json's message ends with "at line 1 column N"; the line is ours.
        let msg = e.to_string();
        match msg.rfind(" at line ") {
            Some(i) => format!("{}, at column {}", &msg[..i], e.column()),
            None => msg,
        }
    })?;
    validate_fields(
        &line.id,
        &line.first_name,
        &line.last_name,
        &line.nationality,
        &line.hobbies,
    )?;
    Ok(line)
}

/// One line of a people file as an owned `Person`, checked exactly as
/// [`read_jsonl`] checks it (JSON shape, then `validate_fields`), with the
/// same reasons; for importers that stream a file line by line.
pub fn parse_person(bytes: &[u8]) -> Result<Person, String> {
    let line = parse_line(bytes)?;
    Ok(Person {
        id: line.id.into_owned(),
        first_name: line.first_name.into_owned(),
        last_name: line.last_name.into_owned(),
        nationality: line.nationality.into_owned(),
        hobbies: line.hobbies.into_iter().map(Cow::into_owned).collect(),
    })
}

/// `count` people of the benchmark kit's generator for `seed` (the crate
/// `people_datagen`): the built-in data set.
#[cfg(any(test, feature = "generated"))]
pub fn generated_people(count: usize, seed: u64) -> impl Iterator<Item = Person> + Send {
    people_datagen::generate(count, seed).map(|r| Person {
        id: r.id,
        first_name: r.first_name.to_owned(),
        last_name: r.last_name.to_owned(),
        nationality: r.nationality.to_owned(),
        hobbies: r.hobbies.into_iter().map(str::to_owned).collect(),
    })
}

/// The hard cases of folding that the kit's names lack (`ß`, `ł`, `æ`,
/// `ø`, `ð`, `þ`, `œ`, Turkish `ı` and `İ`, stacked and typographic marks,
/// apostrophes, hyphens, several words), given to every `step`th person,
/// for the tests that want them inside a generated data set.
#[cfg(test)]
pub(crate) fn with_hard_names(mut people: Vec<Person>, step: usize) -> Vec<Person> {
    const NAMES: &[(&str, &str)] = &[
        ("Małgorzata", "Strauß"),
        ("Ærin", "Ødegård"),
        ("Søren", "Þórsson"),
        ("Sigurður", "Guðmundsdóttir"),
        ("İsmail", "Yılmaz"),
        ("Aslı", "Şahin"),
        ("Zoë", "O'Brien"),
        ("Siân", "O’Connor"),
        ("Jean-Luc", "Lefèvre-Cœur"),
        ("Mary Ann", "van der Meer"),
        ("Nguyễn", "Đặng Thị"),
        ("Shōhei", "Ōtani"),
        ("Łukasz", "Wróbel"),
        ("Mañuel", "Dvořák"),
    ];
    for (i, p) in people.iter_mut().step_by(step).enumerate() {
        let (first, last) = NAMES[i % NAMES.len()];
        p.first_name = first.into();
        p.last_name = last.into();
    }
    people
}

/// `count` generated people (see [`generated_people`]).
#[cfg(any(test, feature = "generated"))]
pub fn generated(count: usize, seed: u64, progress: &mut dyn FnMut(usize)) -> PeopleTable {
    let mut table = PeopleTable::new();
    for (i, p) in generated_people(count, seed).enumerate() {
        table.upsert(&p);
        if (i + 1) % 100_000 == 0 {
            progress(i + 1);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_over_the_bound_are_numbered_errors_not_read_to_the_end() {
        let dir = std::env::temp_dir().join(format!("jsonl-long-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = r#"{"id":"a","first_name":"A","last_name":"B","nationality":"C","hobbies":[]}"#;
        // Line 2 is 100 KB; then a file of 20 MB without any newline.
        let long = dir.join("long.jsonl");
        std::fs::write(&long, format!("{ok}\n{}\n{ok}\n", "x".repeat(100_000))).unwrap();
        let flat = dir.join("flat.jsonl");
        std::fs::write(&flat, "y".repeat(20 << 20)).unwrap();
        for (path, line) in [(&long, 2), (&flat, 1)] {
            match read_jsonl(path, &mut |_| {}) {
                Err(LoadError::BadLine {
                    line: n, reason, ..
                }) => {
                    assert_eq!(n, line, "{reason}");
                    assert!(reason.contains("longer than"), "{reason}");
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("{} loaded", path.display()),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_lines_say_why() {
        let ok = br#"{"id":"a","first_name":"A","last_name":"B","nationality":"C","hobbies":[]}"#;
        assert!(parse_line(ok).is_ok());
        let missing = parse_line(br#"{"id":"a","first_name":"A","nationality":"C","hobbies":[]}"#)
            .err()
            .unwrap();
        assert!(missing.contains("last_name"), "{missing}");
        let syntax = parse_line(br#"{"id":"a","#).err().unwrap();
        assert!(syntax.contains("column"), "{syntax}");
        let invalid = parse_line(
            br#"{"id":"a","first_name":"","last_name":"B","nationality":"C","hobbies":[]}"#,
        )
        .err()
        .unwrap();
        assert!(invalid.starts_with("first_name"), "{invalid}");
        assert_eq!(parse_line(b"\xff\xfe").err().unwrap(), "not valid UTF-8");
    }

    #[test]
    fn file_lines_are_numbered_across_blocks() {
        let dir = std::env::temp_dir().join(format!("people-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("people.jsonl");
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!(
                "{{\"id\":\"p{i}\",\"first_name\":\"Ann\",\"last_name\":\"Lee\",\"nationality\":\"Irish\",\"hobbies\":[\"Chess\"]}}\n"
            ));
            if i == 10 {
                text.push('\n');
            }
        }
        text.push_str("{\"id\":\"x\"}\n");
        std::fs::write(&path, &text).unwrap();
        let err = read_jsonl(&path, &mut |_| {}).err().unwrap().to_string();
        assert!(
            err.ends_with(":1002: missing field `first_name`, at column 10"),
            "{err}"
        );
        std::fs::write(&path, &text[..text.len() - 11]).unwrap();
        assert_eq!(read_jsonl(&path, &mut |_| {}).unwrap().len(), 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
