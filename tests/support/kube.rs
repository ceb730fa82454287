//! `sidekey inject` run as the binary, the pods of its output, and the outside checkers of deploy artifacts (kubernetes-validate, hadolint, systemd-analyze).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

pub const MODES: [&str; 3] = ["reverse", "proxy", "transparent"];

/// The oldest Kubernetes with native sidecars (1.29) and the newest schema
/// the pinned kubernetes-validate ships (its `kubernetes-json-schema/`).
pub const KUBERNETES: [&str; 2] = ["1.29.0", "1.37.0"];

/// What a finished command said.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`, feeding `stdin` when given.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Out {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    // A command that refuses its options exits without reading: a broken pipe is no failure.
    let _ = pipe.write_all(stdin.unwrap_or_default().as_bytes());
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `sidekey ARGS` (the test build), with `stdin`.
pub fn sidekey(args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sidekey"));
    cmd.args(args);
    run(cmd, stdin)
}

/// `sidekey inject -f FILE ARGS`, which must succeed; its stdout.
pub fn inject(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["inject", "-f", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = sidekey(&all, None);
    assert_eq!(out.code, 0, "sidekey {all:?} failed: {}", out.stderr);
    out.stdout
}

/// The sample manifests, `tests/data/kube/*.yaml`, in name order.
pub fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/data/kube"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// A program the test-peer install put into `./.venv/bin`.
pub fn venv_tool(name: &str) -> PathBuf {
    let path = root().join(".venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-peers",
        path.display()
    );
    path
}

/// `kubernetes-validate --strict` of `files` against Kubernetes `version`.
pub fn kubernetes_validate(files: &[PathBuf], version: &str) -> Out {
    let mut cmd = Command::new(venv_tool("kubernetes-validate"));
    cmd.args(["--strict", "--quiet", "-k", version]).args(files);
    run(cmd, None)
}

/// Every document of a YAML stream.
pub fn load(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

/// Every document of a YAML stream as kubectl reads it: by YAML 1.1 (plain
/// `0400` is octal, `yes` a boolean, `<<` a merge), here by PyYAML, handed
/// over as JSON. An empty document is left out.
pub fn load_as_kubectl(text: &str) -> Vec<Yaml> {
    let mut cmd = Command::new(venv_tool("python"));
    cmd.args([
        "-c",
        "import json, sys, yaml\n\
         docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
         print(json.dumps(docs, default=str))",
    ]);
    let out = run(cmd, Some(text));
    assert_eq!(out.code, 0, "PyYAML: {}\n{text}", out.stderr);
    let mut docs = load(&out.stdout);
    match docs.pop() {
        Some(Yaml::Array(all)) if docs.is_empty() => all,
        other => panic!("PyYAML gave {other:?}"),
    }
}

/// The pod specs of a document: a workload's, or those of a List's items.
pub fn pod_specs(doc: &Yaml) -> Vec<&Yaml> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let spec = match kind {
        "List" => {
            return doc["items"]
                .as_vec()
                .map(|items| items.iter().flat_map(pod_specs).collect())
                .unwrap_or_default();
        }
        "Pod" => &doc["spec"],
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            &doc["spec"]["template"]["spec"]
        }
        _ => return Vec::new(),
    };
    vec![spec]
}

/// The items of a list field (`containers`, `env`, ...), none when absent.
pub fn items<'a>(node: &'a Yaml, key: &str) -> &'a [Yaml] {
    node[key].as_vec().map(Vec::as_slice).unwrap_or_default()
}

/// The item of a list field with that `name`.
pub fn named<'a>(node: &'a Yaml, key: &str, name: &str) -> Option<&'a Yaml> {
    items(node, key)
        .iter()
        .find(|i| i["name"].as_str() == Some(name))
}

/// The `name`s of a list field's items.
pub fn names(node: &Yaml, key: &str) -> Vec<String> {
    items(node, key)
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

/// A node as YAML text, to search it as a whole.
pub fn dump(node: &Yaml) -> String {
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out).dump(node).unwrap();
    out
}

/// The Kubernetes versions whose strict schemas the installed
/// kubernetes-validate ships, oldest first (`1.29.0`, ...).
pub fn shipped_schemas() -> Vec<(u32, String)> {
    let mut cmd = Command::new(venv_tool("python"));
    cmd.args([
        "-c",
        "import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))",
    ]);
    let out = run(cmd, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dir = Path::new(out.stdout.trim()).join("kubernetes-json-schema");
    let mut v: Vec<(u32, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let version = name
                .strip_prefix('v')?
                .strip_suffix("-local-strict")?
                .to_owned();
            let minor = version
                .strip_prefix("1.")?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some((minor, version))
        })
        .collect();
    v.sort();
    v
}

/// A pod of `sidekey inject`'s output run on this host as a kubelet would
/// run it, without a container runtime: each volume is a directory, each
/// container's mount paths in its command, args and env values name those
/// directories, and its processes run as its `securityContext.runAsUser`.
/// Images are stood in for by this machine: `sidekey` is the test build
/// (the image's ENTRYPOINT), `sh`, `cat` and the CA roots are the host's.
pub struct HostPod {
    pub root: tempfile::TempDir,
    spec: Yaml,
}

impl HostPod {
    /// A directory per volume of `spec`, open to every UID as an `emptyDir` is.
    pub fn new(spec: &Yaml) -> HostPod {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pod = HostPod {
            root,
            spec: spec.clone(),
        };
        for v in items(spec, "volumes") {
            let dir = pod.volume(v["name"].as_str().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        pod
    }

    /// The directory standing for volume `name`.
    pub fn volume(&self, name: &str) -> PathBuf {
        self.root.path().join("volumes").join(name)
    }

    /// Writes `text` as file `file` of volume `name`, readable by every UID
    /// (a ConfigMap's or Secret's default mode, 0644).
    pub fn put(&self, name: &str, file: &str, text: &str) {
        let path = self.volume(name).join(file);
        std::fs::write(&path, text).unwrap();
    }

    /// A container or init container by name.
    pub fn container(&self, name: &str) -> &Yaml {
        named(&self.spec, "initContainers", name)
            .or_else(|| named(&self.spec, "containers", name))
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// The init containers in the order the kubelet starts them.
    pub fn init_containers(&self) -> &[Yaml] {
        items(&self.spec, "initContainers")
    }

    /// `text` with each of `container`'s mount paths replaced by its volume's directory.
    pub fn localize(&self, container: &Yaml, text: &str) -> String {
        let mut mounts: Vec<(&str, PathBuf)> = items(container, "volumeMounts")
            .iter()
            .map(|m| {
                let path = m["mountPath"].as_str().unwrap();
                (path, self.volume(m["name"].as_str().unwrap()))
            })
            .collect();
        // The longest first, so that a path under another mount is its own.
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        let mut text = text.to_owned();
        for (path, dir) in mounts {
            text = text.replace(path, dir.to_str().unwrap());
        }
        text
    }

    /// The container's env, values localized.
    pub fn env(&self, container: &Yaml) -> Vec<(String, String)> {
        items(container, "env")
            .iter()
            .map(|e| {
                let value = e["value"].as_str().unwrap_or_default();
                (
                    e["name"].as_str().unwrap().to_owned(),
                    self.localize(container, value),
                )
            })
            .collect()
    }

    /// The container's process: its command (else the image's ENTRYPOINT,
    /// `sidekey`) and args, localized, with its env only, as its UID and GID.
    pub fn command(&self, container: &Yaml) -> Command {
        use std::os::unix::process::CommandExt;
        let mut argv: Vec<String> = items(container, "command")
            .iter()
            .chain(items(container, "args"))
            .map(|a| self.localize(container, a.as_str().unwrap()))
            .collect();
        if container["command"].is_badvalue() {
            argv.insert(0, "sidekey".into());
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_sidekey")).parent().unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let program = match argv[0].as_str() {
            "sidekey" => PathBuf::from(env!("CARGO_BIN_EXE_sidekey")),
            other => PathBuf::from(other),
        };
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", path)
            .envs(self.env(container));
        let sc = &container["securityContext"];
        if let Some(uid) = sc["runAsUser"].as_i64() {
            cmd.uid(u32::try_from(uid).unwrap());
        }
        if let Some(gid) = sc["runAsGroup"].as_i64() {
            cmd.gid(u32::try_from(gid).unwrap());
        }
        cmd
    }

    /// The port a probe names (a port name resolved by the container's `ports`).
    pub fn probe_url(&self, container: &Yaml, probe: &str) -> (String, Vec<String>) {
        let get = &container[probe]["httpGet"];
        let port = match &get["port"] {
            Yaml::Integer(p) => *p,
            Yaml::String(name) => named(container, "ports", name)
                .and_then(|p| p["containerPort"].as_i64())
                .unwrap_or_else(|| panic!("{probe}: no port {name}")),
            other => panic!("{probe}: port {other:?}"),
        };
        let headers = items(get, "httpHeaders")
            .iter()
            .map(|h| {
                format!(
                    "{}: {}",
                    h["name"].as_str().unwrap(),
                    h["value"].as_str().unwrap()
                )
            })
            .collect();
        let url = format!("http://127.0.0.1:{port}{}", get["path"].as_str().unwrap());
        (url, headers)
    }
}
