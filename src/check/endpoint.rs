//! `endpoint`: `/v1` handling. The configured endpoint of an OpenAI-compatible model
//! ends in `/v1`; the gateway calls it at `/v1/chat/completions`, adding nothing and
//! removing one trailing slash; Azure calls carry `api-version`; and an endpoint
//! without `/v1` is not silently fixed: on every surface, the backend's 404 reaches the
//! client as the gateway profile predicts, never as an empty 200.

use super::diagnosis::Cause;
use super::outcome::Matches as _;
use super::planner::{Front, Planner, UNSEEN};
use super::verdict::{Seen, Verdict, describe, fail, pass, seen, skipped};
use super::{Ctx, Rule};
use crate::identifier::Provider;
use crate::plan::{CheckId, Judge, PlannedCheck, Variant};
use crate::scenario::{CheckFamily, ModelConfig};

/// The `endpoint` family.
pub struct Endpoint;

const RULE_MISSING_V1: &str = "an endpoint without /v1 is not silently fixed: the backend's 404 surfaces as the profile predicts, never as an empty 200";

impl Rule for Endpoint {
    fn family(&self) -> CheckFamily {
        CheckFamily::Endpoint
    }

    fn plan(&self, p: &mut Planner<'_>) {
        if p.front() == Front::Direct {
            return;
        }
        // Surfaces whose error path an endpoint without /v1 has been probed on.
        let mut done: Vec<&'static str> = Vec::new();
        for (i, m) in p.s.models.iter().enumerate() {
            if p.fault(i).is_some() {
                continue;
            }
            if p.front() == Front::AiGateway && m.identifier.provider == Provider::CustomOpenai && m.endpoint.is_some()
            {
                p.check(
                    CheckId::of(CheckFamily::Endpoint, &m.name, "v1_suffix"),
                    "an OpenAI-compatible endpoint is configured with its /v1 (the gateway never adds it; without it vLLM answers 404)",
                    Judge::ConfiguredV1 { model: i },
                    vec![],
                );
            }
            let azure = m.identifier.provider == Provider::Azure;
            let v1 = p.has_v1(i);
            let base = match p.reach(i) {
                Ok(q) if p.observed(i) => q,
                Ok(q) => {
                    unseen(p, i, v1);
                    if v1 && m.identifier.provider == Provider::CustomOpenai {
                        done.push(surface_of(p, &q));
                    }
                    continue;
                }
                Err(_) => continue,
            };
            if v1 && !azure {
                let k = p.probe(base.clone());
                p.check(
                    CheckId::of(CheckFamily::Endpoint, &m.name, "v1_path"),
                    RULE_V1_PATH,
                    Judge::UpstreamPath { model: i },
                    vec![k],
                );
            }
            if (v1 || azure)
                && let Some(q) = p.variant(i, Variant::TrailingSlash)
            {
                let k = p.probe(q);
                p.check(
                    CheckId::of(CheckFamily::Endpoint, &m.name, "trailing_slash"),
                    RULE_TRAILING_SLASH,
                    Judge::UpstreamPath { model: i },
                    vec![k],
                );
            }
            if azure {
                let k = p.probe(base.clone());
                p.check(
                    CheckId::of(CheckFamily::Endpoint, &m.name, "api_version"),
                    RULE_API_VERSION,
                    Judge::ApiVersion { model: i },
                    vec![k],
                );
            }
            if v1 && m.identifier.provider == Provider::CustomOpenai && p.variant(i, Variant::WithoutV1).is_some() {
                let surface = surface_of(p, &base);
                missing_v1(
                    p,
                    i,
                    CheckId::of(CheckFamily::Endpoint, &m.name, "missing_v1"),
                    surface,
                    base.stream,
                );
                done.push(surface);
            }
        }
        // The error path on every other surface, through the first model that reaches it.
        let mut surfaces = p.surfaces();
        if p.front() == Front::Proxy {
            surfaces.push("completions");
        }
        for surface in surfaces.into_iter().filter(|s| !done.contains(s)) {
            let found = (0..p.s.models.len()).find_map(|i| {
                let usable = p.observed(i)
                    && p.s.models[i].identifier.provider == Provider::CustomOpenai
                    && p.has_v1(i)
                    && p.variant(i, Variant::WithoutV1).is_some();
                usable
                    .then(|| on_surface(p, i, surface))
                    .flatten()
                    .map(|q| (i, q.stream))
            });
            if let Some((i, stream)) = found {
                let id = CheckId::of(
                    CheckFamily::Endpoint,
                    &p.s.models[i].name,
                    format!("missing_v1_{surface}"),
                );
                missing_v1(p, i, id, surface, stream);
            } else if let Some(i) = (0..p.s.models.len()).find(|&i| {
                p.fault(i).is_none()
                    && !p.observed(i)
                    && p.s.models[i].identifier.provider == Provider::CustomOpenai
                    && p.has_v1(i)
                    && p.variant(i, Variant::WithoutV1).is_some()
                    && on_surface(p, i, surface).is_some()
            }) {
                // Only models whose endpoint is not a mock reach this surface.
                let name = &p.s.models[i].name;
                p.skip(
                    CheckId::of(CheckFamily::Endpoint, name, format!("missing_v1_{surface}")),
                    RULE_MISSING_V1,
                    Judge::MissingV1 {
                        model: i,
                        key: crate::scenario::profile::Profile::missing_v1_key_of(surface),
                    },
                    UNSEEN,
                );
            }
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        if let Judge::ConfiguredV1 { model } = check.judge {
            return configured_v1(&cx.scenario.models[model]);
        }
        let seen = match seen(check, cx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        match &check.judge {
            Judge::UpstreamPath { model } => upstream_path(&cx.scenario.models[*model], &seen),
            Judge::ApiVersion { .. } => api_version(cx.scenario, &seen),
            Judge::MissingV1 { key, model } => missing_v1_verdict(cx, key, &cx.scenario.models[*model], &seen),
            _ => super::misfiled(check),
        }
    }
}

/// The profile surface a probe's reply is on.
fn surface_of(p: &Planner<'_>, q: &crate::plan::Probe) -> &'static str {
    match p.front() {
        Front::AiGateway => crate::instance::surface(p.shapes(), q.feature, q.stream).name(),
        _ if q.feature.endpoint == crate::feature::Endpoint::CodeCompletions => "completions",
        _ if q.stream => "chat_stream",
        _ => "chat",
    }
}

/// A probe of model `i` on `surface`, proxies' `completions` included.
fn on_surface(p: &Planner<'_>, i: usize, surface: &str) -> Option<crate::plan::Probe> {
    if surface == "completions" {
        let f = crate::feature::by_name("code_completions")?;
        let mut q = p.reach(i).ok()?;
        q.feature = f;
        return Some(q);
    }
    p.on_surface(i, surface)
}

/// Plans `missing_v1` for model `i` on `surface` (skipped when the profile pins no
/// outcome there).
const RULE_V1_PATH: &str = "an endpoint ending in /v1 is called at /v1/chat/completions, nothing added or removed";
const RULE_TRAILING_SLASH: &str = "a trailing slash on the endpoint does not double the slash";
const RULE_API_VERSION: &str = "Azure deployments are called with an api-version the resource serves (without one, or with another, Azure answers 404)";

/// The checks of a model whose endpoint is not a gateprobe mock, listed as skipped:
/// each is judged on what the backend received.
fn unseen(p: &mut Planner<'_>, i: usize, v1: bool) {
    let m = &p.s.models[i];
    let azure = m.identifier.provider == Provider::Azure;
    let openai = m.identifier.provider == Provider::CustomOpenai;
    let id = |rule: &str| CheckId::of(CheckFamily::Endpoint, &m.name, rule);
    let path = Judge::UpstreamPath { model: i };
    let rows = [
        (v1 && !azure, "v1_path", RULE_V1_PATH, path.clone()),
        (v1 || azure, "trailing_slash", RULE_TRAILING_SLASH, path),
        (azure, "api_version", RULE_API_VERSION, Judge::ApiVersion { model: i }),
        (
            v1 && openai,
            "missing_v1",
            RULE_MISSING_V1,
            Judge::MissingV1 {
                model: i,
                key: crate::scenario::profile::Profile::missing_v1_key_of("chat_agent"),
            },
        ),
    ];
    for (applies, rule, text, judge) in rows {
        if applies {
            p.skip(id(rule), text, judge, UNSEEN);
        }
    }
}

fn missing_v1(p: &mut Planner<'_>, i: usize, id: CheckId, surface: &'static str, stream: bool) {
    let key = crate::scenario::profile::Profile::missing_v1_key_of(surface);
    let judge = Judge::MissingV1 { model: i, key };
    let probe = match p.s.gateway.profile.get(key) {
        None => Err(format!(
            "profile `{}` predicts no outcome for `{key}`",
            p.s.gateway.profile.name
        )),
        Some(_) => on_surface(p, i, surface)
            .map(|q| crate::plan::Probe { stream, ..q })
            .and_then(|q| {
                let mut v = p.variant(i, Variant::WithoutV1)?;
                v.feature = q.feature;
                v.stream = q.stream;
                Some(v)
            })
            .ok_or_else(|| format!("no request of model `{}` reaches `{surface}`", p.s.models[i].name)),
    };
    p.check_or_skip(id, RULE_MISSING_V1, judge, probe);
}

/// `endpoint.<model>.v1_suffix`, from the scenario alone.
fn configured_v1(m: &ModelConfig) -> Verdict {
    let shown = m
        .endpoint
        .as_ref()
        .map(|e| e.render(|b| Some(format!("{{{{ backends.{b}.url }}}}"))))
        .unwrap_or_default();
    let expected = "an endpoint ending in /v1".to_owned();
    if m.endpoint
        .as_ref()
        .is_some_and(|e| crate::wire::endpoint::has_v1_suffix(&e.render(|_| Some(String::new()))))
    {
        pass(expected, format!("`{shown}`"))
    } else {
        fail(
            expected,
            format!(
                "`{shown}` has no /v1: the gateway will call {}/chat/completions, which vLLM answers with 404; add /v1 to the model's endpoint in GitLab",
                shown.trim_end_matches('/')
            ),
        )
        .because(Cause::EndpointWithoutV1 { model: m.name.clone() })
    }
}

/// The path the backend should see for a model called at `endpoint`.
pub fn expected_path(m: &ModelConfig, endpoint: &str) -> String {
    let chat = crate::wire::endpoint::chat_completions_path(endpoint);
    match m.identifier.provider {
        Provider::Azure => {
            crate::wire::azure::chat_path(chat.trim_end_matches("/chat/completions"), &m.identifier.model)
        }
        _ => chat,
    }
}

fn upstream_path(m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let want = expected_path(m, &seen.o.fields.endpoint);
    let expected = format!("backend request at {want} and content to the client");
    let reply = seen.reply;
    if seen.hits.is_empty() {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(reply)),
        );
    }
    if let Some(h) = seen.hits.iter().find(|h| h.path != want) {
        return fail(
            expected,
            format!("backend request at {} (answered {})", h.path, h.status),
        )
        .because(Cause::WrongPath {
            model: m.name.clone(),
            path: h.path.clone(),
        });
    }
    match (&reply.error, reply.content.is_empty(), &reply.aborted) {
        (Some(e), _, _) => fail(expected, format!("backend request at {want}, but the client got {e}")),
        (None, true, _) => fail(expected, format!("backend request at {want}, but empty content")),
        (None, false, Some(a)) => fail(
            expected,
            format!("backend request at {want}, but the reply broke off: {a}"),
        ),
        (None, false, None) => pass(expected, format!("backend request at {want}; content returned")),
    }
}

fn api_version(s: &crate::scenario::Scenario, seen: &Seen<'_>) -> Verdict {
    use crate::wire::azure::api_version_of;
    let expected = "an `api-version` the Azure resource serves, on every Azure call".to_owned();
    let Some(first) = seen.hits.first() else {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(seen.reply)),
        );
    };
    let served = |backend: &str, v: &str| {
        s.backends
            .iter()
            .find(|b| b.name == backend)
            .is_none_or(|b| b.api_versions.iter().any(|a| a == v))
    };
    for h in &seen.hits {
        let shown = format!(
            "{}{}",
            h.path,
            h.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let said = h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        match api_version_of(h.query.as_deref()) {
            None => {
                return fail(
                    expected,
                    format!("the backend got {shown} (answered {}{said})", h.status),
                );
            }
            Some(v) if !served(&h.backend, v) => {
                return fail(
                    expected,
                    format!(
                        "the backend got api-version `{v}`, which it does not serve (answered {}{said}); set the gateway's Azure api-version (LiteLLM: `api_version`, AZURE_API_VERSION) to one it serves",
                        h.status
                    ),
                );
            }
            Some(_) => {}
        }
    }
    pass(expected, format!("?{}", first.query.as_deref().unwrap_or_default()))
}

fn missing_v1_verdict(cx: &Ctx<'_>, key: &str, m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let want_path = crate::wire::endpoint::chat_completions_path(&seen.o.fields.endpoint);
    // A proxy serves legacy completions from the upstream's `/completions` or turns them
    // into chat: either way nothing is added to the endpoint.
    let legacy = want_path.trim_end_matches("/chat/completions").to_owned() + "/completions";
    let allowed = |path: &str| path == want_path || (key.ends_with(".completions") && path == legacy);
    let Some(outcome) = cx.profile.get(key) else {
        return skipped(format!("profile predicts nothing for `{key}`"));
    };
    let expected = format!("no /v1 added (upstream {want_path} -> 404) and {}", outcome.describe());
    if let Some(h) = seen.hits.iter().find(|h| !allowed(&h.path)) {
        return fail(
            expected,
            format!("the gateway changed the path to {} (answered {})", h.path, h.status),
        )
        .because(Cause::WrongPath {
            model: m.name.clone(),
            path: h.path.clone(),
        });
    }
    if seen.hits.is_empty() {
        // Without the call there is no backend 404 to relay: whatever the client got
        // was made up by the gateway.
        return fail(
            expected,
            format!(
                "no backend request at {want_path}; the client got {}",
                describe(seen.reply)
            ),
        );
    }
    match outcome.matches(seen.reply) {
        Ok(actual) => pass(expected, actual),
        Err(actual) => fail(expected, actual),
    }
}
