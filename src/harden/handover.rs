//! Handing secret environment variables over to a re-executed sidekey: the values go into an anonymous memory file (memfd), the binary re-executes itself without them, and the new image reads them back and empties the file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use zeroize::Zeroizing;

/// Names the inherited memory file's descriptor in the re-executed process.
const MARKER: &str = "SIDEKEY_ENV_HANDOVER_FD";

/// Did this process image start from a handover?
pub fn received() -> bool {
    std::env::var_os(MARKER).is_some()
}

/// Re-executes this binary (same PID, same arguments) without `names` in its
/// environment, their values in an inherited memory file. Returns only if
/// that failed, with the reason; the environment is then unchanged.
pub fn reexec_without(names: &[String]) -> std::io::Error {
    let mut payload = Zeroizing::new(Vec::new());
    for name in names {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        let value = Zeroizing::new(value);
        payload.extend_from_slice(name.as_bytes());
        payload.push(0);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
    }
    // Not close-on-exec: the new image inherits it.
    let file = rustix::fs::memfd_create("sidekey-env-handover", rustix::fs::MemfdFlags::empty());
    let mut file = match file {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => return e.into(),
    };
    if let Err(e) = file.write_all(&payload) {
        return e;
    }
    let mut args = std::env::args_os();
    // The binary by its path, so the process keeps its name (`ps`, `pgrep`);
    // /proc/self/exe only if that path cannot be told.
    let program = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = std::process::Command::new(program);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).env(MARKER, file.as_raw_fd().to_string());
    for name in names {
        cmd.env_remove(name);
    }
    cmd.exec()
}

/// In a re-executed process: reads the handed-over values into
/// [`crate::scrubbed_env`] and empties the memory file. A failure is
/// reported; the variables are then simply not set.
pub fn receive() {
    let Some(fd) = std::env::var(MARKER).ok() else {
        return;
    };
    if fd.is_empty() || !fd.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    // The descriptor is reached through its /proc link: taking ownership of a
    // descriptor by number is not possible in safe Rust. The inherited
    // descriptor stays open, emptied.
    let read = || -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/self/fd/{fd}"))?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes)?;
        file.set_len(0)?;
        Ok(bytes)
    };
    match read() {
        Ok(bytes) => crate::scrubbed_env::install(parse(&bytes)),
        Err(e) => eprintln!(
            "sidekey: warning: cannot read the secret environment variables handed over at start: {e}"
        ),
    }
}

/// `NAME\0VALUE\0` pairs; anything else is dropped.
fn parse(bytes: &[u8]) -> BTreeMap<String, Zeroizing<String>> {
    let mut vars = BTreeMap::new();
    let mut fields = bytes.split(|b| *b == 0);
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
            if !name.is_empty() {
                vars.insert(name.to_owned(), Zeroizing::new(value.to_owned()));
            }
        }
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let vars = parse(b"A\0one\0B\0\0");
        assert_eq!(vars.len(), 2);
        assert_eq!(vars["A"].as_str(), "one");
        assert_eq!(vars["B"].as_str(), "");
        assert!(parse(b"").is_empty());
        assert!(parse(b"lonely").is_empty());
    }
}
