//! Where a secret hides in text: the forms a gateway or a log line can give it (as
//! written, JSON-escaped, percent-encoded, base64 or base64url at any alignment inside
//! a longer encoded value) and any start of one of them of [`MIN_PREFIX`] characters
//! or more (a key cut for display, `sk-live-01...`), found in one pass over the text
//! by an Aho-Corasick automaton over the forms' first characters.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// The shortest start of a secret (in characters) taken for the secret: shorter ones
/// give little away and match ordinary text too often.
pub const MIN_PREFIX: usize = 8;

/// Marks of text cut short: a start of a secret right before one is taken even where
/// it ends at a word of the secret (see [`Matcher::spans`]).
const CUT_MARKS: [&str; 2] = ["…", "..."];

/// One form of one secret.
#[derive(Debug)]
struct Form {
    /// Index of the secret it encodes.
    secret: usize,
    /// The form's text.
    text: String,
}

/// A found secret: byte range in the text and the secret's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Index of the secret (in the order given to [`Matcher::new`]).
    pub secret: usize,
}

/// Every form of a set of secrets, ready to search.
#[derive(Debug)]
pub struct Matcher {
    automaton: AhoCorasick,
    /// Per pattern of the automaton, the forms that start with it.
    anchors: Vec<Vec<usize>>,
    forms: Vec<Form>,
    /// Length in bytes of the longest form.
    longest: usize,
}

impl Matcher {
    /// A matcher for `secrets` (values); `None` when there is nothing to find.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Option<Matcher> {
        let mut forms: Vec<Form> = Vec::new();
        for (i, value) in secrets.into_iter().enumerate() {
            for text in forms_of(value) {
                if !forms.iter().any(|f| f.text == text) {
                    forms.push(Form { secret: i, text });
                }
            }
        }
        let mut patterns: Vec<&str> = Vec::new();
        let mut anchors: Vec<Vec<usize>> = Vec::new();
        for (fi, f) in forms.iter().enumerate() {
            let anchor = head(&f.text, MIN_PREFIX);
            match patterns.iter().position(|p| *p == anchor) {
                Some(k) => anchors[k].push(fi),
                None => {
                    patterns.push(anchor);
                    anchors.push(vec![fi]);
                }
            }
        }
        if patterns.is_empty() {
            return None;
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .ok()?;
        let longest = forms.iter().map(|f| f.text.len()).max().unwrap_or(0);
        Some(Matcher {
            automaton,
            anchors,
            forms,
            longest,
        })
    }

    /// Bytes a streaming search must keep from one window to the next so that no
    /// match is decided without all the text it could span (see [`super::Scanner`]).
    pub fn reach(&self) -> usize {
        self.longest + "...".len()
    }

    /// The secrets in `hay`, as non-overlapping spans in text order; spans that overlap
    /// are joined into one (named after the longest), so a redaction covers them all.
    ///
    /// A form counts whole, or by a start of [`MIN_PREFIX`] characters or more, unless
    /// that start ends exactly where a word of the secret ends and is not followed by a
    /// cut mark: a token `quickstart-instance-token-4f2a` must not claim the word
    /// `quickstart` of a scenario named so.
    pub fn spans(&self, hay: &[u8]) -> Vec<Span> {
        let mut found: Vec<(Span, usize)> = Vec::new();
        for m in self.automaton.find_overlapping_iter(hay) {
            let start = m.start();
            for &fi in &self.anchors[m.pattern().as_usize()] {
                let f = &self.forms[fi];
                let n = common_prefix(&hay[start..], &f.text);
                if n < f.text.len() && !partial_counts(&f.text, n, &hay[start + n..]) {
                    continue;
                }
                let span = Span {
                    start,
                    end: start + n,
                    secret: f.secret,
                };
                found.push((span, n));
            }
        }
        found.sort_by_key(|(s, _)| (s.start, std::cmp::Reverse(s.end)));
        let mut out: Vec<Span> = Vec::new();
        let mut longest_in_group = 0;
        for (s, len) in found {
            match out.last_mut() {
                Some(last) if s.start < last.end => {
                    last.end = last.end.max(s.end);
                    if len > longest_in_group {
                        longest_in_group = len;
                        last.secret = s.secret;
                    }
                }
                _ => {
                    longest_in_group = len;
                    out.push(s);
                }
            }
        }
        out
    }
}

/// The first `n` characters of `s` (all of it when shorter).
fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// How many leading bytes `hay` shares with `form`, cut back to a character boundary
/// of `form` (so a match never ends inside a character).
fn common_prefix(hay: &[u8], form: &str) -> usize {
    let mut n = hay.iter().zip(form.as_bytes()).take_while(|(a, b)| a == b).count();
    while !form.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// Whether the first `n` bytes of `form`, found with `after` following them, count as
/// the secret: long enough, and not merely a word the secret starts with.
fn partial_counts(form: &str, n: usize, after: &[u8]) -> bool {
    if form[..n].chars().count() < MIN_PREFIX {
        return false;
    }
    let word_end = form[..n].chars().next_back().is_some_and(char::is_alphanumeric)
        && form[n..].chars().next().is_some_and(|c| !c.is_alphanumeric());
    !word_end || CUT_MARKS.iter().any(|m| after.starts_with(m.as_bytes()))
}

/// The forms a secret takes in text: as written, JSON-escaped (also with `\/` and
/// with non-ASCII characters as `\uXXXX`, as Python writes JSON), percent-encoded
/// (upper- and lower-case hex), and base64 and base64url at each of the three
/// alignments a secret can have inside a longer encoded value (`user:key`,
/// `Bearer key`), each as the characters that depend on the secret alone. Encoded
/// forms shorter than [`MIN_PREFIX`] are left out: they would match ordinary text.
pub fn forms_of(value: &str) -> Vec<String> {
    let mut out = vec![value.to_owned()];
    let mut add = |form: String| {
        if form.chars().count() >= MIN_PREFIX && !out.contains(&form) {
            out.push(form);
        }
    };
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned();
    let slashed = json.replace('/', "\\/");
    add(ascii_json(&slashed));
    add(slashed);
    add(ascii_json(&json));
    add(json);
    let upper = percent(value);
    add(upper.to_ascii_lowercase_hex());
    add(upper);
    let bytes = value.as_bytes();
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for shift in 0..3usize {
            let mut buf = vec![0u8; shift];
            buf.extend_from_slice(bytes);
            let enc = engine.encode(&buf);
            // Characters carry 6 bits: those wholly inside the secret's bits.
            let first = (8 * shift).div_ceil(6);
            let last = 8 * (shift + bytes.len()) / 6;
            if let Some(core) = enc.get(first..last) {
                add(core.to_owned());
            }
        }
    }
    out
}

/// `json` (already escaped) with every non-ASCII character as `\uXXXX` (UTF-16 code
/// units, surrogate pairs for the rest).
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{u:04x}"));
        }
    }
    out
}

/// `value` percent-encoded as a URL component: every byte but the unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lower-case hex digits in percent escapes (`%2F` -> `%2f`).
trait LowerHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut escape = 0;
        for c in self.chars() {
            if c == '%' {
                escape = 2;
                out.push(c);
            } else if escape > 0 {
                escape -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(secrets: &[&str], text: &str) -> Vec<(String, usize)> {
        let m = Matcher::new(secrets.iter().copied()).expect("matcher");
        m.spans(text.as_bytes())
            .into_iter()
            .map(|s| (text[s.start..s.end].to_owned(), s.secret))
            .collect()
    }

    #[test]
    fn every_form_is_found() {
        let key = "sk-live/9f+2ä";
        let b64 = STANDARD_NO_PAD.encode(format!("Bearer {key}"));
        for text in [
            format!("x {key} y"),
            format!("{{\"k\": \"{}\"}}", "sk-live\\/9f+2ä"),
            "k=sk-live%2F9f%2B2%C3%A4&".to_string(),
            "k=sk-live%2f9f%2b2%c3%a4&".to_string(),
            "\"sk-live/9f+2\\u00e4\"".to_owned(),
            format!("Authorization: Basic {b64}"),
        ] {
            assert!(!spans(&[key], &text).is_empty(), "{text}");
        }
    }

    #[test]
    fn starts_of_eight_characters_count_but_not_a_word_the_secret_starts_with() {
        let token = "quickstart-instance-token-4f2a";
        assert_eq!(spans(&[token], "scenario quickstart ok"), []);
        assert_eq!(spans(&[token], "scenarios/quickstart.yaml"), []);
        assert_eq!(
            spans(&[token], "key quickstart-inst... cut"),
            [("quickstart-inst".to_owned(), 0)]
        );
        assert_eq!(spans(&[token], "quickstart…"), [("quickstart".to_owned(), 0)]);
        assert_eq!(
            spans(&["sk-live-0123456789"], "sk-live-0"),
            [("sk-live-0".to_owned(), 0)]
        );
        assert_eq!(spans(&["sk-live-0123456789"], "sk-live-"), [("sk-live-".to_owned(), 0)]);
        // Seven characters are not enough.
        assert_eq!(spans(&["sk-live-0123456789"], "sk-live"), []);
    }

    #[test]
    fn short_secrets_count_whole_only() {
        assert_eq!(spans(&["abc"], "xabcx ab"), [("abc".to_owned(), 0)]);
        assert_eq!(forms_of("abc"), ["abc"]);
    }

    #[test]
    fn overlapping_finds_are_joined() {
        let found = spans(&["abcdefghij", "efghijklmnop"], "abcdefghijklmnop!");
        assert_eq!(found, [("abcdefghijklmnop".to_owned(), 1)]);
    }
}
