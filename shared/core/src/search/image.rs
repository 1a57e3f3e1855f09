//! Index images: the whole index written to one file (or S3 object) with the
//! change-feed position it is current with, so that a process starts from
//! it instead of a Scan of the people table, and then catches up from the
//! feed. Called an *image* here because [`Snapshot`] already names the
//! in-memory view a reader holds.
//!
//! The format is plain little-endian records (no serialization crate):
//!
//! ```text
//! magic "PPLINDEX" | format version u32 | feed version u64 | caught-up ms u64
//! | written ms u64 | people u64
//! | names, nationalities, hobbies: each a varint count, then each string as
//! |   a varint length and UTF-8 bytes
//! | people, in rank order: first-name, last-name and nationality numbers
//! |   (varints), hobby count u8, hobby numbers (varints), id (varint length
//! |   + bytes)
//! | "END." | CRC-32 (crc32fast) of every byte before it, u32
//! ```
//!
//! Why not postcard, bincode or rkyv: the index's data is already columns of
//! small integers over interned strings, which varints store in about 18
//! bytes a person; a serde format would need the whole table as one value
//! (a second full copy) or hand-written sequence framing anyway, and rkyv's
//! zero-copy layout wants the whole file mapped at once, which an S3 object
//! read in ranged parts is not. Records are written and read through a
//! fixed buffer, so neither side holds the image in memory: reading builds
//! the table row by row as bytes arrive.
//!
//! People are written in rank order (last, first, id folded), so loading
//! needs no sort: [`super::SearchEngine::new`] checks the order in one pass
//! and builds the bitmaps from it. Every count, length and symbol number is
//! checked before use; a short, corrupt or other-version input is an
//! [`ImageError`], never a panic (a property test feeds it corrupted
//! images). The checksum covers the header too, and the table is handed
//! out only once it matched.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;

use super::index::Segment;
use super::snapshot::cmp_keys;
use super::table::PeopleTable;
use super::{SearchEngine, Snapshot};
use crate::search::Version;

/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"PPLINDEX";
const END: &[u8; 4] = b"END.";
/// Longest string (id, name, nationality, hobby) an image may hold; the
/// import validation allows far shorter ones.
const MAX_STRING: usize = 16 * 1024;
const BUFFER: usize = 256 * 1024;
#[cfg(test)]
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8 + 8;

/// Where in the people store's change feed an index is current: every
/// change up to `version` is in it, and it last caught up completely at
/// `caught_up_ms` (wall clock, ms since the epoch). A reader that starts
/// from an image older than the feed's tombstone lifetime may have missed
/// a delete, and must Scan instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedPosition {
    pub version: Version,
    pub caught_up_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub position: FeedPosition,
    /// When the image was written (ms since the epoch).
    pub written_ms: u64,
    pub people: u64,
}

/// A decoded image: the people table, in rank order, and its header.
pub struct IndexImage {
    pub header: ImageHeader,
    pub table: PeopleTable,
}

impl IndexImage {
    /// Indexes the table (a linear pass, no sort). CPU work: call it off
    /// the async executor.
    pub fn into_engine(self) -> (SearchEngine, ImageHeader) {
        (SearchEngine::new(self.table), self.header)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an index image (its first bytes are not an image's)")]
    NotAnImage,
    #[error("index image format version {found}; this build reads version {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("the index image is truncated")]
    Truncated,
    #[error("the index image is corrupt: {0}")]
    Corrupt(&'static str),
    #[error(
        "the index image's checksum does not match (stored {stored:08x}, computed {computed:08x})"
    )]
    Checksum { stored: u32, computed: u32 },
    #[error("reading or writing the index image failed")]
    Io(#[source] std::io::Error),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `snapshot` as an image current with `position` to `out`, through
/// a fixed buffer. Returns its header.
pub fn write_image(
    snapshot: &Snapshot,
    position: FeedPosition,
    out: impl Write,
) -> Result<ImageHeader, ImageError> {
    let header = ImageHeader {
        position,
        written_ms: now_ms(),
        people: snapshot.len() as u64,
    };
    let mut w = std::io::BufWriter::with_capacity(
        BUFFER,
        CrcWriter {
            inner: out,
            crc: crc32fast::Hasher::new(),
        },
    );
    let io = ImageError::Io;
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&FORMAT_VERSION.to_le_bytes()).map_err(io)?;
    for n in [
        position.version,
        position.caught_up_ms,
        header.written_ms,
        header.people,
    ] {
        w.write_all(&n.to_le_bytes()).map_err(io)?;
    }

    // Pass 1: number the symbols the live people use, in first-use order
    // (each segment's table numbers its own differently).
    let segments: Vec<&PeopleTable> = std::iter::once(snapshot.base().table())
        .chain(snapshot.deltas().iter().map(|d| d.segment.table()))
        .collect();
    let mut maps: Vec<SymbolMaps> = segments.iter().map(|t| SymbolMaps::for_table(t)).collect();
    let mut strings: [Numbered<'_>; 3] = Default::default();
    for (seg, row) in live_rows(snapshot) {
        let t = segments[seg];
        let m = &mut maps[seg];
        let [names, nationalities, hobbies] = &mut strings;
        names.number(&mut m.names, t.first_id(row), |s| t.names.resolve(s));
        names.number(&mut m.names, t.last_id(row), |s| t.names.resolve(s));
        nationalities.number(&mut m.nationalities, t.nationality_id(row), |s| {
            t.nationality_name(s)
        });
        for &h in t.hobby_ids(row) {
            hobbies.number(&mut m.hobbies, h, |s| t.hobby_name(s));
        }
    }
    for list in &strings {
        put_varint(&mut w, list.strings.len() as u64)?;
        for s in &list.strings {
            put_str(&mut w, s)?;
        }
    }

    // Pass 2: the people, in rank order.
    let mut written = 0u64;
    for (seg, row) in live_rows(snapshot) {
        let t = segments[seg];
        let m = &maps[seg];
        put_varint(&mut w, u64::from(m.names[t.first_id(row) as usize]))?;
        put_varint(&mut w, u64::from(m.names[t.last_id(row) as usize]))?;
        put_varint(
            &mut w,
            u64::from(m.nationalities[t.nationality_id(row) as usize]),
        )?;
        let hobbies = t.hobby_ids(row);
        w.write_all(&[hobbies.len() as u8]).map_err(io)?;
        for &h in hobbies {
            put_varint(&mut w, u64::from(m.hobbies[h as usize]))?;
        }
        put_str(&mut w, t.id(row))?;
        written += 1;
    }
    debug_assert_eq!(written, header.people);
    w.write_all(END).map_err(io)?;
    let CrcWriter { mut inner, crc } = w.into_inner().map_err(|e| io(e.into_error()))?;
    inner.write_all(&crc.finalize().to_le_bytes()).map_err(io)?;
    inner.flush().map_err(io)?;
    Ok(header)
}

/// Reads an image from `input` through a fixed buffer, building the table
/// as it goes; the table is returned only when the checksum matched.
pub fn read_image(input: impl Read) -> Result<IndexImage, ImageError> {
    let mut r = Input::new(input);
    if r.take(MAGIC.len())? != MAGIC {
        return Err(ImageError::NotAnImage);
    }
    let found = r.u32()?;
    if found != FORMAT_VERSION {
        return Err(ImageError::Version { found });
    }
    let position = FeedPosition {
        version: r.u64()?,
        caught_up_ms: r.u64()?,
    };
    let written_ms = r.u64()?;
    let people = r.u64()?;
    if people > u64::from(u32::MAX) {
        return Err(ImageError::Corrupt("more people than an index holds"));
    }
    let mut lists: [Vec<String>; 3] = Default::default();
    for list in &mut lists {
        let n = r.varint()?;
        if n > u64::from(u32::MAX) {
            return Err(ImageError::Corrupt("more strings than an index holds"));
        }
        // Untrusted counts never size an allocation beyond what arrives.
        list.reserve(n.min(1 << 16) as usize);
        for _ in 0..n {
            list.push(r.str()?.to_owned());
        }
    }
    let [names, nationalities, hobbies] = lists;
    let mut table = PeopleTable::with_symbols(names, nationalities, hobbies)
        .ok_or(ImageError::Corrupt("a string list holds a string twice"))?;
    let mut hobby_ids = Vec::with_capacity(16);
    let symbol =
        |n: u64| u32::try_from(n).map_err(|_| ImageError::Corrupt("a number is too large"));
    for _ in 0..people {
        let first = symbol(r.varint()?)?;
        let last = symbol(r.varint()?)?;
        let nationality = symbol(r.varint()?)?;
        let count = r.u8()?;
        hobby_ids.clear();
        for _ in 0..count {
            hobby_ids.push(symbol(r.varint()?)?);
        }
        // The id comes last, so it is borrowed from the buffer, not copied.
        let id = r.str()?;
        table
            .push_interned(id, first, last, nationality, &hobby_ids)
            .map_err(ImageError::Corrupt)?;
    }
    if r.take(END.len())? != END {
        return Err(ImageError::Corrupt("no end marker after the people"));
    }
    let computed = r.checksum();
    let stored = r.u32()?;
    if stored != computed {
        return Err(ImageError::Checksum { stored, computed });
    }
    if !r.at_end()? {
        return Err(ImageError::Corrupt("bytes follow the checksum"));
    }
    // Once, at the table's exact size (ids are unique in a sound image).
    table.index_ids().map_err(ImageError::Corrupt)?;
    Ok(IndexImage {
        header: ImageHeader {
            position,
            written_ms,
            people,
        },
        table,
    })
}

/// Writes an image to `path` atomically: to a temporary file beside it,
/// synced, then renamed over it, so a crash mid-write leaves the previous
/// image in place.
pub fn save_file(
    path: &Path,
    snapshot: &Snapshot,
    position: FeedPosition,
) -> Result<ImageHeader, ImageError> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(ImageError::Io)?;
        let header = write_image(snapshot, position, &file)?;
        file.sync_all().map_err(ImageError::Io)?;
        std::fs::rename(&tmp, path).map_err(ImageError::Io)?;
        Ok(header)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads the image at `path`; `Ok(None)` when there is no such file.
pub fn load_file(path: &Path) -> Result<Option<IndexImage>, ImageError> {
    match std::fs::File::open(path) {
        Ok(file) => read_image(file).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::Io(e)),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Per symbol of one table: its number in the image (`u32::MAX`: unused).
struct SymbolMaps {
    names: Vec<u32>,
    nationalities: Vec<u32>,
    hobbies: Vec<u32>,
}

impl SymbolMaps {
    fn for_table(t: &PeopleTable) -> Self {
        Self {
            names: vec![u32::MAX; t.names.len()],
            nationalities: vec![u32::MAX; t.nationality_count()],
            hobbies: vec![u32::MAX; t.hobby_count()],
        }
    }
}

/// The strings of one kind in the image, numbered in first-use order. The
/// two segments' tables may both hold a string: it gets one number.
#[derive(Default)]
struct Numbered<'a> {
    strings: Vec<&'a str>,
    numbers: std::collections::HashMap<&'a str, u32>,
}

impl<'a> Numbered<'a> {
    /// Gives `symbol` of a table (its slot in `map`) its image number.
    fn number(&mut self, map: &mut [u32], symbol: u32, resolve: impl Fn(u32) -> &'a str) {
        let slot = &mut map[symbol as usize];
        if *slot == u32::MAX {
            let s = resolve(symbol);
            let next = self.strings.len() as u32;
            *slot = *self.numbers.entry(s).or_insert_with(|| {
                self.strings.push(s);
                next
            });
        }
    }
}

/// Every live person of `snapshot` as (segment: 0 the base, 1.. its
/// deltas, oldest first; row), in rank order: the segments' live ranks
/// merged by key.
fn live_rows(snapshot: &Snapshot) -> impl Iterator<Item = (usize, u32)> + '_ {
    let segments: Vec<(&Segment, &RoaringBitmap)> =
        std::iter::once((&**snapshot.base(), &**snapshot.dead()))
            .chain(snapshot.deltas().iter().map(|d| (&*d.segment, &*d.dead)))
            .collect();
    let mut next = vec![0u32; segments.len()];
    std::iter::from_fn(move || {
        let mut best: Option<usize> = None;
        for (s, (segment, dead)) in segments.iter().enumerate() {
            while next[s] < segment.len() as u32 && dead.contains(next[s]) {
                next[s] += 1;
            }
            if next[s] >= segment.len() as u32 {
                continue;
            }
            let better = best.is_none_or(|b| {
                cmp_keys(
                    segment.key_of_rank(next[s]),
                    segments[b].0.key_of_rank(next[b]),
                ) == std::cmp::Ordering::Less
            });
            if better {
                best = Some(s);
            }
        }
        let s = best?;
        next[s] += 1;
        Some((s, segments[s].0.row_at(next[s] - 1)))
    })
}

struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn put_varint(w: &mut impl Write, mut n: u64) -> Result<(), ImageError> {
    let mut buf = [0u8; 10];
    let mut len = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[len] = byte;
            len += 1;
            break;
        }
        buf[len] = byte | 0x80;
        len += 1;
    }
    w.write_all(&buf[..len]).map_err(ImageError::Io)
}

fn put_str(w: &mut impl Write, s: &str) -> Result<(), ImageError> {
    if s.len() > MAX_STRING {
        return Err(ImageError::Corrupt(
            "a string is longer than an image holds",
        ));
    }
    put_varint(w, s.len() as u64)?;
    w.write_all(s.as_bytes()).map_err(ImageError::Io)
}

/// A reader through a fixed buffer that checksums the bytes consumed.
struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Bytes of `buf` before this are in `crc` already.
    hashed: usize,
    crc: crc32fast::Hasher,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: vec![0; BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            hashed: 0,
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Makes at least `need` (≤ the buffer) unread bytes available.
    fn fill(&mut self, need: usize) -> Result<(), ImageError> {
        debug_assert!(need <= self.buf.len());
        if self.len - self.pos >= need {
            return Ok(());
        }
        self.crc.update(&self.buf[self.hashed..self.pos]);
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        self.hashed = 0;
        while self.len < need {
            match self.inner.read(&mut self.buf[self.len..]) {
                Ok(0) => return Err(ImageError::Truncated),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ImageError::Truncated);
                }
                Err(e) => return Err(ImageError::Io(e)),
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ImageError> {
        self.fill(n)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    fn u8(&mut self) -> Result<u8, ImageError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ImageError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ImageError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn varint(&mut self) -> Result<u64, ImageError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ImageError::Corrupt("a number is too large"));
            }
            n |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(ImageError::Corrupt("a number is too large"))
    }

    /// A string's length, checked against the bound.
    fn len(&mut self) -> Result<usize, ImageError> {
        let n = self.varint()?;
        if n > MAX_STRING as u64 {
            return Err(ImageError::Corrupt(
                "a string is longer than an image holds",
            ));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<&str, ImageError> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| ImageError::Corrupt("a string is not UTF-8"))
    }

    /// CRC-32 of every byte consumed so far.
    fn checksum(&self) -> u32 {
        let mut crc = self.crc.clone();
        crc.update(&self.buf[self.hashed..self.pos]);
        crc.finalize()
    }

    fn at_end(&mut self) -> Result<bool, ImageError> {
        match self.fill(1) {
            Ok(()) => Ok(false),
            Err(ImageError::Truncated) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PeopleFilter, Person};
    use crate::search::PageStart;
    use proptest::prelude::*;

    fn person(id: &str, first: &str, last: &str, nat: &str, hobbies: &[&str]) -> Person {
        Person {
            id: id.into(),
            first_name: first.into(),
            last_name: last.into(),
            nationality: nat.into(),
            hobbies: hobbies.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// An engine with a base, dead ranks and a delta.
    fn engine() -> SearchEngine {
        let people =
            crate::jsonl::with_hard_names(crate::jsonl::generated_people(500, 7).collect(), 11);
        let engine = SearchEngine::from_people(&people).with_merge_at(0);
        engine.upsert(&[
            person("new1", "Zoë", "Åberg", "Swedish", &["Chess", "Yoga"]),
            person("new2", "Ann", "Lee", "Irish", &[]),
            Person {
                first_name: "Renamed".into(),
                ..people[3].clone()
            },
        ]);
        engine.delete(&[people[10].id.clone(), people[20].id.clone()]);
        engine
    }

    fn image_bytes(engine: &SearchEngine) -> Vec<u8> {
        let mut out = Vec::new();
        let position = FeedPosition {
            version: 42,
            caught_up_ms: 1_700_000_000_000,
        };
        write_image(&engine.snapshot(), position, &mut out).unwrap();
        out
    }

    fn everyone(s: &Snapshot) -> Vec<Person> {
        s.search(&PeopleFilter::default(), &PageStart::Offset(0), 10_000)
            .items
    }

    #[test]
    fn an_image_round_trips_base_delta_and_deletes_in_rank_order() {
        let engine = engine();
        let bytes = image_bytes(&engine);
        let image = read_image(bytes.as_slice()).unwrap();
        assert_eq!(image.header.position.version, 42);
        assert_eq!(image.header.people, engine.snapshot().len() as u64);
        // Rows arrive in rank order: the table needs no sort.
        let (loaded, _) = image.into_engine();
        let (a, b) = (engine.snapshot(), loaded.snapshot());
        assert_eq!(everyone(&a), everyone(&b));
        assert_eq!(b.pending(), 0);
        assert!(b.get("new1").is_some());
        assert_eq!(b.get(&everyone(&a)[0].id), a.get(&everyone(&a)[0].id));
        let filter = PeopleFilter {
            words: vec!["ab".into()],
            ..PeopleFilter::default()
        };
        assert_eq!(a.count(&filter), b.count(&filter));
        // The folded words of the hard names came through too.
        for word in [
            "strauss", "aerin", "thorsson", "yilmaz", "brien", "coeur", "dang",
        ] {
            let filter = PeopleFilter {
                words: vec![word.into()],
                ..PeopleFilter::default()
            };
            assert!(b.count(&filter) > 0, "{word}");
            assert_eq!(a.count(&filter), b.count(&filter), "{word}");
        }
        assert_eq!(a.filter_options(100), b.filter_options(100));
    }

    #[test]
    fn an_empty_index_round_trips() {
        let engine = SearchEngine::new(PeopleTable::new());
        let image = read_image(image_bytes(&engine).as_slice()).unwrap();
        assert_eq!(image.header.people, 0);
        assert!(image.into_engine().0.snapshot().is_empty());
    }

    #[test]
    fn truncation_corruption_and_other_versions_are_named() {
        let bytes = image_bytes(&engine());
        assert!(matches!(
            read_image(&bytes[..bytes.len() - 1]),
            Err(ImageError::Truncated)
        ));
        assert!(matches!(
            read_image(&bytes[..3]),
            Err(ImageError::Truncated)
        ));
        assert!(matches!(read_image(&b""[..]), Err(ImageError::Truncated)));
        let mut other = bytes.clone();
        other[8] = 2;
        assert!(matches!(
            read_image(other.as_slice()),
            Err(ImageError::Version { found: 2 })
        ));
        let mut junk = bytes.clone();
        junk[0] = b'X';
        assert!(matches!(
            read_image(junk.as_slice()),
            Err(ImageError::NotAnImage)
        ));
        // A flipped bit in the position (which no structural check sees).
        let mut flipped = bytes.clone();
        flipped[12] ^= 1;
        assert!(matches!(
            read_image(flipped.as_slice()),
            Err(ImageError::Checksum { .. })
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            read_image(longer.as_slice()),
            Err(ImageError::Corrupt(_))
        ));
    }

    /// A well-formed image (its checksum matches) that holds one id twice
    /// is refused by name, not loaded with one of the two unreachable.
    #[test]
    fn an_id_held_twice_is_refused() {
        let engine = SearchEngine::from_people(&[
            person("IDXQ-0001", "Ann", "Lee", "Irish", &[]),
            person("IDXQ-0002", "Bo", "Ek", "Swedish", &["Chess"]),
        ]);
        let mut bytes = image_bytes(&engine);
        let at = bytes
            .windows(9)
            .position(|w| w == b"IDXQ-0002")
            .expect("the id is in the image");
        bytes[at + 8] = b'1';
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            read_image(bytes.as_slice()),
            Err(ImageError::Corrupt("an id appears twice"))
        ));
    }

    #[test]
    fn a_file_is_replaced_whole_and_a_missing_one_is_none() {
        let dir = std::env::temp_dir().join(format!("image-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("index.img");
        assert!(load_file(&path).unwrap().is_none());
        let engine = engine();
        let position = FeedPosition {
            version: 9,
            caught_up_ms: 1,
        };
        let header = save_file(&path, &engine.snapshot(), position).unwrap();
        let image = load_file(&path).unwrap().unwrap();
        assert_eq!(image.header, header);
        assert!(!temp_path(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever is done to an image, reading it returns an image or an
        /// error, and never panics; a changed byte is always caught.
        #[test]
        fn corrupted_images_are_refused_never_a_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let bytes = image_bytes(&engine_small());
            let mut bad = bytes.clone();
            for (at, value) in &edits {
                let i = at.index(bad.len());
                bad[i] = *value;
            }
            if truncate {
                bad.truncate(cut.index(bad.len()));
            }
            let result = read_image(bad.as_slice());
            if bad != bytes {
                prop_assert!(result.is_err());
            } else {
                prop_assert!(result.is_ok());
            }
        }

        /// Random bytes after a valid header never panic either.
        #[test]
        fn random_bodies_are_refused(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut bad = image_bytes(&engine_small())[..HEADER_LEN].to_vec();
            bad.extend_from_slice(&body);
            prop_assert!(read_image(bad.as_slice()).is_err());
        }
    }

    fn engine_small() -> SearchEngine {
        let people: Vec<Person> = crate::jsonl::generated_people(20, 3).collect();
        let engine = SearchEngine::from_people(&people).with_merge_at(0);
        engine.upsert(&[person("x", "Éva", "Őry", "Hungarian", &["Chess"])]);
        engine.delete(&[people[1].id.clone()]);
        engine
    }
}
