//! The CLI on the shipped configs: `sidekey check` gives broken configs file:line:column messages and exit 78, prints a good one's routes and exits 0; the laptop quick start runs as the README writes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::path::Path;
use std::process::Command;

fn check(dir: &Path, text: &str) -> (i32, String, String) {
    let path = dir.join("sidekey.toml");
    std::fs::write(&path, text.replace("{dir}", dir.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"
[admin]
listen = "127.0.0.1:0"

[credentials.stripe]
source = "file"
path = "{dir}/key"
max_age = "30d"

[[routes]]
name = "stripe"
listen = "127.0.0.1:0"
upstream = "https://api.stripe.com/base"
credential = "stripe"
inject = { header = "Authorization", format = "Bearer {secret}" }
  [[routes.allow]]
  methods = ["GET", "POST"]
  paths = ["/v1/charges", "/v1/charges/**"]
"#;

fn dir_with_key() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("key"), "k-123\n").unwrap();
    d
}

#[test]
fn good_config_prints_routes_credentials_and_scopes() {
    let d = dir_with_key();
    let (code, out, err) = check(d.path(), GOOD);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        out.contains("stripe: 127.0.0.1:0 -> https://api.stripe.com/base"),
        "{out}"
    );
    assert!(
        out.contains("credential: stripe (header authorization: Bearer {secret})"),
        "{out}"
    );
    assert!(
        out.contains("allow: GET,POST /v1/charges /v1/charges/**"),
        "{out}"
    );
    assert!(out.contains("max_age 30days"), "{out}");
    assert!(!out.contains("k-123"), "check must not print the secret");
}

#[test]
fn guarded_rule_parts_are_printed_and_checked() {
    let d = dir_with_key();
    let extra = "\n  [[routes.allow]]\n  methods = [\"POST\"]\n  paths = [\"/v2/legacy\"]\n  headers = [\"X-HTTP-Method-Override\"]\n  query = [\"_method\"]\n";
    let good = GOOD.replacen(
        "  [[routes.allow]]",
        "allow_browser_origins = [\"http://localhost:5173\"]\n  [[routes.allow]]",
        1,
    );
    let (code, out, err) = check(d.path(), &format!("{good}{extra}"));
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        out.contains("allow: POST /v2/legacy headers=x-http-method-override query=_method"),
        "{out}"
    );
    assert!(
        out.contains("browser origins: http://localhost:5173"),
        "{out}"
    );
    for (from, to, words) in [
        (
            "headers = [\"X",
            "headers = [\"x amz\", \"X",
            "`x amz` is not a header name",
        ),
        (
            "query = [\"",
            "query = [\"a*b\", \"",
            "`*` may only end the name",
        ),
        ("headers =", "header =", "unknown field `header`"),
    ] {
        let text = format!("{GOOD}{}", extra.replace(from, to));
        let (code, _, err) = check(d.path(), &text);
        assert_eq!(code, 78, "{to}: {err}");
        assert!(err.contains(words), "{to}: expected {words:?} in {err}");
        assert!(err.contains("sidekey.toml:"), "{err}");
    }
    let text = good.replace("5173\"", "5173\", \"null\"");
    let (code, _, err) = check(d.path(), &text);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("browser origin `null`"), "{err}");
    let text = GOOD.replace("max_age = \"30d\"", "min_refresh_interval = \"soon\"");
    let (code, _, err) = check(d.path(), &text);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("min_refresh_interval"), "{err}");
}

/// Each case: a change to the good config, the line:column expected, and words the message must hold.
#[test]
fn broken_configs_are_located_and_explained() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "unknown key",
            "max_age = \"30d\"",
            "max_age = \"30d\"\npth = \"x\"",
            "unknown field `pth`",
        ),
        (
            "unknown top-level key",
            "[admin]",
            "colour = 1\n[admin]",
            "unknown field `colour`",
        ),
        (
            "unknown credential",
            "credential = \"stripe\"",
            "credential = \"strip\"",
            "credential `strip`, which is not defined",
        ),
        (
            "bad duration",
            "max_age = \"30d\"",
            "max_age = \"thirty days\"",
            "is not a duration",
        ),
        (
            "bad URL",
            "https://api.stripe.com/base",
            "ftp://api.stripe.com",
            "must be http:// or https://",
        ),
        (
            "non-loopback listener",
            "listen = \"127.0.0.1:0\"\nupstream",
            "listen = \"0.0.0.0:8080\"\nupstream",
            "not a loopback address",
        ),
        (
            "missing source",
            "source = \"file\"\n",
            "",
            "has no `source`",
        ),
        (
            "unknown source",
            "source = \"file\"",
            "source = \"vaultish\"",
            "unknown source `vaultish`",
        ),
        (
            "bad inject",
            "format = \"Bearer {secret}\"",
            "format = \"Bearer\"",
            "must contain `{secret}`",
        ),
        (
            "bad allow pattern",
            "\"/v1/charges/**\"]",
            "\"v1/x\"]",
            "must start with `/`",
        ),
        ("toml syntax", "[admin]", "[admin", "invalid table header"),
    ];
    for (what, from, to, words) in cases {
        let d = dir_with_key();
        assert!(
            GOOD.contains(from),
            "case {what}: pattern not in the good config"
        );
        let (code, _, err) = check(d.path(), &GOOD.replacen(from, to, 1));
        assert_eq!(code, 78, "case {what}: exit code; stderr: {err}");
        assert!(
            err.contains(words),
            "case {what}: expected {words:?} in:\n{err}"
        );
        let located = err.lines().any(|l| {
            let mut parts = l.trim().splitn(4, ':');
            let (_file, line, col) = (parts.next(), parts.next(), parts.next());
            line.is_some_and(|x| x.parse::<usize>().is_ok())
                && col.is_some_and(|x| x.parse::<usize>().is_ok())
        });
        assert!(located, "case {what}: no file:line:column in:\n{err}");
    }
}

#[test]
fn two_routes_on_one_listener() {
    let d = dir_with_key();
    let text = GOOD.replace(
        "listen = \"127.0.0.1:0\"\nupstream",
        "listen = \"127.0.0.1:18081\"\nupstream",
    ) + r#"
[[routes]]
name = "again"
listen = "127.0.0.1:18081"
upstream = "https://api.stripe.com"
credential = "stripe"
inject = { query = "key" }
"#;
    let (code, _, err) = check(d.path(), &text);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("sidekey.toml:"), "{err}");
    assert!(
        err.contains("listens on 127.0.0.1:18081, which route `stripe` already uses"),
        "{err}"
    );
    let line = text
        .lines()
        .position(|l| l.contains("name = \"again\""))
        .unwrap()
        + 2;
    assert!(
        err.contains(&format!(":{line}:")),
        "expected line {line}: {err}"
    );
}

#[test]
fn unreadable_source_file() {
    let d = tempfile::tempdir().unwrap(); // no key file
    let (code, out, err) = check(d.path(), GOOD);
    assert_eq!(code, 78, "{out}{err}");
    assert!(err.contains("cannot read") && err.contains("key"), "{err}");
    assert!(err.contains("sidekey.toml:"), "{err}");
}

#[test]
fn missing_config_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["check", "-c", "/nonexistent/sidekey.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn shipped_quickstart_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["check", "-c"])
        .arg(root.join("config/quickstart.toml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's laptop quick start, as written: `sidekey exec` with the
/// shipped `config/laptop.toml` runs curl through the forward proxy and
/// through the route's variable, offline, against the built-in stand-in.
/// (The config and its key are copied so the generated CA lands in a
/// temporary folder, not in the source tree.)
#[test]
fn laptop_quick_start_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for f in ["laptop.toml", "quickstart-api-key"] {
        std::fs::copy(root.join("config").join(f), dir.path().join(f)).unwrap();
    }
    let key = std::fs::read_to_string(root.join("config/quickstart-api-key")).unwrap();
    let config = dir.path().join("laptop.toml");
    for cmd in [
        vec!["curl", "-s", "https://api.payments.example/v1/charges"],
        vec!["sh", "-c", "curl -s \"$PAYMENTS_API/v1/charges\""],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
            .args(["exec", "-c"])
            .arg(&config)
            .arg("--")
            .args(&cmd)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cmd:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("<credential payments fingerprint="),
            "{cmd:?}: {stdout}"
        );
        assert!(!stdout.contains(key.trim()), "the app never sees the key");
    }
}

/// `allow_non_loopback = true` is one key for every listener (DESIGN.md),
/// meant for the admin listener a pod's kubelet probes; a route or
/// `[proxy]` it lets bind a pod address is named on stderr, the admin's only
/// when it has no token (then only its probes answer there).
#[test]
fn listeners_off_loopback_besides_the_admin_are_named() {
    let dir = dir_with_key();
    let admin_only = format!(
        "allow_non_loopback = true\n{}",
        GOOD.replacen("listen = \"127.0.0.1:0\"", "listen = \"0.0.0.0:9901\"", 1)
    );
    let (code, out, err) = check(dir.path(), &admin_only);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: the admin listener listens on 0.0.0.0:9901, not loopback, and no [admin] token is set"),
        "{err}"
    );
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    std::fs::write(dir.path().join("admin-token"), "t0ken-cli-check").unwrap();
    let admin_only = admin_only.replacen(
        "listen = \"0.0.0.0:9901\"",
        "listen = \"0.0.0.0:9901\"\ntoken = { file = \"{dir}/admin-token\" }",
        1,
    );
    let (code, out, err) = check(dir.path(), &admin_only);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains("warning"),
        "with a token the admin is not named: {err}"
    );
    let route_too = admin_only.replace(
        "listen = \"127.0.0.1:0\"\nupstream",
        "listen = \"0.0.0.0:8081\"\nupstream",
    );
    let proxy_too = format!("{route_too}\n[proxy]\nlisten = \"0.0.0.0:3128\"\n");
    let (code, out, err) = check(dir.path(), &proxy_too);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: route `stripe` listens on 0.0.0.0:8081, not loopback: any host that reaches it sends requests with credential `stripe`"),
        "{err}"
    );
    assert!(
        err.contains("warning: [proxy] listens on 0.0.0.0:3128"),
        "{err}"
    );
    assert_eq!(err.matches("warning:").count(), 2, "{err}");
}
