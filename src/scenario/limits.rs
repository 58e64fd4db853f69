//! Limits on scenario and profile files, so hostile or runaway YAML (a billion-laughs alias
//! bomb, thousands of nested brackets, a multi-megabyte scalar, `/dev/zero`) is refused with
//! a clear error instead of exhausting memory, time or the stack.
//!
//! A scenario is a small hand-written file (the quickstart is 4 KiB), so every limit here is
//! far above what a real one needs.

use std::path::Path;

pub(crate) use crate::files::Accept;
use crate::files::{ReadError, read_bounded};

use serde_saphyr::budget::BudgetBreach;

use super::error::ScenarioError;
use super::raw::Pos;

/// The largest scenario or profile file read, in bytes (4 MiB).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences (block or flow).
pub const MAX_DEPTH: usize = 32;
/// Most YAML nodes (mappings, sequences, scalars), counting every alias expansion.
pub const MAX_NODES: usize = 100_000;
/// Most bytes of scalar text, counting every alias expansion.
pub const MAX_SCALAR_BYTES: usize = 16 * 1024 * 1024;

const SMALL_FILE_HINT: &str = "scenarios and gateway profiles are small hand-written files (scenarios/quickstart.yaml is 4 KiB): check that this is the file you meant";
const ALIAS_HINT: &str =
    "look for anchors (`&name`) repeated through aliases (`*name`) or merge keys (`<<`), or for generated content";

/// The YAML options every scenario and profile is parsed with: the library's defaults with
/// the tighter budget above.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_total_scalar_bytes = MAX_SCALAR_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Reads a whole file as UTF-8 text, refusing one over [`MAX_FILE_BYTES`] without reading
/// past the limit. `what` names the file in messages ("scenario", "gateway profile").
/// `accept` says whether a pipe or device will do (a path given on the command line)
/// or only a regular file (a file a scenario names).
pub(crate) fn read_text(path: &Path, what: &str, accept: Accept) -> Result<String, ScenarioError> {
    let bytes = read_bounded(path, MAX_FILE_BYTES, accept).map_err(|e| match e {
        ReadError::TooLarge { size, .. } => too_large(path, what, size.and_then(|s| usize::try_from(s).ok())),
        e => ScenarioError::whole_file(path, format!("cannot read the {what}: {e}")),
    })?;
    String::from_utf8(bytes).map_err(|e| not_utf8(path, what, e.as_bytes(), e.utf8_error()))
}

/// Refuses text over [`MAX_FILE_BYTES`] (text that did not come through [`read_text`]).
pub(crate) fn check_size(path: &Path, what: &str, text: &str) -> Result<(), ScenarioError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(path, what, Some(text.len())));
    }
    Ok(())
}

fn too_large(path: &Path, what: &str, size: Option<usize>) -> ScenarioError {
    let limit = MAX_FILE_BYTES / (1024 * 1024);
    let message = match size {
        Some(n) => format!("the {what} file is {n} bytes, over the {limit} MiB ({MAX_FILE_BYTES}-byte) limit"),
        None => format!("the {what} file is over the {limit} MiB ({MAX_FILE_BYTES}-byte) limit"),
    };
    ScenarioError::whole_file(path, message).hint(SMALL_FILE_HINT)
}

/// An error at the first byte that is not UTF-8.
fn not_utf8(path: &Path, what: &str, bytes: &[u8], e: std::str::Utf8Error) -> ScenarioError {
    let valid = &bytes[..e.valid_up_to()];
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    // The valid prefix is UTF-8, so its characters can be counted.
    let col = String::from_utf8_lossy(&valid[line_start..]).chars().count() + 1;
    let pos = Pos {
        line: u32::try_from(line).unwrap_or(0),
        col: u32::try_from(col).unwrap_or(0),
    };
    let bad = bytes[e.valid_up_to()];
    ScenarioError::at(
        path,
        &String::from_utf8_lossy(bytes),
        pos,
        format!("the {what} is not UTF-8 text: byte 0x{bad:02x} here does not decode"),
    )
    .hint("save the file as UTF-8")
}

/// The message and hint for a YAML error that a limit above caused, if it is one.
pub(crate) fn breach_message(e: &serde_saphyr::Error) -> Option<(String, &'static str)> {
    let depth = || {
        (
            format!("the YAML nests mappings and sequences deeper than {MAX_DEPTH} levels"),
            "scenarios and profiles are a few levels deep: look for unclosed `[` or `{`, or for runaway indentation",
        )
    };
    let Some(breach) = budget_breach(e) else {
        // The parser's own nesting guard fires before the budget sees the events.
        let text = e.without_snippet().to_string();
        return text.starts_with("recursion limit exceeded").then(depth);
    };
    Some(match breach {
        BudgetBreach::Depth { .. } => depth(),
        BudgetBreach::Nodes { .. } => (
            format!("the YAML has more than {MAX_NODES} nodes, counting every alias expansion"),
            ALIAS_HINT,
        ),
        BudgetBreach::ScalarBytes { .. } => (
            format!(
                "the YAML's text adds up to more than {} MiB, counting every alias expansion",
                MAX_SCALAR_BYTES / (1024 * 1024)
            ),
            ALIAS_HINT,
        ),
        BudgetBreach::Aliases { aliases } => (
            format!("the YAML has more than {} aliases", aliases.saturating_sub(1)),
            ALIAS_HINT,
        ),
        BudgetBreach::Anchors { anchors } => (
            format!("the YAML has more than {} anchors", anchors.saturating_sub(1)),
            ALIAS_HINT,
        ),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => (
            format!(
                "the YAML repeats its {anchors} anchors through {aliases} aliases, more than a hand-written file needs"
            ),
            ALIAS_HINT,
        ),
        other => (format!("the YAML exceeds a size limit ({other:?})"), ALIAS_HINT),
    })
}

/// The budget breach behind an error, looking through the wrappers that add locations.
fn budget_breach(e: &serde_saphyr::Error) -> Option<&BudgetBreach> {
    match e.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => Some(breach),
        serde_saphyr::Error::AliasError { error, .. } => budget_breach(error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, b"version: 1\nname: caf\xe9\n").unwrap();
        let err = read_text(&path, "scenario", Accept::Any).unwrap_err();
        assert_eq!(err.pos, Some(Pos { line: 2, col: 10 }));
        assert!(err.message.contains("0xe9"), "{}", err.message);
    }

    #[test]
    fn oversized_files_are_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES + 10]).unwrap();
        let err = read_text(&path, "scenario", Accept::Any).unwrap_err();
        assert!(
            err.message
                .starts_with(&format!("the scenario file is {} bytes", MAX_FILE_BYTES + 10)),
            "{}",
            err.message
        );
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES]).unwrap();
        assert_eq!(read_text(&path, "scenario", Accept::Any).unwrap().len(), MAX_FILE_BYTES);
    }

    #[test]
    fn oversized_text_names_size_and_limit() {
        let text = "#".repeat(MAX_FILE_BYTES + 1);
        let err = check_size(Path::new("big.yaml"), "scenario", &text).unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "the scenario file is {} bytes, over the 4 MiB (4194304-byte) limit",
                MAX_FILE_BYTES + 1
            )
        );
        assert!(check_size(Path::new("ok.yaml"), "scenario", &text[1..]).is_ok());
    }
}
