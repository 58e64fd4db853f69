//! Validation of `self_hosted_models:` (names, families, identifiers, endpoints and
//! the mock backends they point at) and `features:` (feature names, the model each is
//! mapped to, Chat fallback).

use super::error::{ScenarioError, did_you_mean};
use super::raw::ScenarioFile;
use super::validate::{Ctx, RESERVED_TARGETS, valid_name};
use super::{BackendConfig, BackendProvider, FeatureSetting, ModelConfig, Target};
use crate::feature::{self, FAMILIES, FEATURES};
use crate::identifier::{Identifier, IdentifierError, Provider};

pub(super) fn models(
    cx: &mut Ctx<'_>,
    file: &ScenarioFile,
    backends: &[BackendConfig],
) -> Result<Vec<ModelConfig>, ScenarioError> {
    let mut out: Vec<ModelConfig> = Vec::new();
    for (i, m) in file.self_hosted_models.iter().enumerate() {
        let field = format!("self_hosted_models[{i}]");
        if !valid_name(&m.name.value) || RESERVED_TARGETS.contains(&m.name.value.as_str()) {
            return Err(cx
                .err(
                    m.name.pos,
                    format!("{field}.name"),
                    format!("`{}` is not a valid deployment name", m.name.value),
                )
                .hint("use letters, digits, `-`, `_` and `.`; `disabled` and `vendored` are reserved"));
        }
        if out.iter().any(|o| o.name == m.name.value) {
            return Err(cx
                .err(
                    m.name.pos,
                    format!("{field}.name"),
                    format!("deployment name `{}` is used twice", m.name.value),
                )
                .hint("deployment names are unique, as in GitLab's admin area"));
        }
        let family = cx
            .one_of(&m.family, &format!("{field}.family"), "model family", FAMILIES)?
            .to_owned();
        let raw_identifier = cx.string(&m.identifier, &format!("{field}.identifier"), None)?;
        let identifier = Identifier::parse(&raw_identifier).map_err(|e| {
            let hint = match &e {
                IdentifierError::UnknownProvider(p) => did_you_mean(p, Provider::ALL.map(|p| p.prefix()))
                    .map(|h| format!("{h} (prefixes: custom_openai/, bedrock/, azure/)"))
                    .unwrap_or_else(|| {
                        "prefixes: custom_openai/<served name>, bedrock/<model id>, azure/<deployment>".into()
                    }),
                _ => {
                    "write `custom_openai/<served model name>`, e.g. `custom_openai/Mixtral-8x7B-Instruct-v0.1`".into()
                }
            };
            cx.err(
                m.identifier.pos,
                format!("{field}.identifier"),
                format!("bad model identifier: {e}"),
            )
            .hint(hint)
        })?;
        let key_label = format!("{}.api_key", m.name.value);
        let api_key = m
            .api_key
            .as_ref()
            .map(|k| cx.string(k, &format!("{field}.api_key"), Some(&key_label)))
            .transpose()?
            .filter(|k| !k.is_empty());
        if identifier.provider == Provider::Bedrock {
            let backend = super::validate_mock::bedrock_backend(cx, &field, m, &identifier, backends)?;
            out.push(ModelConfig {
                name: m.name.value.clone(),
                family,
                endpoint: None,
                api_key,
                identifier,
                backend: Some(backend),
            });
            continue;
        }
        let endpoint = m
            .endpoint
            .as_ref()
            .map(|e| cx.interpolate(e, &format!("{field}.endpoint"), true, None))
            .transpose()?;
        if let Some(e) = &endpoint {
            // Backend holes are mock addresses, never credentials.
            cx.url_secrets(&format!("{field}.endpoint"), &e.render(|_| Some(String::new())));
        }
        let Some(ep) = &endpoint else {
            return Err(cx
                .err(
                    m.name.pos,
                    format!("{field}.endpoint"),
                    format!("model `{}` has no endpoint", m.name.value),
                )
                .hint("custom_openai models need `endpoint:`, e.g. `{{ backends.vllm.url }}/v1`"));
        };
        let mut backend = None;
        if let Some(name) = ep.backend_refs().next() {
            let raw = m.endpoint.as_ref().map(|e| e.pos).unwrap_or_default();
            let Some(b) = backends.iter().position(|b| b.name == name) else {
                let err = cx.err(raw, format!("{field}.endpoint"), format!("no backend named `{name}`"));
                return Err(match did_you_mean(name, backends.iter().map(|b| b.name.as_str())) {
                    Some(h) => err.hint(h),
                    None => err.hint("declare it under `backends:`"),
                });
            };
            let want = match identifier.provider {
                Provider::Azure => BackendProvider::Azure,
                _ => BackendProvider::Openai,
            };
            if backends[b].provider != want {
                let prov = if want == BackendProvider::Azure {
                    "azure"
                } else {
                    "openai"
                };
                return Err(cx
                    .err(
                        raw,
                        format!("{field}.endpoint"),
                        format!(
                            "`{}/` models need an `{prov}` backend, and `{name}` is not one",
                            identifier.provider.prefix()
                        ),
                    )
                    .hint(format!("point the endpoint at a backend with `provider: {prov}`")));
            }
            // A model no backend serves is a typo; one another backend serves is an
            // endpoint pointing at the wrong server: a misconfiguration of the setup
            // under test, which the run reports (`routing.<model>.model`).
            let served_elsewhere = backends.iter().any(|o| o.models.contains(&identifier.model));
            if !backends[b].models.contains(&identifier.model) && !served_elsewhere {
                return Err(cx
                    .err(
                        m.identifier.pos,
                        format!("{field}.identifier"),
                        format!("backend `{name}` does not serve `{}`", identifier.model),
                    )
                    .hint(format!("it serves: {}", backends[b].models.join(", "))));
            }
            backend = Some(b);
        }
        out.push(ModelConfig {
            name: m.name.value.clone(),
            family,
            endpoint,
            api_key,
            identifier,
            backend,
        });
    }
    Ok(out)
}

pub(super) fn features(
    cx: &Ctx<'_>,
    file: &ScenarioFile,
    models: &[ModelConfig],
) -> Result<Vec<FeatureSetting>, ScenarioError> {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    let mut explicit: Vec<(&'static feature::Feature, Target)> = Vec::new();
    for (key, value) in &file.features.0 {
        let field = format!("features.{}", key.value);
        let name = cx.one_of(key, &field, "feature", &names)?;
        let feat = feature::by_name(name).unwrap_or(&FEATURES[0]);
        let target = if value.value == "disabled" {
            Target::Disabled
        } else if value.value == "vendored" {
            Target::Vendored
        } else if let Some(i) = models.iter().position(|m| m.name == value.value) {
            if feat.endpoint == feature::Endpoint::CodeCompletions
                && !feature::COMPLETION_FAMILIES.contains(&models[i].family.as_str())
            {
                return Err(cx
                    .err(
                        value.pos,
                        &field,
                        format!(
                            "model `{}` (family `{}`) cannot serve code completions",
                            value.value, models[i].family
                        ),
                    )
                    .hint(format!(
                        "code completions need one of: {}",
                        feature::COMPLETION_FAMILIES.join(", ")
                    )));
            }
            Target::Model(i)
        } else {
            let err = cx.err(
                value.pos,
                &field,
                format!("no self-hosted model named `{}`", value.value),
            );
            let candidates = models.iter().map(|m| m.name.as_str()).chain(RESERVED_TARGETS);
            return Err(match did_you_mean(&value.value, candidates) {
                Some(h) => err.hint(h),
                None => err.hint(format!(
                    "map it to one of the `self_hosted_models` names ({}), `disabled` or `vendored`",
                    models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
            });
        };
        explicit.push((feat, target));
    }
    let chat = explicit
        .iter()
        .find(|(f, _)| f.name == feature::DUO_CHAT)
        .map(|(_, t)| *t);
    let mut out = Vec::new();
    for feat in FEATURES {
        let target = match explicit.iter().find(|(f, _)| f.name == feat.name) {
            Some((_, t)) => Some(*t),
            None if feat.chat_subfeature => match chat {
                Some(Target::Model(i)) => Some(Target::Fallback(i)),
                _ => None,
            },
            None => None,
        };
        if let Some(target) = target {
            out.push(FeatureSetting { feature: feat, target });
        }
    }
    Ok(out)
}
