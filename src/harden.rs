//! Process hardening for `sidekey run`: the process is not dumpable, and secret environment variables leave `/proc/PID/environ`.
//!
//! Not dumpable (`PR_SET_DUMPABLE` 0): no core dump, and another process of
//! the same UID can neither ptrace it (`gdb -p`, `gcore`) nor read its
//! `/proc/PID/mem` or `/proc/PID/environ`, which become owned by root.
//!
//! The environment: `/proc/PID/environ` shows the environment block the
//! process was started with, which removing a variable later does not
//! change. So when the config names a variable that is set (`source =
//! "env"`, `{ env = "VAR" }`), sidekey hands the values over to itself and
//! re-executes its own binary (same PID) without them; see [`handover`].

mod env_names;
mod handover;

use std::path::Path;

/// Hardens the process; call first thing in `sidekey run`, before other
/// threads exist. May replace the process image (and so not return) when
/// the config names secret variables that are set.
pub fn harden(config: &Path) {
    // After a re-execution: take back the values handed over.
    handover::receive();
    non_dumpable();
    let names = env_names::secret_vars(config);
    if !names.is_empty() && !handover::received() {
        let e = handover::reexec_without(&names);
        eprintln!(
            "sidekey: warning: cannot re-execute to clear {} from the process environment ({e}); they stay readable in /proc/{}/environ",
            names.join(", "),
            std::process::id()
        );
    }
}

/// Marks the process not dumpable. A failure is reported, not fatal.
fn non_dumpable() {
    use rustix::process::{DumpableBehavior, set_dumpable_behavior};
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        eprintln!("sidekey: warning: cannot mark the process non-dumpable: {e}");
    }
}

/// Every variable the config at `path` reads a secret from (`source =
/// "env"`, `{ env = "VAR" }`), set or not: what a child must not inherit.
pub fn secret_var_names(config: &Path) -> Vec<String> {
    env_names::referenced_vars(config)
}
