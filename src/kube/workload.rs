//! Where a manifest keeps its pod spec, by kind; what is not a workload passes through.

use super::yaml::{Yaml, get, get_mut, get_str};

/// The path to the pod spec of a workload kind, or `None` for any other kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => Some(&["spec", "template", "spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// A document's `kind` and `metadata.name`, for messages.
pub fn describe(doc: &Yaml) -> String {
    let kind = get_str(doc, "kind").unwrap_or("(no kind)");
    match get(doc, "metadata").and_then(|m| get_str(m, "name")) {
        Some(name) => format!("{kind} {name}"),
        None => kind.to_owned(),
    }
}

/// The workload's name, if it has one.
pub fn name(doc: &Yaml) -> Option<&str> {
    get(doc, "metadata").and_then(|m| get_str(m, "name"))
}

/// What a document is to `inject`.
pub enum Found<'a> {
    /// A workload: its pod spec.
    Workload(&'a mut Yaml),
    /// A `List`: its items, each a document of its own.
    List(&'a mut Vec<Yaml>),
    /// Any other kind, passed through unchanged.
    Other,
    /// A workload kind without a pod spec where its kind keeps one.
    Broken(&'static str),
}

pub fn find(doc: &mut Yaml) -> Found<'_> {
    let kind = get_str(doc, "kind").unwrap_or_default().to_owned();
    if kind == "List" {
        return match get_mut(doc, "items").and_then(Yaml::as_mut_vec) {
            Some(items) => Found::List(items),
            None => Found::Other,
        };
    }
    let Some(path) = pod_spec_path(&kind) else {
        return Found::Other;
    };
    let mut node = doc;
    for key in path {
        node = match get_mut(node, key) {
            Some(n) => n,
            None => return Found::Broken(missing(path)),
        };
    }
    if node.as_hash().is_some() {
        Found::Workload(node)
    } else {
        Found::Broken(missing(path))
    }
}

fn missing(path: &[&str]) -> &'static str {
    match path.len() {
        1 => "has no `spec` mapping",
        3 => "has no `spec.template.spec` mapping",
        _ => "has no `spec.jobTemplate.spec.template.spec` mapping",
    }
}
