//! YAML bombs: exponential alias expansion, deep nesting, huge scalars and huge files are
//! refused quickly with an error that names the problem, never with a stack overflow, an
//! out-of-memory abort or a hang. The deep-nesting and huge-file cases also go through the
//! binary, where a stack overflow would kill the process instead of failing an assertion.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use gateprobe::scenario::{MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES};

/// A hang guard, not a timing assertion: every case here takes well under a second.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Loads `text` on its own thread (a stack overflow aborts the test binary, which fails
/// the run too) and returns the rendered error; panics if the text was accepted or the
/// loader hung.
fn refused(text: String) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = gateprobe::scenario::load_str(Path::new("bomb.yaml"), &text, &|_| None);
        let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(Err(e)) => e,
        Ok(Ok(())) => panic!("the bomb was accepted"),
        Err(_) => panic!("the loader did not finish within {HANG_GUARD:?}"),
    }
}

/// The first line of a rendered error: `error: <message>`.
fn headline(err: &str) -> &str {
    err.lines().next().unwrap_or_default()
}

/// Asserts the error points at `bomb.yaml:<line>:<col>`.
fn assert_located(err: &str) {
    let located = err.lines().any(|l| {
        l.trim_start()
            .strip_prefix("--> bomb.yaml:")
            .is_some_and(|lc| lc.split(':').all(|n| n.parse::<u32>().is_ok_and(|n| n > 0)))
    });
    assert!(located, "no bomb.yaml:line:col in\n{err}");
}

/// Billion laughs with merge keys, which a typed mapping (`features`) does expand: each
/// level merges the previous one ten times, so level 9 replays 10^9 nodes.
fn merge_laughs(levels: usize) -> String {
    let mut s = String::from("version: 1\nname: laughs\nfeatures: {<<: [&m0 {duo_chat: disabled}");
    for i in 1..levels {
        let refs = vec![format!("*m{}", i - 1); 10].join(", ");
        s.push_str(&format!(", &m{i} {{<<: [{refs}]}}"));
    }
    s.push_str("]}\n");
    s
}

#[test]
fn billion_laughs_through_merge_keys_hits_the_node_limit() {
    let err = refused(merge_laughs(9));
    assert_eq!(
        headline(&err),
        format!("error: the YAML has more than {MAX_NODES} nodes, counting every alias expansion")
    );
    assert_located(&err);
    assert!(err.contains("= help: look for anchors"), "{err}");
}

#[test]
fn billion_laughs_with_nested_sequences_is_never_expanded() {
    // The classic shape: ten levels of lists of aliases to the level below. A scenario has
    // no list of lists, so the loader stops at the first nested one instead of expanding.
    let mut s =
        String::from("version: 1\nname: laughs\nchecks: [&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        s.push_str(&format!(", &a{i} [{refs}]"));
    }
    s.push_str(", *a9]\n");
    let err = refused(s);
    assert_eq!(headline(&err), "error: expected string scalar");
    assert_located(&err);
}

#[test]
fn alias_amplification_of_a_large_scalar_hits_the_text_limit() {
    // 1 MiB of text repeated through 100 aliases is 100 MiB once expanded.
    let s = format!(
        "version: 1\nname: amp\nchecks: [&big \"{}\", {}]\n",
        "x".repeat(1 << 20),
        vec!["*big"; 100].join(", ")
    );
    let err = refused(s);
    assert_eq!(
        headline(&err),
        "error: the YAML's text adds up to more than 16 MiB, counting every alias expansion"
    );
    assert_located(&err);
}

#[test]
fn an_alias_storm_hits_the_alias_limit() {
    let s = format!("version: 1\nchecks: [&a routing, {}]\n", vec!["*a"; 60_000].join(", "));
    let err = refused(s);
    assert!(headline(&err).starts_with("error: the YAML has more than"), "{err}");
    assert!(headline(&err).ends_with("aliases"), "{err}");
    assert_located(&err);
}

#[test]
fn deep_flow_nesting_is_refused_at_the_depth_limit() {
    let depth_error = format!("error: the YAML nests mappings and sequences deeper than {MAX_DEPTH} levels");
    for text in [
        format!("version: 1\nchecks: {}\n", "[".repeat(100_000)),
        format!("version: 1\nbackends: {}\n", "{".repeat(100_000)),
        format!("{}\n", "[{".repeat(50_000)),
        format!("checks: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        let err = refused(text);
        assert_eq!(headline(&err), depth_error, "{err}");
        assert_located(&err);
        assert!(err.contains("= help: "), "{err}");
    }
}

#[test]
fn deep_block_nesting_is_refused() {
    // 2000 levels of block mappings, one space deeper each (2 MB).
    let mut s = String::from("version: 1\nfeatures:\n");
    for i in 1..2_000 {
        s.push_str(&" ".repeat(i));
        s.push_str("a:\n");
    }
    let err = refused(s);
    assert_located(&err);
    // Block nesting at the top level, where no field type stops it first.
    let mut s = String::new();
    for i in 0..2_000 {
        s.push_str(&" ".repeat(i));
        s.push_str("- \n");
    }
    let err = refused(s);
    assert_located(&err);
}

#[test]
fn huge_scalars_and_texts_are_refused_by_size() {
    for text in [
        format!("version: 1\nname: \"{}\"\n", "x".repeat(8 << 20)),
        format!("version: 1\ndescription: |\n  {}\n", "x".repeat(8 << 20)),
        format!("version: 1\n{}: 1\n", "k".repeat(8 << 20)),
        format!("version: 1\n# {}\n", "c".repeat(8 << 20)),
    ] {
        let len = text.len();
        let err = refused(text);
        assert_eq!(
            headline(&err),
            format!("error: the scenario file is {len} bytes, over the 4 MiB ({MAX_FILE_BYTES}-byte) limit")
        );
        assert!(err.contains("--> bomb.yaml\n"), "{err}");
    }
}

#[test]
fn huge_values_under_the_size_limit_do_not_flood_the_error() {
    // A 3 MiB unknown check family on one line: the error quotes a bounded slice of it.
    let err = refused(format!("version: 1\nchecks: [{}]\n", "z".repeat(3 << 20)));
    assert!(err.len() < 4_000, "the error is {} bytes", err.len());
    assert!(
        err.starts_with("error: unknown check family `zzz"),
        "{}",
        headline(&err)
    );
}

fn gateprobe_validate(path: &Path) -> (Option<i32>, String) {
    let (tx, rx) = mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_gateprobe"))
            .arg("validate")
            .arg(&path)
            .output()
            .expect("gateprobe runs");
        let _ = tx.send((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
    });
    rx.recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("gateprobe validate did not finish within {HANG_GUARD:?}"))
}

#[test]
fn the_binary_refuses_deep_nesting_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deep.yaml");
    std::fs::write(&path, format!("version: 1\nchecks: {}\n", "[".repeat(100_000))).expect("write");
    let (code, stderr) = gateprobe_validate(&path);
    // Exit 2 is bad input; a stack overflow would be a signal (no code) or 134.
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: the YAML nests mappings and sequences deeper than {MAX_DEPTH} levels\n  --> {}:2:",
            path.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("overflow") && !stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_binary_refuses_billion_laughs_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("laughs.yaml");
    std::fs::write(&path, merge_laughs(9)).expect("write");
    let (code, stderr) = gateprobe_validate(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nodes, counting every alias expansion"), "{stderr}");
}

#[test]
fn the_binary_refuses_a_huge_file_without_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.yaml");
    // A sparse 1 GiB file: reading it whole would take a gigabyte of memory.
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(1 << 30).expect("set_len");
    drop(f);
    let (code, stderr) = gateprobe_validate(&path);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().take(2).collect::<Vec<_>>(),
        [
            format!("error: the scenario file is 1073741824 bytes, over the 4 MiB ({MAX_FILE_BYTES}-byte) limit"),
            format!("  --> {}", path.display()),
        ]
    );
    assert!(stderr.contains("= help: "), "{stderr}");
}

#[test]
fn the_binary_refuses_an_endless_file() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    let (code, stderr) = gateprobe_validate(zero);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: the scenario file is over the 4 MiB (4194304-byte) limit\n  --> /dev/zero"),
        "{stderr}"
    );
}

#[test]
fn a_gateway_profile_bomb_is_refused_and_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("deep.yaml"), format!("{}\n", "[".repeat(10_000))).expect("write profile");
    let scenario = "version: 1\ngateway:\n  kind: openai\n  url: http://127.0.0.1:4000\n  profile: deep.yaml\n";
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, scenario).expect("write scenario");
    let err = gateprobe::scenario::load(&path).expect_err("refused").to_string();
    assert!(
        err.starts_with(&format!(
            "error: the YAML nests mappings and sequences deeper than {MAX_DEPTH} levels\n  --> {}:1:",
            dir.path().join("deep.yaml").display()
        )),
        "{err}"
    );
}
