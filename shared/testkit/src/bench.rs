//! What the benchmarks share: the kit's query set, read once, the same way.

use serde_json::Value;

/// One query of the kit's `queries.jsonl`: its name and its parameters as
/// the query string's pairs (an array parameter is one pair per value).
#[derive(Debug, Clone)]
pub struct KitQuery {
    pub name: String,
    pub pairs: Vec<(String, String)>,
}

/// The queries of `$BENCH_QUERIES`, else of the kit's `queries.jsonl`
/// beside this repository. Panics, naming the file, when it cannot be read
/// or a line is not a query: a benchmark without its queries has nothing
/// to measure.
pub fn kit_queries() -> Vec<KitQuery> {
    let path = std::env::var("BENCH_QUERIES").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/bench/queries.jsonl"
        )
        .to_owned()
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (set BENCH_QUERIES)"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| parse(line).unwrap_or_else(|e| panic!("{path}: {e}: {line}")))
        .collect()
}

fn parse(line: &str) -> Result<KitQuery, String> {
    let q: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let name = q["name"].as_str().ok_or("no name")?.to_owned();
    let mut pairs = Vec::new();
    for (key, value) in q["params"].as_object().ok_or("no params object")? {
        match value {
            Value::Array(values) => {
                for v in values {
                    let v = v.as_str().ok_or("an array value that is not a string")?;
                    pairs.push((key.clone(), v.to_owned()));
                }
            }
            Value::String(s) => pairs.push((key.clone(), s.clone())),
            other => pairs.push((key.clone(), other.to_string())),
        }
    }
    Ok(KitQuery { name, pairs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_line_becomes_its_name_and_pairs() {
        let q = parse(r#"{"name":"n1","params":{"q":"ann","hobby":["Chess","Go"],"limit":20}}"#)
            .unwrap();
        assert_eq!(q.name, "n1");
        let mut pairs = q.pairs;
        pairs.sort();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            pairs,
            [
                pair("hobby", "Chess"),
                pair("hobby", "Go"),
                pair("limit", "20"),
                pair("q", "ann")
            ]
        );
    }

    #[test]
    fn a_line_without_params_is_refused() {
        assert!(parse(r#"{"name":"n1"}"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn the_kit_query_set_reads() {
        let queries = kit_queries();
        assert!(!queries.is_empty());
        assert!(queries.iter().all(|q| !q.name.is_empty()));
    }
}
