//! Model identifiers (`provider/model`) and endpoint normalisation.
//!
//! The GitLab admin UI takes a *model identifier* whose prefix picks the provider:
//! `custom_openai/<served name>` (vLLM and any OpenAI-compatible server),
//! `bedrock/<model or inference-profile id>` and `azure/<deployment>`. An identifier
//! without a prefix is treated as `custom_openai/`, exactly as the AI gateway does.

use std::fmt;

/// The provider an identifier's prefix selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// `custom_openai/`: an OpenAI-compatible server such as vLLM.
    CustomOpenai,
    /// `bedrock/`: AWS Bedrock runtime.
    Bedrock,
    /// `azure/`: Azure OpenAI.
    Azure,
}

impl Provider {
    /// The prefix as written in an identifier, without the slash.
    pub fn prefix(self) -> &'static str {
        match self {
            Provider::CustomOpenai => "custom_openai",
            Provider::Bedrock => "bedrock",
            Provider::Azure => "azure",
        }
    }

    /// Every prefix gateprobe understands, for error hints.
    pub const ALL: [Provider; 3] = [Provider::CustomOpenai, Provider::Bedrock, Provider::Azure];
}

/// A parsed model identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier {
    /// The provider selected by the prefix (or `custom_openai` when there is none).
    pub provider: Provider,
    /// The part after the prefix: served model name, Bedrock model id or Azure deployment.
    pub model: String,
    /// Whether the identifier carried an explicit prefix.
    pub prefixed: bool,
}

/// Why an identifier was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentifierError {
    /// The identifier is empty or only white space.
    #[error("the model identifier is empty")]
    Empty,
    /// `custom_openai/` and friends with nothing after the slash.
    #[error("the model identifier `{0}/` has no model after the provider prefix")]
    MissingModel(String),
    /// A prefix that is not one of the supported providers.
    #[error("unknown provider prefix `{0}/`")]
    UnknownProvider(String),
    /// White space inside the identifier (a served model name never has any).
    #[error("the model identifier contains white space")]
    WhiteSpace,
}

impl Identifier {
    /// Parses `provider/model`. Only the first slash separates the prefix: Bedrock ARNs
    /// and Hugging Face paths (`custom_openai/mistralai/Mistral-7B`) keep theirs.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        if raw.trim().is_empty() {
            return Err(IdentifierError::Empty);
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(IdentifierError::WhiteSpace);
        }
        let Some((prefix, model)) = raw.split_once('/') else {
            return Ok(Identifier {
                provider: Provider::CustomOpenai,
                model: raw.to_owned(),
                prefixed: false,
            });
        };
        let provider = match prefix {
            "custom_openai" => Provider::CustomOpenai,
            "bedrock" => Provider::Bedrock,
            "azure" => Provider::Azure,
            // A served name may itself contain a slash (`mistralai/Mixtral-8x7B`); the
            // gateway treats an unknown first segment as part of an unprefixed name only
            // when it looks like an organisation, which we cannot tell. Refuse it so the
            // admin writes `custom_openai/` explicitly.
            other => return Err(IdentifierError::UnknownProvider(other.to_owned())),
        };
        if model.is_empty() {
            return Err(IdentifierError::MissingModel(prefix.to_owned()));
        }
        Ok(Identifier {
            provider,
            model: model.to_owned(),
            prefixed: true,
        })
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefixed {
            write!(f, "{}/{}", self.provider.prefix(), self.model)
        } else {
            f.write_str(&self.model)
        }
    }
}

/// Removes one trailing slash, as the AI gateway does; never adds or strips `/v1`.
pub fn normalize_endpoint(endpoint: &str) -> &str {
    endpoint.strip_suffix('/').unwrap_or(endpoint)
}

/// Whether an OpenAI-compatible endpoint ends in `/v1` (after one trailing slash).
pub fn has_v1_suffix(endpoint: &str) -> bool {
    normalize_endpoint(endpoint).ends_with("/v1")
}

/// The endpoint with its `/v1` suffix removed, the misconfiguration the endpoint
/// checks derive on purpose.
pub fn without_v1(endpoint: &str) -> String {
    let e = normalize_endpoint(endpoint);
    e.strip_suffix("/v1").unwrap_or(e).to_owned()
}

/// The foundation-model id behind a Bedrock model id: an ARN's last segment without
/// its resource type, and an inference profile's region prefix (`us.`, `eu.`, `apac.`,
/// `us-gov.`, `global.`) removed.
pub fn bedrock_base_model(id: &str) -> &str {
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

/// Bedrock model ids served through `invoke` with Mistral's prompt format by the AI
/// gateway (everything else goes through `converse`).
pub fn bedrock_uses_invoke(id: &str) -> bool {
    bedrock_base_model(id).starts_with("mistral.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_select_providers() {
        let id = Identifier::parse("custom_openai/Mixtral-8x7B").unwrap();
        assert_eq!(
            (id.provider, id.model.as_str()),
            (Provider::CustomOpenai, "Mixtral-8x7B")
        );
        let id = Identifier::parse("bedrock/apac.anthropic.claude-3-5-sonnet-20241022-v2:0").unwrap();
        assert_eq!(id.provider, Provider::Bedrock);
        assert_eq!(id.model, "apac.anthropic.claude-3-5-sonnet-20241022-v2:0");
        let id = Identifier::parse("azure/gpt-35-turbo").unwrap();
        assert_eq!(id.provider, Provider::Azure);
    }

    #[test]
    fn no_prefix_means_custom_openai_and_only_first_slash_splits() {
        let id = Identifier::parse("codestral").unwrap();
        assert_eq!(id.provider, Provider::CustomOpenai);
        assert!(!id.prefixed);
        let id = Identifier::parse("custom_openai/mistralai/Mistral-7B").unwrap();
        assert_eq!(id.model, "mistralai/Mistral-7B");
        assert_eq!(id.to_string(), "custom_openai/mistralai/Mistral-7B");
    }

    #[test]
    fn bad_identifiers_are_refused() {
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Empty));
        assert_eq!(
            Identifier::parse("custom_openai/"),
            Err(IdentifierError::MissingModel("custom_openai".into()))
        );
        assert_eq!(
            Identifier::parse("vertex/gemini"),
            Err(IdentifierError::UnknownProvider("vertex".into()))
        );
        assert_eq!(Identifier::parse("a b"), Err(IdentifierError::WhiteSpace));
    }

    #[test]
    fn bedrock_ids_reduce_to_their_foundation_model() {
        assert_eq!(
            bedrock_base_model("apac.anthropic.claude-3-5-sonnet-20241022-v2:0"),
            "anthropic.claude-3-5-sonnet-20241022-v2:0"
        );
        assert_eq!(bedrock_base_model("us-gov.meta.llama3"), "meta.llama3");
        assert_eq!(
            bedrock_base_model("mistral.mixtral-8x7b-instruct-v0:1"),
            "mistral.mixtral-8x7b-instruct-v0:1"
        );
        assert_eq!(
            bedrock_base_model("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2"),
            "anthropic.claude-v2"
        );
        assert_eq!(
            bedrock_base_model("arn:aws:bedrock:ap-southeast-1:123:inference-profile/apac.anthropic.claude-v2"),
            "anthropic.claude-v2"
        );
        assert!(bedrock_uses_invoke("eu.mistral.mistral-large-2402-v1:0"));
        assert!(!bedrock_uses_invoke("anthropic.claude-v2"));
    }

    #[test]
    fn endpoints_lose_one_trailing_slash_only() {
        assert_eq!(normalize_endpoint("http://h/v1/"), "http://h/v1");
        assert_eq!(normalize_endpoint("http://h/v1//"), "http://h/v1/");
        assert!(has_v1_suffix("http://h:1/v1/"));
        assert!(!has_v1_suffix("http://h:1"));
        assert_eq!(without_v1("http://h:1/v1/"), "http://h:1");
    }
}
