//! Properties of path normalisation, scope matching and injection rendering, checked by the property tests (`tests/properties.rs`) and the fuzz targets (`fuzz/`), which include this file.
//!
//! Each check panics with the input when a property does not hold.

use http::{HeaderMap, Method};
use sidekey::credential::Material;
use sidekey::inject::{InjectSpec, Outbound, Rendered};
use sidekey::proxy::path::{self, Normalized};
use sidekey::proxy::scope::Scope;
use sidekey::secret::Secret;

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
        if let Ok(Rendered::Header { value, .. }) = spec.render(&material) {
            assert_header_safe(value.as_bytes(), value.is_sensitive());
            let expected = format.replacen("{secret}", &trimmed, 1);
            assert_eq!(value.as_bytes(), expected.as_bytes());
        }
    }

    let basic = InjectSpec::Basic {
        username: username.to_owned(),
    };
    if let Ok(Rendered::Header { value, .. }) = basic.render(&material) {
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

    if param.is_empty() {
        return;
    }
    let spec = InjectSpec::Query {
        param: param.to_owned(),
    };
    let rendered = spec.render(&material).expect("a query always renders");
    let mut headers = HeaderMap::new();
    let mut q = query.map(str::to_owned);
    rendered.apply(&mut Outbound {
        headers: &mut headers,
        query: &mut q,
    });
    let q = q.expect("a query after injection");
    let Rendered::Query { pair, .. } = &rendered else {
        panic!("a query injection renders a query pair");
    };
    assert!(
        q.ends_with(pair.as_str()),
        "{q:?} does not end with the pair"
    );
    assert_eq!(pair.matches('=').count(), 1, "{pair:?}");
    assert!(
        pair.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%=".contains(&b)),
        "{pair:?} holds a character a query could split on"
    );
    let after: Vec<&str> = q.split('&').filter(|p| p == pair).collect();
    assert_eq!(after.len(), 1, "{q:?} holds the pair more than once");
}

fn assert_header_safe(bytes: &[u8], sensitive: bool) {
    assert!(
        !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "a rendered header value holds CR, LF or NUL"
    );
    assert!(sensitive, "a rendered header value is not marked sensitive");
}
