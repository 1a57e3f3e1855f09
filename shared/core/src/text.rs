//! Text folding and word splitting: the one definition of how names and
//! search input are compared.
//!
//! `fold(s)`:
//! 1. Unicode NFKD, then every character with a non-zero canonical combining
//!    class (the accents NFKD split off) is dropped: é→e, ü→u, ñ→n, ﬁ→fi.
//! 2. Full Unicode lower-casing of the whole string (so a final capital sigma
//!    becomes ς, as in Python's `str.lower()`); combining marks that
//!    lower-casing itself produces (İ→i̇) are dropped too.
//! 3. Letters that are not a base letter plus an accent, and so survive NFKD,
//!    are spelt the way a person types them on a plain keyboard:
//!    ß→ss, æ→ae, œ→oe, ø→o, ł→l, đ→d, ð→d, þ→th, ı→i, ħ→h, ŧ→t, ŀ→l
//!    (capitals lower-case to these first: Ø→o, Ł→l, ẞ→ss).
//!
//! Steps 1 and 2 are exactly the reference semantics (Python
//! `unicodedata.normalize("NFKD", s)`, drop `combining(c)`, `.lower()`); step 3
//! only touches letters that the reference leaves alone, so on names without
//! those letters the two agree byte for byte.
//!
//! Words: a folded string split on every run of characters that are not
//! alphanumeric (letters and numbers, as Python's `str.isalnum()`); empty
//! pieces are dropped. Apostrophes and hyphens therefore split words:
//! "O'Brien" has the words `o` and `brien`, "Jean-Luc" `jean` and `luc`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{canonical_combining_class, is_combining_mark};

/// Folds `s` for comparison: see the module documentation.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let stripped: String = s
        .nfkd()
        .filter(|&c| canonical_combining_class(c) == 0)
        .collect();
    let lower = stripped.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ø' => out.push('o'),
            'ł' | 'ŀ' => out.push('l'),
            'đ' | 'ð' => out.push('d'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            'ħ' => out.push('h'),
            'ŧ' => out.push('t'),
            c if canonical_combining_class(c) != 0 => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` belongs to a word: a letter or a number (Python's
/// `str.isalnum()`), which excludes combining marks that Rust's
/// `is_alphabetic` would accept.
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_numeric() || (c.is_alphabetic() && !is_combining_mark(c))
}

/// Splits an already folded string into its words.
pub fn split_words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
}

/// The folded words of free text typed by a person.
pub fn words(s: &str) -> Vec<String> {
    split_words(&fold(s)).map(str::to_owned).collect()
}

/// At most the first `max` characters of `input`, with `…` when cut: what
/// an error message quotes of a client's input.
pub fn clip_chars(input: &str, max: usize) -> String {
    match input.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

/// `message` with every quoted run (between backticks or double quotes)
/// cut to `max` characters. serde's messages quote the input they refuse
/// (``unknown variant `…` ``, `invalid type: string "…"`): an error reply
/// built from one quotes at most `max` characters of the input.
pub fn clip_quoted(message: &str, max: usize) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let close = rest.find(quote).unwrap_or(rest.len());
        out.push_str(&clip_chars(&rest[..close], max));
        rest = &rest[close..];
        if let Some(after) = rest.strip_prefix(quote) {
            out.push_str(quote);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_input_is_clipped_and_the_rest_kept() {
        let long = "x".repeat(100_000);
        let message = format!("unknown variant `{long}`, expected `any` or `all`");
        let clipped = super::clip_quoted(&message, 64);
        assert_eq!(
            clipped,
            format!(
                "unknown variant `{}…`, expected `any` or `all`",
                "x".repeat(64)
            )
        );
        let message = format!("invalid type: string \"{long}\", expected a sequence");
        assert!(super::clip_quoted(&message, 64).len() < 120);
        // Unterminated: clipped all the same.
        assert!(super::clip_quoted(&format!("`{long}"), 64).len() < 80);
        assert_eq!(super::clip_quoted("plain", 64), "plain");
    }

    use super::*;

    #[test]
    fn ascii_is_lower_cased() {
        assert_eq!(fold("MÜLLER"), "muller");
        assert_eq!(fold("Smith"), "smith");
    }

    #[test]
    fn accents_are_removed() {
        assert_eq!(fold("Adébáyò"), "adebayo");
        assert_eq!(fold("Ó Néill"), "o neill");
        assert_eq!(fold("Nguyễn Trần Phạm"), "nguyen tran pham");
        assert_eq!(fold("Françoise Hélène"), "francoise helene");
        assert_eq!(fold("Muñoz Núñez"), "munoz nunez");
        assert_eq!(fold("Wałęsa Zieliński Wójcik"), "walesa zielinski wojcik");
    }

    #[test]
    fn letters_without_decomposition_are_spelt_out() {
        assert_eq!(fold("Strauß"), "strauss");
        assert_eq!(fold("STRAẞE"), "strasse");
        assert_eq!(fold("Søren Jørgensen"), "soren jorgensen");
        assert_eq!(fold("Ærø"), "aero");
        assert_eq!(fold("Œuvre"), "oeuvre");
        assert_eq!(fold("Łukasz"), "lukasz");
        assert_eq!(fold("Sigurðsson Þór"), "sigurdsson thor");
        assert_eq!(fold("Işık Yılmaz"), "isik yilmaz");
        assert_eq!(fold("Đorđević"), "dordevic");
    }

    #[test]
    fn compatibility_forms_and_special_casing() {
        assert_eq!(fold("ﬁona"), "fiona");
        assert_eq!(fold("İstanbul"), "istanbul");
        assert_eq!(fold("ΟΔΟΣ"), "οδος");
        assert_eq!(fold("Ｍａｒｉａ"), "maria");
    }

    #[test]
    fn words_split_on_punctuation_and_spaces() {
        assert_eq!(words("O'Brien"), ["o", "brien"]);
        assert_eq!(
            words("Jean-Luc  van der Meer"),
            ["jean", "luc", "van", "der", "meer"]
        );
        assert_eq!(words("  --  "), Vec::<String>::new());
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("snake_case42"), ["snake", "case42"]);
        assert_eq!(words("Müller-Lüdenscheidt"), ["muller", "ludenscheidt"]);
    }

    #[test]
    fn non_latin_letters_are_words() {
        assert_eq!(words("李 小龍"), ["李", "小龍"]);
        assert_eq!(words("Ωμέγα"), ["ωμεγα"]);
    }

    #[test]
    fn fold_is_idempotent_on_samples() {
        for s in [
            "Strauß",
            "Ærø",
            "İ",
            "ΟΔΟΣ",
            "Ó Néill",
            "Þór",
            "x\u{301}\u{301}",
        ] {
            let once = fold(s);
            assert_eq!(fold(&once), once, "{s}");
        }
    }
}
