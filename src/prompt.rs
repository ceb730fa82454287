//! Reads a secret a person types (echo off) or a program pipes in, for `sidekey secret set`.

use crate::secret::Secret;
use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
use std::io::{BufRead, Read, Write};
use zeroize::Zeroizing;

/// Most bytes read from a pipe: a credential is small.
const LIMIT: u64 = 1 << 20;

/// From a terminal: prompts on stderr and reads one line with echo off.
/// From a pipe or file: reads it whole. One trailing newline is dropped.
pub fn read_secret(prompt: &str) -> Result<Secret, String> {
    let stdin = std::io::stdin();
    // The buffers are wiped when dropped: only the `Secret` keeps the value.
    let text = match isatty(&stdin) {
        true => read_line_without_echo(prompt)?,
        false => {
            let mut text = Zeroizing::new(String::new());
            stdin
                .lock()
                .take(LIMIT)
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the value from standard input: {e}"))?;
            text
        }
    };
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err("the value is empty".into());
    }
    Secret::new(text).map_err(|e| e.to_string())
}

fn read_line_without_echo(prompt: &str) -> Result<Zeroizing<String>, String> {
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| format!("cannot read the terminal settings: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    let mut err = std::io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    tcsetattr(&stdin, OptionalActions::Flush, &quiet)
        .map_err(|e| format!("cannot turn the terminal's echo off: {e}"))?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    // Echo comes back whatever happened.
    let restored = tcsetattr(&stdin, OptionalActions::Flush, &saved);
    read.map_err(|e| format!("cannot read the value: {e}"))?;
    restored.map_err(|e| format!("cannot restore the terminal's echo: {e}"))?;
    Ok(line)
}
