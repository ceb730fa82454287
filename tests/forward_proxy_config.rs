//! The forward proxy's configuration: `sidekey check` prints `[proxy]` and host routes, mistakes are
//! located by file:line:column, `sidekey ca` prints the CA, and an operator CA whose name
//! constraints do not cover a host route, or whose key is not its certificate's, is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

use std::path::Path;
use std::process::Command;

fn run(cmd: &str, dir: &Path, text: &str) -> (i32, String, String) {
    let path = dir.join("sidekey.toml");
    std::fs::write(&path, text.replace("{dir}", dir.to_str().unwrap())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args([cmd, "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEAD: &str = r#"
state_dir = "{dir}/state"

[admin]
listen = "127.0.0.1:0"

[credentials.gh]
source = "file"
path = "{dir}/key"
"#;

const PROXY: &str = r#"
[proxy]
listen = "127.0.0.1:0"
unmatched = "tunnel"
allow_private = ["10.0.0.0/8"]
"#;

const HOST_ROUTE: &str = r#"
[[routes]]
name = "github"
host = "API.GitHub.com"
credential = "gh"
inject = { header = "Authorization", format = "Bearer {secret}" }
"#;

fn dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("key"), "k-123\n").unwrap();
    d
}

#[test]
fn check_prints_the_proxy_and_host_routes_with_their_default_upstream() {
    let d = dir();
    let (code, out, err) = run("check", d.path(), &format!("{HEAD}{PROXY}{HOST_ROUTE}"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("proxy: 127.0.0.1:0 (unmatched: tunnel; CA: generated in"),
        "{out}"
    );
    assert!(out.contains("allow_private: 10.0.0.0/8"), "{out}");
    assert!(
        out.contains("github: host api.github.com (via [proxy]) -> https://api.github.com"),
        "{out}"
    );
}

#[test]
fn mistakes_are_located() {
    let cases: &[(&str, &str, &str)] = &[
        (
            // a host route without [proxy]
            "",
            HOST_ROUTE,
            "only the forward proxy does: add a [proxy] table",
        ),
        (
            PROXY,
            "\n[[routes]]\nname = \"both\"\nlisten = \"127.0.0.1:0\"\nhost = \"a.example\"\ncredential = \"gh\"\ninject = { query = \"k\" }\n",
            "has both `listen` and `host`",
        ),
        (
            PROXY,
            "\n[[routes]]\nname = \"ip\"\nhost = \"10.1.2.3\"\ncredential = \"gh\"\ninject = { query = \"k\" }\n",
            "is an IP address; a host route needs a DNS name",
        ),
        (
            PROXY,
            "\n[[routes]]\nname = \"wild\"\nhost = \"*.example.com\"\ncredential = \"gh\"\ninject = { query = \"k\" }\n",
            "is not a DNS name",
        ),
        (
            "\n[proxy]\nlisten = \"127.0.0.1:0\"\nunmatched = \"allow\"\n",
            HOST_ROUTE,
            "unmatched `allow` is not known",
        ),
        (
            "\n[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private = [\"10.0.0.0/40\"]\n",
            HOST_ROUTE,
            "the prefix length must be 0 to 32",
        ),
        (
            PROXY,
            &(HOST_ROUTE.to_owned()
                + "\n[[routes]]\nname = \"again\"\nhost = \"api.github.com\"\ncredential = \"gh\"\ninject = { query = \"k\" }\n"),
            "routes `github` and `again` both match host api.github.com",
        ),
    ];
    for (proxy, routes, want) in cases {
        let d = dir();
        let (code, _, err) = run("check", d.path(), &format!("{HEAD}{proxy}{routes}"));
        assert_eq!(code, 78, "{want}: {err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        // file:line:column
        assert!(
            err.contains("sidekey.toml:")
                && err.lines().any(|l| l.contains(want)
                    && l.split(':')
                        .nth(2)
                        .is_some_and(|n| n.trim().parse::<u32>().is_ok())),
            "{err}"
        );
    }
}

#[test]
fn sidekey_ca_prints_the_generated_ca_and_keeps_printing_the_same_one() {
    let d = dir();
    let text = format!("{HEAD}{PROXY}{HOST_ROUTE}");
    let (code, first, err) = run("ca", d.path(), &text);
    assert_eq!(code, 0, "{err}");
    assert!(first.starts_with("-----BEGIN CERTIFICATE-----"), "{first}");
    let (_, second, _) = run("ca", d.path(), &text);
    assert_eq!(first, second);
    // Without [proxy] there is nothing to trust.
    let (code, _, err) = run(
        "ca",
        d.path(),
        &format!(
            "{HEAD}[[routes]]\nname = \"r\"\nlisten = \"127.0.0.1:0\"\nupstream = \"stand-in\"\ncredential = \"gh\"\ninject = {{ query = \"k\" }}\n"
        ),
    );
    assert_eq!(code, 78);
    assert!(err.contains("no [proxy] table"), "{err}");
}

#[test]
fn an_operator_ca_that_does_not_cover_a_host_route_is_refused() {
    let d = dir();
    // The operator's CA permits only *.example.org.
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.org".into())],
        excluded_subtrees: vec![],
    });
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "operator CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    std::fs::write(d.path().join("op-ca.pem"), cert.pem()).unwrap();
    std::fs::write(d.path().join("op-ca-key.pem"), key.serialize_pem()).unwrap();
    let proxy = "\n[proxy]\nlisten = \"127.0.0.1:0\"\nca = { cert = \"op-ca.pem\", key = \"op-ca-key.pem\" }\n";
    let covered = "\n[[routes]]\nname = \"org\"\nhost = \"api.example.org\"\ncredential = \"gh\"\ninject = { query = \"k\" }\n";
    let (code, out, err) = run("ca", d.path(), &format!("{HEAD}{proxy}{covered}"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, cert.pem(), "the operator's certificate, as given");
    let (code, _, err) = run(
        "ca",
        d.path(),
        &format!("{HEAD}{proxy}{covered}{HOST_ROUTE}"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("do not permit `api.github.com`"), "{err}");
    assert!(err.contains("operator CA must be reissued"), "{err}");
    assert!(
        !d.path().join("state").exists(),
        "nothing generated for an operator CA"
    );
}

#[test]
fn an_operator_ca_key_that_is_not_the_certificates_is_a_located_config_error() {
    let d = dir();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "operator CA");
    let (key, other) = (
        rcgen::KeyPair::generate().unwrap(),
        rcgen::KeyPair::generate().unwrap(),
    );
    let cert = p.self_signed(&key).unwrap();
    std::fs::write(d.path().join("op-ca.pem"), cert.pem()).unwrap();
    std::fs::write(d.path().join("op-ca-key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(d.path().join("other-key.pem"), other.serialize_pem()).unwrap();
    let config = |key: &str| {
        format!(
            "{HEAD}\n[proxy]\nlisten = \"127.0.0.1:0\"\nca = {{ cert = \"op-ca.pem\", key = \"{key}\" }}\n{HOST_ROUTE}"
        )
    };
    // The matching pair passes.
    let (code, _, err) = run("check", d.path(), &config("op-ca-key.pem"));
    assert_eq!(code, 0, "{err}");
    // Another key: refused by `check`, at the `ca` line, naming both files.
    let (code, _, err) = run("check", d.path(), &config("other-key.pem"));
    assert_eq!(code, 78, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("does not belong to the certificate"))
        .unwrap_or_else(|| panic!("no mismatch error in {err}"));
    assert!(line.contains("sidekey.toml:"), "{line}");
    let ca_line = config("other-key.pem")
        .lines()
        .position(|l| l.starts_with("ca = "))
        .unwrap()
        + 1;
    assert_eq!(
        line.split(':')
            .nth(1)
            .and_then(|n| n.trim().parse::<usize>().ok()),
        Some(ca_line),
        "{line}"
    );
    assert!(
        line.contains("other-key.pem") && line.contains("op-ca.pem"),
        "{line}"
    );
    // `sidekey run` refuses to start with it, with the same error.
    std::fs::write(
        d.path().join("sidekey.toml"),
        config("other-key.pem").replace("{dir}", d.path().to_str().unwrap()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sidekey"))
        .args(["run", "-c"])
        .arg(d.path().join("sidekey.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("sidekey run started with a mismatched CA key");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(78), "{err}");
    assert!(err.contains("does not belong to the certificate"), "{err}");
}
