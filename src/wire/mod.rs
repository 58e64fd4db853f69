//! Provider wire formats, pure (no I/O, no server or client): what the mocks serve, the
//! reference gateway sends, the adapters parse and the checks judge all agree because
//! they all use these.
//!
//! - [`endpoint`]: OpenAI-compatible endpoints (`/v1`, trailing slashes, the upstream
//!   path under an endpoint).
//! - [`openai`]: OpenAI-compatible (vLLM) error bodies.
//! - [`azure`]: Azure OpenAI deployments paths and `api-version`.
//! - [`bedrock`]: Bedrock runtime model ids in paths, operations, served models.
//! - [`aws`]: AWS event-stream framing and SigV4.
//! - [`prompt`]: a Duo feature's model prompt and the bodies that carry it.
//! - [`sse`]: server-sent events.

pub mod aws;
pub mod azure;
pub mod bedrock;
pub mod endpoint;
pub mod openai;
pub mod prompt;
pub mod sse;

/// Compares two secrets in time that does not depend on where they first differ.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_by_value() {
        assert!(super::secret_eq(b"sk-1", b"sk-1"));
        assert!(!super::secret_eq(b"sk-1", b"sk-2"));
        assert!(!super::secret_eq(b"sk-1", b"sk-10"));
    }
}
