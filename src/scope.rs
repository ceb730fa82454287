//! A route's scope: which methods and paths its credential may be used for, and which guarded
//! headers and query parameters (see [`crate::guard`]) may come with them.

use crate::guard::{Guards, Names, Part};
use http::{HeaderMap, Method};

/// Allow rules; an empty scope allows everything on the route's upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    rules: Vec<Rule>,
    guards: Guards,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Empty: any method.
    methods: Vec<Method>,
    /// Empty: any path.
    paths: Vec<Pattern>,
    /// Guarded headers this rule lets through.
    headers: Names,
    /// Guarded query parameters this rule lets through.
    query: Names,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: any number of segments, none included.
    Any,
}

impl Scope {
    pub fn add_rule(&mut self, methods: &[String], paths: &[String]) -> Result<(), String> {
        self.add_guarded_rule(methods, paths, &[], &[])
    }

    /// A rule that also lets the guarded `headers` and `query` names through.
    pub fn add_guarded_rule(
        &mut self,
        methods: &[String],
        paths: &[String],
        headers: &[String],
        query: &[String],
    ) -> Result<(), String> {
        let methods = methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("`{m}` is not an HTTP method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let paths = paths
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        let headers = Names::headers(headers)?;
        let query = Names::query(query)?;
        self.rules.push(Rule {
            methods,
            paths,
            headers,
            query,
        });
        Ok(())
    }

    /// Which parts of a request this route guards (set from its injection form).
    pub fn set_guards(&mut self, guards: Guards) {
        self.guards = guards;
    }

    pub fn is_open(&self) -> bool {
        self.rules.is_empty()
    }

    /// Does any rule allow `method` on the normalised `path`?
    pub fn allows(&self, method: &Method, path: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules.iter().any(|r| r.allows(method, path))
    }

    /// After [`Scope::allows`]: are the guarded headers and query parameters
    /// of the request allowed by a rule that allows its method and path? And
    /// is the object an `x-amz-copy-source` reads one the scope allows a `GET`
    /// of? Err says what was refused, by name (never a value).
    pub fn check_parts(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), String> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let parts = self.guards.find(headers, query);
        if parts.is_empty() {
            return Ok(());
        }
        let copy = parts
            .contains(&Part::Header("x-amz-copy-source".into()))
            .then(|| self.guards.copy_source(headers))
            .flatten();
        let mut refused = None;
        for rule in self.rules.iter().filter(|r| r.allows(method, path)) {
            if let Some(p) = parts
                .iter()
                .find(|p| !p.allowed_by(&rule.headers, &rule.query))
            {
                refused.get_or_insert_with(|| p.describe());
                continue;
            }
            match &copy {
                Some(Err(why)) => return Err(why.clone()),
                Some(Ok(source)) if !self.allows(&Method::GET, source) => {
                    return Err(format!(
                        "`x-amz-copy-source` reads {source}, which this route's scope does not allow a GET of"
                    ));
                }
                _ => return Ok(()),
            }
        }
        Err(format!(
            "{method} {path} is outside the scope of this route's credential with its {}",
            refused.unwrap_or_default()
        ))
    }

    /// One line per rule, for `sidekey check` and the inventory.
    pub fn describe(&self) -> Vec<String> {
        if self.rules.is_empty() {
            return vec!["* (everything on the upstream)".into()];
        }
        self.rules
            .iter()
            .map(|r| {
                let m = if r.methods.is_empty() {
                    "*".to_string()
                } else {
                    r.methods
                        .iter()
                        .map(Method::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let p = if r.paths.is_empty() {
                    "/**".to_string()
                } else {
                    r.paths
                        .iter()
                        .map(|p| p.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let mut line = format!("{m} {p}");
                if !r.headers.is_empty() {
                    line += &format!(" headers={}", r.headers.as_slice().join(","));
                }
                if !r.query.is_empty() {
                    line += &format!(" query={}", r.query.as_slice().join(","));
                }
                line
            })
            .collect()
    }
}

impl Rule {
    fn allows(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && (self.paths.is_empty() || self.paths.iter().any(|p| p.matches(path)))
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("path pattern `{text}` must start with `/`"));
        }
        let segs = text
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "*" => Ok(Seg::One),
                "**" => Ok(Seg::Any),
                "." | ".." => Err(format!(
                    "path pattern `{text}` cannot hold `.` or `..` segments"
                )),
                s if s.contains('*') => Err(format!(
                    "in `{text}`, `*` must be a whole segment (`*` or `**`)"
                )),
                s => Ok(Seg::Lit(s.to_owned())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pattern {
            text: text.to_owned(),
            segs,
        })
    }

    fn matches(&self, path: &str) -> bool {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match_from(&self.segs, &segs)
    }
}

fn match_from(pat: &[Seg], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((Seg::Any, rest)) => (0..=path.len()).any(|skip| match_from(rest, &path[skip..])),
        Some((seg, rest)) => match path.split_first() {
            None => false,
            Some((first, tail)) => {
                let ok = match seg {
                    Seg::One => true,
                    Seg::Lit(l) => l == first,
                    Seg::Any => unreachable!(),
                };
                ok && match_from(rest, tail)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(methods: &[&str], paths: &[&str]) -> Scope {
        let mut s = Scope::default();
        s.add_rule(
            &methods.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            &paths.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        s
    }

    #[test]
    fn exact_one_and_any() {
        let s = scope(
            &["GET", "post"],
            &["/v1/charges", "/v1/charges/**", "/v1/customers/*/cards"],
        );
        assert!(s.allows(&Method::GET, "/v1/charges"));
        assert!(s.allows(&Method::POST, "/v1/charges/ch_1/refunds"));
        assert!(s.allows(&Method::GET, "/v1/customers/cus_1/cards"));
        assert!(!s.allows(&Method::GET, "/v1/customers/cus_1/x/cards"));
        assert!(!s.allows(&Method::DELETE, "/v1/charges"));
        assert!(!s.allows(&Method::GET, "/v1/chargesX"));
        assert!(!s.allows(&Method::GET, "/admin"));
    }

    #[test]
    fn guarded_parts_need_a_rule_that_allows_the_method_and_path_too() {
        let mut s = Scope::default();
        s.set_guards(Guards::S3);
        let strs = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        s.add_rule(&strs(&["GET", "PUT"]), &strs(&["/b/**"]))
            .unwrap();
        s.add_guarded_rule(
            &strs(&["PUT"]),
            &strs(&["/b/in/**"]),
            &strs(&["x-amz-copy-source*"]),
            &strs(&["tagging"]),
        )
        .unwrap();
        let mut h = http::HeaderMap::new();
        let put = |path: &str, h: &http::HeaderMap, q: Option<&str>| {
            s.check_parts(&Method::PUT, path, h, q)
        };
        assert!(put("/b/x", &h, Some("partNumber=1&uploadId=u")).is_ok());
        let e = put("/b/x", &h, Some("tagging")).unwrap_err();
        assert!(e.contains("query parameter `tagging`"), "{e}");
        assert!(put("/b/in/x", &h, Some("tagging")).is_ok());
        h.insert("x-amz-copy-source", "/b/in/../src.txt".parse().unwrap());
        assert!(
            put("/b/x", &h, None)
                .unwrap_err()
                .contains("header `x-amz-copy-source`")
        );
        assert!(
            put("/b/in/x", &h, None).is_ok(),
            "GET /b/src.txt is in scope"
        );
        h.insert("x-amz-copy-source", "/c/src.txt".parse().unwrap());
        let e = put("/b/in/x", &h, None).unwrap_err();
        assert!(e.contains("reads /c/src.txt"), "{e}");
        assert!(
            Scope::default()
                .check_parts(&Method::PUT, "/c", &h, Some("acl"))
                .is_ok()
        );
    }

    #[test]
    fn open_scope_allows_all() {
        assert!(Scope::default().allows(&Method::DELETE, "/anything"));
    }

    #[test]
    fn bad_patterns() {
        let mut s = Scope::default();
        assert!(s.add_rule(&[], &["v1".into()]).is_err());
        assert!(s.add_rule(&[], &["/v1/ch*".into()]).is_err());
        assert!(s.add_rule(&[], &["/v1/../x".into()]).is_err());
        assert!(s.add_rule(&["G ET".into()], &[]).is_err());
    }
}
