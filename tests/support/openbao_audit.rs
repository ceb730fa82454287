//! What an OpenBao dev server handed out, read back from its raw audit log and registered as
//! secrets, so the log, inventory and metrics scans look for the auth tokens of sidekey's logins,
//! the identity tokens it injects, unwrapped secret_ids, private keys and passwords too.

use super::openbao::OpenBao;
use serde_json::Value;

/// Fields of an answer that hold a secret.
const SECRET_FIELDS: [&str; 6] = [
    "client_token",
    "token",
    "secret_id",
    "private_key",
    "password",
    "secret_key",
];

impl OpenBao {
    /// Registers every secret OpenBao answered so far (its audit log's
    /// responses) for the scans; returns how many were tokens of logins
    /// (`auth/*/login`), so a test can tell the log was read.
    pub fn register_handed_out(&self) -> usize {
        let text = std::fs::read_to_string(self.audit_log()).unwrap_or_default();
        let mut logins = 0;
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if entry["type"] != "response" {
                continue;
            }
            let login = entry["request"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/login"));
            if login && entry["response"]["auth"]["client_token"].is_string() {
                logins += 1;
            }
            register_in(&entry["response"]);
        }
        logins
    }

    /// Every `private_key` OpenBao has answered so far (PKI issues).
    pub fn issued_private_keys(&self) -> Vec<String> {
        responses(self)
            .iter()
            .filter_map(|r| r["data"]["private_key"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The `response` of every answer in the audit log so far.
fn responses(bao: &OpenBao) -> Vec<Value> {
    let text = std::fs::read_to_string(bao.audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "response")
        .map(|e| e["response"].clone())
        .collect()
}

/// Registers `value`; of a PEM block, each base64 line too (a log line may
/// hold the block with its line breaks escaped).
fn register(value: &str) {
    super::logs::secret(value);
    if value.starts_with("-----BEGIN") {
        for line in value.lines().filter(|l| !l.starts_with("-----")) {
            super::logs::secret(line);
        }
    }
}

fn register_in(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) && !s.is_empty() => {
                        register(s);
                    }
                    _ => register_in(v),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(register_in),
        _ => {}
    }
}
