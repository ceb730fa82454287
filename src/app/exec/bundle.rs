//! The CA bundle `sidekey exec` gives its command: the system's roots plus sidekey's CA, in a private temporary folder.
//!
//! `SSL_CERT_FILE` and its kin *replace* the roots a client trusts, so a file
//! with sidekey's CA alone would break every host sidekey does not intercept.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where distributions keep their roots (Debian, Fedora, openSUSE, Alpine and macOS).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A folder only this user can enter (0700), removed when dropped.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    pub fn create() -> std::io::Result<PrivateDir> {
        use rand::Rng;
        let tag: u64 = rand::thread_rng().r#gen();
        let path =
            std::env::temp_dir().join(format!("sidekey-exec-{}-{tag:016x}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(PrivateDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `ca-bundle.pem` into `dir`: the roots the user trusts now (their
/// `SSL_CERT_FILE`, else the system's) followed by sidekey's CA.
pub fn write(dir: &PrivateDir, ca_pem: &str) -> std::io::Result<PathBuf> {
    let mut text = system_roots().unwrap_or_else(|| {
        tracing::warn!("no system CA bundle found: the command trusts only sidekey's CA, so hosts sidekey does not intercept fail TLS");
        String::new()
    });
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(ca_pem);
    let path = dir.path().join("ca-bundle.pem");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)?;
    f.write_all(text.as_bytes())?;
    Ok(path)
}

fn system_roots() -> Option<String> {
    let own = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    own.into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
        })
}
