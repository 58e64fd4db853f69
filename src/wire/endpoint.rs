//! OpenAI-compatible endpoints as the AI gateway uses them: it never adds or strips
//! `/v1`, and removes one trailing slash before appending the API path.

/// Removes one trailing slash, as the AI gateway does; never adds or strips `/v1`.
pub fn normalize(endpoint: &str) -> &str {
    endpoint.strip_suffix('/').unwrap_or(endpoint)
}

/// Whether an OpenAI-compatible endpoint ends in `/v1` (after one trailing slash).
pub fn has_v1_suffix(endpoint: &str) -> bool {
    normalize(endpoint).ends_with("/v1")
}

/// The endpoint with its `/v1` suffix removed, the misconfiguration the endpoint
/// checks derive on purpose.
pub fn without_v1(endpoint: &str) -> String {
    let e = normalize(endpoint);
    e.strip_suffix("/v1").unwrap_or(e).to_owned()
}

/// The path a server sees for a chat completion under `endpoint`: the endpoint's
/// path, one trailing slash removed, plus `/chat/completions`.
pub fn chat_completions_path(endpoint: &str) -> String {
    let e = normalize(endpoint);
    let path = reqwest::Url::parse(e).map(|u| u.path().to_owned()).unwrap_or_default();
    let path = if e.ends_with('/') {
        path
    } else {
        path.trim_end_matches('/').to_owned()
    };
    format!("{path}/chat/completions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_paths_follow_the_endpoint() {
        assert_eq!(chat_completions_path("http://h:1/v1"), "/v1/chat/completions");
        assert_eq!(chat_completions_path("http://h:1/v1/"), "/v1/chat/completions");
        assert_eq!(chat_completions_path("http://h:1"), "/chat/completions");
        assert_eq!(chat_completions_path("http://h:1/"), "/chat/completions");
        assert_eq!(chat_completions_path("http://h:1/v1//"), "/v1//chat/completions");
    }

    #[test]
    fn v1_is_found_and_removed_after_one_slash() {
        assert!(has_v1_suffix("http://h/v1/"));
        assert!(!has_v1_suffix("http://h/v1beta"));
        assert_eq!(without_v1("http://h/v1/"), "http://h");
    }

    #[test]
    fn endpoints_lose_one_trailing_slash_only() {
        assert_eq!(normalize("http://h/v1/"), "http://h/v1");
        assert_eq!(normalize("http://h/v1//"), "http://h/v1/");
        assert!(has_v1_suffix("http://h:1/v1/"));
        assert!(!has_v1_suffix("http://h:1"));
        assert_eq!(without_v1("http://h:1/v1/"), "http://h:1");
    }
}
