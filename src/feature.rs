//! The catalogue of GitLab Duo features a self-hosted model can serve, and the AI
//! gateway call the GitLab instance makes for each.

/// Which AI gateway API a feature's request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v2/code/completions`.
    CodeCompletions,
    /// `POST /v2/code/generations`.
    CodeGenerations,
    /// `POST /v2/chat/agent` (ndjson events).
    ChatAgent,
    /// `POST /v1/prompts/{prompt_id}`.
    Prompt,
}

/// One Duo feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Feature {
    /// The name an admin maps in the scenario (`duo_chat_explain_code`, ...).
    pub name: &'static str,
    /// The gateway API it calls.
    pub endpoint: Endpoint,
    /// For [`Endpoint::Prompt`]: the prompt id in the path (`chat/explain_code`).
    pub prompt_id: Option<&'static str>,
    /// Chat sub-features fall back to `duo_chat`'s model when they have none.
    pub chat_subfeature: bool,
}

const fn f(name: &'static str, endpoint: Endpoint, prompt_id: Option<&'static str>, sub: bool) -> Feature {
    Feature {
        name,
        endpoint,
        prompt_id,
        chat_subfeature: sub,
    }
}

/// The General Chat feature that Chat sub-features fall back to.
pub const DUO_CHAT: &str = "duo_chat";

/// Every feature gateprobe knows, in the order the admin UI lists them.
pub const FEATURES: &[Feature] = &[
    f("code_completions", Endpoint::CodeCompletions, None, false),
    f("code_generations", Endpoint::CodeGenerations, None, false),
    f("duo_chat", Endpoint::ChatAgent, None, false),
    f(
        "duo_chat_explain_code",
        Endpoint::Prompt,
        Some("chat/explain_code"),
        true,
    ),
    f("duo_chat_write_tests", Endpoint::Prompt, Some("chat/write_tests"), true),
    f(
        "duo_chat_refactor_code",
        Endpoint::Prompt,
        Some("chat/refactor_code"),
        true,
    ),
    f("duo_chat_fix_code", Endpoint::Prompt, Some("chat/fix_code"), true),
    f(
        "duo_chat_troubleshoot_job",
        Endpoint::Prompt,
        Some("chat/troubleshoot_job"),
        true,
    ),
    f(
        "duo_chat_explain_vulnerability",
        Endpoint::Prompt,
        Some("chat/explain_vulnerability"),
        true,
    ),
    f(
        "duo_chat_summarize_comments",
        Endpoint::Prompt,
        Some("chat/summarize_comments"),
        true,
    ),
    f(
        "generate_commit_message",
        Endpoint::Prompt,
        Some("generate_commit_message"),
        false,
    ),
    f(
        "summarize_new_merge_request",
        Endpoint::Prompt,
        Some("summarize_new_merge_request"),
        false,
    ),
    f(
        "resolve_vulnerability",
        Endpoint::Prompt,
        Some("resolve_vulnerability"),
        false,
    ),
    f("summarize_review", Endpoint::Prompt, Some("summarize_review"), false),
    f(
        "glab_ask_git_command",
        Endpoint::Prompt,
        Some("glab_ask_git_command"),
        false,
    ),
    f(
        "review_merge_request",
        Endpoint::Prompt,
        Some("review_merge_request"),
        false,
    ),
];

/// Looks a feature up by name.
pub fn by_name(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name)
}

/// Model families of the admin UI.
pub const FAMILIES: &[&str] = &[
    "mistral",
    "mixtral",
    "codestral",
    "codegemma",
    "codellama",
    "deepseekcoder",
    "llama3",
    "claude_3",
    "gpt",
    "gemini",
    "qwen",
    "general",
];

/// Families the AI gateway accepts as `model_name` on `/v2/code/completions`
/// (others get a 422).
pub const COMPLETION_FAMILIES: &[&str] = &[
    "mistral",
    "mixtral",
    "codestral",
    "codegemma",
    "codellama",
    "deepseekcoder",
    "llama3",
    "claude_3",
    "gpt",
    "qwen",
];
