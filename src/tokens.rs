//! Counting tokens, and making text of a given token count: the one rule a workload
//! sizes its prompts by, a mock counts what it received by (prefill time, `usage`),
//! and a report names.
//!
//! By default a token is [`DEFAULT_CHARS_PER_TOKEN`] characters, the approximation
//! GitLab itself sizes AI prompts by (Rails `Gitlab::Llm::Chain::Concerns::
//! AnthropicPrompt::CHARACTERS_IN_TOKEN = 4`). With the `tokenizer` cargo feature a
//! Hugging Face `tokenizer.json` the user points at counts instead (the model's own
//! tokenizer: the counts a real vLLM reports). Without the feature such a file is
//! refused with the command that builds it in.

#[cfg(feature = "tokenizer")]
use std::sync::Arc;

/// Characters per token of the default counter.
pub const DEFAULT_CHARS_PER_TOKEN: f64 = 4.0;

/// The text prompts are cut from: code-like, so code features look like code, and
/// long enough that a seeded offset makes every prompt differ (a server with prefix
/// caching must not see the same prompt twice).
const CORPUS: &str = include_str!("tokens_corpus.txt");

/// How tokens are counted.
#[derive(Clone)]
pub enum Counter {
    /// `ceil(characters / ratio)`.
    Ratio(f64),
    /// A Hugging Face tokenizer, loaded from `path`.
    #[cfg(feature = "tokenizer")]
    Tokenizer {
        /// Where it was loaded from, as the scenario wrote it.
        path: String,
        /// The tokenizer.
        tokenizer: Arc<tokenizers::Tokenizer>,
    },
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PartialEq for Counter {
    fn eq(&self, other: &Self) -> bool {
        self.describe() == other.describe()
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::Ratio(DEFAULT_CHARS_PER_TOKEN)
    }
}

impl Counter {
    /// A counter from a `tokenizer.json` file.
    pub fn from_file(path: &std::path::Path, shown: &str) -> Result<Counter, String> {
        #[cfg(feature = "tokenizer")]
        {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
            if bytes.len() > MAX_TOKENIZER_BYTES {
                return Err(format!("`{shown}` is over {} MiB", MAX_TOKENIZER_BYTES >> 20));
            }
            let tokenizer = tokenizers::Tokenizer::from_bytes(&bytes)
                .map_err(|e| format!("`{shown}` is not a Hugging Face tokenizer.json: {e}"))?;
            Ok(Counter::Tokenizer {
                path: shown.to_owned(),
                tokenizer: Arc::new(tokenizer),
            })
        }
        #[cfg(not(feature = "tokenizer"))]
        {
            let _ = path;
            Err(format!(
                "counting with `{shown}` needs gateprobe built with the `tokenizer` feature \
                 (cargo install --features tokenizer ...); or leave `tokenizer:` out to count \
                 {DEFAULT_CHARS_PER_TOKEN} characters per token"
            ))
        }
    }

    /// How it counts, for reports: `4 characters per token` or `tokenizer.json at PATH`.
    pub fn describe(&self) -> String {
        match self {
            Counter::Ratio(r) => format!("{r} characters per token"),
            #[cfg(feature = "tokenizer")]
            Counter::Tokenizer { path, .. } => format!("tokenizer {path}"),
        }
    }

    /// The tokens of `text`.
    pub fn count(&self, text: &str) -> u64 {
        match self {
            Counter::Ratio(r) => (text.chars().count() as f64 / r).ceil() as u64,
            #[cfg(feature = "tokenizer")]
            Counter::Tokenizer { tokenizer, .. } => tokenizer
                .encode_fast(text, false)
                .map_or_else(|_| (text.len() as u64).div_ceil(4), |e| e.len() as u64),
        }
    }

    /// Text of `n` tokens cut from the corpus at `offset` (any number: it wraps).
    /// Exact for the ratio counter; with a tokenizer the text is the decoding of the
    /// first `n` tokens of the corpus there, which encodes back to `n` give or take
    /// a token at a merge boundary (as other benchmark clients make theirs).
    pub fn text(&self, n: u64, offset: u64) -> String {
        match self {
            Counter::Ratio(r) => cut(offset, (n as f64 * r).floor() as usize),
            #[cfg(feature = "tokenizer")]
            Counter::Tokenizer { tokenizer, .. } => {
                // Code runs 3-4 characters per token; ask for room and cut by ids.
                let mut chars = (n as usize).saturating_mul(6).max(16);
                loop {
                    let raw = cut(offset, chars);
                    let Ok(enc) = tokenizer.encode_fast(raw.as_str(), false) else {
                        return cut(offset, n as usize * 4);
                    };
                    if enc.len() as u64 >= n || chars > 64 * 1024 * 1024 {
                        let ids = &enc.get_ids()[..(n as usize).min(enc.len())];
                        return tokenizer.decode(ids, false).unwrap_or(raw);
                    }
                    chars *= 2;
                }
            }
        }
    }
}

/// Largest `tokenizer.json` read (the large vocabularies are ~10-20 MiB).
#[cfg(feature = "tokenizer")]
const MAX_TOKENIZER_BYTES: usize = 64 * 1024 * 1024;

/// `len` characters of the corpus starting at `offset`, wrapping around.
fn cut(offset: u64, len: usize) -> String {
    let corpus = CORPUS.as_bytes();
    // The corpus is ASCII, so byte and character positions agree.
    let start = (offset % corpus.len() as u64) as usize;
    let mut out = String::with_capacity(len);
    let mut at = start;
    while out.len() < len {
        let take = (len - out.len()).min(corpus.len() - at);
        out.push_str(&CORPUS[at..at + take]);
        at = (at + take) % corpus.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_ascii() {
        assert!(CORPUS.is_ascii() && CORPUS.len() > 4096);
    }

    #[test]
    fn ratio_text_has_exactly_the_tokens_asked_for() {
        for r in [4.0, 3.5, 1.0, 2.7] {
            let c = Counter::Ratio(r);
            for n in [0, 1, 7, 64, 1500, 20_000] {
                for offset in [0, 17, 999_999_937] {
                    let t = c.text(n, offset);
                    assert_eq!(c.count(&t), n, "ratio {r}, {n} tokens at {offset}");
                }
            }
        }
        assert_ne!(Counter::default().text(50, 0), Counter::default().text(50, 1));
        assert_eq!(Counter::default().count("abcde"), 2);
        assert_eq!(Counter::default().describe(), "4 characters per token");
    }

    #[test]
    fn without_the_feature_a_tokenizer_file_is_refused_saying_how() {
        if cfg!(feature = "tokenizer") {
            return;
        }
        let e = Counter::from_file(std::path::Path::new("t.json"), "t.json").unwrap_err();
        assert!(e.contains("--features tokenizer"), "{e}");
    }
}
