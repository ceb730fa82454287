//! `source = "file"`: a value read from a mounted file, re-read when it changes
//! (including the Kubernetes Secret-volume `..data` symlink swap).

use super::spec::SourceSettings;
use super::{BoxFuture, Command, Credential, Issued, Material, Source, SourceError};
use crate::parse::{FieldError, ParseContext, typed};
use crate::secret::Secret;
use notify::{RecursiveMode, Watcher};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
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
        Box::pin(async move { read_file_value(&self.spec.path).await })
    }

    fn watch_paths(&self) -> Vec<PathBuf> {
        vec![self.spec.path.clone()]
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
    path: String,
    poll_interval: Option<String>,
}

/// Parses `source = "file"`'s keys.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<FileSpec, FieldError> {
    let f: FileForm = typed(table)?;
    let poll = cx
        .duration("poll_interval", f.poll_interval.as_deref())?
        .unwrap_or(DEFAULT_POLL);
    Ok(FileSpec {
        path: cx.path(&f.path),
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
        format!("file {}", self.path.display())
    }

    fn probe(&self) -> Result<(), FieldError> {
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
