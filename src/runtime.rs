//! The tokio runtime the binary runs on: one thread when sidekey has one CPU, one worker per CPU otherwise.
//!
//! A sidecar is usually given one CPU (or less). There a `current_thread`
//! runtime does the same work with fewer instructions than a one-worker
//! `multi_thread` runtime: no work-stealing queues, no cross-thread wake-ups.
//! `SIDEKEY_RUNTIME=current_thread|multi_thread` overrides the choice
//! (`auto` or unset: by CPU count); `TOKIO_WORKER_THREADS` sets the worker
//! count of `multi_thread`.

use std::num::NonZeroUsize;

/// Which tokio scheduler to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

/// The environment variable that overrides the choice.
pub const ENV: &str = "SIDEKEY_RUNTIME";

/// The flavor for `setting` (the value of [`ENV`], if set) on `cpus` CPUs.
pub fn choose(setting: Option<&str>, cpus: usize) -> Result<Flavor, String> {
    match setting.map(str::trim) {
        None | Some("" | "auto") if cpus <= 1 => Ok(Flavor::CurrentThread),
        None | Some("" | "auto") => Ok(Flavor::MultiThread),
        Some("current_thread") => Ok(Flavor::CurrentThread),
        Some("multi_thread") => Ok(Flavor::MultiThread),
        Some(other) => Err(format!(
            "{ENV}={other:?} is not one of auto, current_thread, multi_thread"
        )),
    }
}

/// Builds the runtime chosen from the environment and the CPUs this
/// process may use (affinity and cgroup CPU quota included).
pub fn build() -> Result<tokio::runtime::Runtime, String> {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let setting = std::env::var(ENV).ok();
    let mut builder = match choose(setting.as_deref(), cpus)? {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cpu_gets_one_thread_unless_told_otherwise() {
        assert_eq!(choose(None, 1), Ok(Flavor::CurrentThread));
        assert_eq!(choose(Some("auto"), 1), Ok(Flavor::CurrentThread));
        assert_eq!(choose(None, 4), Ok(Flavor::MultiThread));
        assert_eq!(choose(Some("multi_thread"), 1), Ok(Flavor::MultiThread));
        assert_eq!(choose(Some("current_thread"), 8), Ok(Flavor::CurrentThread));
        assert!(
            choose(Some("fast"), 1)
                .unwrap_err()
                .contains("SIDEKEY_RUNTIME")
        );
    }
}
