//! YAML in and out for `sidekey inject`: multi-document load (as kubectl reads it) and dump, and small builders for mappings.

pub use yaml_rust2::Yaml;
use yaml_rust2::YamlEmitter;
use yaml_rust2::yaml::Hash;

pub use super::yaml11::load;

/// The documents as one YAML stream, each opened by `---`; multi-line
/// strings (a config map's file) keep their literal block form. The stream
/// reads back, as kubectl reads it, as `docs`, or this fails.
pub fn dump(docs: &[Yaml]) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    for doc in docs {
        let mut emitter = YamlEmitter::new(&mut out);
        emitter.multiline_strings(true);
        emitter.dump(&quoted(doc)).map_err(|_| std::fmt::Error)?;
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
    let reads_as_docs = |text: &str| load(text).is_ok_and(|again| again == docs);
    if reads_as_docs(&trimmed) {
        Ok(trimmed)
    } else if reads_as_docs(&out) {
        Ok(out)
    } else {
        Err(std::fmt::Error)
    }
}

/// `node` with every string that YAML 1.1 would read as something else when
/// written plain (`"0400"`, `"0b1"`, `"1_000"`, `"Null"`) made a
/// double-quoted scalar. The emitter only quotes what YAML 1.2 would
/// misread, and writes a `Real`'s text as it is, so the quoted text goes
/// in as one.
fn quoted(node: &Yaml) -> Yaml {
    match node {
        Yaml::String(s) if !super::yaml11::plain_reads_as_itself(s) => {
            Yaml::Real(serde_json::Value::from(s.as_str()).to_string())
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(quoted).collect()),
        Yaml::Hash(h) => Yaml::Hash(h.iter().map(|(k, v)| (quoted(k), quoted(v))).collect()),
        other => other.clone(),
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
    fn values_kubectl_reads_by_yaml_1_1_survive_the_round_trip() {
        let text =
            "m: 0400\nq: \"0400\"\nb: yes\nz: \"Null\"\nu: \"1_000\"\nr: 09\nk: {\"on\": 1}\n";
        let docs = load(text).unwrap();
        let out = dump(&docs).unwrap();
        assert_eq!(load(&out).unwrap(), docs, "{out}");
        assert!(out.contains("m: 256\n"), "{out}");
        for kept in [
            "q: \"0400\"",
            "b: true",
            "z: \"Null\"",
            "u: \"1_000\"",
            "r: 09",
        ] {
            assert!(out.contains(kept), "{kept}: {out}");
        }
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
