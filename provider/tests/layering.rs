//! The provider's layering, held to by a test: every module's imports point down the list in
//! `src/lib.rs`, no module imports one that imports it back (at any depth, not just between
//! top-level modules), nothing beneath the web layer knows HTTP, and no request handler is
//! longer than a screenful.
//!
//! Written as a small scanner over the source text rather than with a Rust parser: it reads
//! the paths that start with `crate::`, `super::` or `self::` (in `use` trees, code and doc
//! links alike), resolves them to the module file they name, and ignores `#[cfg(test)]` items
//! (tests may reach anything). Good enough for this code base's style, and it fails loudly
//! when it finds an edge it cannot place.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, bottom up: a module may import only from modules of a lower rank
/// (or from its own top-level module).
const RANKS: [(&str, u32); 15] = [
    ("paths", 0),
    ("types", 0),
    ("config", 1),
    ("store", 2),
    ("audit", 3),
    ("keys", 4),
    ("feed", 4),
    ("context", 5),
    ("logout", 6),
    ("users", 7),
    ("protocol", 8),
    ("maintenance", 9),
    ("web", 10),
    ("app", 11),
    ("cli", 12),
];

/// Crates that are HTTP serving: only `web`, `app` and `cli` may name them.
const HTTP_CRATES: [&str; 7] = [
    "axum",
    "axum_extra",
    "hyper",
    "hyper_util",
    "tower",
    "tower_http",
    "askama",
];

type Module = Vec<String>;

struct Source {
    module: Module,
    path: PathBuf,
    text: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap();
            let mut module: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                continue;
            }
            let text = without_test_items(&std::fs::read_to_string(&path).unwrap());
            out.push(Source { module, path, text });
        }
    }
    out
}

/// The text without `#[cfg(test)]` items (a `mod … { … }`, a `use …;`, an `fn … { … }`).
fn without_test_items(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let brace = item.find('{');
        let semi = item.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => s + 1,
            (Some(b), _) => b + matching_brace(&item[b..]),
            (None, Some(s)) => s + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The length of the `{ … }` block `text` starts with.
fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths of the use-tree (or plain path) that starts at `text` (just after `prefix::`).
fn paths_at(text: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    tree(&chars, &mut i)
}

fn skip_space(c: &[char], i: &mut usize) {
    while *i < c.len() && c[*i].is_whitespace() {
        *i += 1;
    }
}

/// `a::b::c`, `a::{b, c::d}`, `*`, `self` (the path so far), `x as y`.
fn tree(c: &[char], i: &mut usize) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    loop {
        skip_space(c, i);
        if *i < c.len() && c[*i] == '{' {
            *i += 1;
            let mut all = Vec::new();
            loop {
                skip_space(c, i);
                if *i >= c.len() || c[*i] == '}' {
                    *i += 1;
                    break;
                }
                for p in tree(c, i) {
                    let mut full = prefix.clone();
                    full.extend(p.into_iter().filter(|s| s != "self"));
                    all.push(full);
                }
                skip_space(c, i);
                if *i < c.len() && c[*i] == ',' {
                    *i += 1;
                }
            }
            return all;
        }
        let start = *i;
        while *i < c.len() && is_ident(c[*i]) {
            *i += 1;
        }
        if start == *i {
            // `*` or the end of the path.
            if *i < c.len() && c[*i] == '*' {
                *i += 1;
            }
            return vec![prefix];
        }
        prefix.push(c[start..*i].iter().collect());
        skip_space(c, i);
        if c.get(*i) == Some(&':') && c.get(*i + 1) == Some(&':') {
            *i += 2;
            continue;
        }
        // `as alias`: skip it.
        if c[*i..].iter().take(3).collect::<String>() == "as " {
            *i += 3;
            skip_space(c, i);
            while *i < c.len() && is_ident(c[*i]) {
                *i += 1;
            }
        }
        return vec![prefix];
    }
}

/// Every module path `source` refers to, resolved to absolute segments.
fn references(source: &Source) -> Vec<Module> {
    let text = &source.text;
    let mut out = Vec::new();
    for prefix in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let mut base: Module = match prefix {
                "crate::" => Vec::new(),
                "self::" => source.module.clone(),
                _ => parent(source),
            };
            let mut rest = &text[at + prefix.len()..];
            while let Some(more) = rest.strip_prefix("super::") {
                base.pop();
                rest = more;
            }
            for p in paths_at(rest) {
                let mut full = base.clone();
                full.extend(p);
                out.push(full);
            }
        }
    }
    out
}

/// The module `super` names: the parent of the file's module (for `a/b.rs`, `a`; for
/// `a/mod.rs`, which is module `a`, the crate root).
fn parent(source: &Source) -> Module {
    let mut m = source.module.clone();
    m.pop();
    m
}

/// The deepest known module `path` lies in.
fn owner(path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| modules.contains(m))
}

fn graph(sources: &[Source]) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules: BTreeSet<Module> = sources.iter().map(|s| s.module.clone()).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for s in sources {
        let targets = edges.entry(s.module.clone()).or_default();
        for r in references(s) {
            if let Some(target) = owner(&r, &modules)
                && target != s.module
            {
                targets.insert(target);
            }
        }
    }
    edges
}

fn name(m: &Module) -> String {
    m.join("::")
}

#[test]
fn imports_point_down_the_layers() {
    let sources = sources();
    let rank: BTreeMap<&str, u32> = RANKS.into_iter().collect();
    let mut wrong = Vec::new();
    for (from, targets) in graph(&sources) {
        let from_top = from[0].as_str();
        let from_rank = *rank
            .get(from_top)
            .unwrap_or_else(|| panic!("module {from_top} has no rank: add it to RANKS and lib.rs"));
        for to in targets {
            let to_top = to[0].as_str();
            if to_top == from_top {
                continue;
            }
            let to_rank = rank.get(to_top).copied().unwrap_or(u32::MAX);
            if to_rank >= from_rank {
                wrong.push(format!("{} -> {}", name(&from), name(&to)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports pointing up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = graph(&sources());
    // Depth-first search for a cycle, reporting its modules.
    fn visit(
        m: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.clone());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.clone());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.clone());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            let names: Vec<String> = cycle.iter().map(name).collect();
            panic!("import cycle: {}", names.join(" -> "));
        }
    }
    assert!(
        edges.len() > 40,
        "the scan found the modules ({})",
        edges.len()
    );
}

#[test]
fn nothing_beneath_the_web_layer_knows_http() {
    let mut wrong = Vec::new();
    for s in sources() {
        if ["web", "app", "cli"].contains(&s.module[0].as_str()) {
            continue;
        }
        for krate in HTTP_CRATES {
            let named = s.text.match_indices(&format!("{krate}::")).any(|(at, _)| {
                !s.text[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| is_ident(c) || c == ':')
            });
            if named {
                wrong.push(format!("{} uses {krate}", s.path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn request_handlers_stay_short() {
    const MAX_LINES: usize = 40;
    let mut long = Vec::new();
    for s in sources() {
        let handlers = s.module.len() > 1 && ["oauth", "pages"].contains(&s.module[1].as_str());
        if s.module[0] != "web" || !handlers {
            continue;
        }
        let lines: Vec<&str> = s.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let fn_name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            let end = lines[i..]
                .iter()
                .position(|l| *l == "}")
                .map_or(lines.len(), |p| i + p);
            if end - i + 1 > MAX_LINES {
                long.push(format!(
                    "{}: {fn_name} ({} lines)",
                    s.path.display(),
                    end - i + 1
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "handlers over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_reads_use_trees() {
    let paths = paths_at("a::{b, c::{d, self}, e as f}, g;");
    let names: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(names, ["a::b", "a::c::d", "a::c", "a::e"]);
    let cut = without_test_items("x\n#[cfg(test)]\nmod tests {\n fn y() { crate::z(); }\n}\nw");
    assert_eq!(cut, "x\n\nw");
}
