//! `source = "keyring"` against a real Secret Service: GNOME Keyring's daemon on a private D-Bus
//! session bus, unlocked without a prompt. `sidekey secret set` stores into it (another Secret Service
//! client reads the entry back), a running sidekey injects the value and picks up a new one without a
//! restart, `sidekey secret rm` deletes it, and no value reaches a log. Built only with
//! `--features secret-service` (`scripts/test` runs it so).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test
#![cfg(feature = "secret-service")]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::binary::Running;
use support::{Upstream, keyring, logs};

const SIDEKEY: &str = env!("CARGO_BIN_EXE_sidekey");

/// A session bus of its own with an unlocked GNOME Keyring on it; both
/// daemons are killed when it is dropped. Its keyring files live in `home`.
struct Desktop {
    bus: Child,
    keyring: Child,
    address: String,
    home: tempfile::TempDir,
}

impl Desktop {
    fn start() -> Desktop {
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (scripts/install-test-peers installs dbus)");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "bus address {address:?}");

        // `--unlock` reads the login password from stdin: the default
        // keyring is created with it and left unlocked, no prompt.
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "gnome-keyring-daemon runs (scripts/install-test-peers installs gnome-keyring)",
            );
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"login-password")
            .unwrap();
        let desktop = Desktop {
            bus,
            keyring,
            address,
            home,
        };
        // Ready once the daemon owns the Secret Service's name on the bus.
        for _ in 0..100 {
            let found = desktop
                .command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&found.stdout).contains("boolean true") {
                return desktop;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gnome-keyring-daemon did not take the Secret Service's name");
    }

    /// `program` in this desktop session.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", self.home.path());
        cmd
    }

    /// Runs `sidekey secret ARGS` with `stdin` piped in; returns the exit code and all it said.
    fn secret(&self, args: &[&str], stdin: &str) -> (i32, String) {
        let mut cmd = self.command(SIDEKEY);
        cmd.arg("secret")
            .args(args)
            .args(["--store", "secret-service"]);
        keyring::run(cmd, stdin)
    }

    /// The entry as another Secret Service client (libsecret's `secret-tool`)
    /// reads it, or `None` when there is none.
    fn lookup(&self, account: &str) -> Option<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", "sidekey", "username", account])
            .output()
            .expect("secret-tool runs (scripts/install-test-peers installs libsecret-tools)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(desktop: &Desktop, dir: &Path, config: &str) -> Running {
    Running::start_with(dir, config, desktop.command(SIDEKEY))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_service_value_is_injected_rotated_without_restart_and_removed() {
    let desktop = Desktop::start();
    let account = "payments-dev";
    let (v1, v2) = (
        logs::secret("ss-first-6b20e1"),
        logs::secret("ss-second-f3a9c4"),
    );
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(desktop.lookup(account), None);

    let (code, said) = desktop.secret(&["set", account], &format!("{v1}\n"));
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("stored") && said.contains("Secret Service") && !said.contains(&v1),
        "{said}"
    );
    assert_eq!(desktop.lookup(account).as_deref(), Some(v1.as_str()));

    let config = keyring::config(account, "secret-service", &up.url());
    let mut sk = start(&desktop, dir.path(), &config);
    let (url, admin) = keyring::serving(&mut sk, &up, &v1).await;

    // A new value, stored while sidekey runs, is in use within a few reads.
    let (code, said) = desktop.secret(&["set", account], &v2);
    assert_eq!(code, 0, "{said}");
    assert_eq!(desktop.lookup(account).as_deref(), Some(v2.as_str()));
    keyring::assert_rotated_to(&url, &up, &v2).await;

    // Deleted from the Secret Service: the last good value stays in use, and
    // the inventory says why.
    let (code, said) = desktop.secret(&["rm", account], "");
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("deleted"), "{said}");
    assert_eq!(desktop.lookup(account), None);
    keyring::assert_deleted_and_kept(&admin, &url, "Secret Service").await;

    let (code, said) = desktop.secret(&["rm", account], "");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("no entry"), "{said}");

    let _ = sk.child.kill();
    let (_, log) = sk.finish();
    logs::assert_no_secret_in("sidekey's trace log", log.join("\n").as_bytes());
}
