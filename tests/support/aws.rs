//! AWS test peers: a signature-checking moto server on a random loopback port, botocore's reference signer, and key files swapped like a Kubernetes secret volume.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn venv_bin(name: &str) -> PathBuf {
    let p = root().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-peers (it installs moto and botocore into .venv)",
        p.display()
    );
    p
}

/// Runs tests/support/aws_peer.py with `args`, `stdin` as its input; returns its JSON answer.
pub async fn peer(args: &[&str], stdin: Option<&Value>) -> Value {
    python("aws_peer.py", args, stdin).await
}

/// Runs the Python script `tests/support/{script}` of the test venv with
/// `args`, `stdin` as its input; returns the JSON it prints.
pub async fn python(script: &str, args: &[&str], stdin: Option<&Value>) -> Value {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(venv_bin("python"))
        .arg(root().join("tests/support").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(v) = stdin {
        input.write_all(v.to_string().as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{script} {} failed: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{script} answers JSON, got {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// An IAM access key of the moto test user.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Key {
    fn from_json(v: &Value) -> Key {
        Key {
            id: v["access_key_id"].as_str().unwrap().to_owned(),
            // Registered so that Sidekey::stop fails if it was ever logged.
            secret: super::logs::secret(v["secret_access_key"].as_str().unwrap()),
        }
    }
}

/// A moto server with signature checking on: the first three actions (the
/// setup of an IAM user, its policy and its access key) are let through,
/// every later request must carry a valid SigV4 signature.
pub struct Moto {
    pub url: String,
    pub admin: Key,
    _child: Child,
}

impl Moto {
    pub async fn start() -> Moto {
        let mut child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start moto_server");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = std::time::Duration::from_secs(30);
        let url = tokio::time::timeout(deadline, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(i) = line.find("http://127.0.0.1:") {
                    return line[i..].split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("moto_server exited before listening");
        })
        .await
        .expect("moto_server listens within 30s");
        // Keep draining its request log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let admin = Key::from_json(&peer(&["setup", &url], None).await);
        Moto {
            url,
            admin,
            _child: child,
        }
    }

    /// A new access key of the test user, created with `auth`'s signature.
    pub async fn create_key(&self, auth: &Key) -> Key {
        Key::from_json(&peer(&["create-key", &self.url, &auth.id, &auth.secret], None).await)
    }

    /// Deletes access key `id`, with `auth`'s signature.
    pub async fn delete_key(&self, auth: &Key, id: &str) {
        peer(&["delete-key", &self.url, &auth.id, &auth.secret, id], None).await;
    }

    /// A role for web identity, allowed everything; returns its ARN.
    pub async fn create_role(&self) -> String {
        let v = peer(
            &["create-role", &self.url, &self.admin.id, &self.admin.secret],
            None,
        )
        .await;
        v["role_arn"].as_str().unwrap().to_owned()
    }

    /// S3 calls made with boto3 straight to moto (not through sidekey), with
    /// the admin key: `[[operation, {params}], ...]`; one answer each.
    pub async fn s3(&self, calls: Value) -> Vec<Value> {
        let v = peer(
            &["s3", &self.url, &self.admin.id, &self.admin.secret],
            Some(&calls),
        )
        .await;
        v.as_array().expect("a list of answers").clone()
    }

    /// Lets the next `n` actions through without a signature (moto checks
    /// signatures even on AssumeRoleWithWebIdentity, which AWS does not sign).
    pub async fn allow_unsigned(&self, n: u32) {
        let (status, _, _) = super::send(
            http::Method::POST,
            &format!("{}/moto-api/reset-auth", self.url),
            &[],
            n.to_string(),
        )
        .await;
        assert_eq!(status, 200, "moto reset-auth");
    }
}

/// The inventory fingerprint sidekey shows for a set of AWS keys.
pub fn fingerprint(key: &Key) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{}:{}", key.id, key.secret)))[..12].to_owned()
}

/// One inventory record from sidekey's admin API.
pub async fn inventory(sk: &super::Sidekey, name: &str) -> Value {
    let (status, _, body) = super::get(&format!("{}/v1/credentials/{name}", sk.admin())).await;
    assert_eq!(status, 200, "inventory of {name}");
    super::logs::assert_no_secret_in("the inventory", &body);
    serde_json::from_slice(&body).unwrap()
}

/// Writes `files` into `dir` the way a Kubernetes secret volume does: the
/// values in a fresh folder, published by renaming a `..data` symlink over,
/// so all files change at once. Creates the per-file symlinks on first use.
pub fn swap_secret_volume(dir: &Path, files: &[(&str, &str)]) {
    use std::os::unix::fs::symlink;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let version = format!("..{stamp}");
    std::fs::create_dir_all(dir.join(&version)).unwrap();
    for (name, value) in files {
        std::fs::write(dir.join(&version).join(name), value).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
}

/// Config text: one `source = "aws"` credential `name` with the keys `keys`,
/// and a route `s3` to `upstream` signing S3 (us-east-1) requests with it;
/// `route_extra` adds keys to the route.
pub fn s3_config(name: &str, keys: &str, upstream: &str, route_extra: &str) -> String {
    let inject = r#"{ aws_sigv4 = { service = "s3", region = "us-east-1" } }"#;
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[credentials.{name}]\nsource = \"aws\"\n{keys}\n{}",
        super::route("s3", upstream, name, inject, route_extra)
    )
}

/// Starts sidekey with the S3 route `s3` to `moto`, signing with the keys
/// `id`/`secret` read from files; `route_extra` adds keys to the route.
pub async fn s3_sidekey(moto: &Moto, id: &str, secret: &str, route_extra: &str) -> super::Sidekey {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), id).unwrap();
    std::fs::write(dir.path().join("secret"), secret).unwrap();
    let keys = r#"access_key_id = { file = "{dir}/id" }
secret_access_key = { file = "{dir}/secret" }"#;
    let sk = super::Sidekey::start_in(dir, &s3_config("aws", keys, &moto.url, route_extra)).await;
    sk.wait_ready(5).await;
    sk
}
