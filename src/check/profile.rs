//! Gateway profiles: what each kind of gateway is expected to answer when a rule is
//! exercised (a missing `/v1`, missing credentials). Checks read these as data, so a
//! gateway that differs from the AI gateway is described, not special-cased in code.

use crate::feature::Endpoint;

/// The error a client must see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorOutcome {
    /// HTTP status.
    pub status: u16,
    /// Whether the error comes as an in-band stream event (status 200).
    pub in_band: bool,
}

/// The 401 a client must see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthOutcome {
    /// HTTP status.
    pub status: u16,
    /// The `error` field of the JSON body, when the profile pins it.
    pub message: Option<&'static str>,
}

/// Expectations for one gateway kind.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Name shown in reports.
    pub name: &'static str,
    /// Upstream 404 (missing `/v1`) on the chat agent.
    pub missing_v1_chat: ErrorOutcome,
    /// ... on code completions and generations.
    pub missing_v1_code: ErrorOutcome,
    /// ... on `/v1/prompts/*`.
    pub missing_v1_prompt: ErrorOutcome,
    /// No credentials.
    pub missing_auth: AuthOutcome,
    /// Wrong token.
    pub wrong_token: AuthOutcome,
}

impl Profile {
    /// The outcome of an upstream 404 on `endpoint`.
    pub fn missing_v1(&self, endpoint: Endpoint) -> ErrorOutcome {
        match endpoint {
            Endpoint::ChatAgent => self.missing_v1_chat,
            Endpoint::CodeCompletions | Endpoint::CodeGenerations => self.missing_v1_code,
            Endpoint::Prompt => self.missing_v1_prompt,
        }
    }
}

/// The GitLab AI gateway, as observed (REFERENCE §2); the built-in gateway follows it.
pub const AIGW: Profile = Profile {
    name: "aigw",
    missing_v1_chat: ErrorOutcome {
        status: 200,
        in_band: true,
    },
    missing_v1_code: ErrorOutcome {
        status: 500,
        in_band: false,
    },
    missing_v1_prompt: ErrorOutcome {
        status: 421,
        in_band: false,
    },
    missing_auth: AuthOutcome {
        status: 401,
        message: Some("No authorization header presented"),
    },
    wrong_token: AuthOutcome {
        status: 401,
        message: None,
    },
};
