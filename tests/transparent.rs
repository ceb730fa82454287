//! Transparent egress (`[transparent]`, `sidekey iptables`) in a private network namespace: the rules
//! sidekey prints are applied there; an app under one UID calls `https://api.test` with no proxy
//! settings and only sidekey's CA trusted, and the upstream (127.0.0.2:443, and [fd00::2]:443 where
//! the namespace has IPv6) receives the credential from sidekey running under another UID that the
//! rules exclude. An unrouted destination passes through untouched; a routed one whose Host is not
//! its SNI is refused. The inventory shows the route's mode and last original destination; `sidekey
//! iptables --apply` loads both families (IPv6 skipped where the namespace has none); a reload adds or
//! moves `[transparent]`. `allow_uids` admits the app's UID and refuses other users on redirected
//! connections. Both proof-of-possession forms reach independent verifiers through it: RFC 9421
//! signatures checked by PyPI `http-message-signatures`, a client certificate required by nginx
//! (`ssl_verify_client on`). Needs root (CI runs as root); fails, never skips, when the namespace cannot be made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use support::binary::Running;
use support::httpsig::{self, Verifier};
use support::logs;
use support::nginx::{self, Nginx};
use support::tls::TestCa;

const SIDEKEY_UID: &str = "64001";
const APP_UID: &str = "64002";
/// Another local user, whom the rules redirect as well as the app.
const OTHER_UID: &str = "64003";
const LISTEN_PORT: u16 = 15001;

/// A named network namespace of this test, deleted when dropped.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("sidekey-{tag}-{}", std::process::id());
        let made = Command::new("ip").args(["netns", "add", &name]).output();
        match made {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "cannot create a network namespace with `ip netns add` (this test needs root): {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run `ip` (iproute2) to create a network namespace: {e}"),
        }
        let ns = Netns(name);
        ns.ok(ns.cmd(None, &["ip", "link", "set", "lo", "up"]));
        ns
    }

    /// `args` run inside the namespace, as `uid` (and its group) when given.
    fn cmd(&self, uid: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]);
        if let Some(u) = uid {
            c.args(["setpriv", "--reuid", u, "--regid", u, "--clear-groups"]);
        }
        c.args(args);
        c
    }

    fn ok(&self, mut c: Command) -> Output {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{c:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `f` on a thread inside the namespace: the processes it starts run
    /// there and the sockets it opens are there (the calling thread stays out).
    fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(format!("/run/netns/{}", self.0)).unwrap();
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&ns),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns into the test's network namespace (needs root)");
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// Applies rules printed by `sidekey iptables` with `restore` (iptables-restore or ip6tables-restore).
    fn apply(&self, restore: &str, rules: &[u8]) {
        let mut c = self.cmd(None, &[restore, "--noflush"]);
        let mut child = c.stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(rules).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{restore} refused the rules"
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sidekey() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sidekey"))
}

fn config(unmatched: &str) -> String {
    format!(
        r#"
state_dir = "{{dir}}/state"

[admin]
listen = "127.0.0.1:0"

[transparent]
listen = "127.0.0.1:{LISTEN_PORT}"
unmatched = "{unmatched}"

[credentials.gh]
source = "file"
path = "{{dir}}/token"

[[routes]]
name = "api"
host = "api.test"
upstream = "https://api.test"
connect_to = "127.0.0.2"
ca_file = "{{dir}}/upstream-ca.pem"
credential = "gh"
inject = {{ header = "Authorization", format = "Bearer {{secret}}" }}
"#
    )
}

/// One namespace with the upstream, the rules and sidekey running in it.
struct World {
    ns: Netns,
    dir: tempfile::TempDir,
    sk: Option<Running>,
    _upstream: Killed,
    token: String,
    ipv6: bool,
    /// The admin API's address inside the namespace.
    admin: String,
}

impl World {
    fn start(tag: &str, unmatched: &str) -> World {
        Self::start_with(tag, unmatched, &config(unmatched))
    }

    /// The rules redirect to `config(unmatched)`'s listener; sidekey runs on `running`.
    fn start_with(tag: &str, unmatched: &str, running: &str) -> World {
        Self::start_prepared(tag, |_, _| (config(unmatched), running.to_owned()))
    }

    /// `prepare` runs once the namespace, the upstream and the test's files
    /// exist: it may start more peers in the namespace and write files to the
    /// folder, and returns the config the rules and sidekey's CA are made
    /// from and the config sidekey runs.
    fn start_prepared(tag: &str, prepare: impl FnOnce(&Netns, &Path) -> (String, String)) -> World {
        logs::init();
        let ns = Netns::create(tag);
        let ipv6 = ns
            .cmd(
                None,
                &["ip", "-6", "addr", "add", "fd00::2/128", "dev", "lo"],
            )
            .status()
            .unwrap()
            .success();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let token = logs::secret("ghp_transparentTOKEN0123456789");
        std::fs::write(d.join("token"), &token).unwrap();
        let test_ca = TestCa::new();
        test_ca.write(&d.join("upstream-ca.pem"));
        let (cert, key) = test_ca.leaf_pem_for(&["api.test", "other.test"]);
        std::fs::write(d.join("up.pem"), cert).unwrap();
        std::fs::write(d.join("up-key.pem"), key).unwrap();

        let mut addrs = vec!["127.0.0.2:443".to_owned()];
        if ipv6 {
            addrs.push("[fd00::2]:443".into());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/echo_https.py");
        let mut args = vec!["python3".to_owned(), script.to_str().unwrap().into()];
        for f in ["up.pem", "up-key.pem", "seen"] {
            args.push(d.join(f).to_str().unwrap().into());
        }
        args.extend(addrs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut up = ns.cmd(None, &args).stdout(Stdio::piped()).spawn().unwrap();
        let mut ready = String::new();
        BufReader::new(up.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the upstream did not start");
        let upstream = Killed(up);

        // The config, and the CA generated as root, then handed to sidekey's UID.
        let (base, running) = prepare(&ns, d);
        let text = base.replace("{dir}", d.to_str().unwrap());
        let cfg = d.join("sidekey.toml");
        std::fs::write(&cfg, &text).unwrap();
        let ca = Command::new(env!("CARGO_BIN_EXE_sidekey"))
            .args(["ca", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            ca.status.success(),
            "{}",
            String::from_utf8_lossy(&ca.stderr)
        );
        std::fs::write(d.join("sidekey-ca.pem"), &ca.stdout).unwrap();
        let chown = Command::new("chown")
            .args(["-R", &format!("{SIDEKEY_UID}:{SIDEKEY_UID}")])
            .arg(d.join("state"))
            .arg(d.join("token"))
            .status()
            .unwrap();
        assert!(chown.success());

        for (restore, v6) in [("iptables-restore", false), ("ip6tables-restore", true)] {
            if v6 && !ipv6 {
                continue;
            }
            let mut c = sidekey();
            c.args(["iptables", "-c"])
                .arg(&cfg)
                .args(["--uid", SIDEKEY_UID]);
            if v6 {
                c.arg("--ipv6");
            }
            let rules = c.output().unwrap();
            assert!(
                rules.status.success(),
                "{}",
                String::from_utf8_lossy(&rules.stderr)
            );
            ns.apply(restore, &rules.stdout);
        }

        let bin = env!("CARGO_BIN_EXE_sidekey");
        let mut sk = Running::start_with(d, &running, ns.cmd(Some(SIDEKEY_UID), &[bin]));
        if running.contains("[transparent]") {
            sk.wait_for_line(|l| l.contains("transparent egress listening"));
        }
        sk.wait_for_line(|l| l.contains("credential issued") || l.contains("\"issued\""));
        let admin = sk.admin_addr();
        World {
            ns,
            dir,
            sk: Some(sk),
            _upstream: upstream,
            token,
            ipv6,
            admin,
        }
    }

    /// Replaces the config file and has sidekey reload it (SIGHUP); waits for the reload.
    fn reload(&mut self, text: &str) {
        let d = self.dir.path();
        let tmp = d.join("sidekey.toml.new");
        std::fs::write(&tmp, text.replace("{dir}", d.to_str().unwrap())).unwrap();
        std::fs::rename(&tmp, d.join("sidekey.toml")).unwrap();
        let sk = self.sk.as_mut().unwrap();
        let hup = Command::new("kill")
            .args(["-HUP", &sk.child.id().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
        sk.wait_for_line(|l| l.contains("configuration reloaded"));
    }

    /// An admin API answer, fetched inside the namespace; also scanned for the credential.
    fn admin_get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.admin);
        let out = self
            .ns
            .ok(self.ns.cmd(None, &["curl", "-sS", "--fail", &url]));
        logs::assert_no_secret_in(&format!("GET {path}"), &out.stdout);
        String::from_utf8(out.stdout).unwrap()
    }

    /// The inventory record of route `api`.
    fn api_route(&self) -> serde_json::Value {
        let creds: serde_json::Value =
            serde_json::from_str(&self.admin_get("/v1/credentials")).unwrap();
        creds[0]["routes"][0].clone()
    }

    /// curl as the app's UID (no proxy variables; `cacert` the only trust), status and body.
    fn curl(&self, cacert: &str, resolve: &str, url: &str, extra: &[&str]) -> (String, String) {
        self.curl_as(APP_UID, cacert, resolve, url, extra)
    }

    /// [`World::curl`] run as `uid`.
    fn curl_as(
        &self,
        uid: &str,
        cacert: &str,
        resolve: &str,
        url: &str,
        extra: &[&str],
    ) -> (String, String) {
        let ca = self.dir.path().join(cacert);
        let mut args = vec![
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            resolve,
            "-w",
            "\n%{http_code}",
        ];
        args.extend(extra);
        args.push(url);
        let out = self.ns.cmd(Some(uid), &args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (code.to_owned(), format!("{body}{err}"))
    }

    /// `https://api.test{path}` at `ip` is intercepted: 200 and the upstream saw the credential.
    fn assert_routed(&self, ip: &str, path: &str) {
        let (code, body) = self.curl(
            "sidekey-ca.pem",
            &format!("api.test:443:{ip}"),
            &format!("https://api.test{path}"),
            &[],
        );
        assert_eq!(code, "200", "{path}: {body}");
        let seen = format!("path={path} host=api.test auth=Bearer {}", self.token);
        assert!(
            body.contains(&seen),
            "{path}: the upstream got the credential: {body}"
        );
    }

    /// `https://api.test{path}` at 127.0.0.2 finds nothing listening where the rules redirect it.
    fn assert_nothing_listens(&self, path: &str) {
        let (code, body) = self.curl(
            "sidekey-ca.pem",
            "api.test:443:127.0.0.2",
            &format!("https://api.test{path}"),
            &[],
        );
        assert_eq!(
            code, "000",
            "nothing listens where the rules redirect: {body}"
        );
    }

    /// `https://other.test{path}` (unrouted) is refused before TLS and never
    /// reaches the upstream; `why` says which rule refuses it.
    fn assert_denied(&self, path: &str, why: &str) {
        let (code, body) = self.curl(
            "upstream-ca.pem",
            "other.test:443:127.0.0.2",
            &format!("https://other.test{path}"),
            &[],
        );
        assert_eq!(code, "000", "{why}: {body}");
        assert!(!self.seen().contains(path), "{}", self.seen());
    }

    /// `https://other.test{path}` passes through: the upstream's own certificate, no credential.
    fn assert_passed_through(&self, path: &str) {
        let (code, body) = self.curl(
            "upstream-ca.pem",
            "other.test:443:127.0.0.2",
            &format!("https://other.test{path}"),
            &[],
        );
        assert_eq!(code, "200", "{path}: {body}");
        let seen = format!("path={path} host=other.test auth=none");
        assert!(body.contains(&seen), "{path}: {body}");
    }

    fn seen(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("seen")).unwrap_or_default()
    }

    /// Stops sidekey and fails if its log (at trace level) holds the credential.
    fn finish(mut self) -> Vec<String> {
        let sk = self.sk.take().unwrap();
        let stopped = Command::new("kill")
            .args(["-TERM", &sk.child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
        let (_, lines) = sk.finish();
        logs::assert_no_secret_in("sidekey's log", lines.join("\n").as_bytes());
        lines
    }
}

/// Asserts that `lines` hold the audit event of an unmatched destination refused.
fn assert_unmatched_refusal_audited(lines: &[String], what: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.contains("transparent_refused") && l.contains("unmatched")),
        "{what}"
    );
}

fn logs_with<'a>(lines: &'a [String], what: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(what)).collect()
}

#[test]
fn an_app_without_proxy_settings_gets_the_credential_attached_and_unrouted_traffic_passes_through()
{
    let w = World::start("pass", "passthrough");

    w.assert_routed("127.0.0.2", "/v1/user");

    // The inventory says how the route is served and where the app was going.
    let route = w.api_route();
    assert_eq!(route["route"], "api", "{route}");
    assert_eq!(
        route["modes"],
        serde_json::json!(["transparent"]),
        "{route}"
    );
    assert_eq!(
        route["requests_by_mode"],
        serde_json::json!({ "listener": 0, "forward": 0, "transparent": 1 }),
        "{route}"
    );
    assert_eq!(route["last_original_dst"], "127.0.0.2:443", "{route}");
    let at = route["last_original_dst_at"].as_str().unwrap();
    let at = humantime::parse_rfc3339(at).unwrap();
    assert!(at.elapsed().unwrap_or_default() < std::time::Duration::from_secs(60));

    // Plain HTTP to a routed host is routed by its Host and sent on over TLS.
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "api.test:80:127.0.0.2",
        "http://api.test/plain-http",
        &[],
    );
    assert_eq!(code, "200", "{body}");
    assert!(
        body.contains(&format!(
            "path=/plain-http host=api.test auth=Bearer {}",
            w.token
        )),
        "{body}"
    );

    // Unrouted: the app talks TLS to the upstream itself (its own certificate,
    // trusted through the upstream's CA, not sidekey's), and no credential is added.
    w.assert_passed_through("/plain");

    // A routed destination whose request names another host than its SNI: 421, never sent on.
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "api.test:443:127.0.0.2",
        "https://api.test/misdirected",
        &["-H", "Host: other.test"],
    );
    assert_eq!(code, "421", "{body}");
    assert!(!w.seen().contains("/misdirected"), "{}", w.seen());

    if w.ipv6 {
        w.assert_routed("[fd00::2]", "/v6");
    } else {
        eprintln!("note: the namespace has no IPv6; the IPv6 path was not exercised");
    }

    // An upstream 401 in transparent mode: the audit event says so.
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "api.test:443:127.0.0.2",
        "https://api.test/reject",
        &[],
    );
    assert_eq!(code, "401", "{body}");

    let v6 = usize::from(w.ipv6);
    let route = w.api_route();
    assert_eq!(
        route["requests_by_mode"]["transparent"],
        3 + v6,
        "/v1/user, /plain-http, /reject (and /v6); the 421 never reached the route: {route}"
    );
    assert_eq!(
        route["last_original_dst"], "127.0.0.2:443",
        "the last: {route}"
    );
    let metrics = w.admin_get("/metrics");
    assert!(
        metrics.contains(&format!(
            "sidekey_route_mode_requests_total{{route=\"api\",mode=\"transparent\"}} {}",
            3 + v6
        )),
        "{metrics}"
    );
    w.admin_get("/v1/credentials/gh");
    w.admin_get("/");

    let seen = w.seen();
    let lines = w.finish();
    assert!(
        lines.iter().any(|l| l.contains("sidekey::access")
            && l.contains("transparent")
            && l.contains("127.0.0.2:443")),
        "the access log shows the mode and the original destination"
    );
    assert!(
        lines.iter().any(|l| l.contains("rejected_by_upstream")
            && l.contains("mode=\"transparent\"")
            && l.contains("original_dst=\"127.0.0.2:443\"")),
        "the audit event shows the mode and the original destination: {:?}",
        logs_with(&lines, "rejected_by_upstream")
    );
    let sent: Vec<&str> = seen.lines().filter(|l| !l.contains("/reject")).collect();
    assert_eq!(
        sent.iter().filter(|l| l.contains("auth=Bearer")).count(),
        2 + usize::from(seen.contains("/v6")),
        "{seen}"
    );
}

#[test]
fn deny_refuses_unrouted_destinations_and_sidekeys_own_listener_is_never_a_destination() {
    let w = World::start("deny", "deny");

    w.assert_denied("/plain", "refused before TLS");

    // Routed traffic still works in deny mode.
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "api.test:443:127.0.0.2",
        "https://api.test/ok",
        &[],
    );
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("auth=Bearer"), "{body}");

    // A connection straight to the transparent listener has no redirect
    // behind it: refused, and audited.
    let (code, _) = w.curl(
        "sidekey-ca.pem",
        &format!("api.test:{LISTEN_PORT}:127.0.0.1"),
        &format!("https://api.test:{LISTEN_PORT}/loop"),
        &[],
    );
    assert_eq!(code, "000");
    // Counted: one routed connection intercepted, the unrouted one and the
    // loop refused, nothing passed through.
    let metrics = w.admin_get("/metrics");
    for (name, n) in [("intercepted", 1), ("refused", 2), ("passthrough", 0)] {
        let line = format!("sidekey_proxy_transparent_{name}_total {n}");
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let lines = w.finish();
    // The connection went through the redirect (conntrack gives its
    // original destination, sidekey's own listener): the loop guard, not
    // the "no original destination" branch, refused it.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("transparent_refused") && l.contains("own listeners")),
        "the refusal is an audit event"
    );
    assert_unmatched_refusal_audited(&lines, "deny is audited");
}

#[test]
fn sidekey_iptables_prints_the_rules_only_for_a_fixed_transparent_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("token"), "t0ken-not-secret").unwrap();
    std::fs::write(d.join("upstream-ca.pem"), TestCa::new().cert_pem).unwrap();
    let cfg = d.join("sidekey.toml");
    let iptables = |text: &str, extra: &[&str]| {
        std::fs::write(&cfg, text.replace("{dir}", d.to_str().unwrap())).unwrap();
        let out = sidekey()
            .args(["iptables", "-c"])
            .arg(&cfg)
            .args(["--uid", "65532"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = iptables(
        &config("passthrough"),
        &[
            "--exclude-uid",
            "1337",
            "--ports",
            "443,80",
            "--exclude-cidr",
            "10.0.0.0/8,fd00::/8",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("-A SIDEKEY_OUTPUT -m owner --uid-owner 65532 -j RETURN"),
        "{out}"
    );
    assert!(
        out.contains("-A SIDEKEY_OUTPUT -m owner --uid-owner 1337 -j RETURN"),
        "{out}"
    );
    assert!(
        out.contains("-A SIDEKEY_OUTPUT -d 10.0.0.0/8 -j RETURN"),
        "{out}"
    );
    assert!(!out.contains("fd00::/8"), "{out}");
    assert!(
        out.contains("-p tcp -m multiport --dports 443,80 -j REDIRECT --to-ports 15001"),
        "{out}"
    );
    let (code, out, _) = iptables(&config("passthrough"), &["--ipv6"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("-d ::1/128 -j RETURN"), "{out}");

    let (code, _, err) = iptables(&config("deny").replace(":15001", ":0"), &[]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("port 0"), "{err}");
    let (code, _, err) = iptables(&config("sometimes"), &[]);
    assert_eq!(code, Some(78), "{err}");
    assert!(err.contains("use \"passthrough\" or \"deny\""), "{err}");
}

/// `sidekey iptables --apply` in a namespace: what `iptables-save`/`ip6tables-save` read back.
fn apply_in(ns: &Netns, uid: Option<&str>, cfg: &Path) -> Output {
    let bin = env!("CARGO_BIN_EXE_sidekey");
    let cfg = cfg.to_str().unwrap();
    let args = [bin, "iptables", "-c", cfg, "--uid", SIDEKEY_UID, "--apply"];
    ns.cmd(uid, &args).output().unwrap()
}

fn saved(ns: &Netns, save: &str) -> String {
    let out = ns.ok(ns.cmd(None, &[save, "-t", "nat"]));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sidekey_iptables_apply_loads_ipv4_and_ipv6_and_skips_ipv6_where_the_namespace_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(d.join("token"), "t0ken-not-secret").unwrap();
    std::fs::write(d.join("upstream-ca.pem"), TestCa::new().cert_pem).unwrap();
    let cfg = d.join("sidekey.toml");
    std::fs::write(
        &cfg,
        config("passthrough").replace("{dir}", d.to_str().unwrap()),
    )
    .unwrap();
    let redirect = format!("-A SIDEKEY_OUTPUT -p tcp -j REDIRECT --to-ports {LISTEN_PORT}");
    let own_uid = format!("-A SIDEKEY_OUTPUT -m owner --uid-owner {SIDEKEY_UID} -j RETURN");

    // A namespace with IPv6 (a fresh one has ::1 on lo): both families loaded.
    let ns = Netns::create("apply");
    let lo6 = ns.ok(ns.cmd(None, &["ip", "-6", "addr", "show", "dev", "lo"]));
    let has_v6 = String::from_utf8_lossy(&lo6.stdout).contains("::1/128");
    let out = apply_in(&ns, None, &cfg);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("IPv4 rules applied (iptables-restore)"),
        "{said}"
    );
    let v4 = saved(&ns, "iptables-save");
    for rule in [
        "-A OUTPUT -p tcp -j SIDEKEY_OUTPUT",
        &own_uid,
        "-A SIDEKEY_OUTPUT -d 127.0.0.1/32 -j RETURN",
        &redirect,
    ] {
        assert!(v4.contains(rule), "{rule} in\n{v4}");
    }
    let v6 = saved(&ns, "ip6tables-save");
    if has_v6 {
        assert!(
            said.contains("IPv6 rules applied (ip6tables-restore)"),
            "{said}"
        );
        for rule in [
            "-A OUTPUT -p tcp -j SIDEKEY_OUTPUT",
            &own_uid,
            "-A SIDEKEY_OUTPUT -d ::1/128 -j RETURN",
            &redirect,
        ] {
            assert!(v6.contains(rule), "{rule} in\n{v6}");
        }
    } else {
        eprintln!("note: this machine's namespaces have no IPv6; only the skip was exercised");
    }

    // Without the capability the rules are not loaded, and the command says so (no silent pipe).
    let fresh = Netns::create("apply-nonroot");
    let out = apply_in(&fresh, Some(APP_UID), &cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("iptables-restore refused the rules"), "{err}");
    assert!(!saved(&fresh, "iptables-save").contains("SIDEKEY_OUTPUT"));

    // A namespace with IPv6 disabled: the IPv4 rules, the IPv6 ones skipped, success.
    let ns4 = Netns::create("apply-v4");
    for key in ["all", "default", "lo"] {
        let k = format!("net.ipv6.conf.{key}.disable_ipv6=1");
        ns4.ok(ns4.cmd(None, &["sysctl", "-q", "-w", &k]));
    }
    let out = apply_in(&ns4, None, &cfg);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("IPv4 rules applied") && said.contains("IPv6 rules skipped"),
        "{said}"
    );
    assert!(saved(&ns4, "iptables-save").contains(&redirect));
    assert!(!saved(&ns4, "ip6tables-save").contains("SIDEKEY_OUTPUT"));
}

#[test]
fn a_reload_moves_transparent_to_where_the_rules_redirect_and_swaps_unmatched() {
    // sidekey starts on another port than the rules redirect to: nothing reaches it.
    let elsewhere = config("passthrough").replace(&format!(":{LISTEN_PORT}\""), ":15009\"");
    let mut w = World::start_with("reload", "passthrough", &elsewhere);
    w.assert_nothing_listens("/before");

    // Moved to the rules' port, and unmatched destinations now denied: no restart.
    w.reload(&config("deny"));
    let sk = w.sk.as_mut().unwrap();
    sk.wait_for_line(|l| {
        l.contains("transparent egress listening")
            && l.contains(&format!("127.0.0.1:{LISTEN_PORT}"))
    });
    w.assert_routed("127.0.0.2", "/after");
    w.assert_denied("/unrouted", "unmatched = \"deny\" applies");
    // The old port is closed (curl: couldn't connect), not merely refusing.
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "x:1:127.0.0.1",
        "http://127.0.0.1:15009/",
        &[],
    );
    assert_eq!(code, "000");
    assert!(body.contains("(7)"), "the old listener stopped: {body}");
    let route = w.api_route();
    assert_eq!(
        route["modes"],
        serde_json::json!(["transparent"]),
        "{route}"
    );
    assert_eq!(route["requests_by_mode"]["transparent"], 1, "{route}");

    let lines = w.finish();
    assert_unmatched_refusal_audited(&lines, "deny after the reload is audited");
}

#[test]
fn a_reload_adds_transparent_to_a_sidekey_that_intercepted_nothing() {
    // At start: one listener route, no [transparent], no CA in use.
    let listener_only = config("passthrough")
        .replace(
            &format!(
                "[transparent]\nlisten = \"127.0.0.1:{LISTEN_PORT}\"\nunmatched = \"passthrough\"\n"
            ),
            "",
        )
        .replace("host = \"api.test\"", "listen = \"127.0.0.1:0\"");
    assert!(!listener_only.contains("[transparent]"), "{listener_only}");
    let mut w = World::start_with("add", "passthrough", &listener_only);
    w.assert_nothing_listens("/before");

    w.reload(&config("passthrough"));
    let sk = w.sk.as_mut().unwrap();
    sk.wait_for_line(|l| l.contains("transparent egress listening"));
    w.assert_routed("127.0.0.2", "/added");
    // Unrouted traffic passes through.
    w.assert_passed_through("/plain");
    w.finish();
}

/// Caller authentication on redirected connections: the client's socket is
/// connected to the original destination, not to the transparent listener, and
/// the socket-table lookup must find it there.
#[test]
fn allow_uids_admits_the_app_and_refuses_other_users_on_redirected_connections() {
    let text = format!("{}allow_uids = [{APP_UID}]\n", config("passthrough"));
    let w = World::start_with("callers", "passthrough", &text);

    w.assert_routed("127.0.0.2", "/app");
    let (code, body) = w.curl(
        "sidekey-ca.pem",
        "api.test:80:127.0.0.2",
        "http://api.test/app-plain",
        &[],
    );
    assert_eq!(code, "200", "plain HTTP, routed by Host: {body}");
    assert!(body.contains("auth=Bearer"), "{body}");

    let mut ips = vec!["127.0.0.2"];
    if w.ipv6 {
        w.assert_routed("[fd00::2]", "/app-v6");
        ips.push("[fd00::2]");
    } else {
        eprintln!("note: the namespace has no IPv6; the IPv6 lookup was not exercised");
    }
    for ip in ips {
        let (code, body) = w.curl_as(
            OTHER_UID,
            "sidekey-ca.pem",
            &format!("api.test:443:{ip}"),
            "https://api.test/other-user",
            &[],
        );
        assert_eq!(code, "403", "{ip}: {body}");
        assert!(body.contains("caller_not_allowed"), "{ip}: {body}");
        assert!(
            body.contains(&format!("uid {OTHER_UID} may not use this route")),
            "{ip}: {body}"
        );
    }
    assert!(
        !w.seen().contains("/other-user"),
        "a refused caller reaches nothing: {}",
        w.seen()
    );

    let lines = w.finish();
    let refused = logs_with(&lines, "caller_refused");
    assert!(
        refused.iter().any(|l| l.contains("mode=\"transparent\"")
            && l.contains("original_dst=\"127.0.0.2:443\"")
            && l.contains(&format!("uid {OTHER_UID}"))),
        "the refusal is audited with the mode and the original destination: {refused:?}"
    );
}

/// The proof-of-possession peers, running inside the namespace: a verifier of
/// RFC 9421 signatures and nginx requiring a client certificate.
struct PopPeers {
    verifier: Verifier,
    nginx: Nginx,
    /// The signing key (never to be seen by the app).
    key: String,
    /// Keeps the peers' process handles served.
    _rt: tokio::runtime::Runtime,
}

/// nginx's port inside the namespace.
const NGINX_PORT: u16 = 8443;

impl PopPeers {
    /// Writes the keys and certificates into `d` (the private ones owned by
    /// sidekey's UID) and starts the peers in `ns`.
    fn start(ns: &Netns, d: &Path) -> PopPeers {
        let (key, public) = httpsig::new_key("ed25519");
        std::fs::write(d.join("sig-key"), format!("{key}\n")).unwrap();
        std::fs::write(d.join("sig-trusted"), &public).unwrap();
        let ca = TestCa::new();
        let nginx_dir = d.join("nginx");
        std::fs::create_dir(&nginx_dir).unwrap();
        nginx::server_files(&ca, &nginx_dir);
        let (cert, client_key) = nginx::client_pair(&ca, &[0xc1]);
        std::fs::write(d.join("client.pem"), cert).unwrap();
        std::fs::write(d.join("client-key.pem"), client_key).unwrap();
        for f in ["sig-key", "client-key.pem"] {
            let p = d.join(f);
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let own = format!("{SIDEKEY_UID}:{SIDEKEY_UID}");
            assert!(
                Command::new("chown")
                    .arg(own)
                    .arg(&p)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        ns.within(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let verifier = rt.block_on(Verifier::start(
                "ed25519",
                "test-key",
                &d.join("sig-trusted"),
            ));
            let nginx = rt.block_on(Nginx::start(&nginx_dir, NGINX_PORT, false));
            PopPeers {
                verifier,
                nginx,
                key,
                _rt: rt,
            }
        })
    }

    /// Host routes `sig.test` (signed, to the verifier) and `bank.test`
    /// (client certificate, to nginx), with their credentials.
    fn routes(&self) -> String {
        format!(
            r#"
[credentials.sig]
source = "file"
path = "{{dir}}/sig-key"

[credentials.mtls]
source = "file"
cert = "{{dir}}/client.pem"
key = "{{dir}}/client-key.pem"

[[routes]]
name = "signed"
host = "sig.test"
upstream = "{}"
credential = "sig"
inject = {{ http_signature = {{ key_id = "test-key", alg = "ed25519", components = ["@method", "@target-uri", "@authority", "@path", "@query", "content-type", "content-digest"] }} }}

[[routes]]
name = "bank"
host = "bank.test"
upstream = "https://127.0.0.1:{NGINX_PORT}"
ca_file = "{{dir}}/nginx/ca.pem"
credential = "mtls"
inject = {{ client_cert = {{}} }}
"#,
            self.verifier.url
        )
    }
}

/// issue 15 in transparent egress: the app calls the real host names (at an
/// address where nothing listens) with no proxy settings; the rules redirect
/// it, sidekey intercepts, and the independent verifiers accept what it adds.
#[test]
fn signatures_and_client_certificates_reach_their_verifiers_through_transparent_egress() {
    let mut peers = None;
    let w = World::start_prepared("pop", |ns, d| {
        let p = PopPeers::start(ns, d);
        let text = format!("{}{}", config("passthrough"), p.routes());
        peers = Some(p);
        (text.clone(), text)
    });
    let peers = peers.unwrap();
    // Nothing listens at 127.0.0.3: only an intercepted request can be answered.
    let at = "127.0.0.3";

    // RFC 9421, over TLS and over plain HTTP, with and without a body.
    for (url, port, body) in [
        ("https://sig.test/v1/orders?limit=3&cursor=a%2Fb", 443, None),
        ("https://sig.test/v1/orders", 443, Some(r#"{"amount": 42}"#)),
        ("http://sig.test/v1/plain?x=1", 80, Some("plain=1")),
    ] {
        let mut extra = vec!["-H", "content-type: application/json"];
        if let Some(b) = body {
            extra.extend(["--data-binary", b]);
        }
        let (code, answer) = w.curl(
            "sidekey-ca.pem",
            &format!("sig.test:{port}:{at}"),
            url,
            &extra,
        );
        assert_eq!(code, "200", "{url}: {answer}");
        let v: serde_json::Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{url}: JSON from the verifier ({e}): {answer}"));
        assert_eq!(v["verified"], true, "{url}: {v}");
        let covered = v["covered"].as_object().unwrap();
        assert!(covered.contains_key("\"@target-uri\""), "{url}: {v}");
        assert_eq!(
            v["digest_checked"], true,
            "{url}: the body is covered through Content-Digest: {v}"
        );
        assert_eq!(v["seen"]["body"], body.unwrap_or(""), "{url}: {v}");
        assert!(!answer.contains(&peers.key), "the app never sees the key");
    }

    // A client certificate: nginx (ssl_verify_client on) verified it.
    for (url, port) in [
        ("https://bank.test/balance", 443),
        ("http://bank.test/plain", 80),
    ] {
        let (code, answer) = w.curl(
            "sidekey-ca.pem",
            &format!("bank.test:{port}:{at}"),
            url,
            &[],
        );
        assert_eq!(code, "200", "{url}: {answer}");
        assert!(answer.contains("serial=C1"), "{url}: {answer}");
    }
    let access = peers.nginx.access();
    for path in ["/balance", "/plain"] {
        assert!(
            access.iter().any(|a| a.path == path
                && a.status == 200
                && a.verify == "SUCCESS"
                && a.serial == "C1"),
            "nginx verified the client certificate for {path}: {access:?}"
        );
    }

    let route = |name: &str| {
        let creds: serde_json::Value =
            serde_json::from_str(&w.admin_get("/v1/credentials")).unwrap();
        creds
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["routes"].as_array().unwrap().clone())
            .find(|r| r["route"] == name)
            .unwrap_or_else(|| panic!("route {name} in {creds}"))
    };
    assert_eq!(route("signed")["requests_by_mode"]["transparent"], 3);
    assert_eq!(route("bank")["requests_by_mode"]["transparent"], 2);
    assert_eq!(route("bank")["last_original_dst"], "127.0.0.3:80");
    w.finish();
}
