//! `source = "file"`: a value read from a mounted file, re-read when it changes
//! (including the Kubernetes Secret-volume `..data` symlink swap). With `cert`
//! and `key` instead of `path`, the value is a TLS client certificate and its
//! key, read together and published only when the key matches the certificate.

use super::spec::SourceSettings;
use super::{BoxFuture, Command, Credential, Issued, Material, Source, SourceError};
use crate::material::MaterialKind;
use crate::parse::{FieldError, ParseContext, typed};
use crate::secret::Secret;
use notify::{RecursiveMode, Watcher};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The value's file; with `key` set, the certificate chain (PEM).
    pub path: PathBuf,
    /// The private key (PEM) of the certificate in `path`, for `cert`/`key`.
    pub key: Option<PathBuf>,
    /// Read again this often even without a change event (a safety net for
    /// file systems that do not report changes).
    pub poll_interval: Duration,
}

pub const DEFAULT_POLL: Duration = Duration::from_secs(10);

pub struct FileSource {
    spec: FileSpec,
}

impl FileSource {
    pub fn new(spec: FileSpec) -> Self {
        FileSource { spec }
    }
}

impl Source for FileSource {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            match &self.spec.key {
                Some(key) => read_cert_pair(&self.spec.path, key).await,
                None => read_file_value(&self.spec.path).await,
            }
        })
    }

    fn watch_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.spec.path.clone()];
        paths.extend(self.spec.key.clone());
        paths
    }

    fn reread_every(&self) -> Option<Duration> {
        Some(self.spec.poll_interval)
    }
}

/// Reads a credential file: surrounding whitespace trimmed, empty is an error.
pub async fn read_file_value(path: &Path) -> Result<Issued, SourceError> {
    let shown = path.display();
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| SourceError::new(format!("cannot read {shown}: {e}")))?;
    let modified = tokio::fs::metadata(path)
        .await
        .ok()
        .and_then(|m| m.modified().ok());
    let text = String::from_utf8(bytes)
        .map_err(|_| SourceError::new(format!("{shown} is not UTF-8 text")))?;
    let secret = Secret::new(text).map_err(|_| SourceError::new(format!("{shown} is empty")))?;
    Ok(Issued {
        material: Material::Token(secret),
        issued_at: modified.unwrap_or_else(SystemTime::now),
        expires_at: None,
        lease: None,
    })
}

/// How long a pair that does not read as one is given to settle before it is read again.
pub const PAIR_SETTLE: Duration = Duration::from_millis(250);
/// How many times a pair is read before its failure is reported (so a
/// mismatch is reported after at most `(PAIR_READS - 1) × PAIR_SETTLE`).
pub const PAIR_READS: u32 = 4;

/// Reads a certificate chain and its key. A pair caught half-written (one
/// file replaced, not yet the other: a mismatch, or a file changed while it
/// was read) is never used: it is read again [`PAIR_SETTLE`] later, up to
/// [`PAIR_READS`] times, and only then is its failure reported (the previous
/// pair keeps serving). Its expiry is the leaf certificate's notAfter.
pub async fn read_cert_pair(cert: &Path, key: &Path) -> Result<Issued, SourceError> {
    let mut reads = 1;
    loop {
        match read_pair_once(cert, key).await {
            Err(e) if reads < PAIR_READS => {
                tracing::debug!(cert = %cert.display(), error = %e.message, "certificate and key do not read as a pair yet; reading again");
                reads += 1;
                tokio::time::sleep(PAIR_SETTLE).await;
            }
            result => return result,
        }
    }
}

/// One read of the pair: the certificate, the key, the certificate again
/// (it must not have changed), and the key checked against the certificate.
async fn read_pair_once(cert: &Path, key: &Path) -> Result<Issued, SourceError> {
    let read = |p: &Path| {
        let p = p.to_owned();
        async move {
            let bytes = tokio::fs::read(&p)
                .await
                .map_err(|e| SourceError::new(format!("cannot read {}: {e}", p.display())))?;
            String::from_utf8(bytes)
                .map_err(|_| SourceError::new(format!("{} is not UTF-8 text", p.display())))
        }
    };
    let chain = read(cert).await?;
    let key_pem = zeroize::Zeroizing::new(read(key).await?);
    if read(cert).await? != chain {
        return Err(SourceError::new(format!(
            "{} changed while it was read; reading again on the next change",
            cert.display()
        )));
    }
    let identity = crate::transport::cert::load(&chain, &key_pem)
        .map_err(|e| SourceError::new(format!("{} with {}: {e}", cert.display(), key.display())))?;
    let key_pem = Secret::new(key_pem.as_str())
        .map_err(|_| SourceError::new(format!("{} is empty", key.display())))?;
    let modified = tokio::fs::metadata(cert)
        .await
        .ok()
        .and_then(|m| m.modified().ok());
    Ok(Issued {
        material: Material::Cert(crate::material::CertKey {
            chain_pem: chain,
            key_pem,
        }),
        issued_at: modified.unwrap_or_else(SystemTime::now),
        expires_at: Some(identity.not_after),
        lease: None,
    })
}

/// Whether a watched folder's `event` may have changed the file called
/// `name` in it: a write, create, rename or delete of that file, or of a
/// `..`-prefixed entry (the Kubernetes `..data` symlink swap). Opening or
/// reading a file is not a change — sidekey's own reads must not trigger
/// another read.
pub fn changes(event: &notify::Event, name: &OsStr) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    let kind_changes = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    kind_changes
        && event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n == name || n.as_encoded_bytes().starts_with(b".."))
        })
}

/// Watches the directories holding `paths` and tells `cred`'s refresher when
/// anything in them changes. Watching the directory, not the file, is what
/// catches an atomic rename or a `..data` symlink swap. Returns `None` (and
/// the poll interval is the only trigger) when the platform cannot watch.
pub fn watch(paths: &[PathBuf], cred: &Arc<Credential>) -> Option<notify::RecommendedWatcher> {
    if paths.is_empty() {
        return None;
    }
    let weak: Weak<Credential> = Arc::downgrade(cred);
    let names: Vec<OsString> = paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(OsString::from)
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if names.iter().any(|n| changes(&event, n)) {
            if let Some(cred) = weak.upgrade() {
                cred.send(Command::Changed);
            }
        }
    })
    .map_err(|e| tracing::warn!(credential = cred.name(), error = %e, "cannot watch files; polling only"))
    .ok()?;
    for path in paths {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(credential = cred.name(), dir = %dir.display(), error = %e, "cannot watch directory; polling only");
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, AccessMode, CreateKind, Event, EventKind, ModifyKind};

    fn ev(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_are_not_changes_and_other_files_do_not_count() {
        let key = OsStr::new("key");
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let closed_read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let closed_write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(!changes(&ev(open, "/s/key"), key));
        assert!(!changes(&ev(closed_read, "/s/key"), key));
        assert!(changes(&ev(closed_write, "/s/key"), key));
        assert!(changes(&ev(modify, "/s/key"), key));
        assert!(!changes(&ev(modify, "/s/other"), key));
        assert!(changes(
            &ev(EventKind::Create(CreateKind::Any), "/s/..data"),
            key
        ));
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    path: Option<String>,
    /// `cert` and `key` together, instead of `path`: a TLS client certificate.
    cert: Option<String>,
    key: Option<String>,
    poll_interval: Option<String>,
}

/// Parses `source = "file"`'s keys.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<FileSpec, FieldError> {
    let f: FileForm = typed(table)?;
    let poll = cx
        .duration("poll_interval", f.poll_interval.as_deref())?
        .unwrap_or(DEFAULT_POLL);
    let (path, key) = match (f.path, f.cert, f.key) {
        (Some(path), None, None) => (cx.path(&path), None),
        (None, Some(cert), Some(key)) => (cx.path(&cert), Some(cx.path(&key))),
        (None, Some(_), None) => return Err(FieldError::on("cert", "`cert` needs `key`")),
        (None, None, Some(_)) => return Err(FieldError::on("key", "`key` needs `cert`")),
        (None, None, None) => {
            return Err(FieldError::on(
                "path",
                "write `path`, or `cert` and `key` for a client certificate",
            ));
        }
        (Some(_), _, _) => {
            return Err(FieldError::on(
                "path",
                "write either `path` or `cert` and `key`, not both",
            ));
        }
    };
    Ok(FileSpec {
        path,
        key,
        poll_interval: poll,
    })
}

impl SourceSettings for FileSpec {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn build(&self) -> Arc<dyn Source> {
        Arc::new(FileSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        match &self.key {
            Some(key) => format!("file cert {} key {}", self.path.display(), key.display()),
            None => format!("file {}", self.path.display()),
        }
    }

    fn material(&self) -> MaterialKind {
        match self.key {
            Some(_) => MaterialKind::CertKey,
            None => MaterialKind::Token,
        }
    }

    fn probe(&self) -> Result<(), FieldError> {
        if let Some(key) = &self.key {
            let read = |field: &str, p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| FieldError::on(field, format!("cannot read {}: {e}", p.display())))
            };
            let chain = read("cert", &self.path)?;
            let key_pem = zeroize::Zeroizing::new(read("key", key)?);
            return crate::transport::cert::load(&chain, &key_pem)
                .map(|_| ())
                .map_err(|e| FieldError::on("key", e.to_string()));
        }
        match std::fs::read(&self.path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Err(FieldError::on(
                "path",
                format!("{} is empty", self.path.display()),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(FieldError::on(
                "path",
                format!("cannot read {}: {e}", self.path.display()),
            )),
        }
    }
}
