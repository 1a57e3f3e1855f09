//! The `report` job: aggregates over the people a filter matches, computed
//! on the same index as `GET /people`, so the totals agree exactly.

use serde::Serialize;

use crate::domain::{PeopleFilter, ValueCount};
use crate::search::Snapshot;

/// Entries of each "top" list.
pub const TOP: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub total: u64,
    pub top_nationalities: Vec<ValueCount>,
    pub top_hobbies: Vec<ValueCount>,
    /// Two hobbies a person has together, `a < b` by byte order.
    pub top_hobby_pairs: Vec<HobbyPair>,
    /// `hobbies_per_person[k]` people have exactly `k` hobbies.
    pub hobbies_per_person: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HobbyPair {
    pub hobbies: [String; 2],
    pub count: u64,
}

/// Aggregates over the matches of every segment of the snapshot: counts
/// are kept per segment by symbol, then added up by value.
pub fn report(snapshot: &Snapshot, filter: &PeopleFilter) -> Report {
    let mut total = 0;
    let mut nationalities: hashbrown::HashMap<String, u64> = hashbrown::HashMap::new();
    let mut hobbies: hashbrown::HashMap<String, u64> = hashbrown::HashMap::new();
    let mut pairs: hashbrown::HashMap<[String; 2], u64> = hashbrown::HashMap::new();
    let mut per_person: Vec<u64> = Vec::new();
    for part in snapshot.segment_matches(filter) {
        total += part.matches.len();
        let table = part.table;
        let mut nats = vec![0u64; table.nationality_count()];
        let mut hobby_counts = vec![0u64; table.hobby_count()];
        // Pairs keyed (a, b) with a's name before b's: compare by name rank.
        let mut order: Vec<u32> = (0..table.hobby_count() as u32).collect();
        order.sort_unstable_by(|&a, &b| table.hobby_name(a).cmp(table.hobby_name(b)));
        let mut rank_of = vec![0u32; order.len()];
        for (rank, &id) in order.iter().enumerate() {
            rank_of[id as usize] = rank as u32;
        }
        let mut segment_pairs: hashbrown::HashMap<(u32, u32), u64> = hashbrown::HashMap::new();
        for row in part.rows() {
            nats[table.nationality_id(row) as usize] += 1;
            let hs = table.hobby_ids(row);
            if per_person.len() <= hs.len() {
                per_person.resize(hs.len() + 1, 0);
            }
            per_person[hs.len()] += 1;
            for (i, &a) in hs.iter().enumerate() {
                hobby_counts[a as usize] += 1;
                for &b in &hs[i + 1..] {
                    let pair = if rank_of[a as usize] < rank_of[b as usize] {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    *segment_pairs.entry(pair).or_default() += 1;
                }
            }
        }
        for (id, count) in nats.into_iter().enumerate().filter(|&(_, c)| c > 0) {
            *nationalities
                .entry_ref(table.nationality_name(id as u32))
                .or_default() += count;
        }
        for (id, count) in hobby_counts.into_iter().enumerate().filter(|&(_, c)| c > 0) {
            *hobbies.entry_ref(table.hobby_name(id as u32)).or_default() += count;
        }
        for ((a, b), count) in segment_pairs {
            let key = [
                table.hobby_name(a).to_owned(),
                table.hobby_name(b).to_owned(),
            ];
            *pairs.entry(key).or_default() += count;
        }
    }
    let top = |counts: hashbrown::HashMap<String, u64>| -> Vec<ValueCount> {
        let mut v: Vec<ValueCount> = counts
            .into_iter()
            .map(|(value, count)| ValueCount { value, count })
            .collect();
        v.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(TOP);
        v
    };
    let mut top_pairs: Vec<HobbyPair> = pairs
        .into_iter()
        .map(|(hobbies, count)| HobbyPair { hobbies, count })
        .collect();
    top_pairs.sort_unstable_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.hobbies.cmp(&b.hobbies))
    });
    top_pairs.truncate(TOP);
    Report {
        total,
        top_nationalities: top(nationalities),
        top_hobbies: top(hobbies),
        top_hobby_pairs: top_pairs,
        hobbies_per_person: per_person,
    }
}
