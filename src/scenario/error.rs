//! Scenario errors that say where (file:line:col, field path) and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use super::raw::Pos;
use crate::text::{escaped, printable};

/// Carets drawn under a token at most; a longer token is marked by its start.
const MAX_CARETS: usize = 80;
/// Characters of a long source line kept before the caret; the rest is shown as `…`.
const CONTEXT_BEFORE: usize = 60;
/// Characters of a message or field path kept; a value echoed from a huge input is cut.
const MAX_TEXT: usize = 400;

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
    /// The source line, for the caret display. A long line is cut around the caret, each
    /// cut shown as `…`.
    pub source_line: Option<String>,
    /// Characters cut from the start of `source_line` (replaced by one `…`).
    pub cut_before: usize,
    /// How many characters the caret underlines.
    pub width: usize,
}

impl ScenarioError {
    /// An error at `pos` in `source`.
    pub fn at(file: &Path, source: &str, pos: Pos, message: impl Into<String>) -> Self {
        let source_line = (pos.line > 0)
            .then(|| yaml_lines(source).nth(pos.line as usize - 1).map(str::to_owned))
            .flatten();
        let width = source_line
            .as_deref()
            .map(|l| token_width(l, pos.col as usize).min(MAX_CARETS))
            .unwrap_or(1);
        // A huge line (minified or hostile input) is cut before and after the caret.
        let (source_line, cut_before) = match source_line {
            Some(l) => {
                let (l, cut) = window(&l, pos.col as usize, width);
                (Some(l), cut)
            }
            None => (None, 0),
        };
        ScenarioError {
            file: file.to_owned(),
            pos: (pos.line > 0).then_some(pos),
            field: None,
            message: clip(message.into()),
            hint: None,
            source_line,
            cut_before,
            width,
        }
    }

    /// An error about the file as a whole (unreadable, empty).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_owned(),
            pos: None,
            field: None,
            message: clip(message.into()),
            hint: None,
            source_line: None,
            cut_before: 0,
            width: 1,
        }
    }

    /// Adds the field path.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(clip(field.into()));
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error without anything it quoted from its file: no source line, no field
    /// path, and every quoted piece of the message (`` `…` ``, `"…"`) left out. For a
    /// file a scenario names (a gateway profile): the scenario may name any file,
    /// `/proc/self/environ` or a key file, and an error must not show its content.
    pub fn without_content(mut self) -> Self {
        self.source_line = None;
        self.cut_before = 0;
        self.field = None;
        let mut out = String::with_capacity(self.message.len());
        let mut open: Option<char> = None;
        for c in self.message.chars() {
            match open {
                Some(q) if c == q => {
                    out.push('…');
                    out.push(c);
                    open = None;
                }
                Some(_) => {}
                None if c == '`' || c == '"' => {
                    out.push(c);
                    open = Some(c);
                }
                None => out.push(c),
            }
        }
        if open.is_some() {
            out.push('…');
        }
        self.message = out;
        self
    }
}

/// The lines of YAML text as YAML positions count them: `\n`, `\r\n` and a lone `\r` each
/// end one (`str::lines` does not split at a lone `\r`).
pub(crate) fn yaml_lines(source: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(source);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\n', '\r']) {
            Some(i) => {
                let next = if s[i..].starts_with("\r\n") { i + 2 } else { i + 1 };
                rest = Some(&s[next..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// `line` cut to about `CONTEXT_BEFORE` characters before 1-based `col` and a little past
/// the caret's end, and how many characters were cut from its start.
fn window(line: &str, col: usize, width: usize) -> (String, usize) {
    let before = col.saturating_sub(1);
    let cut = if before > CONTEXT_BEFORE + 20 {
        before - CONTEXT_BEFORE
    } else {
        0
    };
    let keep = (before - cut + width + 20).max(160);
    let mut rest = line.chars().skip(cut);
    let mut out: String = if cut > 0 { "…".into() } else { String::new() };
    out.extend(rest.by_ref().take(keep));
    // Cut the end only when that saves more than the marker costs.
    let tail: String = rest.by_ref().take(41).collect();
    if tail.chars().count() > 40 {
        out.push('…');
    } else {
        out.push_str(&tail);
    }
    (out, cut)
}

/// `text` cut to `MAX_TEXT` characters, marked with `…`.
fn clip(text: String) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => {
            let mut t = text;
            t.truncate(i);
            t.push('…');
            t
        }
        None => text,
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
        // Every piece may quote the file: characters a terminal would act on (an
        // escape sequence in a scenario) are shown, not obeyed.
        let file = self.file.display().to_string();
        writeln!(f, "error: {}", printable(&self.message))?;
        match self.pos {
            Some(p) => writeln!(f, "  --> {}:{}:{}", printable(&file), p.line, p.col)?,
            None => writeln!(f, "  --> {}", printable(&file))?,
        }
        let pad = " ".repeat(
            self.pos
                .filter(|_| self.source_line.is_some())
                .map_or(1, |p| p.line.to_string().len()),
        );
        if let (Some(p), Some(line)) = (self.pos, &self.source_line) {
            let num = p.line.to_string();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {}", printable(line))?;
            // A cut start is one `…` on screen.
            let shown_before =
                (p.col.saturating_sub(1) as usize).saturating_sub(self.cut_before) + usize::from(self.cut_before > 0);
            let lead: String = line
                .chars()
                .take(shown_before)
                .map(|c| match escaped(c) {
                    _ if c == '\t' => "\t".to_owned(),
                    Some(e) => " ".repeat(e.chars().count()),
                    None => " ".to_owned(),
                })
                .collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.width))?;
        }
        if let Some(field) = &self.field {
            writeln!(f, "{pad} = field: {}", printable(field))?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad} = help: {}", printable(hint))?;
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
    fn long_lines_are_cut_around_the_caret() {
        let line = format!(
            "checks: [{}, \"bogus\", {}]",
            "routing, ".repeat(10_000),
            "auth, ".repeat(10_000)
        );
        let col = line.find("\"bogus").unwrap() + 1;
        let pos = Pos {
            line: 2,
            col: u32::try_from(col).unwrap(),
        };
        let e = ScenarioError::at(
            Path::new("s.yaml"),
            &format!("version: 1\n{line}\n"),
            pos,
            "x".repeat(100_000),
        );
        let shown = e.to_string();
        assert!(shown.len() < 2_000, "{} bytes shown", shown.len());
        let lines: Vec<&str> = shown.lines().collect();
        let (src, carets) = (lines[3], lines[4]);
        assert!(src.starts_with("2 | …") && src.ends_with('…'), "{src}");
        // The caret still stands under the token.
        let at = carets.find('^').unwrap();
        assert_eq!(src.chars().skip(at).take(7).collect::<String>(), "\"bogus\"");
        assert_eq!(carets.trim_end().len() - at, 7);
        assert_eq!(e.message.chars().count(), MAX_TEXT + 1);
    }

    #[test]
    fn lines_end_as_yaml_ends_them() {
        let lines: Vec<&str> = yaml_lines("a\nb\r\nc\rd\r\re\n").collect();
        assert_eq!(lines, ["a", "b", "c", "d", "", "e", ""]);
        // Found by tests/properties.rs: a lone `\r` starts a new line for the YAML parser,
        // so the caret must show that line.
        let e = ScenarioError::at(
            Path::new("s.yaml"),
            "\n\rload:\n  - name: l\n",
            Pos { line: 4, col: 5 },
            "m",
        );
        assert_eq!(e.source_line.as_deref(), Some("  - name: l"));
    }

    #[test]
    fn short_lines_are_kept_whole() {
        let pos = Pos { line: 1, col: 9 };
        let e = ScenarioError::at(Path::new("s.yaml"), "version: x\n", pos, "bad");
        assert_eq!(e.source_line.as_deref(), Some("version: x"));
        assert_eq!(e.cut_before, 0);
    }

    #[test]
    fn content_is_withheld_on_request() {
        let e = ScenarioError::at(
            Path::new("p.yaml"),
            "SECRET=hunter2\n",
            Pos { line: 1, col: 1 },
            "invalid type: string \"SECRET=hunter2\", expected `x`, and `unclosed",
        )
        .field("expect.SECRET=hunter2")
        .without_content();
        let shown = e.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(e.message, "invalid type: string \"…\", expected `…`, and `…");
        assert!(shown.contains("p.yaml:1:1"), "{shown}");
    }

    #[test]
    fn terminal_escapes_in_a_scenario_are_shown_not_obeyed() {
        let e = ScenarioError::at(
            Path::new("s.yaml"),
            "name: \u{1b}[2Jx: y\n",
            Pos { line: 1, col: 11 },
            "unknown key `\u{1b}[2Jx`",
        )
        .field("\u{1b}]0;title\u{7}");
        let shown = e.to_string();
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}'), "{shown:?}");
        assert!(shown.contains("\\u{1b}[2Jx"), "{shown}");
        // The caret still stands under the token, past the escape's wider rendering.
        let lines: Vec<&str> = shown.lines().collect();
        let at = lines[4].find('^').unwrap();
        assert_eq!(&lines[3][at..at + 2], "x:", "{shown}");
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
