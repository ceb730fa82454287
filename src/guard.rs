//! Headers and query parameters a scope rule must name before they pass: method overrides on every
//! scoped route; on SigV4 routes, `x-amz-*` headers and (for S3) sub-resources beyond plain object
//! reads, writes and listings.
//!
//! A method and a path do not say everything a request does: `x-amz-copy-source` makes a `PUT`
//! read another object, `?acl` makes it change who may read one, `X-HTTP-Method-Override: DELETE`
//! turns a `POST` into a delete on many frameworks. Such a part is refused unless the rule that
//! allows the method and path also lists it (`headers`, `query`).

use crate::path;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// Which parts of a request a route guards, by how it attaches its credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Guards {
    /// Method-override headers and `_method`.
    #[default]
    Plain,
    /// Also every `x-amz-*` header outside [`AMZ_HEADERS`].
    Aws,
    /// Also every query parameter outside [`S3_QUERY`].
    S3,
}

/// Headers that make a framework or gateway act on another method or path than the request line's.
const OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

/// The query parameter Rails, Laravel, Symfony and others read as the method.
const OVERRIDE_QUERY: &str = "_method";

/// `x-amz-*` headers a SigV4 route lets through without a rule naming them:
/// the signature's own (sidekey replaces them), and those plain object reads
/// and writes carry (metadata, storage class, encryption, checksums, chunked
/// uploads, the bucket-owner safety check).
pub const AMZ_HEADERS: &[&str] = &[
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-user-agent",
    "x-amz-meta-*",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-*",
    "x-amz-checksum-*",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "x-amz-expected-bucket-owner",
];

/// Query parameters an S3 route lets through without a rule naming them:
/// listing (v1 and v2), multipart uploads, object versions, response-header
/// overrides, and the operation hint SDKs add (`x-id`). Every other one (a
/// sub-resource such as `acl`, `policy`, `tagging`, `delete`, `restore`,
/// `versions` ...) needs a rule.
pub const S3_QUERY: &[&str] = &[
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
    "uploads",
    "uploadId",
    "partNumber",
    "max-parts",
    "part-number-marker",
    "max-uploads",
    "key-marker",
    "upload-id-marker",
    "versionId",
    "x-id",
    "response-*",
];

const COPY_SOURCE: &str = "x-amz-copy-source";

/// Names a rule lists: exact, or a prefix when they end in `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names(Vec<String>);

impl Names {
    /// Header names: case-insensitive, so kept lower-case.
    pub fn headers(list: &[String]) -> Result<Self, String> {
        let names = Self::parse(list, "header")?;
        for n in &names.0 {
            let bare = n.trim_end_matches('*');
            if !bare.is_empty() && http::HeaderName::from_bytes(bare.as_bytes()).is_err() {
                return Err(format!("`{n}` is not a header name"));
            }
        }
        Ok(Names(
            names.0.iter().map(|n| n.to_ascii_lowercase()).collect(),
        ))
    }

    /// Query parameter names: matched as written (S3's are case-sensitive).
    pub fn query(list: &[String]) -> Result<Self, String> {
        Self::parse(list, "query parameter")
    }

    fn parse(list: &[String], what: &str) -> Result<Self, String> {
        for n in list {
            if n.is_empty() {
                return Err(format!("an empty {what} name"));
            }
            if n.trim_end_matches('*').contains('*') {
                return Err(format!(
                    "in {what} name `{n}`, `*` may only end the name (a prefix)"
                ));
            }
        }
        Ok(Names(list.to_vec()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        matches(&self.0, name)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

fn matches<S: AsRef<str>>(list: &[S], name: &str) -> bool {
    list.iter().any(|p| {
        let p = p.as_ref();
        match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        }
    })
}

/// A guarded part of a request, for the rules to allow and the refusal to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Header(String),
    Query(String),
}

impl Part {
    /// Is this part listed in a rule's `headers` / `query`?
    pub fn allowed_by(&self, headers: &Names, query: &Names) -> bool {
        match self {
            Part::Header(h) => headers.contains(h),
            Part::Query(q) => query.contains(q),
        }
    }

    /// What a refusal says about it (a name, never a value).
    pub fn describe(&self) -> String {
        match self {
            Part::Header(h) => format!("header `{h}` (list it in the rule's `headers`)"),
            Part::Query(q) => format!("query parameter `{q}` (list it in the rule's `query`)"),
        }
    }
}

impl Guards {
    /// The guarded parts `headers` and `query` hold, in order.
    pub fn find(self, headers: &HeaderMap, query: Option<&str>) -> Vec<Part> {
        let mut found = Vec::new();
        for name in headers.keys() {
            let n = name.as_str();
            // CGI, WSGI, Rack and PHP read `_` and `-` in a header name alike.
            let dashed = n.replace('_', "-");
            let guarded = OVERRIDE_HEADERS.contains(&dashed.as_str())
                || (self != Guards::Plain
                    && dashed.starts_with("x-amz-")
                    && !matches(AMZ_HEADERS, n));
            if guarded && !found.contains(&Part::Header(n.to_owned())) {
                found.push(Part::Header(n.to_owned()));
            }
        }
        // Rack before 3 and older query parsers also split on `;`.
        for raw in query
            .unwrap_or("")
            .split(['&', ';'])
            .filter(|p| !p.is_empty())
        {
            let raw_name = raw.split('=').next().unwrap_or("");
            let name = decoded_name(raw_name);
            let guarded = is_method_override(raw_name)
                || (self == Guards::S3
                    && (!matches(S3_QUERY, &name) || raw_name.contains(['%', '+'])));
            if guarded && !found.contains(&Part::Query(name.to_string())) {
                found.push(Part::Query(name.into_owned()));
            }
        }
        found
    }

    /// On a SigV4 route, the object an allowed `x-amz-copy-source` reads, as a
    /// normalised path (`Err` with the reason when it cannot be checked).
    pub fn copy_source(self, headers: &HeaderMap) -> Option<Result<String, String>> {
        if self == Guards::Plain {
            return None;
        }
        let value = headers.get(COPY_SOURCE)?;
        let Ok(text) = value.to_str() else {
            return Some(Err("`x-amz-copy-source` is not text".into()));
        };
        // `bucket/key?versionId=...`, URL-encoded, with or without a leading `/`.
        let source = text.split('?').next().unwrap_or("");
        let decoded = percent_decode_str(source).decode_utf8_lossy();
        let rooted = match decoded.starts_with('/') {
            true => decoded.into_owned(),
            false => format!("/{decoded}"),
        };
        Some(match path::normalize(&rooted) {
            // Flagged segments (`..;` ...) are read otherwise by lenient servers.
            Ok(n) if !n.ambiguous_separator && n.reread.is_none() && !n.path.contains('%') => {
                Ok(n.path)
            }
            _ => Err("`x-amz-copy-source` does not name a plain bucket/key path".into()),
        })
    }
}

/// A query parameter's name, percent-decoded (an upstream reads `%61cl` as `acl`).
fn decoded_name(name: &str) -> Cow<'_, str> {
    percent_decode_str(name).decode_utf8_lossy()
}

/// Could a framework read this raw query name as `_method`? Each reading is
/// tried: as written, and decoded up to three times (`+` as a space), each
/// trimmed and lower-cased, with PHP's `.` and space turned into `_`.
fn is_method_override(raw: &str) -> bool {
    let mut name = raw.replace('+', " ");
    for _ in 0..=3 {
        let read: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '.' | ' ' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        if read == OVERRIDE_QUERY {
            return true;
        }
        name = decoded_name(&name).into_owned();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in list {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn plain_routes_guard_method_overrides_only() {
        let h = headers(&[
            ("X-HTTP-Method-Override", "DELETE"),
            ("x-amz-acl", "public-read"),
            ("accept", "*/*"),
        ]);
        assert_eq!(
            Guards::Plain.find(&h, Some("a=1&_method=DELETE&acl")),
            vec![
                Part::Header("x-http-method-override".into()),
                Part::Query("_method".into())
            ]
        );
    }

    #[test]
    fn s3_routes_guard_amz_headers_and_sub_resources() {
        let h = headers(&[
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-meta-owner", "me"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-acl", "public-read"),
            ("x-amz-copy-source", "/other/secret.txt"),
        ]);
        let found = Guards::S3.find(&h, Some("list-type=2&prefix=a%2F&%61cl&uploadId=1&tagging"));
        assert_eq!(
            found,
            vec![
                Part::Header("x-amz-acl".into()),
                Part::Header("x-amz-copy-source".into()),
                Part::Query("acl".into()),
                Part::Query("tagging".into()),
            ]
        );
        // Other AWS services: their query is their API, left to the path rules.
        assert_eq!(Guards::Aws.find(&h, Some("Action=List")).len(), 2);
    }

    #[test]
    fn overrides_are_found_however_written() {
        let h = headers(&[
            ("x_http_method_override", "DELETE"),
            ("x_amz_acl", "public-read"),
        ]);
        assert_eq!(
            Guards::Plain.find(&h, None),
            vec![Part::Header("x_http_method_override".into())]
        );
        assert_eq!(Guards::Aws.find(&h, None).len(), 2);
        for q in [
            "a=1;_method=DELETE",
            "_METHOD=DELETE",
            "%5fmethod=DELETE",
            "%255Fmethod=DELETE",
            "+_method=DELETE",
            "_method%20=DELETE",
            ".method=DELETE",
        ] {
            assert_eq!(Guards::Plain.find(&h, Some(q)).len(), 2, "{q}");
        }
        assert_eq!(Guards::Plain.find(&h, Some("method=x&_methods=y")).len(), 1);
        // On S3, an allowed name counts only as itself, and `;` splits too.
        for q in ["prefix=a;acl", "prefi%78=a", "x+id=1"] {
            assert!(
                Guards::S3
                    .find(&HeaderMap::new(), Some(q))
                    .iter()
                    .any(|p| matches!(p, Part::Query(_))),
                "{q}"
            );
        }
    }

    #[test]
    fn copy_source_is_decoded_and_normalised() {
        let src = |v: &str| Guards::S3.copy_source(&headers(&[("x-amz-copy-source", v)]));
        assert_eq!(src("/b/k.txt?versionId=3"), Some(Ok("/b/k.txt".into())));
        assert_eq!(src("b/a%2E%2E/../../other/x"), Some(Ok("/other/x".into())));
        // S3 decodes the whole value: an encoded `/` is a separator there too.
        assert_eq!(src("b/dir%2F..%2F..%2Fother"), Some(Ok("/other".into())));
        assert_eq!(src("/b/x%252F..").map(|r| r.is_err()), Some(true));
        // sigv4_filter fuzz target: `..;` is `..` to a server that drops `;params`.
        assert_eq!(src("b/..;").map(|r| r.is_err()), Some(true));
        // And `b/;x/../other`: `/;x/` is no segment to a server that drops
        // `;params` and merges slashes, so the `..` leaves the bucket.
        assert_eq!(src("b/;x/../other").map(|r| r.is_err()), Some(true));
        assert_eq!(
            Guards::Plain.copy_source(&headers(&[("x-amz-copy-source", "/b/k")])),
            None
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(
            Names::headers(&["x-amz-grant-*".into()])
                .unwrap()
                .contains("x-amz-grant-read")
        );
        assert!(
            Names::headers(&["X-Amz-Acl".into()])
                .unwrap()
                .contains("x-amz-acl")
        );
        assert!(Names::headers(&["x amz".into()]).is_err());
        assert!(Names::query(&["a*b".into()]).is_err());
        assert!(Names::query(&["".into()]).is_err());
        assert!(!Names::query(&["ACL".into()]).unwrap().contains("acl"));
    }
}
