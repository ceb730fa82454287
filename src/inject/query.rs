//! Query-string editing for `{ query = "param" }` injection.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but RFC 3986 unreserved characters is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Returns `query` without any `param=...` pair (however the app encoded the
/// name), with `pair` appended.
pub fn replace_param(query: Option<&str>, param: &str, pair: &str) -> String {
    let mut out = String::with_capacity(query.map_or(0, str::len) + pair.len() + 1);
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let name = part.split_once('=').map_or(part, |(n, _)| n);
        let decoded = percent_decode_str(&name.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        if decoded == param {
            continue;
        }
        out.push_str(part);
        out.push('&');
    }
    out.push_str(pair);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_encoded_spellings_of_the_param() {
        assert_eq!(
            replace_param(Some("api%5Fkey=x&q=1"), "api_key", "api_key=S"),
            "q=1&api_key=S"
        );
        assert_eq!(replace_param(None, "k", "k=S"), "k=S");
        assert_eq!(replace_param(Some(""), "k", "k=S"), "k=S");
    }
}
