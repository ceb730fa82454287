//! Captures every log line of the test process at `trace` and checks that no registered secret ever appears in it.

use sidekey::sync::Mutex;
use std::io::Write;
use std::sync::Once;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().extend_from_slice(buf);
        if std::env::var_os("SIDEKEY_TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per test binary), at `trace`.
pub fn init() {
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("SIDEKEY_TEST_FILTER").unwrap_or_else(|_| "trace".into()),
            )
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// Registers a value that must never be logged, and returns it.
pub fn secret(value: &str) -> String {
    SECRETS.lock().push(value.to_owned());
    value.to_owned()
}

/// Everything logged so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&LOGS.lock()).into_owned()
}

/// Fails if any registered secret (or its base64 / percent-encoded form) was
/// logged. One pass over everything captured, all forms at once.
pub fn assert_no_secret_logged() {
    let forms: Vec<String> = SECRETS.lock().iter().flat_map(|s| forms(s)).collect();
    if forms.is_empty() {
        return;
    }
    let finder = aho_corasick::AhoCorasick::new(&forms).expect("patterns");
    let logs = LOGS.lock();
    if let Some(m) = finder.find(&logs[..]) {
        let form = &forms[m.pattern().as_usize()];
        panic!(
            "a secret reached the logs (form {:?}… of a registered secret)",
            &form[..form.len().min(4)]
        );
    }
}

/// Fails if any registered secret appears in `bytes` (an answer to the app, an admin answer).
pub fn assert_no_secret_in(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for s in SECRETS.lock().iter() {
        for form in forms(s) {
            assert!(!text.contains(&form), "a secret reached {what}");
        }
    }
}

fn forms(s: &str) -> Vec<String> {
    use base64::Engine;
    let mut v = vec![
        s.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(s),
    ];
    let pct =
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    v.push(pct);
    v.retain(|f| f.len() >= 6);
    v
}

/// Lines captured so far that mention `needle` (for asserting audit events).
pub fn lines_with(needle: &str) -> Vec<String> {
    captured()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// A rate-limited warning: how many lines mention every one of `needles`,
/// and how many times the warning happened (each line stands for itself and
/// for the `suppressed=N` left out before it).
pub fn throttled(needles: &[&str]) -> (usize, u64) {
    let text = captured();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect();
    let suppressed = |l: &str| {
        l.split_once("suppressed=")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let happened = lines.iter().map(|l| 1 + suppressed(l)).sum();
    (lines.len(), happened)
}
