//! No import cycles between the library's modules: reads every file of `harness/src`, lists
//! which module refers to which (`use crate::x`, `crate::x::item` in code, `super::y` inside
//! a folder), and fails on a cycle between top-level modules (`lab` <-> `topology`), or
//! between the files of one folder (`scenario::run` <-> `scenario::steps`). Comments and
//! string literals do not count; doc links are comments.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Pairs of modules that may still refer to each other, each with who removes the cycle.
/// Delete an entry with its cycle: the test then keeps it from coming back.
const ALLOWED: &[(&str, &str)] = &[];

/// A module: `program`, or `scenario::run` for a file of a folder (`scenario` for its mod.rs).
type Module = String;

#[test]
fn no_import_cycles_between_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph.contains_key("scenario::run") && graph.contains_key("kernel::program"),
        "the module list misses files: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    // Every cycle, then the same without the allowed pairs' edges.
    let all = all_cycles(&graph);
    for cycle in &all {
        eprintln!("cycle: {}", cycle.join(" <-> "));
    }
    let mut allowed_graph = graph.clone();
    for (a, b) in ALLOWED {
        for (from, to) in [(a, b), (b, a)] {
            if let Some(edges) = allowed_graph.get_mut(*from) {
                edges.remove(*to);
            }
        }
    }
    let forbidden: Vec<String> = all_cycles(&allowed_graph)
        .iter()
        .map(|c| c.join(" <-> "))
        .collect();
    assert!(
        forbidden.is_empty(),
        "import cycles between modules:\n  {}\nedges:\n{}",
        forbidden.join("\n  "),
        describe(&graph)
    );
    // An allowed pair whose cycle is gone is stale: delete it so the cycle cannot come back.
    for (a, b) in ALLOWED {
        assert!(
            all.iter()
                .any(|c| c.iter().any(|m| m == a) && c.iter().any(|m| m == b)),
            "{a} <-> {b} is no longer a cycle: delete it from ALLOWED"
        );
    }
}

/// The cycles between top-level modules (every file of a folder counts as the folder), then
/// those between the files of each folder.
fn all_cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let mut found = Vec::new();
    let top = collapse(graph, |m| m.split("::").next().unwrap_or(m).to_owned());
    found.extend(cycles(&top));
    // Between the files of one folder.
    let folders: BTreeSet<&str> = graph
        .keys()
        .filter_map(|m| m.split_once("::"))
        .map(|(f, _)| f)
        .collect();
    for folder in folders {
        let inner: BTreeMap<Module, BTreeSet<Module>> = graph
            .iter()
            .filter(|(m, _)| in_folder(m, folder))
            .map(|(m, to)| {
                let to = to
                    .iter()
                    .filter(|t| in_folder(t, folder))
                    .cloned()
                    .collect();
                (m.clone(), to)
            })
            .collect();
        found.extend(cycles(&inner));
    }
    found
}

/// A self-check: the parser finds a cycle where there is one and reads use trees.
#[test]
fn the_checker_sees_cycles_and_use_trees() {
    let mut edges = BTreeMap::new();
    for (m, code) in [
        (
            "lab",
            "use crate::{frame::Endpoints, topology::{EndName, Topology}};",
        ),
        ("topology", "fn f() { crate::lab::random_run_id(); }"),
        (
            "frame",
            "// use crate::lab;\nconst S: &str = \"crate::lab\";",
        ),
        (
            "pin",
            "use crate::{clean as sweeper};\n#[cfg(test)]\nmod tests { use crate::privileges; }",
        ),
    ] {
        let code = without_tests(&strip(code));
        edges.insert(m.to_owned(), references("", &code, &BTreeSet::new()));
    }
    assert_eq!(
        edges["pin"],
        set(&["clean"]),
        "aliases and test modules do not count"
    );
    assert_eq!(edges["lab"], set(&["frame", "topology"]));
    assert_eq!(edges["topology"], set(&["lab"]));
    assert!(
        edges["frame"].is_empty(),
        "comments and strings do not count"
    );
    assert_eq!(
        cycles(&edges),
        vec![vec!["lab".to_owned(), "topology".to_owned()]]
    );
}

fn set(items: &[&str]) -> BTreeSet<Module> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn in_folder(module: &str, folder: &str) -> bool {
    module == folder
        || module
            .strip_prefix(folder)
            .is_some_and(|r| r.starts_with("::"))
}

/// Every module of `src` and the modules it refers to (itself left out).
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = rust_files(src);
    let modules: BTreeSet<Module> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let code = without_tests(&strip(
            &std::fs::read_to_string(file).expect("readable source"),
        ));
        let mut to = references(&super_of(src, file), &code, &modules);
        to.remove(&module);
        graph.entry(module).or_insert_with(BTreeSet::new).extend(to);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/program.rs` is `program`; `src/scenario/run.rs` and `src/scenario/run/x.rs` are
/// `scenario::run`; `src/scenario/mod.rs` is `scenario`; lib.rs and main.rs are no module.
fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let relative = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => None,
        [one] => Some(one.clone()),
        [folder, file, ..] if file == "mod" => Some(folder.clone()),
        [folder, file, ..] => Some(format!("{folder}::{file}")),
        [] => None,
    }
}

/// The module `super::` names in `file`: the crate root (`""`) for `src/a.rs` and
/// `src/a/mod.rs`, `a` for `src/a/b.rs`, `a::b` for `src/a/b/c.rs`.
fn super_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.pop();
    parts.join("::")
}

/// The modules `code` (of a module whose `super` is `parent`, comments and strings removed)
/// refers to: the first path segment after `crate::` (and the second, when `known` has
/// `first::second`), and the module `super::` leads to.
fn references(parent: &str, code: &str, known: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut found = BTreeSet::new();
    let resolve = |path: &[String]| -> Option<Module> {
        let first = path.first()?;
        let two = path.get(1).map(|second| format!("{first}::{second}"));
        match two {
            Some(two) if known.contains(&two) => Some(two),
            _ => Some(first.clone()),
        }
    };
    for path in paths(code) {
        match path.first().map(String::as_str) {
            Some("crate") => found.extend(resolve(&path[1..])),
            // `super::x` is the parent's `x` (the crate's `x` at the top).
            Some("super") => {
                let rest: Vec<String> = parent
                    .split("::")
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .chain(path[1..].iter().cloned())
                    .collect();
                found.extend(resolve(&rest));
            }
            _ => {}
        }
    }
    found
}

/// Every path in `code`, with `use` trees expanded (`crate::{a::b, c}` gives `crate::a::b` and
/// `crate::c`): only their leading segments matter here.
fn paths(code: &str) -> Vec<Vec<String>> {
    let tokens = tokens(code);
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // `pub(super)` and `pub(crate)` are visibilities, not paths.
        let visibility = i >= 2 && tokens[i - 1] == "(" && tokens[i - 2] == "pub";
        if (tokens[i] == "crate" || tokens[i] == "super") && !visibility {
            let (mut found, next) = path_at(&tokens, i);
            paths.append(&mut found);
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

/// The paths starting at `tokens[i]` (a tree when a `{` follows a `::`), and the index after.
fn path_at(tokens: &[String], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                let mut out = Vec::new();
                i += 1;
                while i < tokens.len() && tokens[i] != "}" {
                    if tokens[i] == "," {
                        i += 1;
                        continue;
                    }
                    let (inner, next) = path_at(tokens, i);
                    for p in inner {
                        out.push(prefix.iter().cloned().chain(p).collect());
                    }
                    i = next.max(i + 1);
                }
                return (out, i + 1);
            }
            Some(word) if word.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                prefix.push(word.to_owned());
                i += 1;
                match tokens.get(i).map(String::as_str) {
                    Some("::") => i += 1,
                    // `crate::host::clean as sweeper`: the alias is no path.
                    Some("as") => return (vec![prefix], i + 2),
                    _ => return (vec![prefix], i),
                }
            }
            _ => return (vec![prefix], i),
        }
    }
}

/// Words, `::`, and single punctuation characters.
fn tokens(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// `code` without comments, string literals and character literals (lifetimes stay).
fn strip(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"' | '#')) && !word_before(&chars, i) {
            // A raw string: r"...", r#"..."#, ...
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let close = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else {
                (chars.get(i + 2) == Some(&'\'')).then_some(i + 2)
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `code` (already stripped) without its `#[cfg(test)] mod x { ... }` blocks: what tests of a
/// module use is not a dependency of the module.
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    while let Some(start) = out.find("#[cfg(test)]") {
        let rest = &out[start + "#[cfg(test)]".len()..];
        let trimmed = rest.trim_start();
        let Some(open) = trimmed
            .starts_with("mod ")
            .then(|| trimmed.find('{'))
            .flatten()
        else {
            // Not a test module: keep the item, drop only the attribute.
            out.replace_range(start..start + "#[cfg(test)]".len(), "");
            continue;
        };
        let body = start + "#[cfg(test)]".len() + (rest.len() - trimmed.len()) + open;
        let mut depth = 0;
        let mut end = out.len();
        for (i, c) in out[body..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = body + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(start..end, "");
    }
    out
}

fn word_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The graph with each module renamed by `name` (edges inside one name dropped).
fn collapse(
    graph: &BTreeMap<Module, BTreeSet<Module>>,
    name: impl Fn(&str) -> Module,
) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to) in graph {
        let from = name(from);
        let to: BTreeSet<Module> = to.iter().map(|t| name(t)).filter(|t| *t != from).collect();
        out.entry(from).or_default().extend(to);
    }
    out
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

fn describe(graph: &BTreeMap<Module, BTreeSet<Module>>) -> String {
    graph
        .iter()
        .map(|(m, to)| {
            format!(
                "  {m} -> {}",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
