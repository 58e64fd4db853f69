//! The Bedrock runtime's paths: `POST /model/{modelId}/{operation}`, the model id raw
//! or percent-encoded (the AI gateway keeps the colon raw for `invoke` and encodes it
//! for `converse`), and which models a runtime serves.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The four runtime operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `invoke`: the model's own body format.
    Invoke,
    /// `invoke-with-response-stream`.
    InvokeStream,
    /// `converse`: the uniform message format.
    Converse,
    /// `converse-stream`.
    ConverseStream,
}

impl Operation {
    /// The path segment.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Invoke => "invoke",
            Operation::InvokeStream => "invoke-with-response-stream",
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
        }
    }

    /// The operation a path segment names.
    pub fn from_name(name: &str) -> Option<Operation> {
        [
            Operation::Invoke,
            Operation::InvokeStream,
            Operation::Converse,
            Operation::ConverseStream,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }

    /// The operation the AI gateway streams a model through: `invoke` with Mistral's
    /// prompt format for Mistral ids, `converse` for the others.
    pub fn for_model(id: &str, stream: bool) -> Operation {
        match (uses_invoke(id), stream) {
            (true, false) => Operation::Invoke,
            (true, true) => Operation::InvokeStream,
            (false, false) => Operation::Converse,
            (false, true) => Operation::ConverseStream,
        }
    }
}

/// The foundation-model id behind a Bedrock model id: an ARN's last segment without
/// its resource type, and an inference profile's region prefix (`us.`, `eu.`, `apac.`,
/// `us-gov.`, `global.`) removed.
pub fn base_model(id: &str) -> &str {
    let id = id.rsplit('/').next().unwrap_or(id);
    match id.split_once('.') {
        Some((prefix, rest))
            if rest.contains('.')
                && !prefix.is_empty()
                && prefix.len() <= 7
                && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
        {
            rest
        }
        _ => id,
    }
}

/// Whether the AI gateway serves a model id through `invoke` with Mistral's prompt
/// format (everything else goes through `converse`).
pub fn uses_invoke(id: &str) -> bool {
    base_model(id).starts_with("mistral.")
}

/// Whether a runtime enabling `models` serves model id `id`: the id itself, or the
/// base model of a cross-region inference profile or ARN.
pub fn serves(models: &[String], id: &str) -> bool {
    let base = base_model(id);
    models.iter().any(|m| m == id || m == base)
}

/// Foundation models the Bedrock runtime serves only through an inference profile: a
/// bare id (or a foundation-model ARN) of one of them is refused with 400
/// `ValidationException` ([`on_demand_unsupported`]), the id of a cross-region profile
/// (`us.`, `eu.`, `apac.`, `global.`, ...) or a profile ARN is served. A trailing `*`
/// matches any rest of the id.
///
/// Sources, each the runtime's own error quoted in a public report: Claude 3.7 Sonnet,
/// refused bare in every region ("AWS's cross-region inference is required for 3.7":
/// cline/cline#2482; anthropics/anthropic-sdk-python#894, FlowiseAI/Flowise#4253); the
/// Claude 4 generation, named `claude-sonnet-…`, `claude-opus-…`, `claude-haiku-…`
/// (braintrust.dev knowledge base "Bedrock model variations for on-demand throughput"
/// for Sonnet 4 and 4.5); DeepSeek-R1 (Mintplex-Labs/anything-llm#3441). Models refused
/// bare in some regions only (Claude 3.5 Sonnet v2 in us-east-1 and us-east-2:
/// danny-avila/LibreChat#4570, terricain/aioboto3#352; Nova Lite) are not listed: name
/// them in a backend's `profile_only`.
pub const PROFILE_ONLY: [&str; 5] = [
    "anthropic.claude-3-7-sonnet-*",
    "anthropic.claude-sonnet-*",
    "anthropic.claude-opus-*",
    "anthropic.claude-haiku-*",
    "deepseek.r1-*",
];

/// Whether `id` is an on-demand (bare) model id: a foundation model's own id or ARN,
/// not a cross-region inference profile's id, nor an inference-profile or
/// provisioned-throughput ARN.
pub fn is_bare(id: &str) -> bool {
    match id.strip_prefix("arn:") {
        Some(arn) => arn.contains(":foundation-model/"),
        None => base_model(id) == id,
    }
}

/// Whether a list of model ids and `prefix*` patterns names `id`'s foundation model.
pub fn listed(patterns: &[String], id: &str) -> bool {
    let base = base_model(id);
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => base.starts_with(prefix),
        None => p == base,
    })
}

/// Whether the runtime refuses `id` because `profile_only` names its model and `id` is
/// bare.
pub fn needs_profile(profile_only: &[String], id: &str) -> bool {
    is_bare(id) && listed(profile_only, id)
}

/// The prefix of the geographic cross-region inference profiles a region can call:
/// `us`, `eu`, `apac` (`ap-*`), `us-gov`, `ca`, or `us` when unknown.
pub fn geography_prefix(region: &str) -> &'static str {
    match region.split('-').next().unwrap_or("") {
        "eu" => "eu",
        "ap" => "apac",
        "ca" => "ca",
        "us" if region.starts_with("us-gov-") => "us-gov",
        _ => "us",
    }
}

/// Bedrock's message for a bare id of a profile-only model (the apostrophe is U+2019,
/// as the runtime sends it).
pub fn on_demand_unsupported(id: &str) -> String {
    format!(
        "Invocation of model ID {id} with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."
    )
}

/// `/` always, and `:` for Converse: what the AI gateway percent-encodes in a model id.
const SLASH: &AsciiSet = &CONTROLS.add(b'/').add(b'%');
const SLASH_COLON: &AsciiSet = &SLASH.add(b':');

/// The path of an operation on a model, the id encoded as the AI gateway encodes it.
pub fn path(id: &str, op: Operation) -> String {
    let set = match op {
        Operation::Invoke | Operation::InvokeStream => SLASH,
        _ => SLASH_COLON,
    };
    format!("/model/{}/{}", utf8_percent_encode(id, set), op.name())
}

/// Decodes `%XX` escapes (model ids arrive raw or percent-encoded).
pub fn decode_id(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// The model id (raw, as in the path) and the operation segment a path names.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/model/")?.rsplit_once('/')
}

/// The decoded model id a request path names.
pub fn model_of(path: &str) -> Option<String> {
    split_path(path).map(|(id, _)| decode_id(id))
}

/// The JSON inside an `invoke-with-response-stream` `chunk` event's payload
/// (`{"bytes": "<base64 of JSON>"}`), if it is there and well-formed.
pub fn chunk_json(payload: &serde_json::Value) -> Option<serde_json::Value> {
    use base64::Engine;
    payload
        .get("bytes")
        .and_then(serde_json::Value::as_str)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_decode() {
        assert_eq!(decode_id("anthropic.claude-v2%3A0"), "anthropic.claude-v2:0");
        assert_eq!(
            decode_id("mistral.mixtral-8x7b-instruct-v0:1"),
            "mistral.mixtral-8x7b-instruct-v0:1"
        );
        assert_eq!(decode_id("a%3"), "a%3");
        assert_eq!(decode_id("arn%3Aaws%3Abedrock%3A%3A%2Fx"), "arn:aws:bedrock::/x");
    }

    #[test]
    fn invoke_keeps_the_colon_converse_encodes_it() {
        let id = "mistral.mixtral-8x7b-instruct-v0:1";
        assert_eq!(path(id, Operation::Invoke), format!("/model/{id}/invoke"));
        assert_eq!(
            path("anthropic.claude-3:0", Operation::ConverseStream),
            "/model/anthropic.claude-3%3A0/converse-stream"
        );
        assert_eq!(
            model_of("/model/anthropic.claude-3%3A0/converse"),
            Some("anthropic.claude-3:0".into())
        );
        assert_eq!(
            path("arn:aws:bedrock:us-east-1:1:inference-profile/us.x", Operation::Invoke),
            "/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.x/invoke"
        );
    }

    #[test]
    fn inference_profiles_are_served_by_their_base_model() {
        let models = vec!["anthropic.claude-3-5-sonnet-20241022-v2:0".to_owned()];
        assert!(serves(&models, "apac.anthropic.claude-3-5-sonnet-20241022-v2:0"));
        assert!(!serves(&models, "mistral.mixtral-8x7b-instruct-v0:1"));
        assert!(uses_invoke("eu.mistral.mistral-large-2402-v1:0"));
    }

    #[test]
    fn profile_only_models_need_a_profile_id() {
        let list: Vec<String> = PROFILE_ONLY.iter().map(|p| (*p).to_owned()).collect();
        let sonnet = "anthropic.claude-3-7-sonnet-20250219-v1:0";
        assert!(needs_profile(&list, sonnet));
        assert!(needs_profile(
            &list,
            &format!("arn:aws:bedrock:us-east-1::foundation-model/{sonnet}")
        ));
        for profile in [
            format!("us.{sonnet}"),
            format!("eu.{sonnet}"),
            format!("apac.{sonnet}"),
            format!("global.{sonnet}"),
            format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{sonnet}"),
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3".to_owned(),
        ] {
            assert!(!needs_profile(&list, &profile), "{profile}");
        }
        assert!(needs_profile(&list, "anthropic.claude-sonnet-4-20250514-v1:0"));
        assert!(!needs_profile(&list, "anthropic.claude-3-5-sonnet-20241022-v2:0"));
        assert!(!needs_profile(&list, "mistral.mixtral-8x7b-instruct-v0:1"));
        let exact = vec!["anthropic.claude-3-5-sonnet-20241022-v2:0".to_owned()];
        assert!(needs_profile(&exact, "anthropic.claude-3-5-sonnet-20241022-v2:0"));
        assert!(!needs_profile(&exact, "anthropic.claude-3-5-sonnet-20241022-v2:1"));
        assert!(on_demand_unsupported("x").contains("isn\u{2019}t supported"));
    }
}
