//! Humane durations in config ("90s", "5m", "30d") and their parsing.

use std::time::Duration;

/// Parses "500ms", "90s", "5m", "12h", "30d" and combinations ("1h30m").
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write it like \"90s\", \"5m\" or \"30d\"".into());
    }
    humantime::parse_duration(t).map_err(|_| {
        format!(
            "`{t}` is not a duration; write it like \"500ms\", \"90s\", \"5m\", \"12h\" or \"30d\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_forms() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse("soon").unwrap_err().contains("not a duration"));
        assert!(parse("").is_err());
    }
}
