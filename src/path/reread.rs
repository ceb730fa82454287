//! Path segments an upstream could read differently from the scope check: dot segments with `;` parameters, doubly encoded dots and separators, escapes that are not UTF-8, non-ASCII look-alikes of `.`, `/` and `\`.
//!
//! sidekey checks and forwards one normalised path, but upstream servers
//! differ in what they do next: Tomcat and older Jetty drop `;params` from
//! each segment before resolving dot segments (`..;` is `..` there), some
//! stacks decode twice (`%252e` becomes `.`), some decoders accept overlong
//! UTF-8 (`%c0%ae` as `.`), and some fold Unicode compatibility forms
//! (U+FF0E as `.`). On a scoped route such a segment is refused.

use std::borrow::Cow;
use std::fmt;

/// How many times a segment is decoded when looking for what a server that
/// decodes more than once (or a chain of them) would see.
const DECODE_ROUNDS: usize = 4;

/// Why a segment is refused on a scoped route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reread {
    /// `..;`, `.;x`, `..;jsessionid=1`: a dot segment once `;params` are dropped.
    DotWithParams,
    /// `;x`: an empty segment once `;params` are dropped, which servers that
    /// also merge slashes (Tomcat) remove, so a `..` after it climbs one
    /// segment higher than the check saw (`/a/;x/../b` is `/b` there).
    EmptyWithParams,
    /// `%252e`, `%252f`, `%255c` (any depth of `%25`), or any escape that
    /// decoded again turns into a dot segment or a separator (`..%252%2566`).
    DoubleEncoded,
    /// Percent-escapes that do not form UTF-8 (overlong `%c0%ae`, stray `%ff`).
    InvalidUtf8,
    /// U+FF0E, U+2024, U+FE52 and others that fold or look like `.`, `/` or `\`.
    LookAlike,
}

impl fmt::Display for Reread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Reread::DotWithParams => {
                "a `.` or `..` segment with `;` parameters (like `..;`), which servers that drop parameters first read as a dot segment"
            }
            Reread::DoubleEncoded => {
                "a doubly percent-encoded `.`, `/` or `\\` (like `%252e`), which a server that decodes twice reads as one"
            }
            Reread::EmptyWithParams => {
                "a segment of `;` parameters alone (like `/;x/`), which servers that drop parameters and merge slashes read as no segment at all"
            }
            Reread::InvalidUtf8 => {
                "percent-escapes that are not valid UTF-8 (like the overlong `%c0%ae`), which lenient decoders read as `.` or `/`"
            }
            Reread::LookAlike => {
                "a non-ASCII look-alike of `.`, `/` or `\\` (like U+FF0E), which servers that fold Unicode read as one"
            }
        };
        write!(
            f,
            "the path holds {what}; refused on a scoped route: the upstream could read a different path than the one checked"
        )
    }
}

/// Is `head` (a segment without its parameters) a dot segment?
pub(super) fn is_dot(head: &str) -> bool {
    head == "." || head == ".."
}

/// Checks one segment as `decode_unreserved` left it: unreserved escapes
/// decoded, the others kept (upper-case).
pub(super) fn check(seg: &str) -> Option<Reread> {
    if let Some(i) = seg.find(';').into_iter().chain(seg.find("%3B")).min() {
        if is_dot(&seg[..i]) {
            return Some(Reread::DotWithParams);
        }
        if i == 0 {
            return Some(Reread::EmptyWithParams);
        }
    }
    if !seg.contains('%') && seg.is_ascii() {
        return None;
    }
    if double_encoded(seg) {
        return Some(Reread::DoubleEncoded);
    }
    // Decode as the upstream would, and as one that decodes again would.
    let mut text = Cow::Borrowed(seg);
    for round in 0..DECODE_ROUNDS {
        let bytes: Cow<[u8]> = percent_encoding::percent_decode_str(&text).into();
        let Ok(next) = std::str::from_utf8(&bytes) else {
            return Some(Reread::InvalidUtf8);
        };
        if next.chars().any(is_look_alike) {
            return Some(Reread::LookAlike);
        }
        if next == text {
            return None;
        }
        let head = next.split(';').next().unwrap_or(next);
        if round > 0 && (next.contains(['/', '\\']) || is_dot(head)) {
            return Some(Reread::DoubleEncoded);
        }
        text = Cow::Owned(next.to_owned());
    }
    None
}

/// `%25` (an encoded `%`), any number of further `25`, then `2E`, `2F` or `5C`.
fn double_encoded(seg: &str) -> bool {
    seg.match_indices("%25").any(|(i, _)| {
        let mut rest = &seg[i + 3..];
        while let Some(r) = rest.strip_prefix("25") {
            rest = r;
        }
        rest.get(..2)
            .is_some_and(|h| ["2e", "2f", "5c"].iter().any(|t| h.eq_ignore_ascii_case(t)))
    })
}

/// Characters whose Unicode compatibility form (NFKC) holds `.`, `/` or `\`,
/// and those UTS #46 maps to `.` or that are drawn as a slash.
const LOOK_ALIKES: [(char, char); 18] = [
    ('\u{2024}', '\u{2026}'), // one dot leader, two dot leader, ellipsis
    ('\u{2044}', '\u{2044}'), // fraction slash
    ('\u{2100}', '\u{2101}'), // account of, addressed to the subject
    ('\u{2105}', '\u{2106}'), // care of, cada una
    ('\u{2215}', '\u{2216}'), // division slash, set minus
    ('\u{2488}', '\u{249B}'), // digit full stops
    ('\u{29F5}', '\u{29F5}'), // reverse solidus operator
    ('\u{29F8}', '\u{29F9}'), // big solidus, big reverse solidus
    ('\u{3002}', '\u{3002}'), // ideographic full stop
    ('\u{33C2}', '\u{33C2}'), // square am
    ('\u{33C7}', '\u{33C7}'), // square co
    ('\u{33D8}', '\u{33D8}'), // square pm
    ('\u{FE19}', '\u{FE19}'), // vertical ellipsis
    ('\u{FE30}', '\u{FE30}'), // vertical two dot leader
    ('\u{FE52}', '\u{FE52}'), // small full stop
    ('\u{FE68}', '\u{FE68}'), // small reverse solidus
    ('\u{FF0E}', '\u{FF0F}'), // fullwidth full stop, fullwidth solidus
    ('\u{FF3C}', '\u{FF3C}'), // fullwidth reverse solidus
];

/// The halfwidth ideographic full stop and the digit zero full stop, outside the table's order.
fn is_look_alike(c: char) -> bool {
    c == '\u{FF61}'
        || c == '\u{1F100}'
        || LOOK_ALIKES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_with_params() {
        for s in ["..;", ".;x", "..;jsessionid=1", "..%3B", ".;"] {
            assert_eq!(check(s), Some(Reread::DotWithParams), "{s}");
        }
        for s in ["a;b", "...;", "..a;", "v1;x=.."] {
            assert_eq!(check(s), None, "{s}");
        }
    }

    #[test]
    fn double_encoding() {
        for s in [
            "%252E",
            "%252e",
            "%252F",
            "%255C",
            "%255c",
            "a%25252Eb",
            "%252E%252E",
            // Found by fuzzing: decoded three times, `%2%66` becomes `%2f`, then `/`.
            "..%252%2566",
            "%25%32%35%32%65",
            "..%25253B",
        ] {
            assert_eq!(check(s), Some(Reread::DoubleEncoded), "{s}");
        }
        for s in ["%25", "%2541", "100%25", "%2520", "50%25off", "%25%25"] {
            assert_eq!(check(s), None, "{s}");
        }
    }

    #[test]
    fn utf8_and_look_alikes() {
        for s in ["%C0%AE", "%C0%AF", "%E0%80%AE", "%C1%9C", "%FF", "a%C3"] {
            assert_eq!(check(s), Some(Reread::InvalidUtf8), "{s}");
        }
        for s in [
            "%EF%BC%8E",
            "%E2%80%A4",
            "%EF%B9%92",
            "\u{FF0E}\u{FF0E}",
            "%E2%80%A5",
            "%E3%80%82",
            "%EF%BD%A1",
            "%EF%BC%8F",
            "%F0%9F%84%80",
        ] {
            assert_eq!(check(s), Some(Reread::LookAlike), "{s}");
        }
        for s in ["caf%C3%A9", "café", "%E2%82%AC", "%20"] {
            assert_eq!(check(s), None, "{s}");
        }
    }

    #[test]
    fn messages_say_why() {
        let m = Reread::DotWithParams.to_string();
        assert!(m.contains("`..;`") && m.contains("scoped route"), "{m}");
    }
}
