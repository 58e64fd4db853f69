//! The shape of the code, checked: the top-level modules of `src/` form a directed
//! acyclic graph (each `crate::<module>` a module names is an edge), and no logic
//! file is over 600 lines of code (not counting blank lines, comments and its tests).
//! `cargo test --test architecture -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/check/auth.rs` -> `check`).
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix("src").expect("under src");
    let first = rel.components().next().expect("component");
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The code of a file before its unit tests.
fn code(text: &str) -> &str {
    text.find("\n#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Every `crate::<name>` a file mentions outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code(text).lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let name: String = rest[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = &rest[i + 7..];
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let top = top_module(&f);
        if matches!(top.as_str(), "lib" | "main") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let edges = g.entry(top.clone()).or_default();
        for u in uses(&text) {
            if u != top {
                edges.insert(u);
            }
        }
    }
    g
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        v: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == v) {
            let mut c = path[i..].to_vec();
            c.push(v.to_owned());
            return Some(c);
        }
        if done.contains(v) {
            return None;
        }
        path.push(v.to_owned());
        for w in g.get(v).into_iter().flatten() {
            if let Some(c) = visit(g, w, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(v.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys().find_map(|v| visit(g, v, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_form_no_cycle() {
    let g = graph();
    for (m, uses) in &g {
        println!("{m} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(g.len() >= 20, "modules missing: {g:?}");
    if let Some(c) = cycle(&g) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn no_logic_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut long = Vec::new();
    for f in files {
        // Files of tests only (`tests.rs` beside a module) are not logic.
        if f.file_name()
            .is_some_and(|n| n == "tests.rs" || n.to_string_lossy().ends_with("_tests.rs"))
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let n = code(&text)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .count();
        if n > 600 {
            long.push(format!("{} ({n} lines)", f.display()));
        }
    }
    assert!(long.is_empty(), "split by responsibility: {long:?}");
}
