//! Files of the generated CA: the folder made 0700 (when it is sidekey's to change), the key written 0600, each file replaced whole.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700 if missing; tightens an
/// existing folder to 0700. A folder another user made for sidekey, which
/// only its owner may tighten, is used as it is: a Kubernetes `emptyDir` is
/// root's with mode 0777 and sidekey runs as UID 65532 (only sidekey's
/// containers mount it); the key is written 0600 either way.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let owner = std::fs::metadata(dir)?.uid();
            if owner == rustix::process::geteuid().as_raw() {
                return Err(e);
            }
            tracing::info!(
                dir = %dir.display(),
                owner,
                "state_dir belongs to another user, who alone can tighten its mode: used as it is (the CA key is written 0600)"
            );
            Ok(())
        }
        done => done,
    }
}

/// Writes `bytes` to `path` with `mode`, through a temporary file renamed over it.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
