//! Scope: allowed requests pass; other methods, paths and traversal tricks get 403 and never reach the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step fails the test

mod support;

use http::Method;
use support::curl::curl;
use support::{Upstream, error_code, one_route, send, with_key};

const SCOPED: &str = r#"
  [[routes.allow]]
  methods = ["GET", "POST"]
  paths = ["/v1/charges", "/v1/charges/**"]
  [[routes.allow]]
  methods = ["GET"]
  paths = ["/v1/customers/*"]
"#;

#[tokio::test]
async fn allowed_requests_pass() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_aa11",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, SCOPED),
    )
    .await;
    for (m, p) in [
        (Method::GET, "/v1/charges"),
        (Method::POST, "/v1/charges/ch_1/refunds"),
        (Method::GET, "/v1/customers/cus_9"),
        (Method::GET, "/v1/./charges"),
        (Method::GET, "/v1/customers/cus_1/../cus_2"),
    ] {
        let (status, _, body) = send(m.clone(), &format!("{}{p}", sk.url("r")), &[], "").await;
        assert_eq!(status, 200, "{m} {p}: {}", String::from_utf8_lossy(&body));
    }
    let targets: Vec<String> = up.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            "/v1/charges",
            "/v1/charges/ch_1/refunds",
            "/v1/customers/cus_9",
            "/v1/charges",
            "/v1/customers/cus_2"
        ],
        "the upstream sees the normalised path that was checked"
    );
    sk.stop().await;
}

#[tokio::test]
async fn everything_else_is_refused_and_never_forwarded() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_bb22",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, SCOPED),
    )
    .await;
    let refused = [
        (Method::DELETE, "/v1/charges"),
        (Method::POST, "/v1/customers/cus_1"),
        (Method::GET, "/v1/customers/cus_1/cards"),
        (Method::GET, "/admin"),
        (Method::GET, "/v1/chargesX"),
        (Method::GET, "/v1/charges/../../admin"),
        (Method::GET, "/v1/%2e%2e/admin"),
        (Method::GET, "/v1/charges/%2E%2E/%2e%2e/admin"),
        (Method::GET, "/v1/charges/..%2f..%2fadmin"),
        (Method::GET, "/v1/customers/a%2Fb"),
        (Method::GET, "/v1/charges/..\\..\\admin"),
    ];
    for (m, p) in refused {
        let (status, headers, body) =
            send(m.clone(), &format!("{}{p}", sk.url("r")), &[], "").await;
        assert!(status == 403 || status == 400, "{m} {p} got {status}");
        let code = error_code(&body);
        assert_eq!(headers["sidekey-error"], code.as_str());
        assert!(
            code == "not_allowed" || code == "bad_request",
            "{m} {p}: {code}"
        );
        if status == 403 {
            assert_eq!(code, "not_allowed");
        }
    }
    assert_eq!(
        up.count(),
        0,
        "nothing outside the scope may reach the upstream"
    );
    sk.stop().await;
}

#[tokio::test]
async fn traversal_is_403_not_allowed() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_cc33",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, SCOPED),
    )
    .await;
    for p in ["/v1/charges/../../admin", "/v1/%2e%2e/admin"] {
        let (status, _, body) = send(Method::GET, &format!("{}{p}", sk.url("r")), &[], "").await;
        assert_eq!(status, 403, "{p}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_allowed");
        assert_eq!(v["error"]["route"], "r");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("GET /admin")
        );
    }
    assert_eq!(up.count(), 0);
    sk.stop().await;
}

#[tokio::test]
async fn open_route_forwards_encoded_slashes_untouched() {
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_dd44",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let (status, _, _) = send(
        Method::GET,
        &format!("{}/projects/group%2Fproject", sk.url("r")),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].target, "/projects/group%2Fproject");
    sk.stop().await;
}

#[tokio::test]
async fn method_overrides_are_refused_unless_a_rule_names_them() {
    let up = Upstream::ok().await;
    let rules = format!(
        r#"{SCOPED}
  [[routes.allow]]
  methods = ["POST"]
  paths = ["/v2/legacy"]
  headers = ["X-HTTP-Method-Override"]
  query = ["_method"]
"#
    );
    let sk = with_key(
        "scope_key_ee55",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, &rules),
    )
    .await;
    let base = sk.url("r");
    // curl, as an app would send them: each is allowed by method and path alone.
    for (header, name) in [
        ("X-HTTP-Method-Override: DELETE", "x-http-method-override"),
        ("X-HTTP-Method: DELETE", "x-http-method"),
        ("X-Method-Override: DELETE", "x-method-override"),
        ("X-Original-URL: /admin", "x-original-url"),
        ("X-Rewrite-URL: /admin", "x-rewrite-url"),
    ] {
        let a = curl(&["-X", "POST", "-H", header, &format!("{base}/v1/charges")]).await;
        assert_eq!(a.status, 403, "{header}: {}", a.body);
        assert_eq!(a.header("sidekey-error"), Some("not_allowed"));
        assert!(a.body.contains(&format!("header `{name}`")), "{}", a.body);
    }
    for query in ["_method=DELETE", "a=1&_method=DELETE", "%5Fmethod=DELETE"] {
        let a = curl(&["-X", "POST", &format!("{base}/v1/charges?{query}")]).await;
        assert_eq!(a.status, 403, "{query}: {}", a.body);
        assert!(a.body.contains("query parameter `_method`"), "{}", a.body);
    }
    assert_eq!(up.count(), 0, "the upstream never sees an override");

    // Allowed where a rule names them; plain requests are untouched.
    let a = curl(&[
        "-X",
        "POST",
        "-H",
        "X-HTTP-Method-Override: PATCH",
        &format!("{base}/v2/legacy?_method=PATCH"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = curl(&["-X", "POST", &format!("{base}/v1/charges?limit=3")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("x-http-method-override"), Some("PATCH"));
    assert_eq!(seen[0].target, "/v2/legacy?_method=PATCH");
    sk.stop().await;
}

/// Paths an upstream could read differently from the check, as curl sends
/// them with `--path-as-is`: Tomcat-style `..;` and `;x/..`, double encoding, overlong
/// UTF-8 and Unicode dot look-alikes. Each is a 400 on a scoped route, and
/// the upstream never sees one; an open route still forwards them.
#[tokio::test]
async fn paths_an_upstream_could_reread_are_refused_on_scoped_routes() {
    let rereadable = [
        "/v1/charges/..;/..;/admin",
        "/v1/charges/%2e%2e;/%2e%2e;/admin",
        "/v1/charges/..;jsessionid=1/..;/admin",
        "/v1/charges/.;x/refunds",
        // Tomcat: `;x` dropped, the empty segment merged, `..` leaves charges.
        "/v1/charges/;x/../admin",
        "/v1/charges/%3bx/../admin",
        "/v1/charges/%252e%252e/%252e%252e/admin",
        "/v1/charges/..%252f..%252fadmin",
        "/v1/charges/..%255c..%255cadmin",
        "/v1/charges/..%252%2566..%252%2566admin",
        "/v1/charges/%c0%ae%c0%ae/%c0%ae%c0%ae/admin",
        "/v1/charges/%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/admin",
        "/v1/charges/%e2%80%a4%e2%80%a4/admin",
        "/v1/charges/%ef%b9%92%ef%b9%92/admin",
    ];
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_ee55",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, SCOPED),
    )
    .await;
    for p in rereadable {
        let (status, headers, body) = curl_path_as_is(&format!("{}{p}", sk.url("r"))).await;
        assert_eq!(status, 400, "{p}: {body}");
        assert!(
            headers.contains("sidekey-error: bad_request"),
            "{p}: {headers}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("scoped route"), "{p}: {message}");
        assert!(!message.contains("scope_key_ee55"), "{message}");
    }
    assert_eq!(up.count(), 0, "none of these may reach the upstream");
    let (status, _, _) = curl_path_as_is(&format!("{}/v1/charges/ch;v=2/x", sk.url("r"))).await;
    assert_eq!(status, 200, "`;` params on an ordinary segment still pass");
    sk.stop().await;

    // An open route keeps today's behaviour: forwarded as checked.
    let up = Upstream::ok().await;
    let sk = with_key(
        "scope_key_ff66",
        &one_route(&up.url(), r#"{ header = "X-Key" }"#, ""),
    )
    .await;
    let (status, _, _) = curl_path_as_is(&format!("{}/v1/..;/admin", sk.url("r"))).await;
    assert_eq!(status, 200);
    assert_eq!(up.seen()[0].target, "/v1/..;/admin");
    sk.stop().await;
}

/// GET with curl, the path sent exactly as written; returns status, the
/// header block and the body.
async fn curl_path_as_is(url: &str) -> (u16, String, String) {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--path-as-is",
            "-D",
            "-",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .await
        .expect("run curl");
    assert!(out.status.success(), "curl {url}: {:?}", out);
    let text = String::from_utf8(out.stdout).unwrap();
    let (rest, code) = text.rsplit_once('\n').unwrap();
    let (head, body) = rest.split_once("\r\n\r\n").unwrap();
    (
        code.parse().unwrap(),
        head.to_ascii_lowercase(),
        body.to_owned(),
    )
}
