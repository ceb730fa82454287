//! YAML in and out for `sidekey inject`: multi-document load and dump, and small builders for mappings.

pub use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, EventReceiver, Parser};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{YamlEmitter, YamlLoader};

/// Where the YAML text stops making sense, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

/// Every document of a YAML stream, aliases resolved, in order; a plain
/// `yes`/`no`/`on`/`off`/`y`/`n` is a boolean, as kubectl reads it.
pub fn load(text: &str) -> Result<Vec<Yaml>, SyntaxError> {
    let mut docs = YamlLoader::load_from_str(text).map_err(|e| SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        problem: e.info().to_owned(),
    })?;
    yaml11_booleans(&mut docs, text);
    Ok(docs)
}

/// kubectl reads YAML 1.1, where a plain `yes` is `true`; this reader
/// (YAML 1.2) keeps it a string, which the output would quote, changing
/// its meaning. So the plain, untagged ones become booleans. The scalars
/// of the parser's events are matched to the tree's in document order;
/// with aliases (copies in the tree, one event) or any mismatch, nothing
/// changes.
fn yaml11_booleans(docs: &mut [Yaml], text: &str) {
    let mut seen = Scalars::default();
    if Parser::new_from_str(text).load(&mut seen, true).is_err() || seen.alias {
        return;
    }
    let mut fixed = docs.to_vec();
    let mut events = seen.scalars.into_iter();
    if fixed.iter_mut().all(|d| mark(d, &mut events)) && events.next().is_none() {
        docs.clone_from_slice(&fixed);
    }
}

/// Each scalar event's text and whether it was plain and untagged.
#[derive(Default)]
struct Scalars {
    scalars: Vec<(String, bool)>,
    alias: bool,
}

impl EventReceiver for Scalars {
    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Scalar(v, style, _, tag) => {
                let plain = style == TScalarStyle::Plain && tag.is_none();
                self.scalars.push((v, plain));
            }
            Event::Alias(_) => self.alias = true,
            _ => {}
        }
    }
}

/// Walks `node` in document order alongside `events`; false on a mismatch.
fn mark(node: &mut Yaml, events: &mut impl Iterator<Item = (String, bool)>) -> bool {
    match node {
        Yaml::Array(items) => items.iter_mut().all(|i| mark(i, events)),
        Yaml::Hash(h) => h
            .iter_mut()
            .all(|(k, v)| mark(&mut k.clone(), events) && mark(v, events)),
        scalar => {
            let Some((text, plain)) = events.next() else {
                return false;
            };
            if let Yaml::String(s) = scalar {
                if *s != text {
                    return false;
                }
                if let (true, Some(b)) = (plain, yaml11_bool(s)) {
                    *scalar = Yaml::Boolean(b);
                }
            }
            true
        }
    }
}

fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// The documents as one YAML stream, each opened by `---`; multi-line
/// strings (a config map's file) keep their literal block form.
pub fn dump(docs: &[Yaml]) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    for doc in docs {
        let mut emitter = YamlEmitter::new(&mut out);
        emitter.multiline_strings(true);
        emitter.dump(doc).map_err(|_| std::fmt::Error)?;
        out.push('\n');
    }
    // The emitter indents the empty lines of a literal block; without that
    // trailing whitespace the stream reads the same, unless a line's spaces
    // were content, which the reload tells.
    let trimmed: String = out
        .lines()
        .map(|l| if l.trim().is_empty() { "" } else { l })
        .flat_map(|l| [l, "\n"])
        .collect();
    match load(&trimmed) {
        Ok(again) if again == docs => Ok(trimmed),
        _ => Ok(out),
    }
}

/// A string scalar.
pub fn s(value: &str) -> Yaml {
    Yaml::String(value.to_owned())
}

/// A mapping with its keys in the order given.
pub fn map<const N: usize>(pairs: [(&str, Yaml); N]) -> Yaml {
    Yaml::Hash(pairs.into_iter().map(|(k, v)| (s(k), v)).collect())
}

/// A sequence.
pub fn list<const N: usize>(items: [Yaml; N]) -> Yaml {
    Yaml::Array(items.into())
}

/// A sequence of strings.
pub fn strings(items: &[&str]) -> Yaml {
    Yaml::Array(items.iter().map(|i| s(i)).collect())
}

/// The value under `key` in a mapping, if `node` is one and holds it.
pub fn get<'a>(node: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    node.as_hash()?.get(&s(key))
}

/// The value under `key`, mutable.
pub fn get_mut<'a>(node: &'a mut Yaml, key: &str) -> Option<&'a mut Yaml> {
    node.as_mut_hash()?.get_mut(&s(key))
}

/// The string under `key`, if it is one.
pub fn get_str<'a>(node: &'a Yaml, key: &str) -> Option<&'a str> {
    get(node, key)?.as_str()
}

/// The sequence under `key` of the mapping `hash`, created empty when absent
/// or null. `None` when something else is there.
pub fn list_mut<'a>(hash: &'a mut Hash, key: &str) -> Option<&'a mut Vec<Yaml>> {
    let slot = hash.entry(s(key)).or_insert(Yaml::Null);
    if slot.is_null() {
        *slot = Yaml::Array(Vec::new());
    }
    slot.as_mut_vec()
}

/// Puts `item` into the list of named items (containers, volumes, env), in
/// place of the one with the same `name`, else at the end. True when it
/// replaced a different item.
pub fn upsert_named(items: &mut Vec<Yaml>, item: Yaml) -> bool {
    let name = get_str(&item, "name").map(str::to_owned);
    let same = |i: &&mut Yaml| get_str(i, "name") == name.as_deref();
    match items.iter_mut().find(same) {
        Some(slot) => {
            let changed = *slot != item;
            *slot = item;
            changed
        }
        None => {
            items.push(item);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_survives_load_and_dump() {
        let text = "a: 1\nb: \"8080\"\nc: |\n  x = 1\n  y = 2\n---\nd: [true, \"yes\"]\n";
        let docs = load(text).unwrap();
        assert_eq!(docs.len(), 2);
        let out = dump(&docs).unwrap();
        assert_eq!(load(&out).unwrap(), docs);
        assert!(out.contains("c: |\n"), "{out}");
    }

    #[test]
    fn blank_lines_of_a_block_lose_their_indent_but_content_spaces_stay() {
        let docs = load("c: |\n  x\n\n  y\n").unwrap();
        assert_eq!(dump(&docs).unwrap(), "---\nc: |\n  x\n\n  y\n");
        let spaces = vec![map([("c", s("x\n   \ny\n"))])];
        assert_eq!(load(&dump(&spaces).unwrap()).unwrap(), spaces);
    }

    #[test]
    fn plain_yaml_1_1_booleans_read_as_kubectl_reads_them() {
        let text = "a: yes\nb: \"yes\"\nc: [off, 'on', !!str no]\nd: {e: N}\nf:\n";
        let docs = load(text).unwrap();
        let want =
            load("a: true\nb: \"yes\"\nc: [false, \"on\", \"no\"]\nd: {e: false}\nf:\n").unwrap();
        assert_eq!(docs, want);
        // With an alias the events and the tree do not line up: left as read.
        let aliased = load("a: &x yes\nb: *x\n").unwrap();
        assert_eq!(get_str(&aliased[0], "a"), Some("yes"));
        // Empty documents and multi-line blocks keep the alignment.
        let docs = load("---\n---\nk: |\n  yes\nv: on\n").unwrap();
        assert_eq!(get(&docs[1], "v"), Some(&Yaml::Boolean(true)));
        assert_eq!(get_str(&docs[1], "k"), Some("yes\n"));
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let e = load("a: 1\nb: [unclosed\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }

    #[test]
    fn upsert_replaces_by_name() {
        let mut items = vec![map([("name", s("a")), ("v", s("1"))])];
        assert!(upsert_named(
            &mut items,
            map([("name", s("a")), ("v", s("2"))])
        ));
        assert!(!upsert_named(
            &mut items,
            map([("name", s("a")), ("v", s("2"))])
        ));
        assert!(!upsert_named(&mut items, map([("name", s("b"))])));
        assert_eq!(items.len(), 2);
        assert_eq!(get_str(&items[0], "v"), Some("2"));
    }
}
