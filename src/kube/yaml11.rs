//! Reading YAML as kubectl does (YAML 1.1, as go-yaml v2 resolves it): plain `0400` is octal, `yes` a boolean, `<<` a merge.
//!
//! yaml-rust2 resolves plain scalars by YAML 1.2, where `0400` is the
//! decimal 400: written back, Kubernetes would read a `defaultMode` of
//! 0o620 instead of 0o400. This loader builds the tree from the parser's
//! events itself and resolves each plain, untagged scalar by the rules of
//! go-yaml v2 (which `kubectl` reads manifests with): `0400`, `0o400`,
//! `0x1F`, `0b101`, `1_000` and signed forms are integers; `yes`/`no`/
//! `on`/`off`/`y`/`n` and `Null`/`NULL` are what YAML 1.1 says. A `<<` key
//! merges the mapping(s) it names, the keys of its own mapping winning.
//! [`plain_reads_as_itself`] tells the writer which strings must be quoted.

use std::collections::HashMap;
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::yaml::Hash;

/// Where the YAML text stops making sense, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

impl SyntaxError {
    fn at(mark: Marker, problem: String) -> Self {
        SyntaxError {
            line: mark.line(),
            column: mark.col() + 1,
            problem,
        }
    }
}

/// Every document of the stream `text`, aliases copied, merges done.
/// An empty document is `Yaml::Null`.
pub fn load(text: &str) -> Result<Vec<Yaml>, SyntaxError> {
    let mut loader = Loader::default();
    Parser::new_from_str(text)
        .load(&mut loader, true)
        .map_err(|e| SyntaxError::at(*e.marker(), e.info().to_owned()))?;
    match loader.error {
        Some(e) => Err(e),
        None => Ok(loader.docs),
    }
}

/// A mapping or sequence being built. A mapping keeps its entries in order,
/// a merge (`<<`) as an entry without a key, until its end.
enum Open {
    Seq(Vec<Yaml>),
    Map {
        entries: Vec<(Option<Yaml>, Yaml, Marker)>,
        key: Option<(Option<Yaml>, Marker)>,
    },
}

#[derive(Default)]
struct Loader {
    docs: Vec<Yaml>,
    open: Vec<(Open, usize)>,
    anchors: HashMap<usize, Yaml>,
    error: Option<SyntaxError>,
}

/// A value about to be placed: a node, or the merge key `<<`.
enum Node {
    Value(Yaml),
    MergeKey,
}

impl MarkedEventReceiver for Loader {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if let Err((at, problem)) = self.event(ev, mark) {
            self.error = Some(SyntaxError::at(at.unwrap_or(mark), problem));
        }
    }
}

impl Loader {
    /// Builds on the tree; an error says why and, when not at `mark`, where.
    fn event(&mut self, ev: Event, mark: Marker) -> Result<(), (Option<Marker>, String)> {
        match ev {
            Event::SequenceStart(anchor, _) => self.open.push((Open::Seq(Vec::new()), anchor)),
            Event::MappingStart(anchor, _) => self.open.push((
                Open::Map {
                    entries: Vec::new(),
                    key: None,
                },
                anchor,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((open, anchor)) = self.open.pop() else {
                    return Err((None, "a collection ends that never started".into()));
                };
                let node = match open {
                    Open::Seq(items) => Yaml::Array(items),
                    Open::Map { entries, .. } => {
                        Yaml::Hash(merged(entries).map_err(|(at, e)| (Some(at), e))?)
                    }
                };
                self.place(Node::Value(node), anchor, mark)
                    .map_err(|e| (None, e))?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain;
                let node = if plain && tag.is_none() && text == "<<" && self.at_key() {
                    Node::MergeKey
                } else {
                    Node::Value(scalar(text, plain, tag.as_ref()).map_err(|e| (None, e))?)
                };
                self.place(node, anchor, mark).map_err(|e| (None, e))?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or((
                    None,
                    "an alias names an anchor not defined before it".into(),
                ))?;
                self.place(Node::Value(node), 0, mark)
                    .map_err(|e| (None, e))?;
            }
            Event::DocumentEnd => {
                let doc = match self.open.pop() {
                    Some((Open::Seq(mut items), _)) if items.len() <= 1 => {
                        items.pop().unwrap_or(Yaml::Null)
                    }
                    _ => return Err((None, "a document ends inside a collection".into())),
                };
                self.docs.push(doc);
            }
            Event::DocumentStart => self.open.push((Open::Seq(Vec::new()), 0)),
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
        Ok(())
    }

    fn at_key(&self) -> bool {
        matches!(self.open.last(), Some((Open::Map { key: None, .. }, _)))
    }

    fn place(&mut self, node: Node, anchor: usize, mark: Marker) -> Result<(), String> {
        if let (Node::Value(v), true) = (&node, anchor > 0) {
            self.anchors.insert(anchor, v.clone());
        }
        match self.open.last_mut() {
            Some((Open::Seq(items), _)) => match node {
                Node::Value(v) => items.push(v),
                Node::MergeKey => return Err("`<<` outside a mapping".into()),
            },
            Some((Open::Map { entries, key }, _)) => match key.take() {
                None => {
                    *key = Some((
                        match node {
                            Node::Value(v) => Some(v),
                            Node::MergeKey => None,
                        },
                        mark,
                    ));
                }
                Some((k, at)) => match node {
                    Node::Value(v) => entries.push((k, v, at)),
                    Node::MergeKey => return Err("`<<` as a value".into()),
                },
            },
            None => return Err("a node outside any document".into()),
        }
        Ok(())
    }
}

/// A mapping's entries as one mapping: a duplicate key is an error; a
/// merge (`<<: *x` or `<<: [*x, *y]`) adds the keys the mapping does not
/// set itself, earlier sources first. A key set before the `<<` and by the
/// merge is refused: go-yaml v2 (kubectl) lets the merge win there, the
/// YAML spec the key, so the manifest means different things to each.
fn merged(entries: Vec<(Option<Yaml>, Yaml, Marker)>) -> Result<Hash, (Marker, String)> {
    let mut own = Hash::new();
    let mut from_merge = Hash::new();
    let mut merges = 0;
    for (key, value, at) in entries {
        let Some(key) = key else {
            merges += 1;
            if merges > 1 {
                return Err((at, "a mapping has two `<<` keys".into()));
            }
            let sources = match value {
                Yaml::Hash(h) => vec![h],
                Yaml::Array(items) => items
                    .into_iter()
                    .map(|i| match i {
                        Yaml::Hash(h) => Ok(h),
                        _ => Err((at, merge_wants_mappings())),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err((at, merge_wants_mappings())),
            };
            for source in sources {
                for (k, v) in source {
                    if own.contains_key(&k) {
                        return Err((
                            at,
                            format!(
                                "{} is set both before `<<` and by the merge; kubectl and the YAML spec disagree on which wins: set it after the `<<` line",
                                key_text(&k)
                            ),
                        ));
                    }
                    if !from_merge.contains_key(&k) {
                        from_merge.insert(k, v);
                    }
                }
            }
            continue;
        };
        if own.contains_key(&key) {
            return Err((at, format!("{}: duplicated key in mapping", key_text(&key))));
        }
        own.insert(key, value);
    }
    // (`entry` would move a present key to the back: the order is the input's.)
    for (k, v) in from_merge {
        if !own.contains_key(&k) {
            own.insert(k, v);
        }
    }
    Ok(own)
}

fn merge_wants_mappings() -> String {
    "`<<` merges a mapping or a list of mappings, nothing else".into()
}

fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::String(s) => format!("key `{}`", shown(s)),
        other => format!("key {other:?}"),
    }
}

/// A scalar as kubectl reads it: plain and untagged ones by YAML 1.1, quoted
/// ones as strings, `!!str`/`!!int`/`!!bool`/`!!null`/`!!float` as tagged.
fn scalar(text: String, plain: bool, tag: Option<&Tag>) -> Result<Yaml, String> {
    match tag {
        None if plain => Ok(resolve_plain(text)),
        None => Ok(Yaml::String(text)),
        Some(t) if t.handle == "tag:yaml.org,2002:" => {
            let bad = || format!("`{}` is not a valid !!{}", shown(&text), t.suffix);
            match t.suffix.as_str() {
                "str" => Ok(Yaml::String(text)),
                "int" => yaml11_int(&text).map(Yaml::Integer).ok_or_else(bad),
                "bool" => yaml11_bool(&text).map(Yaml::Boolean).ok_or_else(bad),
                "null" => yaml11_null(&text).then_some(Yaml::Null).ok_or_else(bad),
                "float" => match resolve_plain(text.clone()) {
                    r @ (Yaml::Real(_) | Yaml::Integer(_)) => Ok(r),
                    _ => Err(bad()),
                },
                _ => Ok(Yaml::String(text)),
            }
        }
        Some(_) => Ok(Yaml::String(text)),
    }
}

/// Text of the manifest as a message shows it: one line, at most 60 characters.
fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(60).flat_map(char::escape_debug).collect();
    if text.chars().count() > 60 {
        out.push_str("...");
    }
    out
}

/// A plain scalar by the YAML 1.1 rules of go-yaml v2.
fn resolve_plain(text: String) -> Yaml {
    if yaml11_null(&text) {
        return Yaml::Null;
    }
    if let Some(b) = yaml11_bool(&text) {
        return Yaml::Boolean(b);
    }
    if let Some(i) = yaml11_int(&text) {
        return Yaml::Integer(i);
    }
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    if is_special_float(&text) || is_go_float(&digits) {
        // Written back as read: `09` (a float to go-yaml) stays `09`.
        return Yaml::Real(text);
    }
    Yaml::String(text)
}

/// go-yaml v2's float pattern, `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_go_float(s: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && digits(frac) == frac.len(),
        Some((int, frac)) => digits(int) == int.len() && digits(frac) == frac.len(),
        None => !mantissa.is_empty() && digits(mantissa) == mantissa.len(),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e) == e.len()
    });
    mantissa_ok && exponent_ok
}

/// Whether a string written plain reads back as that same string under the
/// rules above; when not, the writer must quote it.
pub fn plain_reads_as_itself(s: &str) -> bool {
    matches!(resolve_plain(s.to_owned()), Yaml::String(r) if r == s)
}

fn yaml11_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            Some(false)
        }
        _ => None,
    }
}

fn is_special_float(s: &str) -> bool {
    matches!(
        s,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    )
}

/// An integer as go-yaml v2 reads one: underscores dropped, then Go's
/// `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`/`0o`/`0b`
/// with their base, a leading `0` for octal, else decimal.
fn yaml11_int(text: &str) -> Option<i64> {
    if !text.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-') {
        return None;
    }
    let s: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, &lower[..])
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Yaml {
        load(text).unwrap().remove(0)
    }

    #[test]
    fn integers_read_as_go_yaml_v2_reads_them() {
        for (text, want) in [
            ("0400", 256),
            ("0644", 420),
            ("0o400", 256),
            ("+0400", 256),
            ("-010", -8),
            ("0x1F", 31),
            ("0b101", 5),
            ("1_000", 1000),
            ("0", 0),
            ("420", 420),
        ] {
            assert_eq!(
                one(&format!("v: {text}"))["v"],
                Yaml::Integer(want),
                "{text}"
            );
        }
        assert_eq!(one("v: \"0400\"")["v"], Yaml::String("0400".into()));
        assert_eq!(one("v: !!int 0400")["v"], Yaml::Integer(256));
        for real in ["1.5", "09", "1e3", ".5", "-1.", "1_000.5", "+.inf"] {
            assert_eq!(
                one(&format!("v: {real}"))["v"],
                Yaml::Real(real.into()),
                "{real}"
            );
        }
        for string in ["1.2.3", "e3", "1e", "inf", "."] {
            assert_eq!(
                one(&format!("v: {string}"))["v"],
                Yaml::String(string.into()),
                "{string}"
            );
        }
        assert_eq!(one("v: 0x")["v"], Yaml::String("0x".into()));
        assert_eq!(one("v: 1:20")["v"], Yaml::String("1:20".into()));
    }

    #[test]
    fn booleans_and_nulls_are_yaml_1_1() {
        let d = one("a: yes\nb: 'yes'\nc: [off, !!str no]\nd: Null\ne: ~\nf:\n");
        assert_eq!(d["a"], Yaml::Boolean(true));
        assert_eq!(d["b"], Yaml::String("yes".into()));
        assert_eq!(d["c"][0], Yaml::Boolean(false));
        assert_eq!(d["c"][1], Yaml::String("no".into()));
        for k in ["d", "e", "f"] {
            assert_eq!(d[k], Yaml::Null, "{k}");
        }
    }

    #[test]
    fn aliases_are_copies_and_merges_merge() {
        let d = one("base: &b {x: 1, y: 0400}\nm:\n  <<: *b\n  y: 2\nl: [&v on, *v]\n");
        assert_eq!(d["m"], one("{y: 2, x: 1}"));
        assert_eq!(d["l"], one("[true, true]"));
        // Earlier sources win; the mapping's own keys win over all.
        let d = one("a: &a {k: 1, a: 1}\nb: &b {k: 2, b: 2}\nm: {<<: [*a, *b], z: 0}\n");
        assert_eq!(d["m"], one("{z: 0, k: 1, a: 1, b: 2}"));
        // A quoted "<<" is an ordinary key.
        assert_eq!(one("'<<': 1")["<<"], Yaml::Integer(1));
    }

    #[test]
    fn merges_kubectl_would_read_otherwise_are_refused() {
        let e = load("a: &a {k: 1}\nm:\n  k: 2\n  <<: *a\n").unwrap_err();
        assert!(
            e.problem.contains("key `k` is set both before `<<`"),
            "{e:?}"
        );
        assert_eq!((e.line, e.column), (4, 3), "the `<<` line: {e:?}");
        let e = load("m:\n  <<: 3\n").unwrap_err();
        assert!(e.problem.contains("merges a mapping"), "{e:?}");
        let e = load("m: {a: 1, a: 2}\n").unwrap_err();
        assert!(e.problem.contains("duplicated key"), "{e:?}");
    }

    #[test]
    fn strings_that_would_read_otherwise_are_known() {
        for s in ["0400", "0b1", "1_000", "yes", "Null", "+.inf", "1.5", ""] {
            assert!(!plain_reads_as_itself(s), "{s}");
        }
        for s in ["payments", "0x", "1:20", "a b"] {
            assert!(plain_reads_as_itself(s), "{s}");
        }
    }
}
