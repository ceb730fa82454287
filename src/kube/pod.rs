//! Applies the additions to one pod spec, once: a pod that already runs the sidecar is left as it is.

use super::sidecar::{Additions, SIDECAR};
use super::yaml::{Yaml, get, get_str, list_mut, upsert_named};

/// What happened to a pod spec.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Injected; the app's variables that had another value before, as `container: NAME`.
    Injected { replaced: Vec<String> },
    /// A container named `sidekey` is there already; nothing changed.
    AlreadyInjected,
}

/// Adds `add` to the pod spec `spec`. `transparent`: the pod's egress is
/// redirected, which a pod on the node's network must not do.
pub fn apply(spec: &mut Yaml, add: &Additions, transparent: bool) -> Result<Outcome, String> {
    if has_sidecar(spec) {
        return Ok(Outcome::AlreadyInjected);
    }
    if transparent && get(spec, "hostNetwork").and_then(Yaml::as_bool) == Some(true) {
        return Err(
            "uses hostNetwork: a transparent redirect would capture the node's own traffic".into(),
        );
    }
    shares_no_uid(spec, add.uid)?;
    let Some(hash) = spec.as_mut_hash() else {
        return Err("its pod spec is not a mapping".into());
    };
    let containers = list_mut(hash, "containers").ok_or("`containers` is not a list")?;
    if containers.is_empty() {
        return Err("has no containers".into());
    }
    let mut replaced = Vec::new();
    for c in containers.iter_mut() {
        app_container(c, add, &mut replaced)?;
    }
    let init = list_mut(hash, "initContainers").ok_or("`initContainers` is not a list")?;
    for c in init.iter_mut() {
        app_container(c, add, &mut replaced)?;
    }
    // Ours first: the app's own init containers already find sidekey serving.
    let theirs = std::mem::take(init);
    init.extend(add.init_containers.iter().cloned());
    init.extend(theirs);
    let volumes = list_mut(hash, "volumes").ok_or("`volumes` is not a list")?;
    for v in &add.volumes {
        upsert_named(volumes, v.clone());
    }
    Ok(Outcome::Injected { replaced })
}

/// An app under sidekey's UID could read what sidekey reads, and transparent
/// mode's redirect would spare it. (A UID set only by the app's image
/// cannot be seen here.)
fn shares_no_uid(spec: &Yaml, uid: u32) -> Result<(), String> {
    let runs_as = |node: &Yaml| {
        get(node, "securityContext")
            .and_then(|sc| get(sc, "runAsUser"))
            .and_then(Yaml::as_i64)
            == Some(i64::from(uid))
    };
    let clash = ["initContainers", "containers"].iter().find_map(|key| {
        get(spec, key)?
            .as_vec()?
            .iter()
            .find(|c| runs_as(c))
            .map(|c| get_str(c, "name").unwrap_or("(unnamed)").to_owned())
    });
    match (runs_as(spec), clash) {
        (true, _) => Err(format!(
            "runs its pods as UID {uid}, sidekey's UID: choose another with --uid"
        )),
        (false, Some(c)) => Err(format!(
            "runs container {c} as UID {uid}, sidekey's UID: choose another with --uid"
        )),
        (false, None) => Ok(()),
    }
}

fn has_sidecar(spec: &Yaml) -> bool {
    ["initContainers", "containers"].iter().any(|key| {
        get(spec, key)
            .and_then(Yaml::as_vec)
            .is_some_and(|cs| cs.iter().any(|c| get_str(c, "name") == Some(SIDECAR)))
    })
}

/// Gives an app container the variables and mounts of the mode; never a
/// secret. A variable it set itself is replaced, and named in `replaced`.
fn app_container(
    container: &mut Yaml,
    add: &Additions,
    replaced: &mut Vec<String>,
) -> Result<(), String> {
    let name = get_str(container, "name").unwrap_or("(unnamed)").to_owned();
    let Some(hash) = container.as_mut_hash() else {
        return Err(format!("container {name} is not a mapping"));
    };
    if !add.app_env.is_empty() {
        let env = list_mut(hash, "env").ok_or(format!("container {name}: `env` is not a list"))?;
        for e in &add.app_env {
            if upsert_named(env, e.clone()) {
                let var = get_str(e, "name").unwrap_or_default();
                replaced.push(format!("{name}: {var}"));
            }
        }
    }
    if !add.app_mounts.is_empty() {
        let mounts = list_mut(hash, "volumeMounts")
            .ok_or(format!("container {name}: `volumeMounts` is not a list"))?;
        for m in &add.app_mounts {
            upsert_named(mounts, m.clone());
        }
    }
    Ok(())
}
