//! `routing`: each model's requests reach its backend under its upstream name (and,
//! on Bedrock, through the right operation); an empty identifier and model metadata
//! the gateway cannot use are refused, never served by anyone.

use super::diagnosis::Cause;
use super::planner::{Front, Planner, UNSEEN};
use super::verdict::{Seen, Verdict, describe, fail, pass, seen};
use super::{Ctx, Rule, tolerated};
use crate::identifier::Provider;
use crate::instance::served;
use crate::mock::journal::Entry;
use crate::plan::{CheckId, Judge, PlannedCheck, Probe, Variant};
use crate::scenario::{BackendProvider, CheckFamily, ModelConfig, Scenario};

/// The `routing` family.
pub struct Routing;

const RULE_BACKEND: &str = "the request reaches the backend of the model's endpoint, and no other backend";
const RULE_MODEL: &str =
    "the upstream `model` is the identifier without its provider prefix, and the backend serves it";

impl Rule for Routing {
    fn family(&self) -> CheckFamily {
        CheckFamily::Routing
    }

    fn plan(&self, p: &mut Planner<'_>) {
        if p.front() == Front::Direct {
            return;
        }
        for (i, m) in p.s.models.iter().enumerate() {
            if p.fault(i).is_some() {
                continue;
            }
            let backend = CheckId::of(CheckFamily::Routing, &m.name, "backend");
            let model = CheckId::of(CheckFamily::Routing, &m.name, "model");
            let reach = p.reach(i).and_then(|q| {
                if m.backend.is_some() {
                    Ok(q)
                } else {
                    Err(UNSEEN.to_owned())
                }
            });
            match reach {
                Ok(q) => {
                    let operation =
                        m.identifier.provider == Provider::Bedrock && p.front() == Front::AiGateway && q.stream;
                    let k = p.probe(q);
                    p.check(backend, RULE_BACKEND, Judge::Backend { model: i }, vec![k]);
                    p.check(model, RULE_MODEL, Judge::ModelName { model: i }, vec![k]);
                    if operation {
                        p.check(
                            CheckId::of(CheckFamily::Routing, &m.name, "operation"),
                            "Bedrock chat streams through invoke-with-response-stream (Mistral ids) or converse-stream",
                            Judge::BedrockOperation { model: i },
                            vec![k],
                        );
                    }
                }
                Err(why) => {
                    p.skip(backend, RULE_BACKEND, Judge::Backend { model: i }, &why);
                    p.skip(model, RULE_MODEL, Judge::ModelName { model: i }, &why);
                }
            }
        }
        if p.front() == Front::AiGateway && !p.s.models.is_empty() {
            empty_identifier(p);
            invalid_metadata(p);
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        let seen = match seen(check, cx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let s = cx.scenario;
        match &check.judge {
            Judge::Backend { model } => backend(s, *model, &seen),
            Judge::ModelName { model } => model_name(s, *model, &seen),
            Judge::BedrockOperation { model } => operation(&s.models[*model], &seen),
            Judge::EmptyIdentifier => empty_identifier_verdict(&seen),
            Judge::InvalidMetadata => tolerated(cx, "invalid_metadata.refused", invalid_metadata_verdict(&seen)),
            _ => super::misfiled(check),
        }
    }
}

/// `routing.empty_identifier`. "No upstream call" can only be seen on a gateprobe
/// mock: the probe goes to the first observed model, through code generations when
/// its family is served there.
fn empty_identifier(p: &mut Planner<'_>) {
    let id = CheckId::bare(CheckFamily::Routing, "empty_identifier");
    let rule = "an empty model identifier is an error and causes no upstream call";
    let Some(i) = p.first_observed() else {
        p.skip(
            id,
            rule,
            Judge::EmptyIdentifier,
            "no model's endpoint is a gateprobe mock, so an upstream call could not be seen",
        );
        return;
    };
    let m = &p.s.models[i];
    let f = ["code_generations", "code_completions"]
        .into_iter()
        .filter_map(crate::feature::by_name)
        .find(|f| served(p.shapes(), f, &m.family).is_ok());
    let probe = match f {
        Some(f) => Ok(p.feature_probe(f, i, false)),
        None => p.reach(i),
    }
    .map(|q| Probe {
        identifier: Some(String::new()),
        ..q
    });
    p.check_or_skip(id, rule, Judge::EmptyIdentifier, probe);
}

/// `routing.invalid_metadata`: model metadata the gateway cannot accept (an empty
/// endpoint for an OpenAI-compatible model).
fn invalid_metadata(p: &mut Planner<'_>) {
    let id = CheckId::bare(CheckFamily::Routing, "invalid_metadata");
    let rule = "invalid self-hosted model metadata (an empty endpoint) is refused with an error, never served by another model";
    let found = (0..p.s.models.len()).find_map(|i| {
        let openai = p.s.models[i].identifier.provider == Provider::CustomOpenai;
        (p.observed(i) && openai).then(|| p.reach(i).ok()).flatten()
    });
    let probe = found
        .map(|q| Probe {
            variant: Variant::Empty,
            ..q
        })
        .ok_or_else(|| {
            "no OpenAI-compatible model's endpoint is a gateprobe mock, so a call to it could not be seen".to_owned()
        });
    p.check_or_skip(id, rule, Judge::InvalidMetadata, probe);
}

/// The name of a model's backend.
pub fn backend_name(s: &Scenario, model: usize) -> &str {
    s.models[model]
        .backend
        .map(|b| s.backends[b].name.as_str())
        .unwrap_or("?")
}

fn backend(s: &Scenario, model: usize, seen: &Seen<'_>) -> Verdict {
    let want = backend_name(s, model);
    let expected = format!("received by backend `{want}` only");
    let Some(first) = seen.hits.first() else {
        return fail(
            expected,
            format!("no backend received it; the client got {}", describe(seen.reply)),
        );
    };
    match seen.hits.iter().find(|h| h.backend != want) {
        Some(h) => fail(expected, format!("backend `{}` received it at {}", h.backend, h.path))
            .because(Cause::Misrouted {
                model: s.models[model].name.clone(),
            })
            .at(h.correlation_id.as_deref().unwrap_or_default()),
        None => pass(
            expected,
            format!(
                "backend `{want}` received {} request(s), the first at {}",
                seen.hits.len(),
                first.path
            ),
        ),
    }
}

fn model_name(s: &Scenario, model: usize, seen: &Seen<'_>) -> Verdict {
    let m = &s.models[model];
    let want = &m.identifier.model;
    let expected = match m.identifier.provider {
        Provider::Azure => format!("upstream deployment `{want}` in the path"),
        Provider::Bedrock => format!("upstream model id `{want}` in the path"),
        _ => format!("upstream model `{want}`"),
    };
    if seen.hits.is_empty() {
        return fail(expected, "no upstream request");
    }
    if let Some((h, actual)) = mismatch(&seen.hits, m) {
        return fail(expected, actual)
            .because(Cause::Misrouted { model: m.name.clone() })
            .at(h.correlation_id.as_deref().unwrap_or_default());
    }
    match unserved(s, &seen.hits, want) {
        Some((h, actual)) => {
            // On the model's own backend, the endpoint is wrong (the setup); on
            // another, the gateway sent it there.
            let cause = if h.backend == backend_name(s, model) {
                Cause::NotServed {
                    model: m.name.clone(),
                    backend: h.backend.clone(),
                }
            } else {
                Cause::Misrouted { model: m.name.clone() }
            };
            fail(format!("{expected}, served there"), actual)
                .because(cause)
                .at(h.correlation_id.as_deref().unwrap_or_default())
        }
        None => match bare_profile_only(s, &seen.hits) {
            Some((h, actual)) => {
                fail(format!("{expected}, served there"), actual).at(h.correlation_id.as_deref().unwrap_or_default())
            }
            None => pass(expected, format!("upstream model `{want}`")),
        },
    }
}

/// The first request a Bedrock runtime refused because it names a model the runtime
/// serves only through an inference profile by its bare id, and what to say about it.
fn bare_profile_only<'a>(s: &Scenario, hits: &[&'a Entry]) -> Option<(&'a Entry, String)> {
    use crate::wire::bedrock;
    hits.iter().find_map(|&h| {
        let b = s
            .backends
            .iter()
            .find(|b| b.name == h.backend && b.provider == BackendProvider::Bedrock)?;
        let id = bedrock::model_of(&h.path)?;
        if !bedrock::needs_profile(&b.profile_only, &id) {
            return None;
        }
        let said = h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let prefix = bedrock::geography_prefix(b.aws.as_ref().map_or("us-east-1", |a| a.region.as_str()));
        Some((
            h,
            format!(
                "the runtime refused the bare id `{id}` ({} ValidationException{said}); it serves this model only through an inference profile: use the profile's id as the identifier, e.g. `bedrock/{prefix}.{id}`",
                h.status
            ),
        ))
    })
}

/// The first request that names another model than `m`'s, and how.
pub fn mismatch<'a>(hits: &[&'a Entry], m: &ModelConfig) -> Option<(&'a Entry, String)> {
    let want = m.identifier.model.as_str();
    hits.iter().find_map(|&h| {
        let got = match m.identifier.provider {
            // Bedrock takes the model id from the path, raw or percent-encoded.
            Provider::Bedrock => match crate::wire::bedrock::model_of(&h.path) {
                Some(d) if d == want => return None,
                Some(d) => format!("upstream model id `{d}` (answered {})", h.status),
                None => format!("the upstream path {} names no model", h.path),
            },
            // Azure takes the deployment from the path; the body's `model` is ignored.
            Provider::Azure => match crate::wire::azure::deployment_of(&h.path) {
                Some(d) if d == want => return None,
                Some(d) => format!("upstream deployment `{d}` (answered {})", h.status),
                None => format!("the upstream path {} names no deployment", h.path),
            },
            Provider::CustomOpenai => match h.model.as_deref() {
                Some(g) if g == want => return None,
                Some(g) => format!("upstream model `{g}` (answered {})", h.status),
                None => "the upstream request has no `model`".into(),
            },
        };
        Some((h, got))
    })
}

/// The first request that reached a backend not serving `want` (the model's endpoint
/// points at another server), and what to say about it.
pub fn unserved<'a>(s: &Scenario, hits: &[&'a Entry], want: &str) -> Option<(&'a Entry, String)> {
    hits.iter().find_map(|&h| {
        let b = s.backends.iter().find(|b| b.name == h.backend)?;
        let serves = match b.provider {
            BackendProvider::Bedrock => crate::wire::bedrock::serves(&b.models, want),
            _ => b.models.iter().any(|m| m == want),
        };
        if serves {
            return None;
        }
        let elsewhere: Vec<&str> = s
            .backends
            .iter()
            .filter(|o| o.models.iter().any(|m| m == want))
            .map(|o| o.name.as_str())
            .collect();
        let hint = match elsewhere.as_slice() {
            [] => String::new(),
            names => format!("; `{want}` is served by {}", names.join(", ")),
        };
        Some((
            h,
            format!(
                "backend `{}` does not serve `{want}` (it answered {}; it serves {}): the model's endpoint points at another server{hint}",
                h.backend,
                h.status,
                b.models.join(", ")
            ),
        ))
    })
}

fn operation(m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let op = crate::wire::bedrock::Operation::for_model(&m.identifier.model, true).name();
    let expected = format!("POST /model/<id>/{op}");
    let Some(first) = seen.hits.first() else {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(seen.reply)),
        );
    };
    match seen.hits.iter().find(|h| !h.path.ends_with(&format!("/{op}"))) {
        Some(h) => fail(expected, format!("{} {}", h.method, h.path)),
        None => pass(expected, format!("{} {}", first.method, first.path)),
    }
}

fn empty_identifier_verdict(seen: &Seen<'_>) -> Verdict {
    let expected = "an error to the client and no upstream call".to_owned();
    let reply = seen.reply;
    if let Some(h) = seen.hits.first() {
        return fail(
            expected,
            format!("the gateway called backend `{}` at {}", h.backend, h.path),
        );
    }
    match &reply.error {
        Some(e) if reply.broken => fail(expected, format!("no upstream call, but a broken reply: {e}")),
        // `101 Switching Protocols` or a redirect is no error to the client.
        Some(e) if reply.non_answer().is_some() => fail(
            expected,
            format!(
                "no upstream call, but {} instead of an error: {e}",
                reply.non_answer().unwrap_or_default()
            ),
        ),
        Some(e) => pass(expected, format!("no upstream call; {e}")),
        None => fail(
            expected,
            format!(
                "no upstream call, but the client got {} without an error",
                describe(reply)
            ),
        ),
    }
}

/// Providers and models a gateway may fall back to, as their names show in errors.
const OTHER_MODELS: [&str; 6] = ["vertex", "anthropic", "gemini", "fireworks", "bedrock", "azure"];

/// Refused with an error, no backend call, and nothing in the reply shows another
/// model serving it.
fn invalid_metadata_verdict(seen: &Seen<'_>) -> Verdict {
    let expected = "an error to the client, no backend call, and no other model serving the request".to_owned();
    let reply = seen.reply;
    if let Some(h) = seen.hits.first() {
        return fail(
            expected,
            format!(
                "backend `{}` was called at {} with the invalid metadata",
                h.backend, h.path
            ),
        );
    }
    if let (true, Some(e)) = (reply.broken, &reply.error) {
        return fail(expected, format!("no backend call, but a broken reply: {e}"));
    }
    if let Some(what) = reply.non_answer() {
        return fail(
            expected,
            format!("no backend call, but {what} instead of an error: {}", describe(reply)),
        );
    }
    let Some(e) = reply.error.as_deref().or(reply.aborted.as_deref()) else {
        return fail(
            expected,
            format!("the client got {}: another model served the request", describe(reply)),
        );
    };
    let lower = e.to_lowercase();
    if let Some(other) = OTHER_MODELS.iter().find(|p| lower.contains(*p)) {
        return fail(
            expected,
            format!(
                "the gateway dropped the metadata and sent the request to another model: its error names `{other}`: {}",
                crate::text::trunc(e, 200)
            ),
        );
    }
    pass(expected, format!("refused: {}", crate::text::trunc(e, 200)))
}
