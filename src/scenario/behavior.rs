//! How a mock backend behaves, as data: its timing model and its scripted faults.
//! Parsed from a backend's `timing:` and `faults:` blocks; executed by `mock`.

use std::time::Duration;

/// A latency distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dist {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between two bounds.
    Uniform { min: Duration, max: Duration },
    /// Normal, truncated at zero.
    Normal { mean: Duration, stddev: Duration },
    /// Log-normal with the given median and shape `sigma`.
    LogNormal { median: Duration, sigma: f64 },
}

impl Dist {
    /// The distribution's typical value (for display and planning).
    pub fn typical(&self) -> Duration {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Uniform { min, max } => (min + max) / 2,
            Dist::Normal { mean, .. } => mean,
            Dist::LogNormal { median, .. } => median,
        }
    }
}

/// How many tokens a reply has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCount {
    /// Always this many.
    Fixed(u32),
    /// The request's `max_tokens`, or this many when it has none.
    FromMaxTokens { default: u32 },
    /// This many, or fewer when `max_tokens` says so (the default: short replies).
    UpTo(u32),
}

/// The timing model of one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Time to first token (after queueing and prefill).
    pub ttft: Dist,
    /// Gap between tokens.
    pub itl: Dist,
    /// Tokens per reply.
    pub tokens: TokenCount,
    /// Extra time to first token per prompt token (the prefill rate's inverse).
    pub prefill_per_token: Duration,
    /// How the mock counts the prompt tokens it received (prefill, `usage`).
    pub counter: crate::tokens::Counter,
    /// Requests served at once; more wait in a queue (like a full KV cache).
    pub max_concurrency: Option<usize>,
    /// Each running request beyond the first stretches gaps by this fraction.
    pub slowdown: f64,
    /// Seed of all sampling.
    pub seed: u64,
}

impl Default for Timing {
    /// Instant replies of at most 16 tokens: the conformance default.
    fn default() -> Self {
        Timing {
            ttft: Dist::Fixed(Duration::ZERO),
            itl: Dist::Fixed(Duration::ZERO),
            tokens: TokenCount::UpTo(16),
            prefill_per_token: Duration::ZERO,
            counter: crate::tokens::Counter::default(),
            max_concurrency: None,
            slowdown: 0.0,
            seed: 0,
        }
    }
}

/// Which requests a fault rule applies to. Requests are counted per backend,
/// model calls only (not `/models` or health checks), from 0.
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    /// Every request.
    All,
    /// The first N.
    First(u64),
    /// Every Nth (the Nth, 2Nth, ...).
    Every(u64),
    /// A seeded share of requests, in percent.
    Percent(f64),
    /// Requests for this model.
    Model(String),
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Answer this status with the provider's real error body (and `Retry-After` for 429).
    Error { status: u16, retry_after: Option<Duration> },
    /// Wait this long before the first byte.
    SlowFirstByte(Duration),
    /// Stop sending for a while after some tokens, then carry on.
    Stall { after_tokens: u32, duration: Duration },
    /// Close the connection after some tokens.
    Cut { after_tokens: u32 },
    /// A body that is not valid JSON (for streams: one data frame).
    MalformedJson,
    /// A stream frame with broken SSE framing.
    MalformedSse,
    /// A Bedrock event-stream frame with a wrong CRC (other providers: broken framing).
    CorruptCrc,
    /// 200 with an empty body.
    Empty200,
    /// A plain JSON reply to a stream request.
    NonSse,
}

impl FaultAction {
    /// The `do:` names.
    pub const NAMES: [&'static str; 9] = [
        "error",
        "slow_first_byte",
        "stall",
        "cut",
        "malformed_json",
        "malformed_sse",
        "corrupt_crc",
        "empty_200",
        "non_sse",
    ];
}

/// One scripted fault: which requests, and what happens to them.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Which requests.
    pub when: Match,
    /// What happens.
    pub action: FaultAction,
    /// Seed for `Percent` matching.
    pub seed: u64,
}

impl FaultRule {
    /// Whether the rule applies to request `index` for `model`.
    pub fn matches(&self, index: u64, model: &str) -> bool {
        match &self.when {
            Match::All => true,
            Match::First(n) => index < *n,
            Match::Every(n) => (index + 1).is_multiple_of(*n),
            Match::Model(m) => m == model,
            Match::Percent(p) => {
                // A hash of (seed, index) decides: deterministic and independent of order.
                // (splitmix64; the added constant keeps (seed 0, request 0) from
                // hashing to 0, which would always fault the first request.)
                let mut z = (self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1u64 << 53) as f64) * 100.0 < *p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(when: Match) -> FaultRule {
        FaultRule {
            when,
            action: FaultAction::Empty200,
            seed: 3,
        }
    }

    #[test]
    fn matching_is_deterministic() {
        assert!(rule(Match::First(2)).matches(1, "m") && !rule(Match::First(2)).matches(2, "m"));
        let every: Vec<u64> = (0..9).filter(|&i| rule(Match::Every(3)).matches(i, "m")).collect();
        assert_eq!(every, vec![2, 5, 8]);
        let hits = (0..10_000)
            .filter(|&i| rule(Match::Percent(10.0)).matches(i, "m"))
            .count();
        assert!((900..1100).contains(&hits), "{hits}");
        let again = (0..10_000)
            .filter(|&i| rule(Match::Percent(10.0)).matches(i, "m"))
            .count();
        assert_eq!(hits, again);
        assert!(rule(Match::Model("a".into())).matches(0, "a") && !rule(Match::Model("a".into())).matches(0, "b"));
    }

    #[test]
    fn the_first_request_is_not_special_to_a_percent_rule() {
        // With seed 0 (the default) request 0 used to hash to 0 and always fault.
        let rule = |seed| FaultRule {
            when: Match::Percent(1.0),
            action: FaultAction::Empty200,
            seed,
        };
        let first_faulted = (0..200).filter(|&seed| rule(seed).matches(0, "m")).count();
        assert!(
            first_faulted < 20,
            "request 0 faulted for {first_faulted} of 200 seeds at 1%"
        );
        assert!(!rule(0).matches(0, "m"));
    }
}

/// How a mock model server is set up, where a real one is often set up wrong for Duo
/// (a backend's `personality:` list and `max_model_len:`). The default is a vLLM
/// server started the way GitLab's documentation asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Personality {
    /// A chat template without a system role that requires strict user/assistant
    /// alternation (Mistral's and Mixtral's own): 400 "Conversation roles must
    /// alternate user/assistant/user/assistant/...".
    pub strict_roles: bool,
    /// Started without `--enable-auto-tool-choice --tool-call-parser`: a request with
    /// tools and automatic tool choice gets vLLM's 400.
    pub no_tool_parser: bool,
    /// A reasoning model behind a reasoning parser: it thinks first, into
    /// `reasoning_content`, and its answer in `content` is empty when `max_tokens` ran
    /// out while it was thinking.
    pub reasoning: bool,
    /// Ignores `stop` sequences and `max_tokens` (a server or proxy that drops them).
    pub ignore_limits: bool,
    /// The context window (vLLM's `--max-model-len`), listed by `/v1/models`: a request
    /// whose prompt plus `max_tokens` exceeds it gets vLLM's 400.
    pub max_model_len: u32,
}

/// vLLM's `max_model_len` when the model's own configuration sets it: gateprobe's
/// default for a mock.
pub const DEFAULT_MAX_MODEL_LEN: u32 = 32768;

/// Tokens a reasoning mock spends thinking before it answers.
pub const REASONING_TOKENS: u32 = 200;

/// The names of the `personality:` traits.
pub const PERSONALITIES: [&str; 4] = ["strict_roles", "no_tool_parser", "reasoning", "ignore_limits"];

impl Default for Personality {
    fn default() -> Self {
        Personality {
            strict_roles: false,
            no_tool_parser: false,
            reasoning: false,
            ignore_limits: false,
            max_model_len: DEFAULT_MAX_MODEL_LEN,
        }
    }
}

impl Personality {
    /// Sets a trait by its name; `false` for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        let flag = match name {
            "strict_roles" => &mut self.strict_roles,
            "no_tool_parser" => &mut self.no_tool_parser,
            "reasoning" => &mut self.reasoning,
            "ignore_limits" => &mut self.ignore_limits,
            _ => return false,
        };
        *flag = true;
        true
    }
}
