//! The port against the kit: its published SHA-256 sums, and its script run
//! beside this repository (`../shared/bench/gen_people.py`, where CI and
//! `scripts/check-reference.sh` find it too).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

/// Hashes what is written, so a million lines are never held in memory.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn sha256_of(count: usize, seed: u64) -> String {
    let mut hash = HashWriter(Sha256::new());
    people_datagen::write_jsonl(count, seed, &mut hash).unwrap();
    hash.0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The kit's README, section "Data generator": seed 42.
#[test]
fn hundred_thousand_lines_hash_as_the_kit_publishes() {
    assert_eq!(
        sha256_of(100_000, 42),
        "8eafe7b50d68f674b2b5e77668c6ce9709fac4a58b8f0821e4942f86d3b6dac0"
    );
}

#[test]
fn a_million_lines_hash_as_the_kit_publishes() {
    assert_eq!(
        sha256_of(1_000_000, 42),
        "aad8251893cccedc8770ffc6951dafcd876ab3539ac568c46ba4b27cda811eac"
    );
}

/// The kit's generator. A missing kit fails the test: skipping would pass
/// a port that nothing was compared with.
fn kit_script() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("../shared/bench/gen_people.py");
    assert!(
        script.is_file(),
        "the kit's generator is missing at {}: the kit must sit beside this repository \
         (../shared/bench from the repository root)",
        script.display()
    );
    script
}

fn kit(args: &[&str]) -> Vec<u8> {
    let script = kit_script();
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 {} could not run: {e}", script.display()));
    assert!(
        out.status.success(),
        "python3 {} {args:?} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn small_runs_equal_the_kits_script() {
    // Zero lines, one line, and seeds near and past the ends of a u64.
    for (count, seed) in [
        (0, 42),
        (1, 42),
        (7, 0),
        (1_000, 1),
        (2_500, 7),
        (300, u64::MAX),
        (300, 0x9E37_79B9_7F4A_7C15),
    ] {
        let mut ours = Vec::new();
        people_datagen::write_jsonl(count, seed, &mut ours).unwrap();
        let theirs = kit(&["--count", &count.to_string(), "--seed", &seed.to_string()]);
        assert!(
            ours == theirs,
            "--count {count} --seed {seed}: the port differs from the kit at byte {}",
            ours.iter()
                .zip(&theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(theirs.len()))
        );
    }
}

#[test]
fn negative_kit_seeds_are_the_same_seed_modulo_two_to_the_64() {
    let mut ours = Vec::new();
    people_datagen::write_jsonl(200, -5i64 as u64, &mut ours).unwrap();
    assert!(ours == kit(&["--count", "200", "--seed", "-5"]));
}

#[test]
fn ids_widen_past_seven_digits_as_the_kit_does() {
    let mut people = people_datagen::generate(12_345_678, 42);
    assert_eq!(people.len(), 12_345_678);
    assert_eq!(people.next().unwrap().id, "p00000001");
    let seven = people_datagen::generate(9_999_999, 42).next().unwrap();
    assert_eq!(seven.id, "p0000001");
    // Only the id's width depends on the count.
    let mut widened = people_datagen::generate(12_345_678, 42).next().unwrap();
    widened.id = seven.id.clone();
    assert_eq!(widened, seven);
}

#[test]
fn the_tables_pass_the_kits_check() {
    let ours = people_datagen::check().expect("the tables are valid");
    let theirs = String::from_utf8(kit(&["--check"])).unwrap();
    assert_eq!(format!("{ours}\n"), theirs);
    assert!(ours.starts_with("60 nationalities, "), "{ours}");
    assert!(ours.ends_with(", 80 hobbies"), "{ours}");
}

#[test]
fn a_prefix_of_a_larger_run_is_the_smaller_run() {
    let small: Vec<_> = people_datagen::generate(500, 3).collect();
    let large: Vec<_> = people_datagen::generate(5_000, 3).take(500).collect();
    assert_eq!(small, large);
}
