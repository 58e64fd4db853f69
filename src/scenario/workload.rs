//! What a load phase's requests carry, typed: Duo-shaped prompts whose token counts
//! follow seeded distributions, or prompts sampled from a dataset file, and how tokens
//! are counted. Parsed from a phase's `workload:` block; drawn per request by
//! `load::workload`.

use std::sync::Arc;

use crate::rng::Rng;
use crate::tokens::Counter;
use crate::wire::prompt::Role;

/// A distribution of token counts (always at least 1 once drawn).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    /// Always this many.
    Fixed(u64),
    /// Uniform between two bounds, both included.
    Uniform { min: u64, max: u64 },
    /// Normal, clamped to `[min, max]`.
    Normal { mean: f64, stddev: f64, min: u64, max: u64 },
    /// Log-normal with this median and shape, clamped to `[min, max]`.
    LogNormal {
        median: f64,
        sigma: f64,
        min: u64,
        max: u64,
    },
}

impl Count {
    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let (v, min, max) = match *self {
            Count::Fixed(n) => return n,
            Count::Uniform { min, max } => {
                return min + rng.next_u64() % (max - min + 1);
            }
            Count::Normal { mean, stddev, min, max } => (mean + stddev * rng.normal(), min, max),
            Count::LogNormal {
                median,
                sigma,
                min,
                max,
            } => (median * (sigma * rng.normal()).exp(), min, max),
        };
        (v.round().max(0.0) as u64).clamp(min, max)
    }

    /// The distribution in words, for reports.
    pub fn describe(&self) -> String {
        match *self {
            Count::Fixed(n) => format!("{n}"),
            Count::Uniform { min, max } => format!("uniform {min}..{max}"),
            Count::Normal { mean, stddev, .. } => format!("normal mean {mean} stddev {stddev}"),
            Count::LogNormal { median, sigma, .. } => format!("lognormal median {median} sigma {sigma}"),
        }
    }
}

/// One dataset record: a conversation up to the user's last turn, and the length of
/// the answer it had, when the dataset has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Earlier turns.
    pub history: Vec<(Role, String)>,
    /// The user's last turn.
    pub user: String,
    /// Tokens of the recorded answer (ShareGPT) or the line's `output_tokens`.
    pub output_tokens: Option<u64>,
}

/// Prompts read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The path as the scenario wrote it.
    pub path: String,
    /// Its records, in file order.
    pub records: Vec<Record>,
}

/// A phase's workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The Duo feature preset its numbers start from, if any.
    pub preset: Option<&'static str>,
    /// Prompt tokens per request (everything the model reads: instructions, history,
    /// the user's text and code). Unused with a dataset.
    pub prompt_tokens: Count,
    /// Output tokens asked per request; `None` takes a dataset record's.
    pub output_tokens: Option<Count>,
    /// Earlier chat turns (user and model pairs) per request, for chat features.
    pub history_turns: Count,
    /// Share of code context after the cursor, for code features.
    pub below_cursor: f64,
    /// Prompts from a file instead of made-up ones.
    pub dataset: Option<Arc<Dataset>>,
    /// Seed of every draw.
    pub seed: u64,
    /// How tokens are counted.
    pub counter: Counter,
    /// Force the output length where the server can be told (vLLM `min_tokens` and
    /// `ignore_eos`); `max_tokens` is always sent.
    pub force_output: bool,
}

/// The built-in numbers of one Duo feature.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// Prompt tokens.
    pub prompt_tokens: Count,
    /// Output tokens.
    pub output_tokens: Count,
    /// Chat turns before the question.
    pub history_turns: Count,
    /// Share of code after the cursor.
    pub below_cursor: f64,
}

/// The preset of a feature. Where each number comes from is in the README ("Plan
/// capacity for my model server"): code completions ask 64 tokens as the AI gateway
/// does for the Mistral family and carry a file's worth of context; the rest are
/// stated assumptions to replace with your server's own histograms.
pub fn preset(feature: &str) -> Preset {
    let ln = |median: f64, sigma: f64, min: u64, max: u64| Count::LogNormal {
        median,
        sigma,
        min,
        max,
    };
    let none = Count::Fixed(0);
    match feature {
        "code_completions" => Preset {
            prompt_tokens: ln(1000.0, 0.6, 64, 8192),
            output_tokens: Count::Fixed(64),
            history_turns: none,
            below_cursor: 0.25,
        },
        "code_generations" => Preset {
            prompt_tokens: ln(2000.0, 0.6, 256, 16_384),
            output_tokens: ln(300.0, 0.7, 16, 2048),
            history_turns: none,
            below_cursor: 0.25,
        },
        "duo_chat" => Preset {
            prompt_tokens: ln(2500.0, 0.5, 512, 16_384),
            output_tokens: ln(250.0, 0.8, 16, 2048),
            history_turns: Count::Uniform { min: 0, max: 4 },
            below_cursor: 0.0,
        },
        "generate_commit_message" | "summarize_new_merge_request" | "review_merge_request" | "summarize_review" => {
            Preset {
                prompt_tokens: ln(2000.0, 1.0, 64, 16_384),
                output_tokens: ln(120.0, 0.6, 8, 1024),
                history_turns: none,
                below_cursor: 0.0,
            }
        }
        // The Chat tools and the other prompts: selected code, a file, an instruction.
        _ => Preset {
            prompt_tokens: ln(1200.0, 0.7, 64, 16_384),
            output_tokens: ln(300.0, 0.7, 16, 2048),
            history_turns: none,
            below_cursor: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(c: Count, n: u64) -> (f64, f64, Vec<u64>) {
        let mut v: Vec<u64> = (0..n).map(|i| c.sample(&mut Rng::for_request(5, i))).collect();
        let mean = v.iter().sum::<u64>() as f64 / n as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        v.sort_unstable();
        (mean, var.sqrt(), v)
    }

    #[test]
    fn draws_follow_their_distributions() {
        // 20,000 draws: means within 2%, spreads within 5% (several standard errors).
        let (mean, sd, _) = stats(
            Count::Normal {
                mean: 500.0,
                stddev: 50.0,
                min: 1,
                max: 10_000,
            },
            20_000,
        );
        assert!((mean - 500.0).abs() < 10.0 && (sd - 50.0).abs() < 2.5, "{mean} {sd}");
        let (_, _, v) = stats(
            Count::LogNormal {
                median: 1000.0,
                sigma: 0.6,
                min: 1,
                max: 1_000_000,
            },
            20_000,
        );
        let median = v[v.len() / 2] as f64;
        assert!((median - 1000.0).abs() < 20.0, "{median}");
        let (mean, _, v) = stats(Count::Uniform { min: 10, max: 30 }, 20_000);
        assert!(
            (mean - 20.0).abs() < 0.2 && v[0] == 10 && v[v.len() - 1] == 30,
            "{mean}"
        );
        let (_, _, v) = stats(
            Count::Normal {
                mean: 10.0,
                stddev: 100.0,
                min: 5,
                max: 20,
            },
            1000,
        );
        assert!(v[0] == 5 && v[v.len() - 1] == 20, "clamped");
    }
}
