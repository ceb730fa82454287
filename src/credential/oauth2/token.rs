//! Reading a token endpoint's answer: the access token response (RFC 6749 §5.1, RFC 8693 §2.2.1)
//! or the error response (RFC 6749 §5.2). A `refresh_token` is never read.

use super::transport::Answer;
use crate::credential::{Issued, Material, SourceError};
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

/// Longest `error_description` quoted in an error message.
const MAX_DESCRIPTION: usize = 200;

/// Turns an answer into an issued token, or into an error that says what the
/// server said (never what it was sent, never a token).
pub fn read_answer(
    what: &str,
    answer: &Answer,
    default_lifetime: Duration,
    now: SystemTime,
) -> Result<Issued, SourceError> {
    let object = match serde_json::from_slice::<Value>(&answer.body) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    };
    if !answer.status.is_success() {
        return Err(refusal(what, answer, object.as_ref()));
    }
    let Some(mut object) = object else {
        return Err(SourceError::new(format!(
            "{what} answered {} with a body that is not a JSON object",
            answer.status
        )));
    };
    let token = match object.remove("access_token") {
        Some(Value::String(t)) => Secret::new(t)
            .map_err(|_| SourceError::new(format!("{what} answered an empty access_token")))?,
        Some(_) => {
            return Err(SourceError::new(format!(
                "{what} answered an access_token that is not a string"
            )));
        }
        None => {
            return Err(SourceError::new(format!(
                "{what} answered without an access_token"
            )));
        }
    };
    check_token_type(what, &object)?;
    let lifetime = match object.get("expires_in") {
        None | Some(Value::Null) => default_lifetime,
        Some(v) => expires_in(v).ok_or_else(|| {
            SourceError::new(format!(
                "{what} answered an expires_in that is not a positive number of seconds"
            ))
        })?,
    };
    Ok(Issued {
        material: Material::Token(token),
        issued_at: now,
        expires_at: Some(now + lifetime),
        lease: None,
    })
}

/// sidekey sends what it gets as a bearer token; a sender-constrained token
/// (DPoP, MAC) would be refused by the API, so refuse it here, clearly.
/// `N_A` is what RFC 8693 answers for tokens that are not access tokens.
fn check_token_type(what: &str, object: &Map<String, Value>) -> Result<(), SourceError> {
    match object.get("token_type").and_then(Value::as_str) {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("bearer") || t == "N_A" => Ok(()),
        Some(t) => Err(SourceError::new(format!(
            "{what} issued a token of type `{}`; only bearer tokens can be injected",
            printable(t)
        ))),
    }
}

/// `expires_in` as RFC 6749 writes it (a JSON number), or as a string of
/// digits, which some servers send.
fn expires_in(v: &Value) -> Option<Duration> {
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs < 1e10).then(|| Duration::from_secs_f64(secs))
}

/// The error for an answer that is not a success.
fn refusal(what: &str, answer: &Answer, object: Option<&Map<String, Value>>) -> SourceError {
    let status = answer.status;
    let code = object.and_then(|o| o.get("error")).and_then(Value::as_str);
    match code {
        Some(code) => {
            let description = object
                .and_then(|o| o.get("error_description"))
                .and_then(Value::as_str)
                .map(|d| format!(": {}", printable(d)))
                .unwrap_or_default();
            SourceError::new(format!(
                "{what} refused the request: {}{description} (HTTP {})",
                printable(code),
                status.as_u16()
            ))
        }
        None if status.is_server_error() => {
            SourceError::new(format!("{what} failed: HTTP {status}"))
        }
        None => SourceError::new(format!(
            "{what} answered HTTP {status} without an OAuth 2.0 error"
        )),
    }
}

/// Server text fit for a log line: printable ASCII, bounded length
/// (RFC 6749 §5.2 limits `error` and `error_description` to these characters).
fn printable(s: &str) -> String {
    crate::redact::peer_text(s, MAX_DESCRIPTION, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use zeroize::Zeroizing;

    const NOW: SystemTime = SystemTime::UNIX_EPOCH;
    const DEFAULT: Duration = Duration::from_secs(300);

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    fn read(status: u16, body: &str) -> Result<Issued, String> {
        read_answer("token endpoint", &answer(status, body), DEFAULT, NOW).map_err(|e| e.message)
    }

    #[test]
    fn rfc6749_example_response() {
        // RFC 6749 §5.1 example (the refresh_token is ignored).
        let i = read(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,
                "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#,
        );
        // `example` is not a bearer token type.
        assert!(i.err().unwrap().contains("type `example`"));
        let i = read(
            200,
            r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,
                "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA"}"#,
        )
        .unwrap();
        assert_eq!(
            i.material.token().unwrap().expose(),
            "2YotnFZFEjr1zCsicMWpAA"
        );
        assert_eq!(i.expires_at, Some(NOW + Duration::from_secs(3600)));
        assert_eq!(i.issued_at, NOW);
    }

    #[test]
    fn rfc8693_example_response() {
        // RFC 8693 §2.3 example response.
        let i = read(
            200,
            r#"{"access_token":"eyJhbGciOiJFUzI1NiIsImtpZCI6IjcyIn0.eyJhdWQiOiJodHRwczovL2JhY2tlbmQuZXhhbXBsZS5jb20iLCJpc3MiOiJodHRwczovL2FzLmV4YW1wbGUuY29tIiwiZXhwIjoxNDQxOTE3NTkzLCJpYXQiOjE0NDE5MTc1MzMsInN1YiI6ImJkY0BleGFtcGxlLmNvbSIsInNjb3BlIjoiYXBpIn0.40y3ZgQedw6rxf59WlwHDD9jryFOr0_Wh3CGozQBihNBhnXEQgU85AI9x3KmsPottVMLPIWvmDCMy5-kdXjwhw",
                "issued_token_type":"urn:ietf:params:oauth:token-type:access_token",
                "token_type":"Bearer","expires_in":60}"#,
        )
        .unwrap();
        assert_eq!(i.expires_at, Some(NOW + Duration::from_secs(60)));
    }

    #[test]
    fn missing_expires_in_gets_the_default_lifetime() {
        let i = read(
            200,
            r#"{"access_token":"t0k3n-value","token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(i.expires_at, Some(NOW + DEFAULT));
        let i = read(200, r#"{"access_token":"t0k3n-value","expires_in":"90"}"#).unwrap();
        assert_eq!(i.expires_at, Some(NOW + Duration::from_secs(90)));
    }

    #[test]
    fn rfc6749_error_response_reaches_the_message() {
        let e = read(
            400,
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
        )
        .err()
        .unwrap();
        assert_eq!(
            e,
            "token endpoint refused the request: invalid_client: client authentication failed (HTTP 400)"
        );
        let e = read(401, r#"{"error":"invalid_client"}"#).err().unwrap();
        assert!(e.contains("invalid_client (HTTP 401)"), "{e}");
    }

    #[test]
    fn broken_answers_are_errors_without_content() {
        let e = read(200, r#"{"access_token":"secret-tok"#).err().unwrap();
        assert!(
            e.contains("not a JSON object") && !e.contains("secret-tok"),
            "{e}"
        );
        let e = read(200, "<html>hello</html>").err().unwrap();
        assert!(e.contains("not a JSON object"), "{e}");
        let e = read(503, "upstream down").err().unwrap();
        assert_eq!(e, "token endpoint failed: HTTP 503 Service Unavailable");
        let e = read(404, "nope").err().unwrap();
        assert!(
            e.contains("HTTP 404 Not Found without an OAuth 2.0 error"),
            "{e}"
        );
        let e = read(200, r#"{"token_type":"Bearer"}"#).err().unwrap();
        assert!(e.contains("without an access_token"), "{e}");
        let e = read(200, r#"{"access_token":"secret-tok","expires_in":-5}"#)
            .err()
            .unwrap();
        assert!(e.contains("expires_in") && !e.contains("secret-tok"), "{e}");
        let e = read(200, r#"{"access_token":"secret-tok","token_type":"DPoP"}"#)
            .err()
            .unwrap();
        assert!(e.contains("`DPoP`") && !e.contains("secret-tok"), "{e}");
    }

    #[test]
    fn server_text_is_bounded_and_printable() {
        let long = "x".repeat(500);
        let e = read(
            400,
            &format!(r#"{{"error":"invalid_request\n\u001b[31m","error_description":"{long}"}}"#),
        )
        .err()
        .unwrap();
        assert!(
            e.starts_with("token endpoint refused the request: invalid_request[31m: xxx"),
            "{e}"
        );
        assert!(e.len() < 300, "{e}");
    }
}
