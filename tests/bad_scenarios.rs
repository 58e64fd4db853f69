//! Golden tests: every bad scenario under `tests/fixtures/bad/` must be refused with
//! exactly the message in its `.err` file (file:line:col, field path, hint).
//! Regenerate after an intended change with `GATEPROBE_BLESS=1 cargo test --test bad_scenarios`.

use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/bad")
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn render(path: &Path) -> String {
    let source = std::fs::read_to_string(path).expect("fixture");
    // No environment: fixtures must not depend on the machine.
    match gateprobe::scenario::load_str(path, &source, &|_| None) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_bad_scenario_has_its_exact_message() {
    let bless = std::env::var_os("GATEPROBE_BLESS").is_some();
    let fixtures = fixtures();
    assert!(fixtures.len() >= 6, "fixtures missing");
    let mut mismatches = Vec::new();
    for f in fixtures {
        let got = render(&f);
        let golden = f.with_extension("err");
        if bless {
            std::fs::write(&golden, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_else(|_| panic!("missing {}", golden.display()));
        if got != want {
            mismatches.push(format!("--- {}\n{want}+++ got\n{got}", golden.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn positioned_errors_name_line_column_and_help() {
    for f in fixtures() {
        if f.file_name().is_some_and(|n| n == "empty.yaml") {
            continue;
        }
        let got = render(&f);
        // The position is in the scenario, or in a file it names (a gateway profile).
        let located = got.lines().any(|l| {
            l.trim_start().strip_prefix("--> ").is_some_and(|loc| {
                let mut parts = loc.rsplitn(3, ':');
                let col = parts.next().unwrap_or_default();
                let line = parts.next().unwrap_or_default();
                !col.is_empty() && col.parse::<u32>().is_ok() && line.parse::<u32>().is_ok()
            })
        });
        assert!(located, "{} has no file:line:col:\n{got}", f.display());
        assert!(
            got.contains(&f.display().to_string()),
            "{} is not named:\n{got}",
            f.display()
        );
        assert!(got.contains("= help:"), "{} has no hint:\n{got}", f.display());
    }
}
