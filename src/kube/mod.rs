//! `sidekey inject`: adds sidekey as a native sidecar to Kubernetes manifests, as `istioctl kube-inject` does for a mesh.
//!
//! Reads a YAML stream, injects every workload (Pod, Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and the items of a
//! `List`), passes every other kind through unchanged and writes the stream
//! to standard output. A pod that already has a container named `sidekey`
//! is left as it is, so injecting twice equals injecting once. Comments of
//! the input are not kept. Used by `cli` only.

mod error;
mod options;
mod pod;
mod sidecar;
mod workload;
mod yaml;
mod yaml11;

pub use error::{EXIT_BAD_MANIFEST, InjectError};
pub use options::{DEFAULT_IMAGE, DEFAULT_INIT_IMAGE, InjectArgs, Mode};
pub use sidecar::{CA_DIR, CONFIG_DIR, STATE_DIR, TOKEN_DIR};

use pod::Outcome;
use std::io::Read;
use std::process::ExitCode;
use workload::Found;
use yaml::Yaml;

/// The injected stream and a note per document that was not injected.
#[derive(Debug)]
pub struct Injected {
    pub yaml: String,
    pub notes: Vec<String>,
}

/// Injects every workload of the YAML stream `text`; `input` names it in messages.
pub fn inject(text: &str, input: &str, args: &InjectArgs) -> Result<Injected, InjectError> {
    let mut docs = yaml::load(text).map_err(|e| InjectError::Syntax {
        input: input.to_owned(),
        line: e.line,
        column: e.column,
        problem: e.problem,
    })?;
    let mut notes = Vec::new();
    for (i, doc) in docs.iter_mut().enumerate() {
        if !doc.is_null() {
            let at = Place { input, doc: i + 1 };
            inject_doc(doc, &at, args, &mut notes)?;
        }
    }
    // An empty document (a stray `---`) is dropped, after counting it.
    docs.retain(|d| !d.is_null());
    let yaml = yaml::dump(&docs).map_err(|_| InjectError::Emit {
        input: input.to_owned(),
    })?;
    Ok(Injected { yaml, notes })
}

struct Place<'a> {
    input: &'a str,
    doc: usize,
}

fn inject_doc(
    doc: &mut Yaml,
    at: &Place<'_>,
    args: &InjectArgs,
    notes: &mut Vec<String>,
) -> Result<(), InjectError> {
    if doc.as_hash().is_none() {
        return Err(InjectError::NotAnObject {
            input: at.input.to_owned(),
            doc: at.doc,
        });
    }
    let what = workload::describe(doc);
    let config_map = match &args.config_map {
        Some(c) => c.clone(),
        None => format!("{}-sidekey", workload::name(doc).unwrap_or("app")),
    };
    let refused = |problem: String| InjectError::Workload {
        input: at.input.to_owned(),
        doc: at.doc,
        what: what.clone(),
        problem,
    };
    match workload::find(doc) {
        Found::Other => {}
        Found::Broken(problem) => return Err(refused(problem.to_owned())),
        Found::List(items) => {
            for item in items.iter_mut() {
                inject_doc(item, at, args, notes)?;
            }
        }
        Found::Workload(spec) => {
            let add = sidecar::additions(args, &config_map);
            let transparent = args.mode == Mode::Transparent;
            match pod::apply(spec, &add, transparent).map_err(refused)? {
                Outcome::Injected { replaced } => {
                    for r in replaced {
                        notes.push(format!(
                            "{}: document {} ({what}) container {r} replaced by sidekey's",
                            at.input, at.doc
                        ));
                    }
                }
                Outcome::AlreadyInjected => notes.push(format!(
                    "{}: document {} ({what}) already has a `sidekey` container: left unchanged",
                    at.input, at.doc
                )),
            }
        }
    }
    Ok(())
}

/// `sidekey inject`: the injected stream on stdout, notes and errors on
/// stderr; exit 65 for input that is not valid YAML or not injectable, 1
/// when the input cannot be read.
pub fn run(args: &InjectArgs) -> ExitCode {
    let (input, text) = match read_input(args) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("sidekey: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    match inject(&text, &input, args) {
        Ok(injected) => {
            for note in &injected.notes {
                eprintln!("sidekey: {note}");
            }
            print!("{}", injected.yaml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sidekey: {e}");
            ExitCode::from(EXIT_BAD_MANIFEST)
        }
    }
}

fn read_input(args: &InjectArgs) -> std::io::Result<(String, String)> {
    if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(("<stdin>".into(), text))
    } else {
        let text = std::fs::read_to_string(&args.file)?;
        Ok((args.file.display().to_string(), text))
    }
}
