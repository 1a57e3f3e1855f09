//! Query-string parsing and validation: a `PeopleQuery` can only exist valid.

use percent_encoding::percent_decode;

use super::ApiError;
use super::cursor::Cursor;
use people_core::domain::{HobbiesMatch, PeopleFilter};
use people_core::search::{Facet, PageStart};

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;
pub use people_core::domain::{MAX_SEARCH_CHARS, MAX_SEARCH_WORDS, MAX_VALUE_CHARS, MAX_VALUES};
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
pub const DEFAULT_FILTER_LIMIT: usize = 10;
pub const MAX_FILTER_LIMIT: usize = 100;
pub const DEFAULT_FACET_LIMIT: usize = 10;
pub const MAX_FACET_LIMIT: usize = 100;

/// Every parameter [`PeopleQuery::from_pairs`] takes, as [`PeopleParams`]
/// describes them in the OpenAPI document (a test holds the two together).
pub const PEOPLE_PARAMS: &[&str] = &[
    "search",
    "nationality",
    "hobbies",
    "hobbies_match",
    "page",
    "page_size",
    "cursor",
    "facets",
    "facet_limit",
    "typos",
    "highlight",
];

/// The query parameters of `GET /people` as the OpenAPI document lists
/// them. [`PeopleQuery::from_pairs`] reads them (repeated parameters and
/// comma-separated lists are more than a typed query struct can say), and
/// the tests hold this description to it: the same names
/// (`PEOPLE_PARAMS`), and the limits of this module's constants.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description: never built
pub(crate) struct PeopleParams {
    /// Words typed; each must be a prefix of a name word (case and accents
    /// are ignored). Blank: no search.
    #[param(max_length = 200)]
    search: Option<String>,
    /// One or more, repeated or comma-separated: a person matches if
    /// theirs is any of them. Exact and case-sensitive.
    #[param(style = Form, explode)]
    nationality: Option<Vec<String>>,
    /// One or more, repeated or comma-separated, combined by `hobbies_match`.
    #[param(style = Form, explode)]
    hobbies: Option<Vec<String>>,
    /// Whether a person needs any (default) or all of `hobbies`.
    hobbies_match: Option<HobbiesMatch>,
    /// 1-based (not with `cursor`).
    #[param(minimum = 1, default = 1)]
    page: Option<u64>,
    #[param(minimum = 1, maximum = 100, default = json!(DEFAULT_PAGE_SIZE))]
    page_size: Option<usize>,
    /// `next_cursor` of the previous page (not with `page`).
    cursor: Option<String>,
    /// Facets to count within the filter, each with every filter but its
    /// own: `nationality`, `hobbies`, comma-separated.
    #[param(style = Form, explode = false)]
    facets: Option<Vec<FacetName>>,
    /// Top values per facet; the selected values are listed besides.
    #[param(minimum = 1, maximum = 100, default = json!(DEFAULT_FACET_LIMIT))]
    facet_limit: Option<usize>,
    /// 1: a query word of 5 or more characters also matches a name word's
    /// prefix within one edit (insert, delete, substitute, transpose
    /// adjacent), of 9 or more within two; the response lists the words
    /// matched approximately. Default 0 (exact).
    typos: Option<Flag>,
    /// 1: each item carries the ranges of its names the query words matched.
    highlight: Option<Flag>,
}

/// The query parameters of `GET /filters` ([`filter_limit`] reads them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description: never built
pub(crate) struct FiltersParams {
    /// Values per list, by count desc then value.
    #[param(minimum = 1, maximum = 100, default = json!(DEFAULT_FILTER_LIMIT))]
    limit: Option<usize>,
}

/// A facet's name in `facets=` ([`Facet::parse`]).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a description: never built
pub(crate) enum FacetName {
    Nationality,
    Hobbies,
}

/// An on/off flag as [`flag`] reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // a description: never built
pub(crate) enum Flag {
    #[schema(rename = "0")]
    Zero,
    #[schema(rename = "1")]
    One,
    #[schema(rename = "false")]
    False,
    #[schema(rename = "true")]
    True,
}

/// Decoded `key=value` pairs, in order. `+` is a space; invalid UTF-8 after
/// percent-decoding is an error that names the parameter.
pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    if raw.len() > MAX_QUERY_BYTES {
        return Err(ApiError::invalid(
            "query",
            format!("the query string is over {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let decode = |s: &str| -> Result<String, Vec<u8>> {
        let plus = s.replace('+', " ");
        let bytes: Vec<u8> = percent_decode(plus.as_bytes()).collect();
        String::from_utf8(bytes).map_err(|e| e.into_bytes())
    };
    let mut pairs = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = decode(k).map_err(|bytes| {
            ApiError::invalid(
                &String::from_utf8_lossy(&bytes),
                "parameter name is not valid UTF-8",
            )
        })?;
        let value =
            decode(v).map_err(|_| ApiError::invalid(&key, format!("{key} is not valid UTF-8")))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// A validated `GET /people` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleQuery {
    pub filter: PeopleFilter,
    pub start: PageStart,
    pub page_size: usize,
    /// Facets to count (`facets=nationality,hobbies`), in the order asked.
    pub facets: Vec<Facet>,
    pub facet_limit: usize,
    /// Match ranges per item (`highlight=1`).
    pub highlight: bool,
}

impl PeopleQuery {
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut search: Option<&str> = None;
        let mut nationalities = Vec::new();
        let mut hobbies = Vec::new();
        let mut hobbies_match: Option<HobbiesMatch> = None;
        let mut page: Option<u64> = None;
        let mut page_size: Option<usize> = None;
        let mut cursor: Option<&str> = None;
        let mut facets: Vec<Facet> = Vec::new();
        let mut facet_limit: Option<usize> = None;
        let mut typos: Option<bool> = None;
        let mut highlight: Option<bool> = None;
        for (key, value) in pairs {
            let key = key.as_str();
            match key {
                "search" => set_once(&mut search, key, value.as_str())?,
                "nationality" => push_values(&mut nationalities, key, value)?,
                "hobbies" => push_values(&mut hobbies, key, value)?,
                "hobbies_match" if value.is_empty() => {}
                "hobbies_match" => set_once(
                    &mut hobbies_match,
                    key,
                    match value.as_str() {
                        "any" => HobbiesMatch::Any,
                        "all" => HobbiesMatch::All,
                        _ => {
                            return Err(ApiError::invalid(
                                key,
                                "hobbies_match must be \"any\" or \"all\"",
                            ));
                        }
                    },
                )?,
                "page" if value.is_empty() => {}
                "page" => set_once(&mut page, key, integer(key, value, 1, u64::from(u32::MAX))?)?,
                "page_size" if value.is_empty() => {}
                "page_size" => set_once(
                    &mut page_size,
                    key,
                    integer(key, value, 1, MAX_PAGE_SIZE as u64)? as usize,
                )?,
                "cursor" if value.is_empty() => {}
                "cursor" => set_once(&mut cursor, key, value.as_str())?,
                "facets" => {
                    for name in value.split(',').filter(|v| !v.is_empty()) {
                        let facet = Facet::parse(name).ok_or_else(|| {
                            ApiError::invalid(
                                key,
                                format!(
                                    "unknown facet {:?}; facets are nationality and hobbies",
                                    people_core::text::clip_chars(name, 40)
                                ),
                            )
                        })?;
                        if !facets.contains(&facet) {
                            facets.push(facet);
                        }
                    }
                }
                "facet_limit" if value.is_empty() => {}
                "facet_limit" => set_once(
                    &mut facet_limit,
                    key,
                    integer(key, value, 1, MAX_FACET_LIMIT as u64)? as usize,
                )?,
                "typos" if value.is_empty() => {}
                "typos" => set_once(&mut typos, key, flag(key, value)?)?,
                "highlight" if value.is_empty() => {}
                "highlight" => set_once(&mut highlight, key, flag(key, value)?)?,
                _ => return Err(unknown(key, &PEOPLE_PARAMS.join(", "))),
            }
        }
        let search = search.unwrap_or("");
        if search.chars().count() > MAX_SEARCH_CHARS {
            return Err(ApiError::invalid(
                "search",
                format!("search is longer than {MAX_SEARCH_CHARS} characters"),
            ));
        }
        let filter = PeopleFilter::new(
            search,
            nationalities,
            hobbies,
            hobbies_match.unwrap_or_default(),
        )
        .with_typos(typos.unwrap_or(false));
        if filter.words.len() > MAX_SEARCH_WORDS {
            return Err(ApiError::invalid(
                "search",
                format!("search has more than {MAX_SEARCH_WORDS} words"),
            ));
        }
        let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        let start = match (cursor, page) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "cursor",
                    "cursor and page cannot be used together",
                ));
            }
            (Some(token), None) => PageStart::After(Cursor::decode(token, &filter)?.after),
            (None, page) => PageStart::Offset((page.unwrap_or(1) - 1) * page_size as u64),
        };
        Ok(PeopleQuery {
            filter,
            start,
            page_size,
            facets,
            facet_limit: facet_limit.unwrap_or(DEFAULT_FACET_LIMIT),
            highlight: highlight.unwrap_or(false),
        })
    }
}

/// `GET /filters?limit=N`.
pub fn filter_limit(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    let mut limit = None;
    for (key, value) in pairs {
        match key.as_str() {
            "limit" if value.is_empty() => {}
            "limit" => set_once(
                &mut limit,
                key,
                integer(key, value, 1, MAX_FILTER_LIMIT as u64)? as usize,
            )?,
            _ => return Err(unknown(key, "limit")),
        }
    }
    Ok(limit.unwrap_or(DEFAULT_FILTER_LIMIT))
}

fn unknown(key: &str, known: &str) -> ApiError {
    let shown: String = key.chars().take(40).collect();
    ApiError::invalid(
        &shown,
        format!("unknown parameter {shown:?}; known parameters: {known}"),
    )
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(ApiError::invalid(
            key,
            format!("{key} is given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Appends comma-separated values; empty pieces (`nationality=`) are no filter.
fn push_values(list: &mut Vec<String>, key: &str, value: &str) -> Result<(), ApiError> {
    for v in value.split(',').filter(|v| !v.is_empty()) {
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::invalid(
                key,
                format!("a {key} value is longer than {MAX_VALUE_CHARS} characters"),
            ));
        }
        if list.len() == MAX_VALUES {
            return Err(ApiError::invalid(
                key,
                format!("more than {MAX_VALUES} {key} values"),
            ));
        }
        if !list.iter().any(|x| x == v) {
            list.push(v.to_owned());
        }
    }
    Ok(())
}

/// An on/off parameter: `1`/`true` or `0`/`false`.
fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::invalid(
            key,
            format!("{key} must be 1 or 0 (or true or false)"),
        )),
    }
}

fn integer(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ApiError> {
    let out_of_range =
        || ApiError::invalid(key, format!("{key} must be an integer from {min} to {max}"));
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    let n: u64 = value.parse().map_err(|_| out_of_range())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(out_of_range())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Result<PeopleQuery, ApiError> {
        PeopleQuery::from_pairs(&parse_query(Some(raw))?)
    }

    fn bad_parameter(raw: &str) -> String {
        match query(raw) {
            Err(ApiError::InvalidParameter { parameter, .. }) => parameter,
            other => panic!("{raw}: expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let q = query("").unwrap();
        assert_eq!(q.filter, PeopleFilter::default());
        assert_eq!(q.start, PageStart::Offset(0));
        assert_eq!(q.page_size, DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn lists_repeat_or_comma_separate_and_empty_is_no_filter() {
        let q =
            query("nationality=South+African,New%20Zealander&nationality=German&hobbies=&search=")
                .unwrap();
        assert_eq!(
            q.filter.nationalities,
            ["South African", "New Zealander", "German"]
        );
        assert!(q.filter.hobbies.is_empty());
        assert!(q.filter.words.is_empty());
    }

    #[test]
    fn search_is_folded_into_words() {
        let q = query("search=M%C3%BCller%20O%27Brien").unwrap();
        assert_eq!(q.filter.words, ["muller", "o", "brien"]);
    }

    #[test]
    fn pages_become_offsets() {
        let q = query("page=3&page_size=50&hobbies_match=all").unwrap();
        assert_eq!(q.start, PageStart::Offset(100));
        assert_eq!(q.filter.hobbies_match, HobbiesMatch::All);
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(bad_parameter("page=0"), "page");
        assert_eq!(bad_parameter("page=-1"), "page");
        assert_eq!(bad_parameter("page=1.5"), "page");
        assert_eq!(bad_parameter("page=99999999999999999999999"), "page");
        assert_eq!(bad_parameter("page_size=1000"), "page_size");
        assert_eq!(bad_parameter("page_size=0"), "page_size");
        assert_eq!(bad_parameter("hobbies_match=some"), "hobbies_match");
        assert_eq!(bad_parameter("hobby=Chess"), "hobby");
        assert_eq!(
            bad_parameter(&format!("search={}", "a".repeat(10_000))),
            "search"
        );
        assert_eq!(bad_parameter("search=%FF%FE"), "search");
        assert_eq!(bad_parameter("page=1&page=2"), "page");
        assert_eq!(bad_parameter("cursor=not-a-cursor"), "cursor");
        assert_eq!(
            bad_parameter(&format!("nationality={}", "x".repeat(101))),
            "nationality"
        );
        assert_eq!(bad_parameter("search=a+b+c+d+e+f+g+h+i+j+k"), "search");
        assert_eq!(bad_parameter("facets=nationality,hobby"), "facets");
        assert_eq!(
            bad_parameter("facets=hobbies&facet_limit=101"),
            "facet_limit"
        );
        assert_eq!(bad_parameter("facet_limit=0"), "facet_limit");
        assert_eq!(bad_parameter("typos=2"), "typos");
        assert_eq!(bad_parameter("typos=1&typos=1"), "typos");
        assert_eq!(bad_parameter("highlight=yes"), "highlight");
    }

    #[test]
    fn facets_typos_and_highlight() {
        let q = query("facets=hobbies,nationality&facets=hobbies&typos=1&highlight=true").unwrap();
        assert_eq!(q.facets, [Facet::Hobbies, Facet::Nationality]);
        assert_eq!(q.facet_limit, DEFAULT_FACET_LIMIT);
        assert!(q.filter.typos && q.highlight);
        let q = query("facets=&facet_limit=100&typos=0&highlight=").unwrap();
        assert!(q.facets.is_empty() && !q.filter.typos && !q.highlight);
        assert_eq!(q.facet_limit, 100);
    }

    #[test]
    fn filter_limits() {
        assert_eq!(
            filter_limit(&parse_query(None).unwrap()),
            Ok(DEFAULT_FILTER_LIMIT)
        );
        assert_eq!(
            filter_limit(&parse_query(Some("limit=100")).unwrap()),
            Ok(100)
        );
        for bad in ["limit=0", "limit=101", "limit=x", "top=3"] {
            assert!(
                filter_limit(&parse_query(Some(bad)).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
