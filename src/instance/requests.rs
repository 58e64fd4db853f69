//! What the AI gateway asks of a model server for each Duo feature: the role sequence
//! of its chat messages, the size of the prompt it builds around a short input, and
//! the `max_tokens` it requests. Model-readiness checks hold a server against these.
//!
//! The figures are read from the backend requests gateprobe's mocks recorded from
//! GitLab's real AI gateway (the golden transcripts in `tests/fixtures/transcripts`:
//! `aigw-474164f4*` for 18.9, `aigw-2025-01-14*` for 17.7), over the OpenAI-compatible
//! path (vLLM and Azure). `tests/instance_requests.rs` checks this table against them.
//! Each row is the largest prompt and the largest `max_tokens` seen for the feature;
//! a real user's input (a longer file, a chat history) adds to the prompt.

use super::Shapes;

/// A message role, as the gateway sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The prompt's instructions.
    System,
    /// The user's turn.
    User,
    /// An assistant turn (Chat's ReAct agent pre-fills `Thought:`).
    Assistant,
}

impl Role {
    /// The role's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One feature's request to the model server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureRequest {
    /// The Duo feature.
    pub feature: &'static str,
    /// The roles of its messages, in order.
    pub roles: &'static [Role],
    /// Characters of prompt text (every message's content).
    pub prompt_chars: u32,
    /// The `max_tokens` it asks for.
    pub max_tokens: u32,
}

/// Characters per token gateprobe assumes when it turns prompt text into tokens: the
/// usual figure for English text and code with the tokenizers of the model families
/// Duo supports (Mistral, Llama, GPT); code in some languages runs nearer 3.
pub const CHARS_PER_TOKEN: u32 = 4;

impl FeatureRequest {
    /// Prompt tokens, estimated at [`CHARS_PER_TOKEN`].
    pub fn prompt_tokens(&self) -> u32 {
        self.prompt_chars.div_ceil(CHARS_PER_TOKEN)
    }

    /// Prompt plus requested output: what the server's context must hold.
    pub fn context_tokens(&self) -> u32 {
        self.prompt_tokens() + self.max_tokens
    }
}

const SU: &[Role] = &[Role::System, Role::User];
const SUA: &[Role] = &[Role::System, Role::User, Role::Assistant];

const fn r(feature: &'static str, roles: &'static [Role], prompt_chars: u32, max_tokens: u32) -> FeatureRequest {
    FeatureRequest {
        feature,
        roles,
        prompt_chars,
        max_tokens,
    }
}

/// GitLab 18.9 (AI gateway 474164f4).
const V18_9: &[FeatureRequest] = &[
    r("code_completions", SU, 4788, 128),
    r("code_generations", SU, 6122, 4096),
    r("duo_chat", SUA, 14462, 8192),
    r("duo_chat_explain_code", SU, 4430, 2048),
    r("duo_chat_write_tests", SU, 5169, 2048),
    r("duo_chat_refactor_code", SU, 5347, 2048),
    r("duo_chat_fix_code", SU, 5635, 2048),
    r("duo_chat_troubleshoot_job", SU, 6352, 2048),
    r("duo_chat_explain_vulnerability", SU, 4760, 2048),
    r("duo_chat_summarize_comments", SU, 5177, 2048),
    r("generate_commit_message", SU, 5618, 4096),
    r("summarize_new_merge_request", SU, 4480, 4096),
    r("resolve_vulnerability", SU, 7257, 4096),
    r("summarize_review", SU, 4856, 4096),
    r("glab_ask_git_command", SU, 4355, 4096),
    r("review_merge_request", SU, 10356, 8192),
];

/// GitLab 17.7 (AI gateway of 2025-01-14).
const V17_7: &[FeatureRequest] = &[
    r("code_completions", SU, 873, 128),
    r("code_generations", SU, 1212, 512),
    r("duo_chat", SUA, 8865, 4096),
    r("duo_chat_explain_code", SU, 484, 2048),
    r("duo_chat_write_tests", SU, 492, 2048),
    r("duo_chat_refactor_code", SU, 1008, 2048),
    r("duo_chat_fix_code", SU, 1082, 2048),
    r("duo_chat_troubleshoot_job", SU, 2406, 2048),
    r("duo_chat_explain_vulnerability", SU, 589, 2048),
    r("duo_chat_summarize_comments", SU, 1251, 2048),
];

/// Every recorded feature request of an instance version.
pub fn all(shapes: Shapes) -> &'static [FeatureRequest] {
    match shapes {
        Shapes::V18_9 => V18_9,
        Shapes::V17_7 => V17_7,
    }
}

/// The recorded request of `feature` in an instance version, if one was recorded.
pub fn of(shapes: Shapes, feature: &str) -> Option<&'static FeatureRequest> {
    all(shapes).iter().find(|r| r.feature == feature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_known_feature_once() {
        for shapes in Shapes::ALL {
            let rows = all(shapes);
            for (i, r) in rows.iter().enumerate() {
                assert!(crate::feature::by_name(r.feature).is_some(), "{}", r.feature);
                assert!(rows[..i].iter().all(|o| o.feature != r.feature), "{}", r.feature);
                assert_eq!(r.roles.first(), Some(&Role::System));
            }
        }
    }

    #[test]
    fn chat_needs_the_largest_context() {
        let chat = of(Shapes::V18_9, "duo_chat").expect("chat");
        assert_eq!(chat.context_tokens(), 3616 + 8192);
        assert!(
            all(Shapes::V18_9)
                .iter()
                .all(|r| r.context_tokens() <= chat.context_tokens())
        );
    }
}
