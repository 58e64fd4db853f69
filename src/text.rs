//! Text helpers shared by every module that quotes untrusted text.

/// The first `n` characters of `s`, with `…` where it was cut: the redactor relies
/// on that mark to find a secret cut in half (see `Redactor::redact`).
pub fn trunc(s: &str, n: usize) -> String {
    let mut t: String = s.chars().take(n).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

/// `name` as part of an environment variable's name: upper case, every character
/// other than an ASCII letter or digit as `_` (`vllm-a` -> `VLLM_A`).
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// An error and each of its causes, joined by `: ` (a TLS failure sits several causes
/// below "error sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    message
}

/// How a character a terminal would act on is shown instead: control characters
/// (escape sequences, carriage returns, backspaces, newlines) and bidirectional
/// overrides (which reorder what follows them) as `\u{..}`; `None` for the rest.
pub fn escaped(c: char) -> Option<String> {
    let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    (c != '\t' && (c.is_control() || bidi)).then(|| c.escape_unicode().to_string())
}

/// `s` safe to print on a terminal: see [`escaped`].
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| escaped(c).is_some()) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match escaped(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_controls_are_shown_not_obeyed() {
        assert_eq!(
            super::printable("a\u{1b}[2Jb\rc\u{202e}d\te"),
            "a\\u{1b}[2Jb\\u{d}c\\u{202e}d\te"
        );
        assert!(matches!(super::printable("plain é"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn cuts_by_characters_and_marks_the_cut() {
        assert_eq!(super::trunc("héllo", 2), "hé…");
        assert_eq!(super::trunc("hi", 2), "hi");
    }

    #[test]
    fn env_names_are_upper_snake() {
        assert_eq!(super::env_name("vllm-a.2"), "VLLM_A_2");
    }
}
