//! The GitLab instance gateprobe plays in front of an AI gateway (`kind: aigw` and the
//! built-in gateway): for each instance version whose request shapes are known, the
//! gateway call each Duo feature makes for a self-hosted model (path, headers, body,
//! where the user's text travels) and the model families each feature is served on.
//!
//! This is the one place those facts live. They were read from the public GitLab
//! Rails code that builds the requests (file paths below) and checked against the AI
//! gateway of the same era; a self-managed instance runs the gateway version that
//! matches it, so what a version's gateway cannot serve is part of the version.
//!
//! - **18.9** (the default): GitLab Rails `master` of 2026-02-13 (`VERSION` 18.9.0-pre),
//!   observed against ai-assist `474164f4` (2026-08-21).
//!   `ee/app/models/ai/feature_setting.rb#model_metadata_params`,
//!   `ee/lib/gitlab/llm/chain/requests/ai_gateway.rb#request_body_agent`,
//!   `ee/lib/gitlab/llm/ai_gateway/client.rb#complete_prompt`,
//!   `ee/lib/code_suggestions/tasks/code_completion.rb`, `.../code_generation.rb`,
//!   `ee/lib/code_suggestions/prompts/code_generation/ai_gateway_messages.rb`,
//!   `ee/lib/gitlab/duo/chat/react_executor.rb#step_params`,
//!   `ee/lib/gitlab/llm/prompt_versions.rb` (self-hosted models always ask `^1.0.0`),
//!   `ee/lib/gitlab/ai/feature_settings/feature_metadata.yml` (families per feature).
//! - **17.7**: GitLab Rails 17.x (`ee/lib/code_suggestions/prompts/code_generation/
//!   ai_gateway_self_hosted_messages.rb`: code generations on `/v2/code/generations`),
//!   observed against ai-assist of 2025-01-14, whose prompt registry serves the
//!   self-hosted families only for code suggestions and the Chat prompts.

pub mod replay;
pub mod requests;

use serde_json::{Value, json};

use crate::feature::Feature;

/// The model fields the GitLab instance sends with a feature request.
#[derive(Clone, Debug)]
pub struct ModelFields {
    /// Family (`model_name`).
    pub family: String,
    /// Endpoint URL, rendered.
    pub endpoint: String,
    /// API key.
    pub api_key: Option<String>,
    /// Model identifier as configured.
    pub identifier: String,
}

/// A set of request shapes gateprobe knows, named after the instance version it was
/// read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Shapes {
    /// GitLab 17.7 (and the AI gateway of January 2025).
    #[serde(rename = "17.7")]
    V17_7,
    /// GitLab 18.9 (and the AI gateway of August 2026).
    #[serde(rename = "18.9")]
    V18_9,
}

impl Shapes {
    /// Every known set, oldest first.
    pub const ALL: [Shapes; 2] = [Shapes::V17_7, Shapes::V18_9];

    /// The default: the newest.
    pub const CURRENT: Shapes = Shapes::V18_9;

    /// The version the shapes were read from.
    pub fn name(self) -> &'static str {
        match self {
            Shapes::V17_7 => "17.7",
            Shapes::V18_9 => "18.9",
        }
    }

    /// `(major, minor)` of [`Shapes::name`].
    fn number(self) -> (u32, u32) {
        match self {
            Shapes::V17_7 => (17, 7),
            Shapes::V18_9 => (18, 9),
        }
    }

    /// The shapes an instance of version `v` (`18.6`, `18.6.2`, `17.11.0-ee`) sends:
    /// the newest known set not newer than it. Versions before the oldest set are
    /// refused: gateprobe cannot say what they send.
    pub fn for_version(v: &str) -> Result<Shapes, String> {
        let core = v.trim().split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let (Some(major), Some(minor)) = (
            parts.next().and_then(|p| p.parse::<u32>().ok()),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            return Err(format!("`{v}` is not a GitLab version (write MAJOR.MINOR, e.g. 18.9)"));
        };
        Shapes::ALL
            .iter()
            .rev()
            .find(|s| s.number() <= (major, minor))
            .copied()
            .ok_or_else(|| {
                format!(
                    "gateprobe knows the requests of GitLab {} and later; {v} is older",
                    Shapes::ALL[0].name()
                )
            })
    }
}

/// The instance a scenario describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The version as the scenario wrote it (`18.9` when it wrote none).
    pub version: String,
    /// The request shapes that version sends.
    pub shapes: Shapes,
    /// How long the instance waits for the AI gateway's answer.
    pub gateway_timeout: std::time::Duration,
}

/// GitLab's default AI gateway request timeout.
pub const DEFAULT_GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Instance {
    fn default() -> Self {
        Instance {
            version: Shapes::CURRENT.name().to_owned(),
            shapes: Shapes::CURRENT,
            gateway_timeout: DEFAULT_GATEWAY_TIMEOUT,
        }
    }
}

/// Which kind of reply a gateway call gets: the unit gateway profiles describe
/// outcomes by (`missing_v1.<surface>`, `backend.<fault>.<surface>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// `/v2/chat/agent`: ndjson events.
    ChatAgent,
    /// Code suggestions answered with one JSON document.
    CodeSuggestions,
    /// Code suggestions streamed as raw text.
    CodeSuggestionsStream,
    /// `/v1/prompts/<id>` answered with a JSON string.
    Prompt,
    /// `/v1/prompts/<id>` streamed as raw text (the Chat tools).
    PromptStream,
}

impl Surface {
    /// Every surface, in report order.
    pub const ALL: [Surface; 5] = [
        Surface::ChatAgent,
        Surface::CodeSuggestions,
        Surface::CodeSuggestionsStream,
        Surface::Prompt,
        Surface::PromptStream,
    ];

    /// The name profiles and check ids use.
    pub fn name(self) -> &'static str {
        match self {
            Surface::ChatAgent => "chat_agent",
            Surface::CodeSuggestions => "code_suggestions",
            Surface::CodeSuggestionsStream => "code_suggestions_stream",
            Surface::Prompt => "prompt",
            Surface::PromptStream => "prompt_stream",
        }
    }

    /// Whether the reply streams.
    pub fn streams(self) -> bool {
        matches!(
            self,
            Surface::ChatAgent | Surface::CodeSuggestionsStream | Surface::PromptStream
        )
    }
}

/// How a feature's request is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `/v2/code/completions` with flat `model_*` fields.
    CodeCompletions,
    /// `/v2/code/generations` with flat `model_*` fields, `prompt_id` and `prompt` (17.x).
    CodeGenerationsV2,
    /// `/v3/code/completions` with one `code_editor_generation` prompt component and a
    /// top-level `model_metadata` (18.x).
    CodeGenerationsV3,
    /// `/v2/chat/agent`.
    ChatAgent,
    /// `/v1/prompts/<id>`: `inputs`, `prompt_version`, `model_metadata`; `stream: true`
    /// for the Chat tools, no `stream` key for the others.
    Prompt { stream: bool },
}

/// One gateway call, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Path under the gateway's base URL.
    pub path: String,
    /// JSON body.
    pub body: Value,
    /// The kind of reply it gets.
    pub surface: Surface,
}

/// The endpoint GitLab 18.x stores for a Bedrock model: the admin area requires one,
/// and the AI gateway ignores it for `bedrock/` identifiers.
pub const BEDROCK_DUMMY_ENDPOINT: &str = "http://bedrockselfhostedmodel.com";

fn layout(shapes: Shapes, feature: &Feature) -> Layout {
    use crate::feature::Endpoint;
    match feature.endpoint {
        Endpoint::CodeCompletions => Layout::CodeCompletions,
        Endpoint::CodeGenerations => match shapes {
            Shapes::V17_7 => Layout::CodeGenerationsV2,
            Shapes::V18_9 => Layout::CodeGenerationsV3,
        },
        Endpoint::ChatAgent => Layout::ChatAgent,
        // The Chat tools (slash commands) stream; the other prompt features do not.
        Endpoint::Prompt => Layout::Prompt {
            stream: feature.chat_subfeature,
        },
    }
}

/// The surface a feature's request gets, asked to stream or not (only code
/// suggestions let the client choose).
pub fn surface(shapes: Shapes, feature: &Feature, stream: bool) -> Surface {
    match layout(shapes, feature) {
        Layout::ChatAgent => Surface::ChatAgent,
        Layout::Prompt { stream: true } => Surface::PromptStream,
        Layout::Prompt { stream: false } => Surface::Prompt,
        _ if stream => Surface::CodeSuggestionsStream,
        _ => Surface::CodeSuggestions,
    }
}

/// The path a feature's request goes to.
pub fn path(shapes: Shapes, feature: &Feature) -> String {
    match layout(shapes, feature) {
        Layout::CodeCompletions => "/v2/code/completions".into(),
        Layout::CodeGenerationsV2 => "/v2/code/generations".into(),
        Layout::CodeGenerationsV3 => "/v3/code/completions".into(),
        Layout::ChatAgent => "/v2/chat/agent".into(),
        Layout::Prompt { .. } => format!("/v1/prompts/{}", feature.prompt_id.unwrap_or(feature.name)),
    }
}

/// The endpoint the instance sends for a model: as configured, or for a Bedrock model
/// without one, the placeholder GitLab stores.
pub fn endpoint_sent(m: &ModelFields) -> String {
    if m.endpoint.is_empty() && m.identifier.starts_with("bedrock/") {
        BEDROCK_DUMMY_ENDPOINT.to_owned()
    } else {
        m.endpoint.clone()
    }
}

/// `model_metadata` of a self-hosted model: provider (always `openai` for
/// self-hosted models), family, endpoint, key (`null` without one) and identifier.
pub fn model_metadata(m: &ModelFields) -> Value {
    json!({"provider": "openai", "name": m.family, "endpoint": endpoint_sent(m),
           "api_key": m.api_key, "identifier": m.identifier})
}

/// The whole call of a feature for a model; `marker` (the correlation id) is planted
/// in the text the gateway's prompt template puts before the model, and `stream` asks
/// for a streamed reply where the client may choose (code suggestions).
pub fn call(shapes: Shapes, feature: &Feature, m: &ModelFields, stream: bool, marker: &str) -> Call {
    let above = format!("# request {marker}\ndef add(a, b):\n");
    let flat = |extra: Value| {
        let mut b = json!({
            "current_file": {"file_name": "main.py", "language_identifier": "python",
                             "content_above_cursor": above, "content_below_cursor": ""},
            "stream": stream, "telemetry": [], "context": [],
            "model_provider": "litellm", "prompt_version": 2, "prompt": null,
            "model_endpoint": endpoint_sent(m), "model_name": m.family,
        });
        match shapes {
            // 18.x leaves out a key and an identifier that are not set.
            Shapes::V18_9 => {
                if let Some(k) = &m.api_key {
                    b["model_api_key"] = json!(k);
                }
                if !m.identifier.is_empty() {
                    b["model_identifier"] = json!(m.identifier);
                }
            }
            Shapes::V17_7 => {
                b["model_api_key"] = json!(m.api_key);
                b["model_identifier"] = json!(m.identifier);
            }
        }
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    };
    let layout = layout(shapes, feature);
    let body = match layout {
        Layout::CodeCompletions => flat(json!({})),
        Layout::CodeGenerationsV2 => flat(json!({
            "prompt_id": "code_suggestions/generations",
            "prompt": format!("Write a function that adds two numbers. [{marker}]"),
        })),
        Layout::CodeGenerationsV3 => json!({
            "prompt_components": [{"type": "code_editor_generation", "payload": {
                "file_name": "main.py", "content_above_cursor": above, "content_below_cursor": "",
                "language_identifier": "Python", "stream": stream,
                "prompt_enhancer": {"examples_array": [], "trimmed_content_above_cursor": above,
                                    "trimmed_content_below_cursor": "", "related_files": [],
                                    "related_snippets": [], "libraries": [],
                                    "user_instruction": "Write a function that adds two numbers."},
                "prompt_id": "code_suggestions/generations", "prompt_version": "^1.0.0"}}],
            "model_metadata": model_metadata(m),
        }),
        Layout::ChatAgent => json!({
            "messages": [{"role": "user", "content": format!("What does this code do? [{marker}]"),
                          "context": null, "current_file": null, "additional_context": []}],
            "model_metadata": model_metadata(m),
            "unavailable_resources": ["Pipelines", "Vulnerabilities"],
        }),
        Layout::Prompt { stream } => {
            let mut b = json!({"inputs": inputs(feature, marker), "prompt_version": "^1.0.0",
                               "model_metadata": model_metadata(m)});
            if stream {
                b["stream"] = json!(true);
            }
            b
        }
    };
    Call {
        path: path(shapes, feature),
        body,
        surface: surface(shapes, feature, stream),
    }
}

/// The `inputs` of a prompt feature, named as its prompt template names them, with the
/// marker in a variable the template really puts before the model.
fn inputs(feature: &Feature, marker: &str) -> Value {
    let code = format!("def add(a, b):\n    return a + b  # {marker}\n");
    let file =
        "Here is the content of the file user is working with:\n<file>\ndef add(a, b):\n    return a + b\n</file>\n";
    let lang = "The code is written in Python and stored as main.py";
    let code_tool =
        |input: &str| json!({"input": input, "selected_text": code, "file_content": file, "language_info": lang});
    match feature.name {
        "duo_chat_explain_code" => {
            code_tool("Explain the code user selected inside <selected_code></selected_code> tags.")
        }
        "duo_chat_write_tests" => {
            let mut v =
                code_tool("Write tests for the code user selected inside <selected_code></selected_code> tags.");
            v["libraries"] = json!([]);
            v
        }
        "duo_chat_refactor_code" | "duo_chat_fix_code" => {
            let verb = if feature.name == "duo_chat_fix_code" {
                "Fix any errors in"
            } else {
                "Refactor"
            };
            let mut v = code_tool(&format!(
                "{verb} the code user selected inside <selected_code></selected_code> tags."
            ));
            v["libraries"] = json!([]);
            v["file_content_reuse"] = json!(
                "The new code should fit into the existing file, consider reuse of existing code in the file when generating new code."
            );
            v
        }
        "duo_chat_troubleshoot_job" => json!({
            "input": "Troubleshoot the job log.",
            "selected_text": format!("$ pytest\nE   AssertionError: add(1, 2) != 3  [{marker}]\nERROR: Job failed: exit code 1\n"),
            "language_info": "The repository code is written in Python.",
        }),
        "duo_chat_explain_vulnerability" => json!({
            "input": "/vulnerability_explain",
            "title": format!("SQL injection in query builder [{marker}]"),
            "identifiers": "CWE-89",
            "vulnerability_info": format!("The file \"app.py\" has this vulnerable code:\n\n```\ncursor.execute(\"SELECT * FROM t WHERE id = \" + id)  # {marker}\n```\n"),
            "vulnerability_description": "User input is concatenated into an SQL query.",
            "selected_text": "", "file_content": "", "language_info": lang,
        }),
        "duo_chat_summarize_comments" => json!({
            "input": "/summarize_comments",
            "notes_content": format!("<comment>The build is red since the last merge. [{marker}]</comment><comment>Fixed in the next commit.</comment>"),
            "selected_text": "", "file_content": "", "language_info": "",
        }),
        "generate_commit_message" => json!({
            "diff": format!("diff --git a/main.py b/main.py\n+def add(a, b):\n+    return a + b  # {marker}\n"),
        }),
        "summarize_new_merge_request" => json!({
            "extracted_diff": format!("diff --git a/main.py b/main.py\n+def add(a, b):\n+    return a + b  # {marker}\n"),
        }),
        "resolve_vulnerability" => json!({
            "name": "SQL injection", "filename": "app.py",
            "identifiers": "<report_identifiers>\n * CWE-89\n</report_identifiers>",
            "vulnerable_code": format!("cursor.execute(\"SELECT * FROM t WHERE id = \" + id)  # {marker}"),
            "source_code": format!("import db\n\ndef find(id):\n    cursor.execute(\"SELECT * FROM t WHERE id = \" + id)  # {marker}\n"),
            "vulnerability_description": "User input is concatenated into an SQL query.",
        }),
        "summarize_review" => json!({
            "draft_notes_content": format!("Comment: Please add a test for add(). [{marker}]\n\n"),
        }),
        "glab_ask_git_command" => json!({
            "prompt": format!("How do I list the last 5 commits? [{marker}]"),
        }),
        "review_merge_request" => json!({
            "mr_title": format!("Add add() [{marker}]"),
            "mr_description": "Adds a helper.",
            "diff_lines": format!("+def add(a, b):\n+    return a + b  # {marker}\n"),
            "full_file_intro": "", "full_content_section": "", "custom_instructions_section": "",
        }),
        // A feature gateprobe has no template for: the generic shape.
        _ => json!({"input": code, "selected_text": code, "file_content": file, "language_info": lang}),
    }
}

/// The headers the instance sends on every gateway call, besides `Authorization` and
/// `X-Request-ID` (`ee/lib/gitlab/ai_gateway.rb#headers`, `ee/lib/cloud_connector.rb`).
pub fn headers(shapes: Shapes) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("X-Gitlab-Authentication-Type", "oidc"),
        ("X-Gitlab-Instance-Id", "gateprobe-instance"),
        ("X-Gitlab-Global-User-Id", "gateprobe-user"),
        ("X-Gitlab-Realm", "self-managed"),
        ("X-Gitlab-Host-Name", "gitlab.example.test"),
        ("X-Gitlab-Feature-Enabled-By-Namespace-Ids", ""),
        ("X-Gitlab-Feature-Enablement-Type", "duo_enterprise"),
    ];
    match shapes {
        Shapes::V17_7 => h.push(("X-Gitlab-Version", "17.7.0")),
        Shapes::V18_9 => h.extend([
            ("X-Gitlab-Version", "18.9.0"),
            ("X-Gitlab-Deployment-Type", "self-managed"),
            ("X-Gitlab-Enabled-Instance-Verbose-Ai-Logs", "false"),
            ("X-Gitlab-Is-Team-Member", "false"),
        ]),
    }
    h
}

const CODE_18_9: &[&str] = &[
    "codegemma",
    "codellama",
    "codestral",
    "deepseekcoder",
    "mistral",
    "mixtral",
    "llama3",
    "claude_3",
    "gpt",
];
const CHAT_18_9: &[&str] = &[
    "mistral",
    "mixtral",
    "codestral",
    "claude_3",
    "gpt",
    "llama3",
    "general",
];
const TOOLS_18_9: &[&str] = &[
    "mistral",
    "mixtral",
    "claude_3",
    "gpt",
    "codestral",
    "llama3",
    "general",
];
const OTHER_18_9: &[&str] = &["mistral", "mixtral", "claude_3", "gpt", "llama3", "general"];

const CODE_17_7: &[&str] = &[
    "codegemma",
    "codellama",
    "codestral",
    "deepseekcoder",
    "mistral",
    "mixtral",
    "claude_3",
    "gpt",
];
const CHAT_17_7: &[&str] = &["claude_3", "gpt", "mistral", "mixtral"];
const TOOLS_NO_GPT_17_7: &[&str] = &["claude_3", "mistral", "mixtral"];

/// Whether the instance (and the AI gateway of its version) serve `feature` with a
/// self-hosted model of `family`; `Err` says why not, naming what was observed.
pub fn served(shapes: Shapes, feature: &Feature, family: &str) -> Result<(), String> {
    let v = shapes.name();
    let (families, why): (&[&str], String) = match (shapes, feature.name) {
        (Shapes::V18_9, "code_completions" | "code_generations") => (
            CODE_18_9,
            format!(
                "GitLab {v}'s AI gateway serves code suggestions with {} (others: 422)",
                CODE_18_9.join(", ")
            ),
        ),
        (Shapes::V18_9, "duo_chat") => (
            CHAT_18_9,
            format!("GitLab {v} offers Duo Chat on {}", CHAT_18_9.join(", ")),
        ),
        (
            Shapes::V18_9,
            "duo_chat_explain_code" | "duo_chat_write_tests" | "duo_chat_refactor_code" | "duo_chat_fix_code",
        ) => (
            TOOLS_18_9,
            format!("GitLab {v} offers the Chat code tools on {}", TOOLS_18_9.join(", ")),
        ),
        (Shapes::V18_9, _) => (
            OTHER_18_9,
            format!("GitLab {v} offers `{}` on {}", feature.name, OTHER_18_9.join(", ")),
        ),
        (Shapes::V17_7, "code_completions" | "code_generations") => (
            CODE_17_7,
            format!(
                "the AI gateway of GitLab {v} serves code suggestions with {} (others: 422)",
                CODE_17_7.join(", ")
            ),
        ),
        (
            Shapes::V17_7,
            "duo_chat"
            | "duo_chat_explain_code"
            | "duo_chat_write_tests"
            | "duo_chat_refactor_code"
            | "duo_chat_fix_code",
        ) => (
            CHAT_17_7,
            format!(
                "the AI gateway of GitLab {v} has `{}` prompts only for {} (others: 200, then the stream breaks off)",
                feature.prompt_id.unwrap_or("chat/react"),
                CHAT_17_7.join(", ")
            ),
        ),
        (
            Shapes::V17_7,
            "duo_chat_troubleshoot_job" | "duo_chat_explain_vulnerability" | "duo_chat_summarize_comments",
        ) => (
            TOOLS_NO_GPT_17_7,
            format!(
                "the AI gateway of GitLab {v} has `{}` prompts only for {}",
                feature.prompt_id.unwrap_or(feature.name),
                TOOLS_NO_GPT_17_7.join(", ")
            ),
        ),
        (Shapes::V17_7, _) => (
            &[],
            format!(
                "the AI gateway of GitLab {v} serves `{}` only with GitLab-hosted models (404 \"Prompt '{}' not found\" for self-hosted ones)",
                feature.name,
                feature.prompt_id.unwrap_or(feature.name)
            ),
        ),
    };
    if families.contains(&family) {
        Ok(())
    } else {
        Err(format!("not served for family `{family}`: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feature::by_name;

    fn fields(identifier: &str, endpoint: &str, key: Option<&str>) -> ModelFields {
        ModelFields {
            family: "mixtral".into(),
            endpoint: endpoint.into(),
            api_key: key.map(str::to_owned),
            identifier: identifier.into(),
        }
    }

    #[test]
    fn versions_pick_the_newest_known_shapes_not_newer_than_them() {
        assert_eq!(Shapes::for_version("18.9"), Ok(Shapes::V18_9));
        assert_eq!(Shapes::for_version("19.2.1-ee"), Ok(Shapes::V18_9));
        assert_eq!(Shapes::for_version("18.2"), Ok(Shapes::V17_7));
        assert_eq!(Shapes::for_version("17.7.0"), Ok(Shapes::V17_7));
        assert!(Shapes::for_version("17.6").unwrap_err().contains("older"));
        assert!(Shapes::for_version("latest").unwrap_err().contains("MAJOR.MINOR"));
    }

    #[test]
    fn bedrock_models_send_the_placeholder_endpoint_and_keyless_ones_a_null_key() {
        let m = fields("bedrock/mistral.mixtral-8x7b-instruct-v0:1", "", None);
        let md = model_metadata(&m);
        assert_eq!(md["endpoint"], BEDROCK_DUMMY_ENDPOINT);
        assert_eq!(md["api_key"], Value::Null);
        assert_eq!(md["provider"], "openai");
    }

    #[test]
    fn every_feature_plants_the_marker_in_what_its_prompt_uses() {
        let m = fields("custom_openai/M", "http://h/v1", Some("k"));
        for shapes in Shapes::ALL {
            for f in crate::feature::FEATURES {
                let c = call(shapes, f, &m, false, "gp-0000abcd-7");
                assert!(
                    c.body.to_string().contains("gp-0000abcd-7"),
                    "{} {}",
                    shapes.name(),
                    f.name
                );
            }
        }
        let generations = by_name("code_generations").expect("feature");
        assert_eq!(
            call(Shapes::V18_9, generations, &m, false, "x").path,
            "/v3/code/completions"
        );
        assert_eq!(
            call(Shapes::V17_7, generations, &m, false, "x").path,
            "/v2/code/generations"
        );
        let tool = by_name("duo_chat_explain_code").expect("feature");
        let c = call(Shapes::V18_9, tool, &m, false, "x");
        assert_eq!((c.surface, &c.body["stream"]), (Surface::PromptStream, &json!(true)));
        let gcm = by_name("generate_commit_message").expect("feature");
        let c = call(Shapes::V18_9, gcm, &m, true, "x");
        assert_eq!((c.surface, c.body.get("stream")), (Surface::Prompt, None));
    }

    #[test]
    fn unset_keys_and_identifiers_are_left_out_of_18_9_code_suggestions() {
        let m = fields("", "http://h/v1", None);
        let f = by_name("code_completions").expect("feature");
        let b = call(Shapes::V18_9, f, &m, false, "x").body;
        assert!(b.get("model_api_key").is_none() && b.get("model_identifier").is_none());
        let b = call(Shapes::V17_7, f, &m, false, "x").body;
        assert_eq!(
            (&b["model_api_key"], &b["model_identifier"]),
            (&Value::Null, &json!(""))
        );
    }

    #[test]
    fn what_a_version_does_not_serve_says_why() {
        let gcm = by_name("generate_commit_message").expect("feature");
        assert!(served(Shapes::V18_9, gcm, "mixtral").is_ok());
        let why = served(Shapes::V17_7, gcm, "mixtral").unwrap_err();
        assert!(why.contains("GitLab-hosted"), "{why}");
        let chat = by_name("duo_chat").expect("feature");
        assert!(served(Shapes::V18_9, chat, "codegemma").is_err());
        assert!(served(Shapes::V17_7, chat, "llama3").is_err());
    }
}
