//! Scenario errors that say where (file:line:col, field path) and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use super::raw::Pos;

/// Carets drawn under a token at most; a longer token is marked by its start.
const MAX_CARETS: usize = 80;

/// A problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// Where in the file; `None` for errors about the file as a whole.
    pub pos: Option<Pos>,
    /// Dotted path of the field (`self_hosted_models[1].identifier`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The source line, for the caret display.
    pub source_line: Option<String>,
    /// How many characters the caret underlines.
    pub width: usize,
}

impl ScenarioError {
    /// An error at `pos` in `source`.
    pub fn at(file: &Path, source: &str, pos: Pos, message: impl Into<String>) -> Self {
        let source_line = (pos.line > 0)
            .then(|| source.lines().nth(pos.line as usize - 1).map(str::to_owned))
            .flatten();
        let width = source_line
            .as_deref()
            .map(|l| token_width(l, pos.col as usize).min(MAX_CARETS))
            .unwrap_or(1);
        // A huge line (minified or hostile input) is cut after the caret's end.
        let source_line = source_line.map(|l| {
            let keep = (pos.col as usize + width + 20).max(160);
            if l.chars().count() > keep + 40 {
                l.chars().take(keep).chain(['…']).collect()
            } else {
                l
            }
        });
        ScenarioError {
            file: file.to_owned(),
            pos: (pos.line > 0).then_some(pos),
            field: None,
            message: message.into(),
            hint: None,
            source_line,
            width,
        }
    }

    /// An error about the file as a whole (unreadable, empty).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_owned(),
            pos: None,
            field: None,
            message: message.into(),
            hint: None,
            source_line: None,
            width: 1,
        }
    }

    /// Adds the field path.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The width of the YAML token starting at 1-based `col`: a quoted string, or a plain
/// scalar or key up to `:`, `#` or the line's end.
fn token_width(line: &str, col: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(col.saturating_sub(1)).collect();
    let Some(&first) = rest.first() else { return 1 };
    if first == '"' || first == '\'' {
        let end = rest[1..].iter().position(|&c| c == first).map_or(rest.len(), |i| i + 2);
        return end.max(1);
    }
    let mut n = 0;
    while n < rest.len() {
        let c = rest[n];
        if c == '#' || (c == ':' && rest.get(n + 1).is_none_or(|c| c.is_whitespace())) {
            break;
        }
        n += 1;
    }
    let trimmed = rest[..n].iter().rev().skip_while(|c| c.is_whitespace()).count();
    trimmed.max(1)
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match self.pos {
            Some(p) => writeln!(f, "  --> {}:{}:{}", self.file.display(), p.line, p.col)?,
            None => writeln!(f, "  --> {}", self.file.display())?,
        }
        let pad = " ".repeat(
            self.pos
                .filter(|_| self.source_line.is_some())
                .map_or(1, |p| p.line.to_string().len()),
        );
        if let (Some(p), Some(line)) = (self.pos, &self.source_line) {
            let num = p.line.to_string();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {line}")?;
            let lead: String = line
                .chars()
                .take(p.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.width))?;
        }
        if let Some(field) = &self.field {
            writeln!(f, "{pad} = field: {field}")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = help: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// "did you mean `x`?" for a misspelled name, when a candidate is close enough.
pub fn did_you_mean<'a>(got: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(got, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_width_covers_keys_and_quoted_values() {
        assert_eq!(token_width("  code_completion: a", 3), 15);
        assert_eq!(token_width("  endpoint: \"http://x:1/v1\" # c", 13), 15);
        assert_eq!(token_width("  identifier: vertex/x  # c", 15), 8);
        assert_eq!(token_width("", 1), 1);
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(
            did_you_mean("code_completion", ["code_completions", "duo_chat"]).as_deref(),
            Some("did you mean `code_completions`?")
        );
        assert_eq!(did_you_mean("zzz", ["code_completions"]), None);
    }
}
