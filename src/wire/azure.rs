//! Azure OpenAI deployments: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`,
//! authenticated with `api-key`; the deployment comes from the path.

/// The `api-version` the AI gateway (LiteLLM) sends by default.
pub const API_VERSION: &str = "2025-02-01-preview";

/// The data-plane `api-version`s Azure OpenAI serves on deployment paths: the GA
/// versions and the previews it has not retired. Others (a typo, a version that never
/// existed such as `2024-11-01-preview`, or a retired preview) are answered 404
/// `Resource not found`, exactly like a wrong path.
///
/// Sources: the inference specs Azure publishes, one folder per version
/// (`Azure/azure-rest-api-specs`, `specification/cognitiveservices/data-plane/AzureOpenAI/inference/{stable,preview}`);
/// Microsoft's "Azure OpenAI API preview lifecycle" page for the retired previews
/// ([`RETIRED_API_VERSIONS`]) and for 2023-06-01-preview and 2023-10-01-preview staying
/// supported.
pub const API_VERSIONS: [&str; 20] = [
    // GA
    "2022-12-01",
    "2023-05-15",
    "2024-02-01",
    "2024-06-01",
    "2024-10-21",
    // Preview
    "2023-06-01-preview",
    "2023-10-01-preview",
    "2024-02-15-preview",
    "2024-03-01-preview",
    "2024-04-01-preview",
    "2024-05-01-preview",
    "2024-07-01-preview",
    "2024-08-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-12-01-preview",
    "2025-01-01-preview",
    "2025-02-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
];

/// Preview `api-version`s Azure published and then retired (they stopped accepting
/// requests): the 2022 previews, and the five the lifecycle page listed for
/// retirement. Still common in old clients and tutorials.
pub const RETIRED_API_VERSIONS: [&str; 7] = [
    "2022-03-01-preview",
    "2022-06-01-preview",
    "2023-03-15-preview",
    "2023-07-01-preview",
    "2023-08-01-preview",
    "2023-09-01-preview",
    "2023-12-01-preview",
];

/// Whether `v` has the shape of an `api-version`: `YYYY-MM-DD`, optionally `-preview`.
pub fn is_version_shaped(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The `api-version` of a query string, if it has one (empty counts as none).
pub fn api_version_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .filter(|v| !v.is_empty())
}

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

    #[test]
    fn api_versions() {
        assert!(API_VERSIONS.contains(&API_VERSION), "the gateway's default is served");
        assert!(
            API_VERSIONS
                .iter()
                .chain(&RETIRED_API_VERSIONS)
                .all(|v| is_version_shaped(v))
        );
        assert!(!API_VERSIONS.iter().any(|v| RETIRED_API_VERSIONS.contains(v)));
        assert!(
            !is_version_shaped("2024-1-01") && !is_version_shaped("latest") && !is_version_shaped("2024-10-21-beta")
        );
        assert_eq!(api_version_of(Some("a=1&api-version=2024-10-21")), Some("2024-10-21"));
        assert_eq!(api_version_of(Some("api-version=")), None);
        assert_eq!(api_version_of(None), None);
    }
}
