//! Azure OpenAI deployments: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`,
//! authenticated with `api-key`; the deployment comes from the path.

/// The `api-version` the AI gateway (LiteLLM) sends by default.
pub const API_VERSION: &str = "2025-02-01-preview";

/// The path prefix of a deployment.
const DEPLOYMENTS: &str = "/openai/deployments/";

/// The path of a deployment's chat completions under an endpoint path (`""` or `/x`).
pub fn chat_path(base_path: &str, deployment: &str) -> String {
    format!(
        "{}{DEPLOYMENTS}{deployment}/chat/completions",
        base_path.trim_end_matches('/')
    )
}

/// The deployment a request path names, if it names one.
pub fn deployment_of(path: &str) -> Option<&str> {
    path.split_once(DEPLOYMENTS)
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|d| !d.is_empty())
}

/// The rest of a path after its deployment (`chat/completions`), with the deployment.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(DEPLOYMENTS)?;
    rest.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_round_trip() {
        let p = chat_path("", "gpt-4o");
        assert_eq!(p, "/openai/deployments/gpt-4o/chat/completions");
        assert_eq!(deployment_of(&p), Some("gpt-4o"));
        assert_eq!(split(&p), Some(("gpt-4o", "chat/completions")));
        assert_eq!(deployment_of("/v1/chat/completions"), None);
    }
}
