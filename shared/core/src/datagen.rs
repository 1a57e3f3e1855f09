//! Deterministic, realistic generator of [`Person`] records.
//!
//! The local dev server uses it as its built-in default data set (100,000
//! people by default, up to several million) and tests use it as a source of
//! realistic, awkward data.
//!
//! # Determinism
//!
//! The output depends only on `(count, seed)`. Every person is derived from
//! `(seed, index)` alone through an inline splitmix64 generator using wrapping
//! `u64` arithmetic, and every weighted choice is made with integers only
//! (cumulative integer weights, `(z * total) >> 64` in `u128`, then a binary
//! search over the cumulative table). There are no floats and no external RNG
//! crate, so the data is identical on every platform and every Rust version.
//! Because a person depends only on its index, the first `K` people of a data
//! set of `N` people equal a data set of `K` people as long as the id width
//! (see [`person_id`]) is the same.
//!
//! # Distributions
//!
//! * **Ids**: `"p"` followed by the 1-based index, zero-padded to 7 digits, or
//!   more when `count` needs more digits (`p0000001`, `p12345678`).
//! * **Nationality**: 30 nationalities (English demonyms) with Zipf weights: the
//!   nationality of rank `k` has weight proportional to `1/k` (American is
//!   about 25% of the people, Icelandic under 1%).
//! * **Names**: each nationality has its own pools of real, common first names
//!   (separate male and female pools, about 20-25 in total) and last names
//!   (about 20-25; nationalities with gendered surnames such as Polish,
//!   Czech, Greek, Icelandic and Irish have a parallel female form). A person
//!   is male or female with equal probability, and the name of rank `k`
//!   within a pool has weight proportional to `1/(k+2)` (a mild skew). The
//!   pools deliberately contain the hard cases of text folding: `ß` and
//!   umlauts, `æ ø å`, Polish `ł ą ę ś ż ź ń ó`, Icelandic `ð þ`, French `œ é
//!   ç`, Turkish `ı İ ş ğ ç`, Spanish `ñ`, Czech háčeks, Vietnamese stacked
//!   diacritics, Japanese macrons, ASCII and typographic apostrophes,
//!   hyphenated names and multi-word names. All names are NFC-normalized.
//! * **Hobbies**: 40 plain English hobbies with Zipf weights (`1/k`). A person
//!   has 0 to 6 distinct hobbies; the number of hobbies has the weights
//!   `[5, 14, 22, 22, 17, 12, 8]` percent. A person's hobbies are sorted by
//!   byte order.
//!
//! The iterator is lazy and cheap: the lookup tables are built once and
//! shared, and each person costs a handful of random draws and small
//! allocations.

use std::iter::FusedIterator;
use std::sync::LazyLock;

use crate::domain::Person;

/// Deterministic people: the output depends only on (count, seed).
pub fn generate(count: usize, seed: u64) -> impl Iterator<Item = Person> + Send {
    People {
        tables: &TABLES,
        key: mix64(seed ^ SEED_SALT),
        next: 0,
        end: count,
        width: id_width(count),
    }
}

/// The id of the i-th (1-based) person of a data set of `count` people.
pub fn person_id(index: usize, count: usize) -> String {
    format_id(index, id_width(count))
}

/// Minimum number of digits in an id.
const MIN_ID_DIGITS: usize = 7;

/// Scale of the integer weights; `SCALE / k` keeps plenty of precision.
const SCALE: u64 = 1 << 32;

/// Mixed into the seed so that seed 0 does not start from state 0.
const SEED_SALT: u64 = 0x6A09_E667_F3BC_C908;

/// Odd constant that spreads person indices over the key space.
const INDEX_STRIDE: u64 = 0xD1B5_4A32_D192_ED03;

/// Weights (percent) of having 0, 1, ..., 6 hobbies.
const HOBBY_COUNT_WEIGHTS: [u64; 7] = [5, 14, 22, 22, 17, 12, 8];

/// Hard cap on rejection-sampling attempts when drawing distinct hobbies.
const MAX_HOBBY_ATTEMPTS: u32 = 256;

fn id_width(count: usize) -> usize {
    count.to_string().len().max(MIN_ID_DIGITS)
}

/// `"p"` + `index` zero-padded to `width` digits (hand-rolled: `format!` is
/// a noticeable share of the per-person cost).
fn format_id(index: usize, width: usize) -> String {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = index;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(1 + width.max(len));
    id.push('p');
    id.extend(std::iter::repeat_n('0', width.saturating_sub(len)));
    id.extend(digits[..len].iter().rev().map(|&d| char::from(d)));
    id
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// The splitmix64 output function (a bijective 64-bit mixer).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 (Steele, Lea and Flood), inline so the stream never changes.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
}

/// A table of cumulative integer weights: `cum[i]` is the sum of the weights
/// of entries `0..=i`.
struct Cumulative(Vec<u64>);

impl Cumulative {
    fn from_weights(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0u64;
        Cumulative(
            weights
                .into_iter()
                .map(|w| {
                    total += w;
                    total
                })
                .collect(),
        )
    }

    /// Zipf-like weights: entry of rank `k` (1-based) weighs `SCALE / (k + offset)`.
    fn zipf(len: usize, offset: u64) -> Self {
        Self::from_weights((1..=len as u64).map(|k| SCALE / (k + offset)))
    }

    /// Maps a uniform 64-bit value to an index with probability proportional
    /// to its weight. Integer-only, hence identical on every platform.
    fn pick(&self, z: u64) -> usize {
        let total = self.0.last().copied().unwrap_or(0);
        let r = ((z as u128 * total as u128) >> 64) as u64;
        self.0.partition_point(|&c| c <= r)
    }
}

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

/// A pool of names with its skewed cumulative weights.
struct Pool {
    names: &'static [&'static str],
    cum: Cumulative,
}

impl Pool {
    fn new(names: &'static [&'static str]) -> Self {
        Pool {
            names,
            cum: Cumulative::zipf(names.len(), 2),
        }
    }

    fn pick(&self, z: u64) -> &'static str {
        self.names[self.cum.pick(z)]
    }
}

struct NationTables {
    name: &'static str,
    male: Pool,
    female: Pool,
    last: Pool,
    /// Female forms of `last`, index for index.
    last_female: &'static [&'static str],
}

struct Tables {
    nations: Vec<NationTables>,
    nation_cum: Cumulative,
    hobby_cum: Cumulative,
    /// Position in byte order of each hobby (indexed by popularity rank).
    hobby_sorted_pos: Vec<u32>,
    /// Hobbies in byte order.
    hobbies_sorted: Vec<&'static str>,
    count_cum: Cumulative,
}

// The hobby set is a bit mask over the sorted hobbies.
const _: () = assert!(HOBBIES.len() <= 64);

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let nations = NATIONS
        .iter()
        .map(|n| NationTables {
            name: n.name,
            male: Pool::new(n.male),
            female: Pool::new(n.female),
            last: Pool::new(n.last),
            last_female: if n.last_female.len() == n.last.len() {
                n.last_female
            } else {
                n.last
            },
        })
        .collect();
    let mut hobbies_sorted: Vec<&'static str> = HOBBIES.to_vec();
    hobbies_sorted.sort_unstable();
    let hobby_sorted_pos = HOBBIES
        .iter()
        .map(|h| hobbies_sorted.partition_point(|s| s < h) as u32)
        .collect();
    Tables {
        nations,
        nation_cum: Cumulative::zipf(NATIONS.len(), 0),
        hobby_cum: Cumulative::zipf(HOBBIES.len(), 0),
        hobby_sorted_pos,
        hobbies_sorted,
        count_cum: Cumulative::from_weights(HOBBY_COUNT_WEIGHTS),
    }
});

impl Tables {
    /// The person at 0-based `index`, derived from `(key, index)` only.
    fn person(&self, key: u64, index: usize, width: usize) -> Person {
        let mut rng = SplitMix64(mix64(
            key ^ (index as u64).wrapping_add(1).wrapping_mul(INDEX_STRIDE),
        ));
        let nation = &self.nations[self.nation_cum.pick(rng.next_u64())];
        let female = rng.next_u64() >> 63 == 1;
        let first_name = if female {
            nation.female.pick(rng.next_u64())
        } else {
            nation.male.pick(rng.next_u64())
        };
        let last_index = nation.last.cum.pick(rng.next_u64());
        let last_name = if female {
            nation.last_female[last_index]
        } else {
            nation.last.names[last_index]
        };
        Person {
            id: format_id(index + 1, width),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            nationality: nation.name.to_owned(),
            hobbies: self.hobbies(&mut rng),
        }
    }

    fn hobbies(&self, rng: &mut SplitMix64) -> Vec<String> {
        let wanted = self.count_cum.pick(rng.next_u64()).min(HOBBIES.len());
        let mut mask = 0u64;
        let mut chosen = 0;
        let mut attempts = 0;
        while chosen < wanted && attempts < MAX_HOBBY_ATTEMPTS {
            let bit = 1u64 << self.hobby_sorted_pos[self.hobby_cum.pick(rng.next_u64())];
            if mask & bit == 0 {
                mask |= bit;
                chosen += 1;
            }
            attempts += 1;
        }
        // Practically unreachable; keeps the loop bounded: take the most
        // popular hobbies not chosen yet.
        for &pos in &self.hobby_sorted_pos {
            if chosen >= wanted {
                break;
            }
            let bit = 1u64 << pos;
            if mask & bit == 0 {
                mask |= bit;
                chosen += 1;
            }
        }
        let mut hobbies = Vec::with_capacity(wanted);
        while mask != 0 {
            hobbies.push(self.hobbies_sorted[mask.trailing_zeros() as usize].to_owned());
            mask &= mask - 1;
        }
        hobbies
    }
}

/// The lazy iterator behind [`generate`].
struct People {
    tables: &'static Tables,
    key: u64,
    next: usize,
    end: usize,
    width: usize,
}

impl Iterator for People {
    type Item = Person;

    fn next(&mut self) -> Option<Person> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.tables.person(self.key, index, self.width))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<Person> {
        // People are independent of each other, so skipping is O(1).
        self.next = self.next.saturating_add(n).min(self.end);
        self.next()
    }
}

impl ExactSizeIterator for People {}
impl FusedIterator for People {}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

/// 40 hobbies, most popular first.
const HOBBIES: &[&str] = &[
    "Reading",
    "Cooking",
    "Hiking",
    "Photography",
    "Gardening",
    "Music",
    "Travel",
    "Running",
    "Cycling",
    "Movies",
    "Yoga",
    "Swimming",
    "Painting",
    "Video Games",
    "Board Games",
    "Chess",
    "Fishing",
    "Baking",
    "Dancing",
    "Camping",
    "Writing",
    "Knitting",
    "Football",
    "Tennis",
    "Climbing",
    "Wine Tasting",
    "Birdwatching",
    "Guitar",
    "Piano",
    "Skiing",
    "Surfing",
    "Sailing",
    "Pottery",
    "Woodworking",
    "Volunteering",
    "Meditation",
    "Astronomy",
    "Calligraphy",
    "Origami",
    "Beekeeping",
];

struct Nation {
    name: &'static str,
    male: &'static [&'static str],
    female: &'static [&'static str],
    last: &'static [&'static str],
    /// Female forms of `last`, index for index; empty when surnames are not
    /// gendered.
    last_female: &'static [&'static str],
}

/// 30 nationalities, most common first.
const NATIONS: &[Nation] = &[
    Nation {
        name: "American",
        male: &[
            "James",
            "John",
            "Robert",
            "Michael",
            "William",
            "David",
            "Christopher",
            "Joshua",
            "Tyler",
            "Brandon",
            "Ethan",
            "Jayden",
        ],
        female: &[
            "Mary",
            "Jennifer",
            "Linda",
            "Patricia",
            "Jessica",
            "Ashley",
            "Emily",
            "Sarah",
            "Madison",
            "Olivia",
            "Brittany",
            "Mary-Kate",
        ],
        last: &[
            "Smith",
            "Johnson",
            "Williams",
            "Brown",
            "Jones",
            "Garcia",
            "Miller",
            "Davis",
            "Rodriguez",
            "Martinez",
            "Hernandez",
            "Lopez",
            "Wilson",
            "Anderson",
            "Thomas",
            "Taylor",
            "Moore",
            "Jackson",
            "Martin",
            "Lee",
            "Thompson",
            "White",
            "McDonald",
        ],
        last_female: &[],
    },
    Nation {
        name: "German",
        male: &[
            "Thomas",
            "Michael",
            "Andreas",
            "Stefan",
            "Jürgen",
            "Klaus",
            "Günter",
            "Jörg",
            "Uwe",
            "Hans-Peter",
            "Karl-Heinz",
            "Lukas",
            "Maximilian",
        ],
        female: &[
            "Sabine",
            "Ursula",
            "Petra",
            "Monika",
            "Anna",
            "Lena",
            "Sophie",
            "Birgit",
            "Gisela",
            "Käthe",
            "Jana",
            "Anne-Marie",
        ],
        last: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Schröder",
            "Neumann",
            "Zimmermann",
            "Krüger",
            "Weiß",
            "Strauß",
            "Groß",
            "Meißner",
            "Jäger",
            "Müller-Lüdenscheidt",
        ],
        last_female: &[],
    },
    Nation {
        name: "Brazilian",
        male: &[
            "João",
            "José",
            "Antônio",
            "Francisco",
            "Carlos",
            "Paulo",
            "Pedro",
            "Lucas",
            "Luiz",
            "Gabriel",
            "Rafael",
            "Matheus",
        ],
        female: &[
            "Maria",
            "Ana",
            "Francisca",
            "Antônia",
            "Adriana",
            "Juliana",
            "Márcia",
            "Fernanda",
            "Patrícia",
            "Aline",
            "Letícia",
            "Ana Clara",
        ],
        last: &[
            "da Silva",
            "dos Santos",
            "Oliveira",
            "Souza",
            "Rodrigues",
            "Ferreira",
            "Alves",
            "Pereira",
            "Lima",
            "Gomes",
            "Costa",
            "Ribeiro",
            "Martins",
            "Carvalho",
            "Almeida",
            "Lopes",
            "Sousa",
            "Fernandes",
            "Vieira",
            "Barbosa",
            "de Souza",
            "Araújo",
            "Conceição",
        ],
        last_female: &[],
    },
    Nation {
        name: "British",
        male: &[
            "Oliver", "George", "Harry", "Jack", "Charlie", "Thomas", "William", "Alfie", "Joshua",
            "Edward", "Gareth", "Rhys",
        ],
        female: &[
            "Olivia",
            "Amelia",
            "Isla",
            "Emily",
            "Sophie",
            "Charlotte",
            "Jessica",
            "Poppy",
            "Eleanor",
            "Gwen",
            "Zoë",
            "Siân",
        ],
        last: &[
            "Smith",
            "Jones",
            "Williams",
            "Taylor",
            "Brown",
            "Davies",
            "Evans",
            "Wilson",
            "Thomas",
            "Johnson",
            "Roberts",
            "Robinson",
            "Thompson",
            "Wright",
            "Walker",
            "White",
            "Hughes",
            "Edwards",
            "Green",
            "Hall",
            "Wood",
            "Lloyd-Jones",
        ],
        last_female: &[],
    },
    Nation {
        name: "French",
        male: &[
            "Jean",
            "Pierre",
            "Michel",
            "Philippe",
            "Nicolas",
            "Alain",
            "François",
            "Jean-Luc",
            "Jean-Pierre",
            "Jérôme",
            "Théo",
            "Benoît",
        ],
        female: &[
            "Marie",
            "Nathalie",
            "Isabelle",
            "Sylvie",
            "Catherine",
            "Françoise",
            "Hélène",
            "Céline",
            "Chloé",
            "Léa",
            "Manon",
            "Marie-Claire",
            "Anaïs",
        ],
        last: &[
            "Martin",
            "Bernard",
            "Dubois",
            "Thomas",
            "Robert",
            "Richard",
            "Petit",
            "Durand",
            "Leroy",
            "Moreau",
            "Simon",
            "Laurent",
            "Lefèvre",
            "Michel",
            "Garcia",
            "David",
            "Roux",
            "Fournier",
            "Girard",
            "Bonnet",
            "Mercier",
            "Lebœuf",
            "de La Fontaine",
        ],
        last_female: &[],
    },
    Nation {
        name: "Spanish",
        male: &[
            "Antonio",
            "José",
            "Manuel",
            "Francisco",
            "David",
            "Juan",
            "Javier",
            "Daniel",
            "Carlos",
            "Jesús",
            "Alejandro",
            "Álvaro",
            "Íñigo",
        ],
        female: &[
            "María",
            "Carmen",
            "Ana",
            "Isabel",
            "Laura",
            "Lucía",
            "Cristina",
            "Marta",
            "Pilar",
            "Begoña",
            "Inés",
            "María José",
        ],
        last: &[
            "García",
            "Rodríguez",
            "González",
            "Fernández",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Martín",
            "Jiménez",
            "Ruiz",
            "Hernández",
            "Díaz",
            "Moreno",
            "Muñoz",
            "Álvarez",
            "Romero",
            "Núñez",
            "Ibáñez",
            "Peña",
            "de la Cruz",
        ],
        last_female: &[],
    },
    Nation {
        name: "Italian",
        male: &[
            "Marco",
            "Giuseppe",
            "Giovanni",
            "Antonio",
            "Francesco",
            "Alessandro",
            "Luca",
            "Andrea",
            "Matteo",
            "Lorenzo",
            "Nicola",
            "Niccolò",
        ],
        female: &[
            "Giulia",
            "Francesca",
            "Chiara",
            "Sara",
            "Martina",
            "Alessia",
            "Valentina",
            "Federica",
            "Elisa",
            "Anna",
            "Beatrice",
            "Giorgia",
        ],
        last: &[
            "Rossi",
            "Russo",
            "Ferrari",
            "Esposito",
            "Bianchi",
            "Romano",
            "Colombo",
            "Ricci",
            "Marino",
            "Greco",
            "Bruno",
            "Gallo",
            "Conti",
            "De Luca",
            "Costa",
            "Giordano",
            "Mancini",
            "Rizzo",
            "Lombardi",
            "D'Angelo",
            "Di Stefano",
            "Fabbri",
            "Cantù",
        ],
        last_female: &[],
    },
    Nation {
        name: "Mexican",
        male: &[
            "José",
            "Juan",
            "Luis",
            "Carlos",
            "Jesús",
            "Jorge",
            "Alejandro",
            "Fernando",
            "Ricardo",
            "Santiago",
            "Miguel Ángel",
            "Cuauhtémoc",
        ],
        female: &[
            "María",
            "Guadalupe",
            "Juana",
            "Verónica",
            "Alejandra",
            "Fernanda",
            "Ximena",
            "Valeria",
            "Sofía",
            "Daniela",
            "Rocío",
            "Itzel",
        ],
        last: &[
            "Hernández",
            "García",
            "Martínez",
            "López",
            "González",
            "Pérez",
            "Rodríguez",
            "Sánchez",
            "Ramírez",
            "Cruz",
            "Flores",
            "Gómez",
            "Morales",
            "Vázquez",
            "Reyes",
            "Jiménez",
            "Torres",
            "Díaz",
            "Gutiérrez",
            "Ruiz",
            "Mendoza",
            "Ordóñez",
        ],
        last_female: &[],
    },
    Nation {
        name: "Polish",
        male: &[
            "Piotr",
            "Krzysztof",
            "Andrzej",
            "Tomasz",
            "Paweł",
            "Michał",
            "Łukasz",
            "Marcin",
            "Jakub",
            "Grzegorz",
            "Stanisław",
            "Jędrzej",
        ],
        female: &[
            "Anna",
            "Maria",
            "Katarzyna",
            "Małgorzata",
            "Agnieszka",
            "Barbara",
            "Ewa",
            "Magdalena",
            "Joanna",
            "Zofia",
            "Łucja",
            "Bożena",
        ],
        last: &[
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Kowalczyk",
            "Kamiński",
            "Lewandowski",
            "Zieliński",
            "Szymański",
            "Woźniak",
            "Dąbrowski",
            "Kozłowski",
            "Jankowski",
            "Mazur",
            "Wojciechowski",
            "Kwiatkowski",
            "Krawczyk",
            "Kaczmarek",
            "Piotrowski",
            "Grabowski",
            "Wałęsa",
            "Żak",
        ],
        last_female: &[
            "Nowak",
            "Kowalska",
            "Wiśniewska",
            "Wójcik",
            "Kowalczyk",
            "Kamińska",
            "Lewandowska",
            "Zielińska",
            "Szymańska",
            "Woźniak",
            "Dąbrowska",
            "Kozłowska",
            "Jankowska",
            "Mazur",
            "Wojciechowska",
            "Kwiatkowska",
            "Krawczyk",
            "Kaczmarek",
            "Piotrowska",
            "Grabowska",
            "Wałęsa",
            "Żak",
        ],
    },
    Nation {
        name: "Turkish",
        male: &[
            "Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "İbrahim", "İsmail", "Murat",
            "Burak", "Emre", "Oğuz", "Çağlar",
        ],
        female: &[
            "Ayşe", "Fatma", "Emine", "Hatice", "Zeynep", "Elif", "Merve", "Özge", "Gülşen",
            "Şule", "Büşra", "Ilgın",
        ],
        last: &[
            "Yılmaz",
            "Kaya",
            "Demir",
            "Şahin",
            "Çelik",
            "Yıldız",
            "Yıldırım",
            "Öztürk",
            "Aydın",
            "Özdemir",
            "Arslan",
            "Doğan",
            "Kılıç",
            "Aslan",
            "Çetin",
            "Kara",
            "Koç",
            "Kurt",
            "Özkan",
            "Şimşek",
            "Işık",
            "Erdoğan",
        ],
        last_female: &[],
    },
    Nation {
        name: "Vietnamese",
        male: &[
            "Minh", "Anh", "Hùng", "Dũng", "Tuấn", "Đức", "Quang", "Huy", "Thắng", "Long", "Bảo",
            "Khoa",
        ],
        female: &[
            "Linh", "Lan", "Hương", "Thảo", "Trang", "Ngọc", "Mai", "Hà", "Nhung", "Phương", "Thu",
            "Huyền",
        ],
        last: &[
            "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
            "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trịnh", "Đinh", "Lương", "Mai", "Tô",
        ],
        last_female: &[],
    },
    Nation {
        name: "Dutch",
        male: &[
            "Jan", "Johannes", "Pieter", "Hendrik", "Willem", "Cornelis", "Daan", "Sem", "Bram",
            "Jeroen", "Maarten", "Thijs",
        ],
        female: &[
            "Maria",
            "Anna",
            "Johanna",
            "Emma",
            "Julia",
            "Sophie",
            "Sanne",
            "Lotte",
            "Femke",
            "Anouk",
            "Eline",
            "Daniëlle",
        ],
        last: &[
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Janssen",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "de Groot",
            "Bos",
            "Vos",
            "Peters",
            "Hendriks",
            "van Leeuwen",
            "Dekker",
            "Brouwer",
            "van der Meer",
            "de Wit",
            "van der Linden",
        ],
        last_female: &[],
    },
    Nation {
        name: "Canadian",
        male: &[
            "Liam", "Noah", "William", "Lucas", "Benjamin", "Logan", "Jacob", "Nathan", "Gabriel",
            "Félix", "Étienne", "Mathieu",
        ],
        female: &[
            "Olivia",
            "Emma",
            "Charlotte",
            "Emily",
            "Ava",
            "Maya",
            "Chloé",
            "Léa",
            "Florence",
            "Rosalie",
            "Geneviève",
            "Marie-Ève",
        ],
        last: &[
            "Smith",
            "Brown",
            "Tremblay",
            "Martin",
            "Roy",
            "Wilson",
            "MacDonald",
            "Gagnon",
            "Johnson",
            "Taylor",
            "Côté",
            "Campbell",
            "Anderson",
            "Leblanc",
            "Lee",
            "Jones",
            "White",
            "Williams",
            "Bouchard",
            "Gauthier",
            "Bélanger",
            "Lévesque",
            "Morin",
        ],
        last_female: &[],
    },
    Nation {
        name: "Australian",
        male: &[
            "Jack", "Oliver", "William", "Noah", "Thomas", "James", "Lachlan", "Cooper", "Riley",
            "Harrison", "Bradley", "Darren",
        ],
        female: &[
            "Charlotte",
            "Olivia",
            "Ava",
            "Mia",
            "Chloe",
            "Isla",
            "Matilda",
            "Sienna",
            "Ruby",
            "Grace",
            "Kylie",
            "Sharon",
        ],
        last: &[
            "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson",
            "Martin", "White", "Anderson", "Walker", "Thompson", "Thomas", "Ryan", "Kelly",
            "Campbell", "O'Connor", "Murphy", "Lee", "Harris", "King",
        ],
        last_female: &[],
    },
    Nation {
        name: "Swedish",
        male: &[
            "Lars", "Anders", "Johan", "Erik", "Karl", "Per", "Björn", "Olof", "Göran", "Håkan",
            "Mikael", "Nils",
        ],
        female: &[
            "Maria", "Anna", "Eva", "Karin", "Kristina", "Ingrid", "Åsa", "Linnéa", "Märta",
            "Elsa", "Astrid", "Ebba",
        ],
        last: &[
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Eriksson",
            "Larsson",
            "Olsson",
            "Persson",
            "Svensson",
            "Gustafsson",
            "Pettersson",
            "Jonsson",
            "Jansson",
            "Hansson",
            "Bengtsson",
            "Lindberg",
            "Åström",
            "Sjöberg",
            "Lindqvist",
            "Ström",
            "Ekström",
            "Öberg",
            "Björk",
        ],
        last_female: &[],
    },
    Nation {
        name: "Irish",
        male: &[
            "Seán", "Patrick", "Conor", "Ciarán", "Liam", "Darragh", "Oisín", "Cian", "Eoin",
            "Michael", "Declan", "Tadhg",
        ],
        female: &[
            "Aoife", "Siobhán", "Niamh", "Saoirse", "Caoimhe", "Róisín", "Mary", "Ciara", "Orla",
            "Sinéad", "Gráinne", "Áine",
        ],
        last: &[
            "Murphy",
            "Kelly",
            "O'Sullivan",
            "Walsh",
            "Smith",
            "O'Brien",
            "Byrne",
            "Ryan",
            "O'Connor",
            "O'Neill",
            "O’Reilly",
            "Doyle",
            "McCarthy",
            "Gallagher",
            "O'Doherty",
            "Kennedy",
            "Lynch",
            "Murray",
            "Quinn",
            "Ó Néill",
            "Ó Briain",
            "Mac Giolla Phádraig",
        ],
        last_female: &[
            "Murphy",
            "Kelly",
            "O'Sullivan",
            "Walsh",
            "Smith",
            "O'Brien",
            "Byrne",
            "Ryan",
            "O'Connor",
            "O'Neill",
            "O’Reilly",
            "Doyle",
            "McCarthy",
            "Gallagher",
            "O'Doherty",
            "Kennedy",
            "Lynch",
            "Murray",
            "Quinn",
            "Ní Néill",
            "Ní Bhriain",
            "Nic Giolla Phádraig",
        ],
    },
    Nation {
        name: "Portuguese",
        male: &[
            "João",
            "José",
            "António",
            "Manuel",
            "Francisco",
            "Rui",
            "Tiago",
            "Duarte",
            "Gonçalo",
            "Afonso",
            "Miguel",
            "Luís",
        ],
        female: &[
            "Maria",
            "Ana",
            "Beatriz",
            "Inês",
            "Leonor",
            "Matilde",
            "Mariana",
            "Joana",
            "Margarida",
            "Sofia",
            "Carolina",
            "Conceição",
        ],
        last: &[
            "Silva",
            "Santos",
            "Ferreira",
            "Pereira",
            "Oliveira",
            "Costa",
            "Rodrigues",
            "Martins",
            "Jesus",
            "Sousa",
            "Fernandes",
            "Gonçalves",
            "Gomes",
            "Lopes",
            "Marques",
            "Alves",
            "Almeida",
            "Ribeiro",
            "Pinto",
            "Carvalho",
            "Teixeira",
            "Magalhães",
            "Simões",
        ],
        last_female: &[],
    },
    Nation {
        name: "South African",
        male: &[
            "Johan", "Pieter", "Thabo", "Sipho", "Themba", "Jacobus", "Hendrik", "Willem",
            "Bongani", "Sibusiso", "Lwazi", "Francois",
        ],
        female: &[
            "Nomvula",
            "Thandiwe",
            "Lerato",
            "Zanele",
            "Nokuthula",
            "Anneke",
            "Elmarie",
            "Riana",
            "Precious",
            "Ayanda",
            "Naledi",
            "Marietjie",
        ],
        last: &[
            "Nkosi",
            "Dlamini",
            "Botha",
            "van der Merwe",
            "Ndlovu",
            "Khumalo",
            "Mokoena",
            "Pretorius",
            "Mahlangu",
            "Venter",
            "Sithole",
            "Naidoo",
            "Nel",
            "Coetzee",
            "Zulu",
            "du Plessis",
            "van Wyk",
            "Mthembu",
            "Steyn",
            "le Roux",
            "Mbatha",
            "Kruger",
            "Fourie",
        ],
        last_female: &[],
    },
    Nation {
        name: "Norwegian",
        male: &[
            "Bjørn", "Ole", "Lars", "Knut", "Arne", "Håkon", "Øyvind", "Sindre", "Jakob", "Espen",
            "Magnus", "Ørjan",
        ],
        female: &[
            "Kari", "Ingrid", "Solveig", "Åse", "Liv", "Sigrid", "Marit", "Astrid", "Nora", "Tone",
            "Ragnhild", "Synnøve",
        ],
        last: &[
            "Hansen",
            "Johansen",
            "Olsen",
            "Larsen",
            "Andersen",
            "Pedersen",
            "Nilsen",
            "Kristiansen",
            "Jensen",
            "Karlsen",
            "Johnsen",
            "Pettersen",
            "Eriksen",
            "Berg",
            "Haugen",
            "Hagen",
            "Dahl",
            "Halvorsen",
            "Sæther",
            "Næss",
            "Østby",
            "Bråthen",
            "Løken",
        ],
        last_female: &[],
    },
    Nation {
        name: "Danish",
        male: &[
            "Søren", "Jens", "Lars", "Niels", "Henrik", "Rasmus", "Mads", "Anders", "Jørgen",
            "Frederik", "Kasper", "Morten",
        ],
        female: &[
            "Mette",
            "Hanne",
            "Kirsten",
            "Signe",
            "Freja",
            "Ida",
            "Sofie",
            "Astrid",
            "Birgitte",
            "Maja",
            "Lise-Lotte",
            "Bodil",
        ],
        last: &[
            "Nielsen",
            "Jensen",
            "Hansen",
            "Pedersen",
            "Andersen",
            "Christensen",
            "Larsen",
            "Sørensen",
            "Rasmussen",
            "Jørgensen",
            "Petersen",
            "Madsen",
            "Kristensen",
            "Olsen",
            "Thomsen",
            "Møller",
            "Mortensen",
            "Kjær",
            "Østergaard",
            "Bækgaard",
            "Læssøe",
            "Holm",
        ],
        last_female: &[],
    },
    Nation {
        name: "Japanese",
        male: &[
            "Hiroshi", "Takashi", "Kenji", "Yūki", "Shōta", "Ren", "Haruto", "Daiki", "Kazuki",
            "Takumi", "Sōta", "Yūto",
        ],
        female: &[
            "Yuki", "Yōko", "Keiko", "Aiko", "Sakura", "Yui", "Hina", "Miyu", "Haruka", "Misaki",
            "Akiko", "Yūna",
        ],
        last: &[
            "Satō",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Watanabe",
            "Itō",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Katō",
            "Yoshida",
            "Yamada",
            "Sasaki",
            "Yamaguchi",
            "Saitō",
            "Matsumoto",
            "Inoue",
            "Kimura",
            "Hayashi",
            "Shimizu",
            "Ōno",
            "Kōno",
        ],
        last_female: &[],
    },
    Nation {
        name: "Argentinian",
        male: &[
            "Juan",
            "Santiago",
            "Mateo",
            "Benjamín",
            "Joaquín",
            "Tomás",
            "Martín",
            "Facundo",
            "Agustín",
            "Lautaro",
            "Nicolás",
            "Diego",
        ],
        female: &[
            "Sofía",
            "Valentina",
            "Martina",
            "Camila",
            "Lucía",
            "Florencia",
            "Agustina",
            "Milagros",
            "Julieta",
            "Rocío",
            "Micaela",
            "Paula",
        ],
        last: &[
            "González",
            "Rodríguez",
            "Gómez",
            "Fernández",
            "López",
            "Díaz",
            "Martínez",
            "Pérez",
            "García",
            "Sánchez",
            "Romero",
            "Sosa",
            "Álvarez",
            "Torres",
            "Ruiz",
            "Ramírez",
            "Flores",
            "Benítez",
            "Acosta",
            "Medina",
            "Herrera",
            "Núñez",
        ],
        last_female: &[],
    },
    Nation {
        name: "Austrian",
        male: &[
            "Lukas",
            "Tobias",
            "Florian",
            "Sebastian",
            "Elias",
            "Jakob",
            "David",
            "Franz",
            "Josef",
            "Johann",
            "Gerhard",
            "Günther",
        ],
        female: &[
            "Anna",
            "Leonie",
            "Hannah",
            "Sophie",
            "Lena",
            "Valentina",
            "Theresa",
            "Maria",
            "Brigitte",
            "Elisabeth",
            "Magdalena",
            "Anna-Lena",
        ],
        last: &[
            "Gruber", "Huber", "Bauer", "Wagner", "Müller", "Pichler", "Steiner", "Moser", "Mayer",
            "Hofer", "Leitner", "Berger", "Fuchs", "Eder", "Fischer", "Schmid", "Winkler", "Weber",
            "Schwarz", "Maier", "Reiter", "Wimmer", "Strauß",
        ],
        last_female: &[],
    },
    Nation {
        name: "Swiss",
        male: &[
            "Luca",
            "Noah",
            "Leon",
            "Elias",
            "Nicolas",
            "Matthias",
            "Beat",
            "Urs",
            "Reto",
            "Ruedi",
            "Jean-Marc",
            "Andrea",
        ],
        female: &[
            "Mia", "Emma", "Lea", "Laura", "Sara", "Ursula", "Verena", "Chloé", "Anna", "Nadine",
            "Corinne", "Regula",
        ],
        last: &[
            "Müller",
            "Meier",
            "Schmid",
            "Keller",
            "Weber",
            "Huber",
            "Schneider",
            "Meyer",
            "Steiner",
            "Fischer",
            "Gerber",
            "Brunner",
            "Baumann",
            "Frei",
            "Zimmermann",
            "Moser",
            "Widmer",
            "Wyss",
            "Graf",
            "Roth",
            "Rossi",
            "Favre",
            "Bühler",
            "Zürcher",
        ],
        last_female: &[],
    },
    Nation {
        name: "Indian",
        male: &[
            "Aarav", "Vivaan", "Aditya", "Rahul", "Amit", "Rajesh", "Suresh", "Arjun", "Sanjay",
            "Vikram", "Rohan", "Anil",
        ],
        female: &[
            "Priya", "Ananya", "Aadhya", "Pooja", "Sunita", "Anjali", "Kavya", "Neha", "Deepika",
            "Lakshmi", "Divya", "Meera",
        ],
        last: &[
            "Sharma",
            "Patel",
            "Singh",
            "Kumar",
            "Gupta",
            "Reddy",
            "Das",
            "Iyer",
            "Nair",
            "Rao",
            "Joshi",
            "Mehta",
            "Chopra",
            "Banerjee",
            "Chatterjee",
            "Mukherjee",
            "Verma",
            "Shah",
            "Pillai",
            "D'Souza",
            "Menon",
            "Agarwal",
        ],
        last_female: &[],
    },
    Nation {
        name: "New Zealander",
        male: &[
            "Oliver", "Jack", "Leo", "Noah", "George", "Hunter", "Manaia", "Nikau", "Tama",
            "Wiremu", "Hēmi", "Tāne",
        ],
        female: &[
            "Isla",
            "Charlotte",
            "Amelia",
            "Olivia",
            "Ruby",
            "Aroha",
            "Mere",
            "Ngaio",
            "Kiri",
            "Hana",
            "Anahera",
            "Mereana",
        ],
        last: &[
            "Smith",
            "Wilson",
            "Williams",
            "Brown",
            "Taylor",
            "Jones",
            "Singh",
            "Anderson",
            "Thompson",
            "Walker",
            "Ngata",
            "Parata",
            "Te Kanawa",
            "Tipene",
            "Campbell",
            "Stewart",
            "Robinson",
            "Clarke",
            "Wright",
            "Mitchell",
            "Kereama",
        ],
        last_female: &[],
    },
    Nation {
        name: "Finnish",
        male: &[
            "Juha", "Jukka", "Mikko", "Matti", "Timo", "Antti", "Pekka", "Ville", "Väinö", "Jyrki",
            "Eero", "Jari",
        ],
        female: &[
            "Aino", "Helmi", "Sanna", "Päivi", "Tuula", "Leena", "Sari", "Minna", "Anneli", "Satu",
            "Riikka", "Kyllikki",
        ],
        last: &[
            "Korhonen",
            "Virtanen",
            "Mäkinen",
            "Nieminen",
            "Mäkelä",
            "Hämäläinen",
            "Laine",
            "Heikkinen",
            "Koskinen",
            "Järvinen",
            "Lehtonen",
            "Lehtinen",
            "Saarinen",
            "Salminen",
            "Heinonen",
            "Niemi",
            "Heikkilä",
            "Kinnunen",
            "Salonen",
            "Turunen",
            "Jääskeläinen",
            "Kärkkäinen",
        ],
        last_female: &[],
    },
    Nation {
        name: "Czech",
        male: &[
            "Jan", "Petr", "Jiří", "Josef", "Pavel", "Martin", "Tomáš", "Jaroslav", "Miroslav",
            "Zdeněk", "Václav", "Lukáš",
        ],
        female: &[
            "Marie",
            "Jana",
            "Eva",
            "Hana",
            "Anna",
            "Lenka",
            "Kateřina",
            "Věra",
            "Lucie",
            "Alena",
            "Petra",
            "Markéta",
        ],
        last: &[
            "Novák",
            "Svoboda",
            "Novotný",
            "Dvořák",
            "Černý",
            "Procházka",
            "Kučera",
            "Veselý",
            "Horák",
            "Němec",
            "Pokorný",
            "Marek",
            "Pospíšil",
            "Hájek",
            "Jelínek",
            "Král",
            "Růžička",
            "Beneš",
            "Fiala",
            "Sedláček",
        ],
        last_female: &[
            "Nováková",
            "Svobodová",
            "Novotná",
            "Dvořáková",
            "Černá",
            "Procházková",
            "Kučerová",
            "Veselá",
            "Horáková",
            "Němcová",
            "Pokorná",
            "Marková",
            "Pospíšilová",
            "Hájková",
            "Jelínková",
            "Králová",
            "Růžičková",
            "Benešová",
            "Fialová",
            "Sedláčková",
        ],
    },
    Nation {
        name: "Greek",
        male: &[
            "Georgios",
            "Dimitrios",
            "Konstantinos",
            "Ioannis",
            "Nikolaos",
            "Panagiotis",
            "Vasileios",
            "Christos",
            "Athanasios",
            "Michail",
            "Evangelos",
        ],
        female: &[
            "Maria",
            "Eleni",
            "Aikaterini",
            "Vasiliki",
            "Sofia",
            "Angeliki",
            "Georgia",
            "Dimitra",
            "Konstantina",
            "Paraskevi",
            "Ioanna",
        ],
        last: &[
            "Papadopoulos",
            "Papadakis",
            "Georgiou",
            "Oikonomou",
            "Papageorgiou",
            "Vlachos",
            "Angelopoulos",
            "Nikolaidis",
            "Georgiadis",
            "Papanikolaou",
            "Karagiannis",
            "Dimitriou",
            "Ioannou",
            "Konstantinidis",
            "Alexiou",
            "Makris",
            "Pappas",
        ],
        last_female: &[
            "Papadopoulou",
            "Papadaki",
            "Georgiou",
            "Oikonomou",
            "Papageorgiou",
            "Vlachou",
            "Angelopoulou",
            "Nikolaidou",
            "Georgiadou",
            "Papanikolaou",
            "Karagianni",
            "Dimitriou",
            "Ioannou",
            "Konstantinidou",
            "Alexiou",
            "Makri",
            "Pappa",
        ],
    },
    Nation {
        name: "Icelandic",
        male: &[
            "Jón",
            "Sigurður",
            "Guðmundur",
            "Gunnar",
            "Ólafur",
            "Einar",
            "Kristján",
            "Magnús",
            "Stefán",
            "Þór",
            "Þórður",
            "Ægir",
        ],
        female: &[
            "Guðrún",
            "Anna",
            "Kristín",
            "Sigríður",
            "Margrét",
            "Helga",
            "Sigrún",
            "Ingibjörg",
            "Björk",
            "Hildur",
            "Þórunn",
            "Eydís",
        ],
        last: &[
            "Jónsson",
            "Sigurðsson",
            "Guðmundsson",
            "Gunnarsson",
            "Ólafsson",
            "Einarsson",
            "Kristjánsson",
            "Magnússon",
            "Stefánsson",
            "Jóhannsson",
            "Björnsson",
            "Árnason",
            "Halldórsson",
            "Þórsson",
            "Þórðarson",
            "Ragnarsson",
            "Helgason",
        ],
        last_female: &[
            "Jónsdóttir",
            "Sigurðardóttir",
            "Guðmundsdóttir",
            "Gunnarsdóttir",
            "Ólafsdóttir",
            "Einarsdóttir",
            "Kristjánsdóttir",
            "Magnúsdóttir",
            "Stefánsdóttir",
            "Jóhannsdóttir",
            "Björnsdóttir",
            "Árnadóttir",
            "Halldórsdóttir",
            "Þórsdóttir",
            "Þórðardóttir",
            "Ragnarsdóttir",
            "Helgadóttir",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn all_names() -> impl Iterator<Item = &'static str> {
        NATIONS.iter().flat_map(|n| {
            n.male
                .iter()
                .chain(n.female)
                .chain(n.last)
                .chain(n.last_female)
                .copied()
        })
    }

    #[test]
    fn deterministic() {
        let a: Vec<Person> = generate(2_000, 42).collect();
        let b: Vec<Person> = generate(2_000, 42).collect();
        assert_eq!(a, b);
        let c: Vec<Person> = generate(2_000, 43).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn prefix_property() {
        let long: Vec<Person> = generate(50_000, 7).take(1_000).collect();
        let short: Vec<Person> = generate(1_000, 7).collect();
        assert_eq!(long, short);
    }

    #[test]
    fn nth_skips_consistently() {
        let all: Vec<Person> = generate(100, 9).collect();
        let mut it = generate(100, 9);
        assert_eq!(it.nth(10).as_ref(), all.get(10));
        assert_eq!(it.next().as_ref(), all.get(11));
        assert_eq!(it.nth(1_000), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn exact_count_and_empty() {
        assert_eq!(generate(0, 1).count(), 0);
        assert_eq!(generate(1, 1).count(), 1);
        assert_eq!(generate(12_345, 1).count(), 12_345);
        assert_eq!(generate(10, 1).size_hint(), (10, Some(10)));
    }

    #[test]
    fn ids_unique_and_formatted() {
        let count = 20_000;
        let mut seen = HashSet::new();
        for (i, p) in generate(count, 3).enumerate() {
            assert_eq!(p.id, person_id(i + 1, count));
            assert_eq!(p.id.len(), 8);
            assert!(p.id.starts_with('p'));
            assert!(p.id[1..].bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(p.id));
        }
        assert_eq!(person_id(1, 100_000), "p0000001");
        assert_eq!(person_id(100_000, 100_000), "p0100000");
        assert_eq!(person_id(9_999_999, 9_999_999), "p9999999");
        assert_eq!(person_id(5, 12_345_678), "p00000005");
        assert_eq!(person_id(1, 0), "p0000001");
        assert_eq!(person_id(0, 10), "p0000000");
        assert_eq!(person_id(usize::MAX, 1), format!("p{}", usize::MAX));
        for (i, w) in [(0, 7), (7, 7), (1_234_567, 7), (42, 9), (10_000_000, 7)] {
            assert_eq!(format_id(i, w), format!("p{i:0w$}"));
        }
    }

    #[test]
    fn hobbies_distinct_sorted_bounded() {
        let mut counts = [0usize; 7];
        for p in generate(50_000, 11) {
            assert!(p.hobbies.len() <= 6);
            assert!(
                p.hobbies
                    .windows(2)
                    .all(|w| w[0].as_bytes() < w[1].as_bytes())
            );
            assert!(p.hobbies.iter().all(|h| HOBBIES.contains(&h.as_str())));
            counts[p.hobbies.len()] += 1;
        }
        // Every hobby count occurs, roughly with its weight (percent).
        for (n, &c) in counts.iter().enumerate() {
            let expected = 500 * HOBBY_COUNT_WEIGHTS[n] as usize;
            assert!(
                c * 10 > expected * 8 && c * 10 < expected * 12,
                "{n} hobbies: {c} people, expected about {expected}"
            );
        }
    }

    #[test]
    fn skew_is_real() {
        let mut by_nation: HashMap<String, usize> = HashMap::new();
        let mut by_hobby: HashMap<String, usize> = HashMap::new();
        for p in generate(100_000, 1) {
            *by_nation.entry(p.nationality).or_default() += 1;
            for h in p.hobbies {
                *by_hobby.entry(h).or_default() += 1;
            }
        }
        assert_eq!(by_nation.len(), NATIONS.len());
        let mut counts: Vec<usize> = by_nation.values().copied().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let (top, median) = (counts[0], counts[counts.len() / 2]);
        assert!(top >= 5 * median, "top {top}, median {median}");
        assert_eq!(by_nation.get("American"), Some(&top));
        let first = by_hobby.get(HOBBIES[0]).copied().unwrap_or(0);
        let last = by_hobby
            .get(HOBBIES[HOBBIES.len() - 1])
            .copied()
            .unwrap_or(0);
        assert!(first >= 5 * last, "first {first}, last {last}");
        assert!(last > 0);
    }

    #[test]
    fn names_are_clean() {
        let mut non_ascii = 0;
        let people: Vec<Person> = generate(20_000, 5).collect();
        for p in &people {
            for s in [&p.first_name, &p.last_name, &p.nationality] {
                assert!(!s.is_empty());
                assert_eq!(s.trim(), s.as_str());
            }
            if !p.first_name.is_ascii() || !p.last_name.is_ascii() {
                non_ascii += 1;
            }
        }
        assert!(non_ascii * 10 > people.len(), "only {non_ascii} non-ASCII");
    }

    #[test]
    fn pools_are_well_formed() {
        assert_eq!(NATIONS.len(), 30);
        assert_eq!(HOBBIES.len(), 40);
        let mut nations = HashSet::new();
        for n in NATIONS {
            assert!(nations.insert(n.name), "duplicate {}", n.name);
            assert!(n.male.len() >= 10 && n.female.len() >= 10, "{}", n.name);
            assert!(
                (15..=25).contains(&(n.male.len() + n.female.len())),
                "{}",
                n.name
            );
            assert!((15..=25).contains(&n.last.len()), "{}", n.name);
            assert!(n.last_female.is_empty() || n.last_female.len() == n.last.len());
            for pool in [n.male, n.female, n.last, n.last_female] {
                let unique: HashSet<_> = pool.iter().collect();
                assert_eq!(unique.len(), pool.len(), "duplicate name in {}", n.name);
            }
        }
        let hobbies: HashSet<_> = HOBBIES.iter().collect();
        assert_eq!(hobbies.len(), HOBBIES.len());
        for s in all_names().chain(HOBBIES.iter().copied()) {
            assert!(!s.is_empty());
            assert_eq!(s.trim(), s, "{s:?}");
            assert!(!s.contains("  "), "{s:?}");
            assert!(unicode_normalization::is_nfc(s), "{s:?} is not NFC");
        }
    }

    #[test]
    fn pools_contain_hard_cases() {
        let text: String = all_names().collect::<Vec<_>>().join("|");
        for needle in [
            "ß", "ü", "ö", "ä", "æ", "ø", "å", "Æ", "Ø", "ł", "Ł", "ą", "ę", "ś", "ż", "Ż", "ź",
            "ń", "ó", "ð", "Þ", "œ", "é", "ç", "ı", "İ", "ş", "ğ", "ñ", "ř", "ễ", "ō", "'", "’",
            "-", " ",
        ] {
            assert!(text.contains(needle), "no name contains {needle:?}");
        }
    }

    #[test]
    fn pick_is_integer_weighted() {
        let cum = Cumulative::from_weights([1, 0, 3]);
        assert_eq!(cum.pick(0), 0);
        assert_eq!(cum.pick(u64::MAX / 4 - 1), 0);
        assert_eq!(cum.pick(u64::MAX / 4 + 1), 2);
        assert_eq!(cum.pick(u64::MAX), 2);
        let mut rng = SplitMix64(0);
        // Reference values of splitmix64 seeded with 0.
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
