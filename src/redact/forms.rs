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

/// Starts that keys of well-known formats share with every other key of their kind
/// (OpenAI, Anthropic, OpenRouter, GitLab, GitHub, Hugging Face, Slack, AWS access key
/// ids, Google API keys, Groq, Perplexity): a text that shows one gives nothing away
/// (an error that says "keys start with sk-proj-"), so a start of a secret counts
/// only with [`MIN_PREFIX`] characters past the longest of these it begins with.
const PUBLIC_PREFIXES: [&str; 23] = [
    "sk-proj-",
    "sk-svcacct-",
    "sk-admin-",
    "sk-ant-api03-",
    "sk-ant-admin01-",
    "sk-ant-",
    "sk-or-v1-",
    "sk-",
    "glpat-",
    "gldt-",
    "glrt-",
    "glptt-",
    "github_pat_",
    "ghp_",
    "gho_",
    "ghs_",
    "hf_",
    "xoxb-",
    "xoxp-",
    "AKIA",
    "ASIA",
    "AIza",
    "gsk_",
];

/// Bytes of `value` that are a well-known key format's public start ([`PUBLIC_PREFIXES`]).
pub fn public_prefix(value: &str) -> usize {
    PUBLIC_PREFIXES
        .iter()
        .filter(|p| value.starts_with(*p) && value.len() > p.len())
        .map(|p| p.len())
        .max()
        .unwrap_or(0)
}

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
    /// Its leading characters that encode the secret's public start alone.
    public: usize,
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
            for (text, public) in forms_with_public(value) {
                if !forms.iter().any(|f| f.text == text) {
                    forms.push(Form {
                        secret: i,
                        text,
                        public,
                    });
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
                if n < f.text.len() && !partial_counts(f, n, &hay[start + n..]) {
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
/// the secret: long enough past its public start, and not merely a word the secret
/// starts with.
fn partial_counts(form: &Form, n: usize, after: &[u8]) -> bool {
    let (form, public) = (form.text.as_str(), form.public);
    if form[..n].chars().count() < MIN_PREFIX + public {
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
    forms_with_public(value).into_iter().map(|(text, _)| text).collect()
}

/// [`forms_of`], each with how many of its leading characters encode the secret's
/// public start ([`public_prefix`]) alone.
fn forms_with_public(value: &str) -> Vec<(String, usize)> {
    let p = public_prefix(value);
    // The public starts are ASCII letters, digits, `-` and `_`: as written, JSON-escaped
    // and percent-encoded they stay as they are.
    let mut out = vec![(value.to_owned(), p)];
    let mut add = |form: String, public: usize| {
        if form.chars().count() >= MIN_PREFIX && !out.iter().any(|(f, _)| *f == form) {
            out.push((form, public));
        }
    };
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.get(1..json.len().saturating_sub(1)).unwrap_or_default().to_owned();
    let slashed = json.replace('/', "\\/");
    add(ascii_json(&slashed), p);
    add(slashed, p);
    add(ascii_json(&json), p);
    add(json, p);
    let upper = percent(value);
    add(upper.to_ascii_lowercase_hex(), p);
    add(upper, p);
    let bytes = value.as_bytes();
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for shift in 0..3usize {
            let mut buf = vec![0u8; shift];
            buf.extend_from_slice(bytes);
            let enc = engine.encode(&buf);
            // Characters carry 6 bits: those wholly inside the secret's bits.
            let first = (8 * shift).div_ceil(6);
            let last = 8 * (shift + bytes.len()) / 6;
            // Those wholly inside the public start's bits encode it alone.
            let public = (8 * (shift + p) / 6).saturating_sub(first);
            if let Some(core) = enc.get(first..last) {
                add(core.to_owned(), public);
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
            spans(&["live-sk-0123456789"], "live-sk-0"),
            [("live-sk-0".to_owned(), 0)]
        );
        assert_eq!(spans(&["live-sk-0123456789"], "live-sk-"), [("live-sk-".to_owned(), 0)]);
        // Seven characters are not enough.
        assert_eq!(spans(&["live-sk-0123456789"], "live-sk"), []);
    }

    #[test]
    fn a_public_start_every_key_of_its_kind_shares_gives_nothing_away() {
        let key = "sk-proj-Q7vX2mK9pL4wZ8nR";
        assert_eq!(public_prefix(key), "sk-proj-".len());
        assert_eq!(public_prefix("sk-proj-"), "sk-".len(), "not all of a secret");
        assert_eq!(public_prefix("hf_"), 0);
        // Another key of the same kind, or a text that names the format: not this key.
        for text in [
            "keys start with sk-proj-",
            "invalid key sk-proj-Q7vX2mK…",
            "expected sk-proj-Q7vX2mAAAAAAAAAAAA",
        ] {
            assert_eq!(spans(&[key], text), [], "{text}");
        }
        // Eight characters past the public start are this key's.
        assert_eq!(
            spans(&[key], "invalid key sk-proj-Q7vX2mK9…"),
            [("sk-proj-Q7vX2mK9".to_owned(), 0)]
        );
        assert_eq!(spans(&[key], &format!("[{key}]")), [(key.to_owned(), 0)]);
        // The same in base64 inside `Bearer <key>`: another key of the kind is not it.
        let other = STANDARD_NO_PAD.encode("Bearer sk-proj-AAAAAAAAAAAAAAAA");
        assert_eq!(spans(&[key], &other), [], "{other}");
        let mine = STANDARD_NO_PAD.encode(format!("Bearer {key}"));
        assert_eq!(spans(&[key], &mine).len(), 1, "{mine}");
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
