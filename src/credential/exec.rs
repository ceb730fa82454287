//! `source = "exec"`: a value printed by a helper command (argv, no shell), as a
//! raw secret, `{"token", "expires_at"}` JSON, or a Kubernetes `ExecCredential`.

use super::spec::SourceSettings;
use super::{BoxFuture, Issued, Material, Source, SourceError};
use crate::parse::{FieldError, ParseContext, typed};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;

/// Time a command may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a value without expiry is fetched again.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Most of stderr shown in `last_error`.
const STDERR_SHOWN: usize = 512;
/// Most of stdout read: a credential is small.
const STDOUT_LIMIT: u64 = 1 << 20;
/// The only variables a helper inherits from sidekey's environment (and
/// `LC_*`): never a secret another source reads from there.
pub const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// Program and arguments; the program is looked up in `PATH` unless it holds a `/`.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// The helper's environment, on top of the few variables it inherits
    /// from sidekey's (see [`INHERITED`]).
    pub env: BTreeMap<String, String>,
    /// For values without expiry: run again this often.
    pub interval: Duration,
    /// Working directory: the config file's folder.
    pub dir: PathBuf,
}

pub struct ExecSource {
    spec: ExecSpec,
}

impl ExecSource {
    pub fn new(spec: ExecSpec) -> Self {
        ExecSource { spec }
    }
}

impl Source for ExecSource {
    fn fetch<'a>(
        &'a self,
        _previous: Option<&'a Issued>,
    ) -> BoxFuture<'a, Result<Issued, SourceError>> {
        Box::pin(async move {
            let stdout = run(&self.spec).await?;
            parse_output(&stdout)
        })
    }

    fn reread_every(&self) -> Option<Duration> {
        Some(self.spec.interval)
    }
}

/// Runs the command and returns its stdout, or an error naming the exit
/// status (or the timeout) with the command's stderr, never its stdout.
async fn run(spec: &ExecSpec) -> Result<Vec<u8>, SourceError> {
    let program = &spec.command[0];
    let mut child = tokio::process::Command::new(program)
        .args(&spec.command[1..])
        .env_clear()
        .envs(inherited_env())
        .envs(&spec.env)
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SourceError::new(format!("cannot run {program}: {e}")))?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(SourceError::new(format!(
            "cannot read the output of {program}"
        )));
    };
    let mut out = out.take(STDOUT_LIMIT);
    let mut err = err.take(STDOUT_LIMIT);
    let work = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let (o, e, status) = tokio::join!(
            out.read_to_end(&mut stdout),
            err.read_to_end(&mut stderr),
            child.wait(),
        );
        (o.and(e).and(status), stdout, stderr)
    };
    let (status, stdout, stderr) = match tokio::time::timeout(spec.timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            let _ = child.kill().await;
            return Err(SourceError::new(format!(
                "{program} did not finish within {}; killed",
                humantime::format_duration(spec.timeout)
            )));
        }
    };
    let status = status.map_err(|e| SourceError::new(format!("{program}: {e}")))?;
    if !status.success() {
        return Err(SourceError::new(format!(
            "{program} failed ({status}){}",
            stderr_note(&stderr)
        )));
    }
    Ok(stdout)
}

/// The part of sidekey's environment a helper gets: [`INHERITED`] and `LC_*`.
fn inherited_env() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().filter(|(name, _)| {
        name.to_str()
            .is_some_and(|n| INHERITED.contains(&n) || n.starts_with("LC_"))
    })
}

/// Where `program` is: itself when it holds a `/`, else the first match in `PATH`.
pub fn find_program(program: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if runnable(&p) {
            Ok(p)
        } else {
            Err(format!("{program} is not an executable file"))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| format!("`{program}` is not found in PATH"))
}

/// `: <stderr>` truncated and on one line, or nothing when stderr is empty.
fn stderr_note(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    format!(": {}", crate::redact::peer_text(text, STDERR_SHOWN, false))
}

/// The three output forms. Errors say what is wrong, never what was printed.
pub fn parse_output(stdout: &[u8]) -> Result<Issued, SourceError> {
    let text = std::str::from_utf8(stdout)
        .map_err(|_| SourceError::new("the command's output is not UTF-8 text"))?
        .trim();
    if text.is_empty() {
        return Err(SourceError::new("the command printed nothing"));
    }
    let (token, expires_at) = if text.starts_with('{') {
        parse_json(text)?
    } else if text.contains('\n') {
        return Err(SourceError::new(
            "the command printed several lines; expected one secret, a JSON object or an ExecCredential",
        ));
    } else {
        (text.to_owned(), None)
    };
    let secret =
        Secret::new(token).map_err(|_| SourceError::new("the command printed an empty token"))?;
    Ok(Issued {
        material: Material::Token(secret),
        issued_at: SystemTime::now(),
        expires_at,
        lease: None,
    })
}

fn parse_json(text: &str) -> Result<(String, Option<SystemTime>), SourceError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        SourceError::new(format!(
            "the command's output is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let exec_credential = v.get("kind").and_then(|k| k.as_str()) == Some("ExecCredential");
    let (obj, token_key, expiry_key, form) = if exec_credential {
        let status = v.get("status").ok_or_else(|| {
            SourceError::new("the ExecCredential has no `status` (sidekey needs status.token)")
        })?;
        (
            status,
            "token",
            "expirationTimestamp",
            "ExecCredential status",
        )
    } else {
        (&v, "token", "expires_at", "JSON output")
    };
    let token = obj
        .get(token_key)
        .and_then(|t| t.as_str())
        .ok_or_else(|| SourceError::new(format!("the {form} has no string `{token_key}`")))?;
    let expires_at = match obj.get(expiry_key) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(parse_rfc3339(s).ok_or_else(|| {
            SourceError::new(format!(
                "the {form}'s `{expiry_key}` is not an RFC 3339 time: {s:?}"
            ))
        })?),
        Some(_) => {
            return Err(SourceError::new(format!(
                "the {form}'s `{expiry_key}` is not a string"
            )));
        }
    };
    Ok((token.to_owned(), expires_at))
}

/// RFC 3339 with `Z` or a numeric offset (`+01:00`, `-08:00`).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.ends_with(['Z', 'z']) {
        return humantime::parse_rfc3339_weak(&s[..s.len() - 1]).ok();
    }
    let split = s.len().checked_sub(6)?;
    let (local, offset) = s.split_at(split);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1i64,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = offset[1..].split_once(':')?;
    let secs = (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60) * sign;
    let at = humantime::parse_rfc3339_weak(local).ok()?;
    let shift = Duration::from_secs(secs.unsigned_abs());
    // Local time minus its offset is UTC.
    if secs >= 0 {
        at.checked_sub(shift)
    } else {
        at.checked_add(shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(i: &Issued) -> &str {
        match &i.material {
            Material::Token(s) => s.expose(),
            _ => panic!("token expected"),
        }
    }

    #[test]
    fn raw_json_and_exec_credential() {
        let raw = parse_output(b"  abc123\n").unwrap();
        assert_eq!(token(&raw), "abc123");
        assert!(raw.expires_at.is_none());

        let json = parse_output(br#"{"token":"t1","expires_at":"2030-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(token(&json), "t1");
        assert_eq!(
            json.expires_at,
            Some(humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap())
        );

        let ec = br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
            "status":{"token":"k8s-t","expirationTimestamp":"2030-01-01T01:00:00+01:00"}}"#;
        let ec = parse_output(ec).unwrap();
        assert_eq!(token(&ec), "k8s-t");
        assert_eq!(
            ec.expires_at,
            Some(humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap())
        );
    }

    #[test]
    fn bad_output_is_an_error_without_the_output() {
        for (out, hint) in [
            (&b""[..], "nothing"),
            (b"{not json", "not valid JSON"),
            (b"two\nlines-secretish", "several lines"),
            (br#"{"tok":"x-secretish"}"#, "no string `token`"),
            (br#"{"kind":"ExecCredential","status":{}}"#, "status"),
            (
                br#"{"token":"x-secretish","expires_at":"tomorrow"}"#,
                "RFC 3339",
            ),
        ] {
            let e = parse_output(out).err().expect("an error").message;
            assert!(e.contains(hint), "{e}");
            assert!(!e.contains("secretish"), "{e}");
        }
    }

    #[test]
    fn offsets() {
        let utc = humantime::parse_rfc3339("2026-03-05T17:30:20Z").unwrap();
        assert_eq!(parse_rfc3339("2026-03-05T09:30:20-08:00"), Some(utc));
        assert_eq!(parse_rfc3339("2026-03-05T17:30:20.000Z"), Some(utc));
        assert_eq!(parse_rfc3339("2026-03-05T17:30:20"), None);
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecForm {
    command: Vec<String>,
    timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    interval: Option<String>,
}

/// Parses `source = "exec"`'s keys. A program named with a `/` is relative to the config's folder.
pub fn parse(table: toml::Table, cx: &ParseContext<'_>) -> Result<ExecSpec, FieldError> {
    let f: ExecForm = typed(table)?;
    let Some(program) = f.command.first() else {
        return Err(FieldError::on(
            "command",
            "give the program and its arguments, e.g. [\"/usr/local/bin/get-token\", \"--audience\", \"api\"]",
        ));
    };
    let mut command = f.command.clone();
    if program.contains('/') {
        command[0] = cx.path(program).to_string_lossy().into_owned();
    }
    Ok(ExecSpec {
        command,
        timeout: cx
            .duration("timeout", f.timeout.as_deref())?
            .unwrap_or(DEFAULT_TIMEOUT),
        env: f.env,
        interval: cx
            .duration("interval", f.interval.as_deref())?
            .unwrap_or(DEFAULT_INTERVAL),
        dir: cx.base_dir.to_owned(),
    })
}

impl SourceSettings for ExecSpec {
    fn kind(&self) -> &'static str {
        "exec"
    }

    fn build(&self) -> std::sync::Arc<dyn Source> {
        std::sync::Arc::new(ExecSource::new(self.clone()))
    }

    fn describe(&self) -> String {
        format!(
            "exec {} (timeout {})",
            self.command.join(" "),
            humantime::format_duration(self.timeout)
        )
    }

    /// Running the command would be a fetch: `check` only looks for the program.
    fn probe(&self) -> Result<(), FieldError> {
        find_program(&self.command[0])
            .map(|_| ())
            .map_err(|m| FieldError::on("command", m))
    }
}
