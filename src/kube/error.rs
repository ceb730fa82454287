//! Why `sidekey inject` refused its input: bad YAML, or a workload it cannot inject.

/// EX_DATAERR from sysexits.h: the input manifest is not usable. Distinct
/// from 78 (EX_CONFIG), which is sidekey's own configuration.
pub const EXIT_BAD_MANIFEST: u8 = 65;

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("{input}:{line}:{column}: not valid YAML: {problem}")]
    Syntax {
        input: String,
        line: usize,
        column: usize,
        problem: String,
    },
    #[error("{input}: document {doc} is not a mapping (a Kubernetes object)")]
    NotAnObject { input: String, doc: usize },
    #[error("{input}: document {doc} ({what}) {problem}")]
    Workload {
        input: String,
        doc: usize,
        what: String,
        problem: String,
    },
    #[error("{input}: cannot write the result as YAML")]
    Emit { input: String },
}
