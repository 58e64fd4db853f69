//! String interpolation in scenario values: `${env:NAME}`, `${env:NAME:-default}`,
//! `{{ backends.NAME.url }}`, and in a launch block `{{ launch.* }}` and `{{ mocks.* }}`.
//!
//! Environment references are resolved while the file is loaded (so a missing
//! variable is a validation error); backend addresses only exist once the mocks are
//! listening, so those stay as pieces of a [`Template`] until the topology renders it.

/// A string with backend-address holes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    BackendUrl(String),
    /// `{{ launch.port }}`, `{{ launch.config }}`: known once a launch is prepared.
    Launch(String),
}

/// The `{{ launch.* }}` references a launch block may use.
pub const LAUNCH_VARS: [&str; 3] = ["port", "config", "report_dir"];

/// The `{{ mocks.* }}` references: the files of the run's mock PKI (a launch block may
/// use them; `gateway.tls` may name them).
pub const MOCK_VARS: [&str; 3] = ["ca", "client_cert", "client_key"];

/// The `NAME` of a value that is exactly one `{{ mocks.NAME }}` reference.
pub fn mock_ref(raw: &str) -> Option<&str> {
    raw.trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("mocks.")
        .filter(|n| MOCK_VARS.contains(n))
}

/// A problem at a byte offset inside the string.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the offending reference in the string.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

/// The result of interpolating one string.
#[derive(Debug)]
pub struct Interpolated {
    /// The template with environment values filled in.
    pub template: Template,
    /// Values that came from the environment (not from defaults).
    pub from_env: Vec<String>,
    /// Values (from the environment or a default) of variables whose names say they
    /// hold a credential (`${env:LITELLM_MASTER_KEY}`, see
    /// [`crate::redact::is_secret_name`]).
    pub secret_env: Vec<String>,
}

impl Template {
    /// A template with no holes.
    pub fn literal(s: impl Into<String>) -> Self {
        Template {
            pieces: vec![Piece::Lit(s.into())],
        }
    }

    /// Backend names this template refers to, with their byte offsets.
    pub fn backend_refs(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::BackendUrl(n) => Some(n.as_str()),
            Piece::Lit(_) | Piece::Launch(_) => None,
        })
    }

    /// Whether the template names a file of the run's mock PKI (`{{ mocks.* }}`).
    pub fn names_mock_files(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Launch(n) if n.starts_with("mocks.")))
    }

    /// Fills the holes; `url` answers a backend's base URL.
    pub fn render(&self, url: impl Fn(&str) -> Option<String>) -> String {
        self.render_launch(url, |_| None)
    }

    /// Fills backend holes with `url` and `{{ launch.NAME }}` holes with `launch`.
    pub fn render_launch(
        &self,
        url: impl Fn(&str) -> Option<String>,
        launch: impl Fn(&str) -> Option<String>,
    ) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::BackendUrl(n) => out.push_str(&url(n).unwrap_or_default()),
                Piece::Launch(n) => out.push_str(&launch(n).unwrap_or_default()),
            }
        }
        out
    }

    /// The text when there are no holes.
    pub fn as_literal(&self) -> Option<String> {
        self.pieces
            .iter()
            .all(|p| matches!(p, Piece::Lit(_)))
            .then(|| self.render(|_| None))
    }
}

/// Parses `raw`, resolving `${env:…}` with `env`. `allow_backends` says whether
/// `{{ backends.NAME.url }}` may appear in this field.
pub fn interpolate(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
    allow_backends: bool,
) -> Result<Interpolated, TemplateError> {
    interpolate_in(raw, env, allow_backends, false)
}

/// Like [`interpolate`]; `allow_launch` also admits `{{ launch.port }}`,
/// `{{ launch.config }}` and `{{ launch.report_dir }}` (in a gateway's `launch` block).
pub fn interpolate_in(
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
    allow_backends: bool,
    allow_launch: bool,
) -> Result<Interpolated, TemplateError> {
    let mut pieces = Vec::new();
    let mut from_env = Vec::new();
    let mut secret_env = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < raw.len() {
        let rest = &raw[i..];
        if let Some(body) = rest.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| TemplateError {
                offset: i,
                message: "unterminated `${`".into(),
                hint: Some("write `${env:NAME}` or `${env:NAME:-default}`".into()),
            })?;
            let inner = &body[..end];
            let Some(spec) = inner.strip_prefix("env:") else {
                return Err(TemplateError {
                    offset: i,
                    message: format!("unknown interpolation `${{{inner}}}`"),
                    hint: Some("only `${env:NAME}` and `${env:NAME:-default}` exist".into()),
                });
            };
            let (name, default) = match spec.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (spec, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(TemplateError {
                    offset: i,
                    message: format!("`{name}` is not an environment variable name"),
                    hint: Some("names are letters, digits and `_`".into()),
                });
            }
            let value = match (env(name), default) {
                (Some(v), _) => {
                    if !v.is_empty() {
                        from_env.push(v.clone());
                    }
                    v
                }
                (None, Some(d)) => d.to_owned(),
                (None, None) => {
                    return Err(TemplateError {
                        offset: i,
                        message: format!("environment variable `{name}` is not set"),
                        hint: Some(format!(
                            "export {name}=... before running, or give a default: `${{env:{name}:-value}}`"
                        )),
                    });
                }
            };
            if crate::redact::is_secret_name(name) && !value.is_empty() {
                secret_env.push(value.clone());
            }
            lit.push_str(&value);
            i += 2 + end + 1;
        } else if let Some(body) = rest.strip_prefix("{{") {
            let end = body.find("}}").ok_or_else(|| TemplateError {
                offset: i,
                message: "unterminated `{{`".into(),
                hint: Some("write `{{ backends.NAME.url }}`".into()),
            })?;
            let inner = body[..end].trim();
            if let Some(var) = inner.strip_prefix("mocks.") {
                if !allow_launch || !MOCK_VARS.contains(&var) {
                    return Err(TemplateError {
                        offset: i,
                        message: format!("unknown reference `{{{{ {inner} }}}}`"),
                        hint: Some(if allow_launch {
                            "mock PKI references are `{{ mocks.ca }}`, `{{ mocks.client_cert }}` and `{{ mocks.client_key }}`".into()
                        } else {
                            "`{{ mocks.* }}` belongs in the gateway's `launch` block or `gateway.tls`".into()
                        }),
                    });
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                // Known once the mocks run, like the launch values.
                pieces.push(Piece::Launch(format!("mocks.{var}")));
                i += 2 + end + 2;
                continue;
            }
            if let Some(var) = inner.strip_prefix("launch.") {
                if !allow_launch || !LAUNCH_VARS.contains(&var) {
                    return Err(TemplateError {
                        offset: i,
                        message: format!("unknown reference `{{{{ {inner} }}}}`"),
                        hint: Some(if allow_launch {
                            "launch references are `{{ launch.port }}`, `{{ launch.config }}` and `{{ launch.report_dir }}`".into()
                        } else {
                            "`{{ launch.* }}` belongs in the gateway's `launch` block".into()
                        }),
                    });
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Launch(var.to_owned()));
                i += 2 + end + 2;
                continue;
            }
            let name = inner
                .strip_prefix("backends.")
                .and_then(|r| r.strip_suffix(".url"))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TemplateError {
                    offset: i,
                    message: format!("unknown reference `{{{{ {inner} }}}}`"),
                    hint: Some("the only reference is `{{ backends.NAME.url }}`".into()),
                })?;
            if !allow_backends {
                return Err(TemplateError {
                    offset: i,
                    message: "backend addresses cannot be used in this field".into(),
                    hint: Some("`{{ backends.NAME.url }}` belongs in a model's `endpoint`".into()),
                });
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::BackendUrl(name.to_owned()));
            i += 2 + end + 2;
        } else {
            let c = rest.chars().next().unwrap_or_default();
            lit.push(c);
            i += c.len_utf8().max(1);
        }
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(Interpolated {
        template: Template { pieces },
        from_env,
        secret_env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cret".to_owned())
    }

    #[test]
    fn env_values_and_defaults() {
        let r = interpolate("Bearer ${env:KEY}", &env, false).unwrap();
        assert_eq!(r.template.as_literal().unwrap(), "Bearer s3cret");
        assert_eq!(r.from_env, vec!["s3cret"]);
        let r = interpolate("${env:NOPE:-dflt}", &env, false).unwrap();
        assert_eq!(r.template.as_literal().unwrap(), "dflt");
    }

    #[test]
    fn missing_env_points_at_the_reference() {
        let e = interpolate("x ${env:NOPE}", &env, false).unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("NOPE"));
    }

    #[test]
    fn backend_urls_render_later() {
        let r = interpolate("{{ backends.vllm.url }}/v1", &env, true).unwrap();
        assert_eq!(r.template.backend_refs().collect::<Vec<_>>(), vec!["vllm"]);
        assert_eq!(
            r.template.render(|_| Some("http://127.0.0.1:9".into())),
            "http://127.0.0.1:9/v1"
        );
        assert!(interpolate("{{ backends.vllm.url }}", &env, false).is_err());
        assert!(interpolate("{{ nope }}", &env, true).is_err());
    }
}
