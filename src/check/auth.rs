//! `auth`: client credentials are refused as the profile predicts without touching a
//! backend; every request of a model carries its key (Azure: `api-key`), and its
//! backend accepts it; a model without a key gets no other credential (another model's
//! key, the instance's token, or a stringified null); Bedrock calls are SigV4-signed
//! for the gateway's region and accepted; no configured key comes back in a reply.

use super::diagnosis::Cause;
use super::outcome::Matches as _;
use super::planner::{Front, Planner, UNSEEN};
use super::verdict::{Seen, Verdict, describe, error, fail, pass, seen, skipped};
use super::{Ctx, Rule};
use crate::identifier::Provider;
use crate::plan::{CheckId, ClientAuth, Judge, PlannedCheck};
use crate::redact::Redactor;
use crate::scenario::{BuiltinAuth, CheckFamily, GatewayKind, ModelConfig, Scenario};

/// The `auth` family.
pub struct Auth;

impl Rule for Auth {
    fn family(&self) -> CheckFamily {
        CheckFamily::Auth
    }

    fn plan(&self, p: &mut Planner<'_>) {
        if p.front() == Front::Direct {
            return;
        }
        for (i, m) in p.s.models.iter().enumerate() {
            if p.fault(i).is_some() {
                continue;
            }
            let (name, rule, judge) = match (&m.api_key, m.identifier.provider) {
                (_, Provider::Bedrock) => (
                    "signed",
                    "Bedrock calls are SigV4-signed with the gateway's credentials, for its region, and accepted",
                    Judge::Signed { model: i },
                ),
                (Some(_), Provider::Azure) => (
                    "key_forwarded",
                    "the model's API key reaches the backend as `api-key: <key>`, and the backend accepts it",
                    Judge::KeyForwarded { model: i },
                ),
                (Some(_), _) => (
                    "key_forwarded",
                    "the model's API key reaches the backend as `Authorization: Bearer <key>`, and the backend accepts it",
                    Judge::KeyForwarded { model: i },
                ),
                (None, _) => (
                    "no_foreign_key",
                    "a model without an API key is sent no other model's key, and no stringified null (`Bearer None`)",
                    Judge::NoForeignKey { model: i },
                ),
            };
            let id = CheckId::of(CheckFamily::Auth, &m.name, name);
            // What the backend received is seen on gateprobe's mocks only.
            let probe = p
                .reach(i)
                .and_then(|q| if p.observed(i) { Ok(q) } else { Err(UNSEEN.to_owned()) });
            p.check_or_skip(id, rule, judge, probe);
        }
        if !p.s.models.is_empty() {
            client(p);
        }
    }

    fn judge(&self, check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
        if check.judge == Judge::KeyNotLeaked {
            return key_not_leaked(check, cx);
        }
        let seen = match seen(check, cx) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let s = cx.scenario;
        match &check.judge {
            Judge::ClientRejected { auth } => client_rejected(cx, *auth, &seen),
            Judge::KeyForwarded { model } => key_forwarded(s, &s.models[*model], &seen),
            Judge::NoForeignKey { model } => no_foreign_key(s, &s.models[*model], &seen),
            Judge::Signed { model } => signed(s, &s.models[*model], &seen),
            _ => super::misfiled(check),
        }
    }
}

/// `auth.client.missing_token` and `.wrong_token`, through the first observed model.
fn client(p: &mut Planner<'_>) {
    let g = &p.s.gateway;
    let enforced = match p.front() {
        Front::AiGateway => g.kind == GatewayKind::Aigw || g.builtin_auth == BuiltinAuth::Enforce,
        _ => true,
    };
    let first = p.first_observed();
    if p.front() == Front::Proxy && first.is_none() {
        return;
    }
    for (auth, name, rule, key) in [
        (
            ClientAuth::Missing,
            "missing_token",
            "a request without client credentials is refused and touches no backend",
            "client_auth.missing",
        ),
        (
            ClientAuth::WrongToken,
            "wrong_token",
            "a request with a wrong token is refused and touches no backend",
            "client_auth.wrong",
        ),
    ] {
        let id = CheckId::bare(CheckFamily::Auth, format!("client.{name}"));
        let judge = Judge::ClientRejected { auth };
        let why = if !enforced {
            Some("the built-in gateway runs with auth bypassed".to_owned())
        } else if g.token.is_none() && (auth == ClientAuth::WrongToken || p.front() == Front::Proxy) {
            Some("no client token is configured, so no token is wrong".to_owned())
        } else if p.front() == Front::Proxy && g.profile.get(key).is_none() {
            Some(format!("profile `{}` predicts no outcome for `{key}`", g.profile.name))
        } else {
            None
        };
        if let Some(why) = why {
            p.skip(id, rule, judge, &why);
            continue;
        }
        let probe = p.reach(first.unwrap_or(0)).map(|q| crate::plan::Probe { auth, ..q });
        p.check_or_skip(id, rule, judge, probe);
    }
}

fn client_rejected(cx: &Ctx<'_>, auth: ClientAuth, seen: &Seen<'_>) -> Verdict {
    let key = match auth {
        ClientAuth::WrongToken => "client_auth.wrong",
        _ => "client_auth.missing",
    };
    let Some(outcome) = cx.profile.get(key) else {
        return skipped(format!("profile predicts nothing for `{key}`"));
    };
    let expected = format!("{} and no backend traffic", outcome.describe());
    if let Some(h) = seen.hits.first() {
        return fail(
            expected,
            format!("{} and backend `{}` received the request", seen.reply.status, h.backend),
        );
    }
    match outcome.matches(seen.reply) {
        Ok(actual) => pass(expected, actual),
        Err(actual) => fail(expected, actual),
    }
}

/// Every credential of the scenario a backend must not get unasked, and whose it is.
fn credentials(s: &Scenario) -> Vec<(String, String)> {
    s.models
        .iter()
        .filter_map(|m| Some((m.api_key.clone()?, format!("the key of model `{}`", m.name))))
        .chain(
            s.backends
                .iter()
                .filter_map(|b| Some((b.api_key.clone()?, format!("the key of backend `{}`", b.name)))),
        )
        .chain(
            s.gateway
                .token
                .clone()
                .map(|t| (t, "the instance's own token".to_owned())),
        )
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn key_forwarded(s: &Scenario, m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let key = m.api_key.as_deref().unwrap_or_default();
    let (header_name, want, expected) = match m.identifier.provider {
        Provider::Azure => (
            "api-key",
            key.to_owned(),
            "`api-key: <the model's key>` at the backend".to_owned(),
        ),
        _ => (
            "authorization",
            format!("Bearer {key}"),
            "`Authorization: Bearer <the model's key>` at the backend".to_owned(),
        ),
    };
    if seen.hits.is_empty() {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(seen.reply)),
        );
    }
    let cid = |h: &crate::mock::journal::Entry| h.correlation_id.clone().unwrap_or_default();
    if let Some(h) = seen
        .hits
        .iter()
        .find(|h| h.header(header_name) == Some(want.as_str()) && matches!(h.status, 401 | 403))
    {
        return fail(
            expected,
            format!(
                "the backend got the model's key and refused it ({}): the key configured for model `{}` is not the one backend `{}` accepts",
                h.status, m.name, h.backend
            ),
        )
        .because(Cause::KeyRefused {
            model: m.name.clone(),
            backend: h.backend.clone(),
        })
        .at(&cid(h));
    }
    let Some(h) = seen.hits.iter().find(|h| h.header(header_name) != Some(want.as_str())) else {
        return pass(
            expected,
            format!(
                "{} request(s): each got the model's key and accepted it",
                seen.hits.len()
            ),
        );
    };
    let got = format!(
        "{} {}",
        h.header("authorization").unwrap_or_default(),
        h.header("api-key").unwrap_or_default()
    );
    let whose = credentials(s)
        .into_iter()
        .find(|(k, _)| !k.is_empty() && got.contains(k.as_str()))
        .map(|(_, whose)| whose);
    let actual = format!(
        "the backend got {header_name} {}{}{}",
        h.header(header_name).map_or("(none)".into(), |a| format!("`{a}`")),
        h.header("authorization")
            .filter(|_| header_name != "authorization")
            .map(|a| format!(" and Authorization `{a}`"))
            .unwrap_or_default(),
        whose.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
    );
    let cause = match whose.as_deref() {
        Some("the instance's own token") => Cause::ClientTokenForwarded { model: m.name.clone() },
        Some(w) => Cause::WrongKey {
            model: m.name.clone(),
            got: w.to_owned(),
        },
        None => Cause::WrongKey {
            model: m.name.clone(),
            got: match (h.header(header_name), h.header("authorization")) {
                (Some(v), _) => format!("`{header_name}: {v}`"),
                (None, Some(a)) => format!("`Authorization: {a}`"),
                (None, None) => "no credential".into(),
            },
        },
    };
    fail(expected, actual).because(cause).at(&cid(h))
}

fn no_foreign_key(s: &Scenario, m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let expected =
        "no other credential (a model's key, the instance's token), and no stringified null, at the backend".to_owned();
    let Some(first) = seen.hits.first() else {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(seen.reply)),
        );
    };
    let keys = credentials(s);
    for h in &seen.hits {
        let cid = h.correlation_id.clone().unwrap_or_default();
        let auth = format!(
            "{} {}",
            h.header("authorization").unwrap_or_default(),
            h.header("api-key").unwrap_or_default()
        );
        if let Some((_, whose)) = keys.iter().find(|(k, _)| auth.contains(k.as_str())) {
            let cause = if whose == "the instance's own token" {
                Cause::ClientTokenForwarded { model: m.name.clone() }
            } else {
                Cause::WrongKey {
                    model: m.name.clone(),
                    got: whose.clone(),
                }
            };
            return fail(expected, format!("the backend got {whose} (request {cid})"))
                .because(cause)
                .at(&cid);
        }
        let bogus = [h.header("authorization"), h.header("api-key")]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|v| {
                let token = v.strip_prefix("Bearer").map_or(*v, str::trim);
                matches!(token, "" | "None" | "null" | "undefined" | "nil")
            });
        if let Some(v) = bogus {
            return fail(
                expected,
                format!("the backend got `{v}` (request {cid}): the gateway turned the missing key into text"),
            )
            .at(&cid);
        }
    }
    let auth = first
        .header("authorization")
        .map_or("(none)".to_owned(), |a| format!("`{a}`"));
    pass(
        expected,
        format!("{} request(s); the backend got Authorization {auth}", seen.hits.len()),
    )
}

fn signed(s: &Scenario, m: &ModelConfig, seen: &Seen<'_>) -> Verdict {
    let aws = m.backend.and_then(|b| s.backends[b].aws.as_ref());
    let (akid, region) = aws.map_or(("?", "?"), |a| (a.access_key_id.as_str(), a.region.as_str()));
    let token = if aws.is_some_and(|a| a.session_token.is_some()) {
        " and the session token signed as X-Amz-Security-Token"
    } else {
        ""
    };
    let expected = format!(
        "AWS4-HMAC-SHA256 with Credential={akid}/<date>/{region}/bedrock/aws4_request{token}, accepted by the runtime"
    );
    if seen.hits.is_empty() {
        return fail(
            expected,
            format!("no backend request; the client got {}", describe(seen.reply)),
        );
    }
    for h in &seen.hits {
        let cid = h.correlation_id.clone().unwrap_or_default();
        let auth = h.header("authorization").unwrap_or("");
        let Some(scope) = auth
            .strip_prefix("AWS4-HMAC-SHA256")
            .and_then(|r| r.split("Credential=").nth(1))
            .and_then(|r| r.split([',', ' ']).next())
        else {
            let detail = if auth.is_empty() {
                "not signed (no Authorization)"
            } else {
                "not SigV4-signed"
            };
            return fail(expected, format!("the request was {detail}"))
                .because(Cause::BedrockSignature { detail: detail.into() })
                .at(&cid);
        };
        let parts: Vec<&str> = scope.split('/').collect();
        if parts.len() != 5 || parts[0] != akid || parts[2] != region || parts[3] != "bedrock" {
            let shown = scope.replacen(parts[0], "<key id>", 1);
            return fail(expected, format!("signed with scope {shown}"))
                .because(Cause::BedrockSignature {
                    detail: format!("signed with scope {shown}, not for {region}/bedrock"),
                })
                .at(&cid);
        }
        if h.status == 403 {
            // A 403 is also the runtime's answer for a model it does not serve: name
            // the model the gateway asked for, and what the runtime said.
            let id = crate::wire::bedrock::model_of(&h.path).unwrap_or_default();
            let served = m
                .backend
                .is_none_or(|b| crate::wire::bedrock::serves(&s.backends[b].models, &id));
            let said = h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            return if served {
                fail(expected, format!("the runtime rejected the signature (403{said})"))
                    .because(Cause::BedrockSignature {
                        detail: format!("rejected by the runtime{said}"),
                    })
                    .at(&cid)
            } else {
                fail(
                    expected,
                    format!("the runtime refused access to model `{id}` (403): its backend does not serve it"),
                )
                .at(&cid)
            };
        }
    }
    pass(
        expected,
        format!(
            "{} request(s), each signed for {region}/bedrock and accepted",
            seen.hits.len()
        ),
    )
}

fn key_not_leaked(check: &PlannedCheck, cx: &Ctx<'_>) -> Verdict {
    let expected = "no upstream credential (model or backend API key, AWS secret or session token) in any response: its headers and its whole body, as written or encoded (base64, percent, JSON escapes) or cut short".to_owned();
    let watch = leak_watch(cx);
    let mut seen = 0;
    for &p in &check.probes {
        let o = &cx.outcomes[p];
        if let Some(whose) = leaked_with(&watch, cx, p) {
            return fail(
                expected,
                format!("the response to {} ({}) contains {whose}", o.correlation_id, o.path),
            )
            .at(&o.correlation_id);
        }
        if let Some(Ok(r)) = &o.result {
            if r.wire.unscanned {
                // What was not read cannot be vouched for.
                return fail(
                    expected,
                    format!(
                        "the response to {} ({}) is larger than {} MiB; gateprobe stopped reading there and cannot tell whether the rest holds a key",
                        o.correlation_id,
                        o.path,
                        crate::adapter::SCAN_LIMIT >> 20
                    ),
                )
                .at(&o.correlation_id);
            }
            seen += 1;
        }
    }
    if seen == 0 {
        return error(expected, "no response to inspect");
    }
    pass(expected, format!("{seen} responses inspected, none contains a key"))
}

/// What the leak check looks for: the scenario's upstream credentials (see
/// [`Scenario::upstream_credentials`](crate::scenario::Scenario::upstream_credentials)),
/// in every form. Built once per judgement: each is an automaton over all encodings.
pub fn leak_watch(cx: &Ctx<'_>) -> Redactor {
    Redactor::new(cx.scenario.upstream_credentials())
}

/// Whose credential probe `p`'s reply holds: found while it was read (headers, and the
/// body past the part kept), or in the body kept, in any encoding or cut short.
pub fn leaked_with(watch: &Redactor, cx: &Ctx<'_>, p: usize) -> Option<String> {
    let Some(Ok(r)) = &cx.outcomes[p].result else {
        return None;
    };
    r.wire
        .leaks
        .first()
        .cloned()
        .or_else(|| watch.find(&r.body).map(str::to_owned))
}
