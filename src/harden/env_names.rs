//! Which environment variables a config reads secrets from: `source = "env"` credentials' `var`, and every `{ env = "VAR" }` reference.

use std::path::Path;

/// Names of the secret variables the config at `path` reads that are set
/// (as UTF-8). An unreadable or invalid config names none: `run` reports it.
pub fn secret_vars(path: &Path) -> Vec<String> {
    let mut names = referenced_vars(path);
    names.retain(|n| std::env::var(n).is_ok());
    names
}

/// Names of every secret variable the config at `path` reads, set or not.
pub fn referenced_vars(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut names = Vec::new();
    collect(&doc, &mut names);
    names.sort();
    names.dedup();
    names
}

/// Walks every table: the config's schema is checked later, by `run`.
fn collect(table: &toml::Table, names: &mut Vec<String>) {
    let text = |k: &str| table.get(k).and_then(toml::Value::as_str);
    if text("source") == Some("env") {
        names.extend(text("var").map(str::to_owned));
    }
    if table.len() == 1 {
        names.extend(text("env").map(str::to_owned));
    }
    for value in table.values() {
        collect_value(value, names);
    }
}

fn collect_value(value: &toml::Value, names: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => collect(t, names),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_value(v, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_env_sources_and_references() {
        let doc: toml::Table = r#"
[admin]
token = { env = "ADMIN_TOKEN" }
[credentials.a]
source = "env"
var = "API_KEY"
[credentials.b]
source = "oauth2"
client_secret = { env = "CLIENT_SECRET" }
[credentials.c]
source = "exec"
command = ["helper"]
env = { NOT_A_SECRET_REF = "x" }
[[routes]]
name = "r"
"#
        .parse()
        .unwrap();
        let mut names = Vec::new();
        collect(&doc, &mut names);
        names.sort();
        assert_eq!(names, ["ADMIN_TOKEN", "API_KEY", "CLIENT_SECRET"]);
    }
}
