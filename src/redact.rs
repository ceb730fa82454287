//! Turning text from elsewhere (an error chain, an authorization server's answer, a helper's stderr) into something fit for a log line, an inventory field or an error body: one line, bounded, never a secret it knows of.

/// `head: cause: cause ...` from an error's source chain, at most `MAX_CHAIN` bytes.
/// Errors of the HTTP stack describe connections, never request headers.
pub fn error_chain(head: &str, e: &dyn std::error::Error) -> String {
    let mut text = head.to_owned();
    let mut source = e.source();
    while let Some(s) = source {
        if text.len() > MAX_CHAIN {
            break;
        }
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Most of an error chain kept.
const MAX_CHAIN: usize = 300;

/// A peer's text on one line: control characters become spaces (only
/// printable ASCII when `ascii_only`), at most `max` characters, `…` when cut.
pub fn peer_text(text: &str, max: usize, ascii_only: bool) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !ascii_only || (' '..='~').contains(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// `text` with every occurrence of a known secret (4 characters or more) replaced.
pub fn without_secrets(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_one_bounded_line() {
        assert_eq!(peer_text("a\nb\tc", 10, false), "a b c");
        assert_eq!(peer_text("abcdef", 3, false), "abc…");
        assert_eq!(peer_text("é ok", 10, true), " ok");
    }

    #[test]
    fn known_secrets_are_replaced() {
        let msg = "token abc.def & more";
        assert_eq!(
            without_secrets(msg, &["abc.def", "ab"]),
            "token <redacted> & more"
        );
    }
}
