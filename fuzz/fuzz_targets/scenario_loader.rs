//! The scenario loader and the gateway-profile parser on arbitrary text: no panic, no
//! stack overflow, no runaway allocation, and every error points inside the text.

#![no_main]

use std::path::Path;

use gateprobe::scenario::profile::Profile;
use gateprobe::scenario::ScenarioError;
use libfuzzer_sys::fuzz_target;

/// An error's position, when it has one, is a line of `text` and a column at most one past
/// that line's end.
fn check_located(e: &ScenarioError, text: &str) {
    let shown = e.to_string();
    assert!(shown.starts_with("error: "), "{shown}");
    let Some(pos) = e.pos else { return };
    // The file named is `fuzz.yaml` or a gateway profile the text names.
    if e.file != Path::new("fuzz.yaml") {
        return;
    }
    // YAML ends a line at `\n`, `\r\n` or a lone `\r`; the position after a final line
    // break is line N+1, column 1.
    let line = text
        .split("\r\n")
        .flat_map(|l| l.split(['\n', '\r']))
        .nth(pos.line as usize - 1)
        .unwrap_or_else(|| panic!("line {} is past the end:\n{shown}", pos.line));
    let len = line.chars().count();
    assert!(
        pos.col >= 1 && pos.col as usize <= len + 1,
        "column {} of a {len}-character line:\n{shown}",
        pos.col
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| (name.len() % 2 == 0).then(|| format!("v-{name}"));
    if let Err(e) = gateprobe::scenario::load_str(Path::new("fuzz.yaml"), text, &env) {
        check_located(&e, text);
    }
    if let Err(e) = Profile::parse(Path::new("fuzz.yaml"), text, "fuzz.yaml") {
        check_located(&e, text);
    }
});
