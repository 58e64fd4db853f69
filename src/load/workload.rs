//! Drawing one request's prompt from a phase's workload: its token counts from the
//! seeded distributions (or a dataset record), split the way the feature's request is
//! shaped, and the text cut to those counts. Request `i` of a phase draws from
//! `Rng::for_request(seed, i)`, so a seed gives the same requests whatever the
//! concurrency or the order replies come back in.

use crate::feature::{Endpoint, Feature};
use crate::rng::Rng;
use crate::scenario::workload::Workload;
use crate::wire::prompt::{Generation, Prompt, Role};

/// One request's prompt and output length.
#[derive(Clone, Debug, PartialEq)]
pub struct Drawn {
    /// The prompt.
    pub prompt: Prompt,
    /// The output length asked.
    pub generation: Generation,
    /// The prompt's tokens, as the workload counts them (instructions included).
    pub prompt_tokens: u64,
}

/// Output tokens of a request without a workload: what the vendor checks ask.
const CANNED_MAX_TOKENS: u64 = 32;

/// The canned request of a phase without a workload: one short user turn (code
/// features: a function head before the cursor) carrying the correlation id.
pub fn canned(feature: &Feature, marker: &str) -> Drawn {
    let prompt = match feature.endpoint {
        Endpoint::CodeCompletions => Prompt {
            above: format!("# request {marker}\ndef add(a, b):\n"),
            ..Prompt::default()
        },
        _ => Prompt {
            user: format!("Write a Python function that adds two numbers. [{marker}]"),
            ..Prompt::default()
        },
    };
    let prompt_tokens = crate::tokens::Counter::default().count(&prompt.user_turn());
    Drawn {
        prompt,
        generation: Generation {
            max_tokens: CANNED_MAX_TOKENS,
            force: false,
        },
        prompt_tokens,
    }
}

/// Shares of a prompt's tokens by part, per feature shape: (instructions, history,
/// the user's text). The rest is code context, split by `below_cursor`.
fn shares(endpoint: Endpoint) -> (f64, f64, f64) {
    match endpoint {
        // The file around the cursor, nothing else.
        Endpoint::CodeCompletions => (0.0, 0.0, 0.0),
        // Generation instructions, the user's comment, the file.
        Endpoint::CodeGenerations => (0.10, 0.0, 0.05),
        // The agent's long system prompt, earlier turns, the question.
        Endpoint::ChatAgent => (0.40, 0.30, 0.30),
        // A template's instructions, the input, the selected code or diff.
        Endpoint::Prompt => (0.20, 0.0, 0.15),
    }
}

/// Request `index`'s prompt under workload `w` for `feature`, the correlation id
/// `marker` at the start of the part that always reaches the model.
pub fn draw(w: &Workload, feature: &Feature, index: u64, marker: &str) -> Drawn {
    let mut rng = Rng::for_request(w.seed, index);
    let c = &w.counter;
    let tag = format!("[{marker}] ");
    let text = |n: u64, rng: &mut Rng| c.text(n, rng.next_u64());
    let output = |rng: &mut Rng, recorded: Option<u64>| {
        w.output_tokens
            .map(|o| o.sample(rng))
            .or(recorded)
            .unwrap_or(128)
            .max(1)
    };
    if let Some(d) = &w.dataset {
        let r = &d.records[(rng.next_u64() % d.records.len() as u64) as usize];
        let prompt = Prompt {
            system: None,
            history: r.history.clone(),
            user: format!("{tag}{}", r.user),
            above: String::new(),
            below: String::new(),
        };
        let prompt_tokens = prompt.history.iter().map(|(_, t)| c.count(t)).sum::<u64>() + c.count(&prompt.user);
        let max_tokens = output(&mut rng, r.output_tokens);
        return Drawn {
            prompt,
            generation: Generation {
                max_tokens,
                force: w.force_output,
            },
            prompt_tokens,
        };
    }
    let total = w.prompt_tokens.sample(&mut rng).max(1);
    let max_tokens = output(&mut rng, None);
    let (sys_share, hist_share, user_share) = shares(feature.endpoint);
    let part = |share: f64| (total as f64 * share).round() as u64;
    let turns = if hist_share > 0.0 {
        w.history_turns.sample(&mut rng)
    } else {
        0
    };
    let system = part(sys_share);
    let history = if turns > 0 { part(hist_share) } else { 0 };
    let user = part(user_share) + if turns == 0 { part(hist_share) } else { 0 };
    let code = total.saturating_sub(system + history + user);
    let below = (code as f64 * w.below_cursor).round() as u64;
    let above = code - below;
    // The tag goes into the user's text, or before the code for code completions.
    let tag_tokens = c.count(&tag);
    let tagged = |n: u64, rng: &mut Rng| format!("{tag}{}", c.text(n.saturating_sub(tag_tokens), rng.next_u64()));
    let mut p = Prompt::default();
    if system > 0 {
        p.system = Some(text(system, &mut rng));
    }
    // Each turn is a question and an answer, the history's tokens spread evenly.
    let per_message = history / (2 * turns).max(1);
    for i in 0..2 * turns {
        let role = if i % 2 == 0 { Role::User } else { Role::Assistant };
        p.history.push((role, text(per_message.max(1), &mut rng)));
    }
    if feature.endpoint == Endpoint::CodeCompletions {
        p.above = tagged(above, &mut rng);
    } else {
        p.user = tagged(user.max(tag_tokens), &mut rng);
        p.above = text(above, &mut rng);
    }
    p.below = text(below, &mut rng);
    let prompt_tokens = p.system.as_deref().map_or(0, |s| c.count(s))
        + p.history.iter().map(|(_, t)| c.count(t)).sum::<u64>()
        + c.count(&p.user)
        + c.count(&p.above)
        + c.count(&p.below);
    Drawn {
        prompt: p,
        generation: Generation {
            max_tokens,
            force: w.force_output,
        },
        prompt_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feature::by_name;
    use crate::scenario::workload::{Count, preset};
    use crate::tokens::Counter;

    fn workload(feature: &str) -> Workload {
        let p = preset(feature);
        Workload {
            preset: None,
            prompt_tokens: p.prompt_tokens,
            output_tokens: Some(p.output_tokens),
            history_turns: p.history_turns,
            below_cursor: p.below_cursor,
            dataset: None,
            seed: 3,
            counter: Counter::default(),
            force_output: true,
        }
    }

    #[test]
    fn each_feature_shape_adds_up_to_the_drawn_prompt() {
        for name in [
            "code_completions",
            "code_generations",
            "duo_chat",
            "duo_chat_explain_code",
        ] {
            let f = by_name(name).unwrap();
            let mut w = workload(name);
            w.prompt_tokens = Count::Fixed(2000);
            for i in 0..20 {
                let d = draw(&w, f, i, "gp-1-1");
                assert!(d.prompt_tokens.abs_diff(2000) <= 2, "{name}: {}", d.prompt_tokens);
                let text = format!("{} {}", d.prompt.user, d.prompt.above);
                assert!(text.contains("[gp-1-1]"), "{name}");
                assert!(d.generation.force);
            }
        }
        let chat = draw(&workload("duo_chat"), by_name("duo_chat").unwrap(), 0, "m");
        assert!(chat.prompt.system.is_some());
        let cc = draw(
            &workload("code_completions"),
            by_name("code_completions").unwrap(),
            0,
            "m",
        );
        assert!(cc.prompt.user.is_empty() && !cc.prompt.below.is_empty());
        assert_eq!(cc.generation.max_tokens, 64);
    }

    #[test]
    fn a_seed_fixes_every_request() {
        let f = by_name("duo_chat").unwrap();
        let w = workload("duo_chat");
        assert_eq!(draw(&w, f, 7, "m"), draw(&w, f, 7, "m"));
        assert_ne!(draw(&w, f, 7, "m"), draw(&w, f, 8, "m"));
        let mut other = w.clone();
        other.seed = 4;
        assert_ne!(draw(&w, f, 7, "m"), draw(&other, f, 7, "m"));
    }
}
