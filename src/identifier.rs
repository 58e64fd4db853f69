//! Model identifiers (`provider/model`).
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
}
