//! Writing a gateway's own config from a scenario: a LiteLLM proxy `config.yaml` whose
//! aliases point at gateprobe's mocks (one alias per self-hosted model, per feature
//! when the proxy owns the feature mapping, and the endpoint variants the `endpoint`
//! checks call), with deterministic router settings for conformance.
//!
//! Secrets (the master key, backend keys, the AWS secret) are written as LiteLLM's
//! `os.environ/NAME` references and handed to the proxy in its environment, so the
//! file itself, which lands in the report directory, holds none. `inline_secrets`
//! writes the values instead, for a file a person deploys by hand.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::identifier::Provider;
use crate::scenario::{FeaturesBy, ModelConfig, Scenario, Target};
use crate::scenario::{NO_V1_SUFFIX, SLASH_SUFFIX};
use crate::wire::endpoint::{has_v1_suffix, normalize as normalize_endpoint, without_v1};

/// A deliberate mistake in the written config, to show the suite catching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigFault {
    /// Every OpenAI-compatible `api_base` loses its `/v1` (the classic mistake).
    StripV1,
    /// Every backend key is replaced by a wrong one.
    WrongBackendKey,
    /// The OpenAI-compatible models' `api_base`s are rotated: each alias points at the
    /// next model's backend.
    SwapBackends,
    /// Bedrock models are configured for another region than the runtime's.
    WrongAwsRegion,
}

impl ConfigFault {
    /// Every config fault.
    pub const ALL: [ConfigFault; 4] = [
        ConfigFault::StripV1,
        ConfigFault::WrongBackendKey,
        ConfigFault::SwapBackends,
        ConfigFault::WrongAwsRegion,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ConfigFault::StripV1 => "strip-v1",
            ConfigFault::WrongBackendKey => "wrong-backend-key",
            ConfigFault::SwapBackends => "swap-backends",
            ConfigFault::WrongAwsRegion => "wrong-aws-region",
        }
    }

    /// What it gets wrong.
    pub fn breaks(self) -> &'static str {
        match self {
            ConfigFault::StripV1 => "api_base without /v1 for every OpenAI-compatible model",
            ConfigFault::WrongBackendKey => "a wrong api_key for every model that has one",
            ConfigFault::SwapBackends => "each OpenAI-compatible alias points at the next model's api_base",
            ConfigFault::WrongAwsRegion => "aws_region_name of every Bedrock model is another region",
        }
    }

    /// Looks a config fault up by name.
    pub fn from_name(name: &str) -> Option<ConfigFault> {
        ConfigFault::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// How to write the config.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Keep LiteLLM's router defaults (retries, cooldowns).
    pub keep_defaults: bool,
    /// Write secret values instead of `os.environ/` references.
    pub inline_secrets: bool,
    /// Deliberate mistakes.
    pub faults: Vec<ConfigFault>,
}

/// A written config: the YAML text and the environment the proxy needs for its
/// `os.environ/` references (empty with `inline_secrets`).
#[derive(Clone, Debug)]
pub struct Exported {
    /// `config.yaml` text.
    pub yaml: String,
    /// `(variable, value, what it is)` for the proxy's environment.
    pub env: Vec<(String, String, String)>,
}

/// The environment variable of the proxy's master key.
pub const MASTER_KEY_VAR: &str = "GATEPROBE_LITELLM_MASTER_KEY";

struct Writer<'a> {
    opts: &'a ExportOptions,
    env: Vec<(String, String, String)>,
}

impl Writer<'_> {
    /// A secret: a reference to a variable (recorded) or the value itself.
    fn secret(&mut self, value: &str, what: String) -> Value {
        if self.opts.inline_secrets {
            return json!(value);
        }
        if let Some((var, _, _)) = self.env.iter().find(|(_, v, _)| v == value) {
            return json!(format!("os.environ/{var}"));
        }
        let var = format!("GATEPROBE_LITELLM_SECRET_{}", self.env.len());
        self.env.push((var.clone(), value.to_owned(), what));
        json!(format!("os.environ/{var}"))
    }

    /// An address: itself, or a secret reference when it carries credentials (a
    /// password, a key in its query), which LiteLLM resolves for any parameter.
    fn address(&mut self, url: String, what: String) -> Value {
        if crate::redact::url_secrets("", &url).is_empty() {
            json!(url)
        } else {
            self.secret(&url, what)
        }
    }
}

/// Writes the LiteLLM config for `s`; `url(backend)` answers a mock's address.
pub fn litellm(s: &Scenario, url: &dyn Fn(&str) -> Option<String>, opts: &ExportOptions) -> Result<Exported, String> {
    let mut w = Writer { opts, env: Vec::new() };
    let has = |f| opts.faults.contains(&f);
    let endpoint = |m: &ModelConfig| -> Result<String, String> {
        match (&m.endpoint, m.backend) {
            (Some(t), _) => {
                if let Some(n) = t.backend_refs().find(|n| url(n).is_none()) {
                    return Err(format!("backend `{n}` has no address"));
                }
                Ok(t.render(url))
            }
            (None, Some(b)) => {
                url(&s.backends[b].name).ok_or_else(|| format!("backend `{}` has no address", s.backends[b].name))
            }
            (None, None) => Err(format!("model `{}` has no endpoint", m.name)),
        }
    };
    // OpenAI-compatible endpoints in model order, for `swap-backends`.
    let openai_models: Vec<usize> = (0..s.models.len())
        .filter(|&i| s.models[i].identifier.provider == Provider::CustomOpenai)
        .collect();
    let params = |w: &mut Writer<'_>, i: usize, variant: &str| -> Result<Value, String> {
        let m = &s.models[i];
        let mut p = serde_json::Map::new();
        let key = |w: &mut Writer<'_>, p: &mut serde_json::Map<String, Value>| {
            if let Some(k) = &m.api_key {
                let k = if has(ConfigFault::WrongBackendKey) {
                    "sk-gateprobe-wrong-backend-key".to_owned()
                } else {
                    k.clone()
                };
                p.insert("api_key".into(), w.secret(&k, format!("api_key of model {}", m.name)));
            }
        };
        match m.identifier.provider {
            Provider::CustomOpenai => {
                let src = if has(ConfigFault::SwapBackends) && openai_models.len() > 1 {
                    let at = openai_models.iter().position(|&j| j == i).unwrap_or(0);
                    openai_models[(at + 1) % openai_models.len()]
                } else {
                    i
                };
                let mut base = endpoint(&s.models[src])?;
                if has(ConfigFault::StripV1) {
                    base = without_v1(&base);
                }
                let base = match variant {
                    NO_V1_SUFFIX => without_v1(&base),
                    SLASH_SUFFIX => format!("{}/", normalize_endpoint(&base)),
                    _ => base,
                };
                p.insert("model".into(), json!(format!("custom_openai/{}", m.identifier.model)));
                p.insert(
                    "api_base".into(),
                    w.address(base, format!("api_base of model {}", m.name)),
                );
                key(w, &mut p);
                if m.api_key.is_none() {
                    // LiteLLM refuses a call without a key ("Missing credentials", a 500);
                    // a model without one gets the placeholder the AI gateway sends.
                    p.insert("api_key".into(), json!("dummy_key"));
                }
            }
            Provider::Azure => {
                let base = endpoint(m)?;
                let base = match variant {
                    SLASH_SUFFIX => format!("{}/", normalize_endpoint(&base)),
                    _ => base,
                };
                p.insert("model".into(), json!(format!("azure/{}", m.identifier.model)));
                p.insert(
                    "api_base".into(),
                    w.address(base, format!("api_base of model {}", m.name)),
                );
                key(w, &mut p);
                p.insert("api_version".into(), json!(crate::wire::azure::API_VERSION));
            }
            Provider::Bedrock => {
                p.insert("model".into(), json!(format!("bedrock/{}", m.identifier.model)));
                let runtime = w.address(endpoint(m)?, format!("Bedrock endpoint of model {}", m.name));
                p.insert("aws_bedrock_runtime_endpoint".into(), runtime);
                let aws = m.backend.and_then(|b| s.backends[b].aws.as_ref());
                if let Some(a) = aws {
                    p.insert("aws_access_key_id".into(), json!(a.access_key_id));
                    p.insert(
                        "aws_secret_access_key".into(),
                        w.secret(&a.secret_access_key, format!("AWS secret of model {}", m.name)),
                    );
                    let region = if has(ConfigFault::WrongAwsRegion) {
                        if a.region == "eu-west-1" {
                            "us-east-1"
                        } else {
                            "eu-west-1"
                        }
                    } else {
                        a.region.as_str()
                    };
                    p.insert("aws_region_name".into(), json!(region));
                    if let Some(t) = &a.session_token {
                        p.insert(
                            "aws_session_token".into(),
                            w.secret(t, format!("AWS session token of model {}", m.name)),
                        );
                    }
                }
            }
        }
        Ok(Value::Object(p))
    };

    let g = &s.gateway;
    let mut entries: Vec<(String, Value, String)> = Vec::new();
    for (i, m) in s.models.iter().enumerate() {
        let alias = g.alias(&m.name);
        entries.push((
            alias.clone(),
            params(&mut w, i, "")?,
            format!("self-hosted model {}", m.name),
        ));
        if !g.endpoint_variants || s.model_fault(i).is_some() {
            continue;
        }
        let v1 = m
            .endpoint
            .as_ref()
            .is_some_and(|e| has_v1_suffix(&e.render(|_| Some(String::new()))));
        match m.identifier.provider {
            Provider::CustomOpenai if v1 => {
                for suffix in [NO_V1_SUFFIX, SLASH_SUFFIX] {
                    let what = format!("{} with the endpoint {}", m.name, variant_words(suffix));
                    entries.push((format!("{alias}{suffix}"), params(&mut w, i, suffix)?, what));
                }
            }
            Provider::Azure => {
                let what = format!("{} with the endpoint {}", m.name, variant_words(SLASH_SUFFIX));
                entries.push((format!("{alias}{SLASH_SUFFIX}"), params(&mut w, i, SLASH_SUFFIX)?, what));
            }
            _ => {}
        }
    }
    if g.features_by == FeaturesBy::Feature {
        for fs in &s.features {
            let (Target::Model(i) | Target::Fallback(i)) = fs.target else {
                continue;
            };
            let how = if matches!(fs.target, Target::Fallback(_)) {
                "falls back to duo_chat's model"
            } else {
                "mapped to"
            };
            let what = format!("feature {} ({how} {})", fs.feature.name, s.models[i].name);
            entries.push((g.alias(fs.feature.name), params(&mut w, i, "")?, what));
        }
    }

    let master = match &g.token {
        Some(t) => w.secret(t, "master key (gateprobe's client key)".into()),
        None => return Err("a LiteLLM config needs a master key: set `gateway.auth.token`".into()),
    };
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# LiteLLM proxy config written by gateprobe from scenario `{}`.",
        s.name
    );
    if !opts.inline_secrets && !w.env.is_empty() {
        let _ = writeln!(y, "# Secrets are read from the environment:");
        for (var, _, what) in &w.env {
            let _ = writeln!(y, "#   {var}: {what}");
        }
    }
    for f in &opts.faults {
        let _ = writeln!(y, "# DELIBERATELY WRONG ({}): {}", f.name(), f.breaks());
    }
    y.push_str("model_list:\n");
    for (alias, p, what) in &entries {
        let _ = writeln!(y, "  # {what}");
        let _ = writeln!(y, "  - model_name: {}", q(&json!(alias)));
        y.push_str("    litellm_params:\n");
        if let Value::Object(o) = p {
            for (k, v) in o {
                let _ = writeln!(y, "      {k}: {}", q(v));
            }
        }
    }
    if opts.keep_defaults {
        y.push_str("# LiteLLM's router defaults are kept (retries, cooldowns).\n");
    } else {
        y.push_str(
            "# Deterministic for conformance: one upstream call per request, no deployment cooldowns.\n\
             router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n\
             litellm_settings:\n  num_retries: 0\n",
        );
    }
    y.push_str("general_settings:\n");
    let _ = writeln!(y, "  master_key: {}", q(&master));
    Ok(Exported { yaml: y, env: w.env })
}

fn variant_words(suffix: &str) -> &'static str {
    if suffix == NO_V1_SUFFIX {
        "without /v1 (endpoint checks)"
    } else {
        "with a trailing slash (endpoint checks)"
    }
}

/// A YAML scalar: JSON strings are valid YAML double-quoted scalars.
fn q(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SCENARIO: &str = "version: 1\ngateway:\n  kind: openai\n  features_by: feature\n  endpoint_variants: true\n  auth: {token: sk-master-1}\nbackends:\n  vllm: {provider: openai, models: [M], api_key: sk-backend-2}\nself_hosted_models:\n  - {name: m, family: mixtral, endpoint: \"{{ backends.vllm.url }}/v1\", api_key: sk-backend-2, identifier: custom_openai/M}\nfeatures:\n  duo_chat: m\n  generate_commit_message: disabled\n";

    #[test]
    fn config_has_aliases_variants_features_and_no_secrets() {
        let s = crate::scenario::load_str(Path::new("t.yaml"), SCENARIO, &|_| None).expect("valid");
        let e = litellm(&s, &|_| Some("http://127.0.0.1:9".into()), &ExportOptions::default()).expect("config");
        for want in [
            "model_name: \"m\"",
            "model_name: \"m--no-v1\"",
            "api_base: \"http://127.0.0.1:9\"\n",
            "api_base: \"http://127.0.0.1:9/v1/\"",
            "model_name: \"duo_chat\"",
            "model_name: \"duo_chat_fix_code\"",
            "num_retries: 0",
            "disable_cooldowns: true",
        ] {
            assert!(e.yaml.contains(want), "missing {want} in\n{}", e.yaml);
        }
        assert!(
            !e.yaml.contains("generate_commit_message"),
            "disabled features get no alias"
        );
        assert!(!e.yaml.contains("sk-master-1") && !e.yaml.contains("sk-backend-2"));
        assert_eq!(e.env.len(), 2);
        let broken = litellm(
            &s,
            &|_| Some("http://127.0.0.1:9".into()),
            &ExportOptions {
                faults: vec![ConfigFault::StripV1],
                inline_secrets: true,
                ..ExportOptions::default()
            },
        )
        .expect("config");
        assert!(!broken.yaml.contains("9/v1\""), "{}", broken.yaml);
        assert!(broken.yaml.contains("sk-backend-2"));
    }

    #[test]
    fn an_address_with_credentials_is_a_secret_reference() {
        let text = SCENARIO.replace(
            "{{ backends.vllm.url }}/v1",
            "{{ backends.vllm.url }}/v1?api-key=sk-in-the-url-77",
        );
        let s = crate::scenario::load_str(Path::new("t.yaml"), &text, &|_| None).expect("valid");
        let e = litellm(&s, &|_| Some("http://127.0.0.1:9".into()), &ExportOptions::default()).expect("config");
        assert!(!e.yaml.contains("sk-in-the-url-77"), "{}", e.yaml);
        let (var, value, what) = e
            .env
            .iter()
            .find(|(_, v, _)| v.contains("sk-in-the-url-77"))
            .expect("the address is handed over in the environment");
        assert_eq!(value, "http://127.0.0.1:9/v1?api-key=sk-in-the-url-77");
        assert_eq!(what, "api_base of model m");
        assert!(
            e.yaml.contains(&format!("api_base: \"os.environ/{var}\"")),
            "{}",
            e.yaml
        );
    }
}
