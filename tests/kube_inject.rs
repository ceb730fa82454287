//! `sidekey inject` over the sample manifests of every kind, in every mode: schema-valid for the oldest and newest Kubernetes with native sidecars, meaning to kubectl (YAML 1.1) what the input meant, idempotent, no secret for the app, clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use support::kube::{
    KUBERNETES, MODES, Out, inject, items, kubernetes_validate, load, load_as_kubectl, named,
    names, pod_specs, samples, sidekey,
};
use support::logs;
use yaml_rust2::Yaml;

/// Every sample in every mode, as (sample file name, mode, output).
fn injected_all() -> Vec<(String, &'static str, String)> {
    let mut all = Vec::new();
    for file in samples() {
        for mode in MODES {
            let out = inject(&file, &["--mode", mode, "--secret", "api-key"]);
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            all.push((name, mode, out));
        }
    }
    all
}

#[test]
fn every_output_validates_against_the_oldest_and_newest_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, mode, out) in injected_all() {
        let path = dir.path().join(format!("{mode}-{name}"));
        std::fs::write(&path, out).unwrap();
        files.push(path);
    }
    // A broken sidecar must fail, or the check checks nothing.
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(
        &broken,
        text.replacen("restartPolicy: Always", "restartPolicyy: Always", 1),
    )
    .unwrap();
    for version in KUBERNETES {
        let out = kubernetes_validate(&files, version);
        assert_eq!(
            out.code, 0,
            "Kubernetes {version}: {}{}",
            out.stdout, out.stderr
        );
        let out = kubernetes_validate(std::slice::from_ref(&broken), version);
        assert_ne!(out.code, 0, "a broken manifest passed for {version}");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains("'restartPolicyy' was unexpected"), "{said}");
    }
}

/// Native sidecars came with 1.29; the newest is what the pinned package
/// ships, so a newer pin shows up here.
#[test]
fn the_versions_checked_are_the_first_with_native_sidecars_and_the_newest_shipped() {
    let shipped = support::kube::shipped_schemas();
    assert!(
        shipped.iter().any(|(m, v)| *m == 29 && v == KUBERNETES[0]),
        "{shipped:?}"
    );
    assert_eq!(
        shipped.last().unwrap().1,
        KUBERNETES[1],
        "newest shipped schema"
    );
}

#[test]
fn every_workload_kind_gets_the_native_sidecar_first_and_others_pass_unchanged() {
    let mut kinds = std::collections::BTreeSet::new();
    for (name, mode, out) in injected_all() {
        let input = load(
            &std::fs::read_to_string(support::kube::root().join("tests/data/kube").join(&name))
                .unwrap(),
        );
        let docs = load(&out);
        let input: Vec<&Yaml> = input.iter().filter(|d| !d.is_null()).collect();
        assert_eq!(
            docs.len(),
            input.len(),
            "{name} {mode}: documents lost or added"
        );
        for (doc, before) in docs.iter().zip(input) {
            let specs = pod_specs(doc);
            if specs.is_empty() {
                assert_eq!(doc, before, "{name} {mode}: a non-workload changed");
                continue;
            }
            kinds.insert(doc["kind"].as_str().unwrap().to_owned());
            for spec in specs {
                check_pod(spec, mode, &format!("{name} {mode}"));
            }
        }
    }
    let want = [
        "CronJob",
        "DaemonSet",
        "Deployment",
        "Job",
        "List",
        "Pod",
        "ReplicaSet",
        "StatefulSet",
    ];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want);
}

/// kubectl reads manifests by YAML 1.1: `defaultMode: 0400` is 0o400
/// (256), and written back as `400` it would be 0o620, group-writable. So
/// every sample and its output are read as kubectl reads them (PyYAML) and
/// what the app had must mean the same after: its volumes, its containers
/// (proxy and transparent modes add to their `env` and `volumeMounts` only), the rest of its
/// pod spec and every other document.
#[test]
fn the_output_means_to_kubectl_what_the_input_meant() {
    let mut modes_seen = Vec::new();
    for (name, mode, out) in injected_all() {
        let at = format!("{name} {mode}");
        let text =
            std::fs::read_to_string(support::kube::root().join("tests/data/kube").join(&name))
                .unwrap();
        let (before, after) = (load_as_kubectl(&text), load_as_kubectl(&out));
        assert_eq!(before.len(), after.len(), "{at}: documents lost or added");
        for (was, now) in before.iter().zip(&after) {
            let (was_specs, now_specs) = (pod_specs(was), pod_specs(now));
            if was_specs.is_empty() {
                assert_eq!(now, was, "{at}: a non-workload changed");
            }
            assert_eq!(was_specs.len(), now_specs.len(), "{at}");
            for (was, now) in was_specs.into_iter().zip(now_specs) {
                same_app(was, now, mode, &at);
                for v in items(was, "volumes") {
                    let mode = &v["secret"]["defaultMode"];
                    if let Some(m) = mode.as_i64().or(v["configMap"]["defaultMode"].as_i64()) {
                        modes_seen.push(m);
                    }
                }
            }
        }
    }
    // The sample's 0400 and 0644, read as kubectl reads them, were compared.
    for m in [0o400, 0o644] {
        assert!(
            modes_seen.contains(&m),
            "no sample has mode {m:o}: {modes_seen:?}"
        );
    }
}

/// The app's part of pod spec `was`, unchanged in `now`.
fn same_app(was: &Yaml, now: &Yaml, mode: &str, at: &str) {
    for v in items(was, "volumes") {
        let name = v["name"].as_str().unwrap();
        assert_eq!(named(now, "volumes", name), Some(v), "{at}: volume {name}");
    }
    for c in items(was, "containers") {
        let name = c["name"].as_str().unwrap();
        let n = named(now, "containers", name).unwrap_or_else(|| panic!("{at}: {name} lost"));
        for (key, value) in c.as_hash().unwrap() {
            let added_to =
                matches!(key.as_str(), Some("env" | "volumeMounts")) && mode != "reverse";
            if !added_to {
                assert_eq!(
                    &n[key.as_str().unwrap()],
                    value,
                    "{at}: container {name} {key:?}"
                );
            }
        }
        assert!(n["<<"].is_badvalue(), "{at}: a literal `<<` key in {name}");
    }
    for (key, value) in was.as_hash().unwrap() {
        if !matches!(
            key.as_str(),
            Some("containers" | "initContainers" | "volumes")
        ) {
            assert_eq!(&now[key.as_str().unwrap()], value, "{at}: pod spec {key:?}");
        }
    }
}

fn check_pod(spec: &Yaml, mode: &str, at: &str) {
    let init = names(spec, "initContainers");
    let ours: &[&str] = match mode {
        "reverse" => &["sidekey"],
        "proxy" => &["sidekey-ca", "sidekey"],
        _ => &["sidekey-iptables", "sidekey-ca", "sidekey"],
    };
    assert_eq!(&init[..ours.len()], ours, "{at}: init containers {init:?}");
    let sidecar = named(spec, "initContainers", "sidekey").unwrap();
    assert_eq!(sidecar["restartPolicy"].as_str(), Some("Always"), "{at}");
    let sc = &sidecar["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{at}");
    assert_eq!(sc["runAsUser"].as_i64(), Some(65532), "{at}");
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{at}");
    assert_eq!(
        sc["allowPrivilegeEscalation"].as_bool(),
        Some(false),
        "{at}"
    );
    assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"), "{at}");
    assert!(
        sc["capabilities"]["add"].is_badvalue(),
        "{at}: the sidecar adds a capability"
    );
    assert_eq!(
        sc["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault"),
        "{at}"
    );
    assert_eq!(
        sidecar["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        sidecar["startupProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        sidecar["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        sidecar["livenessProbe"]["httpGet"]["port"].as_str(),
        Some("sidekey-admin")
    );
    let admin = named(sidecar, "ports", "sidekey-admin").unwrap();
    assert_eq!(admin["containerPort"].as_i64(), Some(9901));
    assert!(
        !sidecar["resources"]["requests"]["memory"].is_badvalue(),
        "{at}"
    );
    assert!(
        !sidecar["resources"]["limits"]["memory"].is_badvalue(),
        "{at}"
    );
    let token = named(spec, "volumes", "sidekey-token").unwrap();
    let sa = &token["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(sa["audience"].as_str(), Some("sidekey"), "{at}");
    // Only the iptables container holds a capability, and only NET_ADMIN.
    for c in items(spec, "initContainers")
        .iter()
        .chain(items(spec, "containers"))
    {
        let add = &c["securityContext"]["capabilities"]["add"];
        if c["name"].as_str() == Some("sidekey-iptables") {
            assert_eq!(
                add.as_vec().unwrap(),
                &[Yaml::String("NET_ADMIN".into())],
                "{at}"
            );
            assert_eq!(
                c["securityContext"]["capabilities"]["drop"][0].as_str(),
                Some("ALL")
            );
            // No shell: sidekey loads both families' rules itself.
            let command: Vec<&str> = c["command"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(
                command,
                [
                    "sidekey",
                    "iptables",
                    "-c",
                    "/etc/sidekey/sidekey.toml",
                    "--uid",
                    "65532",
                    "--apply"
                ],
                "{at}"
            );
        } else if c["name"].as_str().is_some_and(|n| n.starts_with("sidekey")) {
            assert!(add.is_badvalue(), "{at}: {:?} adds a capability", c["name"]);
        }
    }
    for app in items(spec, "containers") {
        let env = names(app, "env");
        let has = |v: &str| env.iter().any(|e| e == v);
        assert_eq!(has("SSL_CERT_FILE"), mode != "reverse", "{at}: {env:?}");
        assert_eq!(
            has("https_proxy") && has("NO_PROXY"),
            mode == "proxy",
            "{at}: {env:?}"
        );
        if mode == "proxy" {
            let proxy = named(app, "env", "HTTPS_PROXY").unwrap();
            assert_eq!(
                proxy["value"].as_str(),
                Some("http://127.0.0.1:3128"),
                "{at}"
            );
        }
    }
}

#[test]
fn injecting_twice_equals_injecting_once() {
    let dir = tempfile::tempdir().unwrap();
    for (name, mode, once) in injected_all() {
        let path = dir.path().join(&name);
        std::fs::write(&path, &once).unwrap();
        let mut args = vec!["inject", "-f", path.to_str().unwrap(), "--mode", mode];
        args.extend(["--secret", "api-key"]);
        let twice = sidekey(&args, None);
        assert_eq!(twice.code, 0, "{}", twice.stderr);
        assert_eq!(
            twice.stdout, once,
            "{name} {mode}: a second injection changed the output"
        );
        assert!(
            twice.stderr.contains("already has a `sidekey` container"),
            "{}",
            twice.stderr
        );
        // Another mode on an injected pod changes nothing either.
        let other = if mode == "proxy" { "reverse" } else { "proxy" };
        args[4] = other;
        assert_eq!(
            sidekey(&args, None).stdout,
            once,
            "{name}: {mode} then {other}"
        );
    }
}

#[test]
fn a_proxy_variable_of_the_app_is_replaced_and_said_so() {
    let pod = support::kube::root().join("tests/data/kube/pod.yaml");
    let out = sidekey(
        &["inject", "-f", pod.to_str().unwrap(), "--mode", "proxy"],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("(Pod reports) container reports: HTTPS_PROXY replaced by sidekey's"),
        "{}",
        out.stderr
    );
    let docs = load(&out.stdout);
    let app = named(pod_specs(&docs[0])[0], "containers", "reports").unwrap();
    let proxies: Vec<_> = items(app, "env")
        .iter()
        .filter(|e| e["name"].as_str() == Some("HTTPS_PROXY"))
        .collect();
    assert_eq!(proxies.len(), 1, "one HTTPS_PROXY");
    assert_eq!(proxies[0]["value"].as_str(), Some("http://127.0.0.1:3128"));
    // In reverse mode the app's own variable stays.
    let out = sidekey(&["inject", "-f", pod.to_str().unwrap()], None);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert!(out.stdout.contains("http://corporate-proxy:3128"));
}

#[test]
fn the_input_file_is_left_untouched() {
    for file in samples() {
        let before = std::fs::read(&file).unwrap();
        inject(&file, &["--mode", "transparent"]);
        assert_eq!(std::fs::read(&file).unwrap(), before, "{}", file.display());
    }
}

#[test]
fn app_containers_never_gain_a_secret() {
    logs::init();
    let value = logs::secret("sk_live_4eC39HqLyjWDarjtT1zdp7dc");
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: stripe}}\nstringData: {{api-key: {value}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: app}}\nspec:\n  containers:\n  - name: app\n    image: app:1\n    env: [{{name: MODE, value: live}}]\n"
    );
    for mode in MODES {
        let out = sidekey(
            &[
                "inject",
                "-f",
                "-",
                "--mode",
                mode,
                "--secret",
                "stripe",
                "--config-map",
                "app-sidekey",
            ],
            Some(&manifest),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        logs::assert_no_secret_in("stderr", out.stderr.as_bytes());
        let docs = load(&out.stdout);
        let spec = pod_specs(&docs[1])[0];
        let app = named(spec, "containers", "app").unwrap();
        let app_text = support::kube::dump(app);
        logs::assert_no_secret_in("the app container", app_text.as_bytes());
        for e in items(app, "env") {
            assert!(
                e["valueFrom"].is_badvalue(),
                "{mode}: env {:?} takes a value from elsewhere",
                e["name"]
            );
            let v = e["value"].as_str().unwrap();
            assert!(
                v.starts_with("http://127.0.0.1:")
                    || v.starts_with("/var/run/sidekey/ca/")
                    || !v.contains('/'),
                "{mode}: {v}"
            );
        }
        for m in items(app, "volumeMounts") {
            assert_eq!(
                m["name"].as_str(),
                Some("sidekey-ca"),
                "{mode}: the app mounts {:?}",
                m["name"]
            );
            assert_eq!(m["readOnly"].as_bool(), Some(true));
        }
        assert!(app["envFrom"].is_badvalue(), "{mode}");
        // The secret volume is the sidecar's alone.
        let sidecar = named(spec, "initContainers", "sidekey").unwrap();
        let mount = named(sidecar, "volumeMounts", "sidekey-secret-stripe").unwrap();
        assert_eq!(mount["mountPath"].as_str(), Some("/var/run/secrets/stripe"));
        assert_eq!(
            named(spec, "volumes", "sidekey-secret-stripe").unwrap()["secret"]["secretName"]
                .as_str(),
            Some("stripe")
        );
        assert_eq!(
            named(spec, "volumes", "sidekey-config").unwrap()["configMap"]["name"].as_str(),
            Some("app-sidekey")
        );
    }
}

#[test]
fn options_reach_the_sidecar() {
    let out = sidekey(
        &[
            "inject",
            "-f",
            "-",
            "--image",
            "registry.example.com/sidekey@sha256:0123",
            "--token-audience",
            "vault",
            "--admin-port",
            "9911",
            "--uid",
            "4242",
        ],
        Some(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: a}]}\n",
        ),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = load(&out.stdout);
    let spec = pod_specs(&docs[0])[0];
    let sidecar = named(spec, "initContainers", "sidekey").unwrap();
    assert_eq!(
        sidecar["image"].as_str(),
        Some("registry.example.com/sidekey@sha256:0123")
    );
    assert_eq!(sidecar["ports"][0]["containerPort"].as_i64(), Some(9911));
    assert_eq!(sidecar["securityContext"]["runAsUser"].as_i64(), Some(4242));
    let token = named(spec, "volumes", "sidekey-token").unwrap();
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"]["audience"].as_str(),
        Some("vault")
    );
    assert_eq!(
        named(spec, "volumes", "sidekey-config").unwrap()["configMap"]["name"].as_str(),
        Some("p-sidekey")
    );
}

fn refused(stdin: &str, args: &[&str]) -> Out {
    let mut all = vec!["inject", "-f", "-"];
    all.extend_from_slice(args);
    let out = sidekey(&all, Some(stdin));
    assert!(
        out.stdout.is_empty(),
        "output despite an error: {}",
        out.stdout
    );
    out
}

#[test]
fn bad_input_exits_65_and_says_where() {
    let out = refused("apiVersion: v1\nkind: Pod\nspec: {containers: [\n", &[]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("sidekey: <stdin>:4:"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not valid YAML"), "{}", out.stderr);

    // A key both before a `<<` and in its merge: kubectl (go-yaml v2) takes
    // the merge's, the YAML spec the key's; refused where the `<<` is.
    let out = refused(
        "kind: Pod\nmetadata: {name: m}\nx: &base {name: from-merge}\nspec:\n  containers:\n    - name: app\n      <<: *base\n",
        &[],
    );
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("sidekey: <stdin>:7:7: not valid YAML: key `name` is set both before `<<` and by the merge"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let out = refused(
        "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a}]}\n---\n---\njust a string\n",
        &[],
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr.contains("document 3 is not a mapping"),
        "{}",
        out.stderr
    );

    let out = refused(
        "kind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
        &[],
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr
            .contains("document 1 (Deployment web) has no `spec.template.spec` mapping"),
        "{}",
        out.stderr
    );

    let out = refused(
        "kind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n",
        &[],
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr.contains("(Pod p) has no containers"),
        "{}",
        out.stderr
    );

    let out = refused(
        "kind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: {name: a}}}}\n",
        &[],
    );
    assert_eq!(out.code, 65);
    assert!(
        out.stderr.contains("(Job j) `containers` is not a list"),
        "{}",
        out.stderr
    );

    let same = "kind: Pod\nmetadata: {name: u}\nspec: {containers: [{name: a, image: a, securityContext: {runAsUser: 65532}}]}\n";
    let out = refused(same, &[]);
    assert_eq!(out.code, 65);
    assert!(
        out.stderr
            .contains("runs container a as UID 65532, sidekey's UID: choose another with --uid"),
        "{}",
        out.stderr
    );
    let fine = sidekey(&["inject", "-f", "-", "--uid", "4000"], Some(same));
    assert_eq!(fine.code, 0, "{}", fine.stderr);
    let out = refused(
        "kind: Pod\nmetadata: {name: u}\nspec: {securityContext: {runAsUser: 65532}, containers: [{name: a}]}\n",
        &[],
    );
    assert!(
        out.stderr.contains("runs its pods as UID 65532"),
        "{}",
        out.stderr
    );

    let host = "kind: Pod\nmetadata: {name: h}\nspec: {hostNetwork: true, containers: [{name: a, image: a}]}\n";
    let out = refused(host, &["--mode", "transparent"]);
    assert_eq!(out.code, 65);
    assert!(out.stderr.contains("hostNetwork"), "{}", out.stderr);
    let fine = sidekey(&["inject", "-f", "-", "--mode", "reverse"], Some(host));
    assert_eq!(fine.code, 0, "{}", fine.stderr);

    let out = sidekey(&["inject", "-f", "/nonexistent/manifest.yaml"], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read /nonexistent/manifest.yaml"),
        "{}",
        out.stderr
    );

    // Names that cannot become volume names are refused as usage errors.
    let out = refused("kind: Pod\n", &["--secret", "Stripe_Key"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = refused("kind: Pod\n", &["--image", "bad image"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}
