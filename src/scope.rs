//! A route's scope: which methods and paths its credential may be used for.

use http::Method;

/// Allow rules; an empty scope allows everything on the route's upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// Empty: any method.
    methods: Vec<Method>,
    /// Empty: any path.
    paths: Vec<Pattern>,
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
        self.rules.push(Rule { methods, paths });
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.rules.is_empty()
    }

    /// Does any rule allow `method` on the normalised `path`?
    pub fn allows(&self, method: &Method, path: &str) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules.iter().any(|r| {
            (r.methods.is_empty() || r.methods.contains(method))
                && (r.paths.is_empty() || r.paths.iter().any(|p| p.matches(path)))
        })
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
                format!("{m} {p}")
            })
            .collect()
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
