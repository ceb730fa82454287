//! An RFC 9421 verifying upstream: `httpsig_verifier.py`, a small Python HTTP server (or WebSocket server over TLS) that checks every request with the PyPI package `http-message-signatures`.

use super::logs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running verifier on a random loopback port.
pub struct Verifier {
    pub url: String,
    _child: Child,
}

impl Verifier {
    /// Starts the verifier for `alg` and `key_id`, trusting the key in `key_file`
    /// (read again on every request).
    pub async fn start(alg: &str, key_id: &str, key_file: &Path) -> Verifier {
        let port = spawn(&[alg, key_id], key_file, &[]).await;
        Verifier {
            url: format!("http://127.0.0.1:{}", port.0),
            _child: port.1,
        }
    }

    /// As [`Verifier::start`], but a WebSocket server over TLS (certificate
    /// `cert`, its key `cert_key`, both PEM files) that verifies each handshake
    /// as an `https://` request; `url` is `https://127.0.0.1:PORT`. With `h2`
    /// it is hypercorn, which also takes RFC 8441 extended CONNECT over h2
    /// (verified as a CONNECT), else `websockets` (HTTP/1.1 only).
    #[allow(dead_code)] // not every test binary uses every helper
    pub async fn start_websocket(
        alg: &str,
        key_id: &str,
        key_file: &Path,
        cert: &Path,
        cert_key: &Path,
        h2: bool,
    ) -> Verifier {
        let (cert, cert_key) = (cert.to_str().unwrap(), cert_key.to_str().unwrap());
        let mut tls = vec![cert, cert_key];
        if h2 {
            tls.push("h2");
        }
        let port = spawn(&[alg, key_id], key_file, &tls).await;
        Verifier {
            url: format!("https://127.0.0.1:{}", port.0),
            _child: port.1,
        }
    }
}

/// A fresh key for `alg`, registered with the leak scanner: the signing key
/// (HMAC key text, or a PKCS#8 PEM) and what the verifier trusts (the same
/// HMAC key, or the public key PEM).
pub fn new_key(alg: &str) -> (String, String) {
    let pair = |a: &'static rcgen::SignatureAlgorithm| {
        let k = rcgen::KeyPair::generate_for(a).unwrap();
        (k.serialize_pem(), k.public_key_pem())
    };
    let (key, public) = match alg {
        "hmac-sha256" => {
            let k = format!("hmac-key-{}", hex::encode(rand_bytes()));
            (k.clone(), k)
        }
        "ed25519" => pair(&rcgen::PKCS_ED25519),
        "ecdsa-p256-sha256" => pair(&rcgen::PKCS_ECDSA_P256_SHA256),
        other => panic!("no key for {other}"),
    };
    // The PEM's base64 lines are what a leak would show.
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        logs::secret(line);
    }
    (logs::secret(key.trim()), public)
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            >> (i % 4 * 8)) as u8
            ^ i as u8;
    }
    b
}

/// Runs `httpsig_verifier.py` and waits for the port it prints.
async fn spawn(args: &[&str], key_file: &Path, tls: &[&str]) -> (u64, Child) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-peers (it installs http-message-signatures into .venv)",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("tests/support/httpsig_verifier.py"))
        .args(args)
        .arg(key_file)
        .args(tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start httpsig_verifier.py");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the verifier starts within 20 s")
        .unwrap()
        .expect("the verifier prints its port");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    (v["port"].as_u64().unwrap(), child)
}
