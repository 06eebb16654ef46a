//! The runtime's layers depend only downward: `greenlet/` (1) names neither `hub/` nor
//! `api/`; `hub/` (2) does not name `api/` (3). This test reads the sources of
//! `runtime/src` and fails on any file of a lower layer that names a higher layer's
//! module (`crate::hub::...`, `use crate::{hub, ..}`, `super::super::api`) or an item
//! the crate root re-exports from a higher layer (`crate::spawn`, `crate::green_local!`).
//!
//! Comments are not read (documentation may point at any item), nor are unit-test
//! modules (`#[cfg(test)] mod tests { .. }` and `tests.rs` files): tests may exercise a
//! layer through the API above it without making the library depend on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The layer of a top-level module of `runtime/src`.
fn module_layer(name: &str) -> Option<u8> {
    match name {
        "greenlet" => Some(1),
        "hub" => Some(2),
        "api" => Some(3),
        _ => None,
    }
}

/// The module path of a source file relative to `src` (`hub/run.rs` is `[hub, run]`,
/// `hub/mod.rs` is `[hub]`).
fn module_path(rel: &str) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

/// The code of a source file without comments and unit-test modules.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next_is_mod = lines.get(i + 1).is_some_and(|l| {
            let l = l.trim_start();
            (l.starts_with("mod ") || l.starts_with("pub(crate) mod ")) && l.ends_with('{')
        });
        if line.trim() == "#[cfg(test)]" && next_is_mod {
            // Skip the module, to its closing brace.
            let mut depth = 0i32;
            let mut j = i + 1;
            while j < lines.len() {
                depth += lines[j].matches('{').count() as i32;
                depth -= lines[j].matches('}').count() as i32;
                j += 1;
                if depth <= 0 {
                    break;
                }
            }
            i = j;
            continue;
        }
        let code = match line.find("//") {
            Some(k) => &line[..k],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
        i += 1;
    }
    out
}

/// The names the crate root re-exports (`pub use api::spawn::{spawn, ..}`) and the
/// macros exported from a layer (`#[macro_export] macro_rules! green_local`), with the
/// layer they come from.
fn root_names(lib: &str, sources: &[(String, String)]) -> HashMap<String, u8> {
    let mut names = HashMap::new();
    let code = code_of(lib);
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let first = rest.split("::").next().unwrap_or("");
        let Some(layer) = module_layer(first) else {
            continue;
        };
        // The last segment, or each name of a `{a, b}` list, or the `as` name.
        let tail = match rest.find('{') {
            Some(k) => rest[k + 1..].trim_end_matches('}').to_string(),
            None => rest.rsplit("::").next().unwrap_or("").to_string(),
        };
        for item in tail.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item);
            let name = name.rsplit("::").next().unwrap_or(name).trim();
            if !name.is_empty() {
                names.insert(name.to_string(), layer);
            }
        }
    }
    for (rel, text) in sources {
        let Some(layer) = module_path(rel).first().and_then(|m| module_layer(m)) else {
            continue;
        };
        let code = code_of(text);
        let mut exported = false;
        for line in code.lines() {
            let line = line.trim();
            if line == "#[macro_export]" {
                exported = true;
            } else if let Some(rest) = line.strip_prefix("macro_rules! ") {
                if exported {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.insert(name, layer);
                }
                exported = false;
            }
        }
    }
    names
}

/// Every path a file names from the crate root: `crate::a::b`, each name of
/// `crate::a::{b, c}`, and `super::..` paths that climb to the crate root.
fn root_paths(rel: &str, code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    for (start, _) in code.match_indices("crate::") {
        if code[..start].ends_with('$') {
            continue; // `$crate::` in a macro: the macro's own crate.
        }
        let rest = &code[start + "crate::".len()..];
        let mut segs = Vec::new();
        let mut cur = rest;
        loop {
            let seg: String = cur.chars().take_while(|&c| is_ident(c)).collect();
            if seg.is_empty() {
                if let Some(list) = cur.strip_prefix('{') {
                    let list = &list[..list.find('}').unwrap_or(list.len())];
                    for item in list.split(',') {
                        let name: String =
                            item.trim().chars().take_while(|&c| is_ident(c)).collect();
                        if !name.is_empty() {
                            let mut p = segs.clone();
                            p.push(name);
                            paths.push(p);
                        }
                    }
                }
                break;
            }
            cur = &cur[seg.len()..];
            segs.push(seg);
            match cur.strip_prefix("::") {
                Some(c) => cur = c,
                None => {
                    paths.push(segs.clone());
                    break;
                }
            }
        }
    }
    let here = module_path(rel);
    for (start, _) in code.match_indices("super::") {
        if code[..start].ends_with("super::") || code[..start].ends_with(|c: char| is_ident(c)) {
            continue; // Counted from the first `super` of the chain.
        }
        let mut ups = 0;
        let mut cur = &code[start..];
        while let Some(c) = cur.strip_prefix("super::") {
            ups += 1;
            cur = c;
        }
        if ups >= here.len() {
            let name: String = cur.chars().take_while(|&c| is_ident(c)).collect();
            paths.push(vec![name]);
        }
    }
    paths
}

/// The ways the file `rel` (of layer `layer`) names a higher layer.
fn violations(rel: &str, text: &str, roots: &HashMap<String, u8>) -> Vec<String> {
    let Some(layer) = module_path(rel).first().and_then(|m| module_layer(m)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for path in root_paths(rel, &code_of(text)) {
        let first = &path[0];
        let named = module_layer(first).or_else(|| roots.get(first).copied());
        if let Some(named) = named
            && named > layer
        {
            found.push(format!(
                "{rel} (layer {layer}) names crate::{} (layer {named})",
                path.join("::")
            ));
        }
    }
    found
}

/// The `.rs` files under `dir`, with their path relative to `src`.
fn sources(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        if path.is_dir() {
            sources(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(src)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((rel, text));
            }
        }
    }
}

fn runtime_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    sources(&src, &src, &mut all);
    all.sort();
    all
}

#[test]
fn no_layer_names_a_layer_above_it() {
    let all = runtime_sources();
    let lib = all
        .iter()
        .find(|(rel, _)| rel == "lib.rs")
        .map(|(_, t)| t.clone())
        .expect("runtime/src/lib.rs");
    let roots = root_names(&lib, &all);
    assert!(
        roots.get("spawn") == Some(&3),
        "the root's names are read: {roots:?}"
    );
    let mut checked = 0;
    let mut found = Vec::new();
    for (rel, text) in &all {
        if rel.ends_with("tests.rs") {
            continue;
        }
        checked += 1;
        found.extend(violations(rel, text, &roots));
    }
    assert!(checked > 20, "only {checked} files read");
    assert!(
        found.is_empty(),
        "upward dependencies:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_each_way_of_naming_a_higher_layer() {
    let roots: HashMap<String, u8> = [("spawn".to_string(), 3), ("sleep".to_string(), 2)]
        .into_iter()
        .collect();
    let wrong = [
        ("greenlet/record.rs", "use crate::hub::park::Unparker;"),
        ("greenlet/record.rs", "use crate::{api, greenlet};"),
        ("greenlet/record.rs", "fn f() { crate::sleep(d) }"),
        ("hub/run.rs", "let h = crate::spawn(|| ());"),
        ("hub/run.rs", "use crate::api::sync::{Event, Queue};"),
        ("greenlet/stack/mod.rs", "use super::super::hub::Hub;"),
    ];
    for (rel, code) in wrong {
        assert!(!violations(rel, code, &roots).is_empty(), "{rel}: {code}");
    }
    let fine = [
        ("hub/run.rs", "use crate::greenlet::thread::Thread;"),
        ("api/spawn.rs", "use crate::hub::with_hub; crate::sleep(d);"),
        ("greenlet/record.rs", "/// See [`spawn`](crate::spawn)."),
        ("greenlet/record.rs", "use super::thread::HOT;"),
        (
            "greenlet/record.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::api::spawn::spawn;\n}\n",
        ),
    ];
    for (rel, code) in fine {
        assert!(violations(rel, code, &roots).is_empty(), "{rel}: {code}");
    }
}
