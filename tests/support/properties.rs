//! Properties of path normalisation, scope matching, injection rendering and the header and query filter of scoped routes, checked by the property tests (`tests/properties.rs`) and the fuzz targets (`fuzz/`), which include this file.
//!
//! Each check panics with the input when a property does not hold.

use http::Method;
use sidekey::credential::Material;
use sidekey::guard::{AMZ_HEADERS, Guards, S3_QUERY};
use sidekey::inject::InjectSpec;
use sidekey::inject::basic::BasicForm;
use sidekey::inject::query::QueryForm;
use sidekey::proxy::path::{self, Normalized};
use sidekey::scope::Scope;
use sidekey::secret::Secret;
use sidekey::transport::body::{ProxyBody, empty};

/// The rule the scope properties use: `/v1/charges` and all below it.
pub const PREFIX: &str = "/v1/charges";

/// Normalising `raw` never panics, and a normalised path:
/// starts with `/`, holds no empty or dot segment, normalises to itself,
/// and, when the route's scope allows it and nothing in it is flagged, stays
/// under the rule's prefix however a lenient upstream resolves it.
pub fn check_path(raw: &str) {
    let Ok(n) = path::normalize(raw) else {
        return;
    };
    let p = &n.path;
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
    assert!(!p.contains("//"), "{raw:?} -> {p:?} has an empty segment");
    assert!(
        p[1..].split('/').all(|s| s != "." && s != ".."),
        "{raw:?} -> {p:?} has a dot segment"
    );
    let again = path::normalize(p).unwrap_or_else(|e| panic!("{raw:?} -> {p:?} -> {e}"));
    assert_eq!(&again.path, p, "normalising {raw:?} twice differs");
    assert!(
        !p.contains(['?', '#']) || raw.contains(['?', '#']),
        "{raw:?} -> {p:?} gained a delimiter"
    );
    check_scope(raw, &n);
}

/// A path the scope allows and that carries no flag stays under [`PREFIX`]
/// for an upstream that drops `;params`, decodes up to three times and
/// then resolves dot segments and `\` as `/`.
fn check_scope(raw: &str, n: &Normalized) {
    if !scope().allows(&Method::GET, &n.path) {
        return;
    }
    assert!(
        n.path == PREFIX || n.path.starts_with(&format!("{PREFIX}/")),
        "{raw:?} -> {:?} is allowed outside {PREFIX}",
        n.path
    );
    if n.ambiguous_separator || n.reread.is_some() {
        return; // refused on a scoped route
    }
    let seen = lenient_upstream(&n.path);
    assert!(
        seen == PREFIX || seen.starts_with(&format!("{PREFIX}/")),
        "{raw:?} -> {:?} is allowed, but a lenient upstream serves {seen:?}",
        n.path
    );
}

/// The scope of the properties: GET on [`PREFIX`] and below.
pub fn scope() -> Scope {
    let mut s = Scope::default();
    s.add_rule(&["GET".into()], &[PREFIX.into(), format!("{PREFIX}/**")])
        .expect("rule");
    s
}

/// How a lenient server could read a path: `;params` dropped from each
/// segment, escapes decoded up to three times, `\` taken as `/`, then dot
/// segments resolved.
pub fn lenient_upstream(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        let mut seg = seg.split(';').next().unwrap_or("").to_owned();
        for _ in 0..3 {
            seg = percent_decode(&seg);
        }
        for part in seg.split(['/', '\\']) {
            let part = part.split(';').next().unwrap_or("");
            match part {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                _ => out.push(part.to_owned()),
            }
        }
    }
    format!("/{}", out.join("/"))
}

/// One round of percent-decoding, lossy for bytes that are not UTF-8.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Rendering a header, Basic or query injection never panics; what it
/// renders holds the secret as configured, and a header value never holds
/// CR, LF or NUL and is marked sensitive.
pub fn check_render(secret: &str, format: &str, username: &str, param: &str, query: Option<&str>) {
    let Ok(value) = Secret::new(secret) else {
        return;
    };
    let trimmed = value.expose().to_owned();
    let material = Material::Token(value);

    if let Ok(spec) = InjectSpec::header("x-api-key", Some(format)) {
        if let Some(req) = attached(&spec, &material, "/") {
            let value = &req.headers()["x-api-key"];
            assert_header_safe(value.as_bytes(), value.is_sensitive());
            let expected = format.replacen("{secret}", &trimmed, 1);
            assert_eq!(value.as_bytes(), expected.as_bytes());
        }
    }

    if let Ok(basic) = BasicForm::new(username) {
        if let Some(req) = attached(&InjectSpec::new(basic), &material, "/") {
            let value = &req.headers()["authorization"];
            assert_header_safe(value.as_bytes(), value.is_sensitive());
            use base64::Engine as _;
            let encoded = value
                .as_bytes()
                .strip_prefix(b"Basic ")
                .expect("Basic scheme");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap();
            assert_eq!(decoded, format!("{username}:{trimmed}").into_bytes());
        }
    }

    let Ok(form) = QueryForm::new(param) else {
        return;
    };
    let target = match query {
        Some(q) => format!("/x?{q}"),
        None => "/x".to_owned(),
    };
    if target.parse::<http::Uri>().is_err() {
        return;
    }
    let req =
        attached(&InjectSpec::new(form), &material, &target).expect("a query always attaches");
    let q = req.uri().query().expect("a query after injection");
    let pair = q.rsplit('&').next().unwrap_or_default();
    assert_eq!(pair.matches('=').count(), 1, "{pair:?}");
    assert!(
        pair.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%=".contains(&b)),
        "{pair:?} holds a character a query could split on"
    );
    let after: Vec<&str> = q.split('&').filter(|p| *p == pair).collect();
    assert_eq!(after.len(), 1, "{q:?} holds the pair more than once");
}

/// A request to `target` with `spec`'s rendering of `material` attached,
/// or `None` when the value cannot be rendered in that form.
fn attached(
    spec: &InjectSpec,
    material: &Material,
    target: &str,
) -> Option<http::Request<ProxyBody>> {
    let rendered = spec.render(material).ok()?;
    let mut req = http::Request::new(empty());
    *req.uri_mut() = target.parse().ok()?;
    rendered.attach(&mut req, None).ok()?;
    Some(req)
}

fn assert_header_safe(bytes: &[u8], sensitive: bool) {
    assert!(
        !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "a rendered header value holds CR, LF or NUL"
    );
    assert!(sensitive, "a rendered header value is not marked sensitive");
}

/// The bucket the guard properties' scopes allow: `/b` and all below it.
pub const BUCKET: &str = "/b";

/// Header names a framework or gateway may take as another method or URL,
/// written out here again so the properties do not trust the filter's list.
const OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

/// Headers from `name: value` lines; lines that are not a valid header are dropped.
pub fn header_lines(text: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// The header and query filter of scoped routes never panics, and what it
/// lets through obeys the rules, however a name is cased, spaced or encoded:
/// on every route no method-override header (`_` read as `-`) and no query
/// name any reading of which is `_method`; on SigV4 routes no `x-amz-*`
/// header outside the allow list; on S3 routes no query name with a reading
/// outside the allow list; and an allowed `x-amz-copy-source` reads an object
/// under [`BUCKET`] even for a lenient reader of the path.
pub fn check_guards(headers: &http::HeaderMap, query: Option<&str>) {
    let path = format!("{BUCKET}/k");
    for (guards, copy) in [
        (Guards::Plain, false),
        (Guards::Aws, false),
        (Guards::S3, false),
        (Guards::S3, true),
    ] {
        let scope = guard_scope(guards, copy);
        for method in [Method::GET, Method::PUT] {
            if scope.check_parts(&method, &path, headers, query).is_err() {
                continue;
            }
            let what = format!("{guards:?} {method} {query:?} {headers:?}");
            for name in headers.keys() {
                let n = name.as_str();
                let dashed = n.replace('_', "-");
                assert!(!OVERRIDES.contains(&dashed.as_str()), "{what}: {n} passed");
                if guards != Guards::Plain && dashed.starts_with("x-amz-") {
                    assert!(
                        listed(AMZ_HEADERS, n) || (copy && n == "x-amz-copy-source"),
                        "{what}: {n} passed"
                    );
                }
            }
            for raw in query.unwrap_or("").split(['&', ';']) {
                let name = raw.split('=').next().unwrap_or("");
                for read in readings(name) {
                    let canonical: String = read
                        .trim()
                        .chars()
                        .map(|c| match c {
                            '.' | ' ' => '_',
                            c => c.to_ascii_lowercase(),
                        })
                        .collect();
                    assert_ne!(canonical, "_method", "{what}: {name:?} passed");
                    if guards == Guards::S3 && !name.is_empty() {
                        assert!(
                            listed(S3_QUERY, &read),
                            "{what}: {name:?} read as {read:?} passed"
                        );
                    }
                }
            }
            if copy {
                if let Some(v) = headers.get("x-amz-copy-source") {
                    let v = v.to_str().expect("a copy source that passed is text");
                    let source = v.split('?').next().unwrap_or("");
                    let seen = lenient_upstream(&format!("/{source}"));
                    assert!(
                        seen == BUCKET || seen.starts_with(&format!("{BUCKET}/")),
                        "{what}: a copy from {seen:?} passed"
                    );
                }
            }
        }
    }
}

/// GET and PUT on [`BUCKET`] and below, naming no header or query parameter
/// (but `x-amz-copy-source` when `copy`).
fn guard_scope(guards: Guards, copy: bool) -> Scope {
    let mut s = Scope::default();
    s.set_guards(guards);
    let headers = match copy {
        true => vec!["x-amz-copy-source".to_owned()],
        false => Vec::new(),
    };
    s.add_guarded_rule(
        &["GET".into(), "PUT".into()],
        &[BUCKET.into(), format!("{BUCKET}/**")],
        &headers,
        &[],
    )
    .expect("rule");
    s
}

/// A name as written, and decoded up to three times (`+` as a space).
fn readings(name: &str) -> Vec<String> {
    let mut out = vec![name.to_owned()];
    let mut s = name.replace('+', " ");
    for _ in 0..3 {
        out.push(s.clone());
        s = percent_decode(&s);
    }
    out.push(s);
    out
}

/// Is `name` on an allow list (entries ending in `*` are prefixes)?
fn listed(list: &[&str], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *p == name,
    })
}
