//! Golden transcripts: the exchanges of a conformance run kept as data, so the checks
//! can judge real traffic again without the real systems.
//!
//! `gateprobe run --record DIR` writes one transcript per scenario: for every probe,
//! the request gateprobe sent (as the GitLab instance or an OpenAI client), the
//! gateway's reply as it came over the wire (status, content type, body, how the body
//! ended), the requests the mock backends received for it (from their journal), and
//! the verdict of every check. Every secret of the scenario is replaced by
//! `[redacted:<label>]`, the label naming the scenario field it came from.
//!
//! [`replay`] judges a transcript again: it compiles the plan from the same scenario
//! (whose secrets fill the redacted labels back in), refuses a plan that no longer
//! matches the recorded probes, rebuilds each reply with the same parser a live run
//! uses, and runs the same judges. Committed transcripts of real gateways
//! (`tests/fixtures/transcripts/`) make CI reach the live verdicts without them.
//!
//! The format is JSON, `{"format": "gateprobe-transcript", "version": 1, ...}`; see
//! [`Transcript`] and the README's "Golden transcripts".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::adapter::{Body, Head, ModelFields, Reply, Sent, TransportError, Wire};
use crate::check::{self, ProbeOutcome};
use crate::mock::journal::Entry;
use crate::plan::{Plan, Probe, Variant};
use crate::redact::Redactor;
use crate::report::{CheckResult, Status};
use crate::scenario::{GatewayKind, Scenario};

/// The value of `format`.
pub const FORMAT: &str = "gateprobe-transcript";
/// The format version this gateprobe writes and reads.
pub const VERSION: u32 = 1;

/// A recorded run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The gateprobe that recorded it.
    pub tool: String,
    /// When, RFC 3339.
    pub recorded_at: String,
    /// Free text: what was run, how (`GATEPROBE_RECORD_NOTE`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The scenario.
    pub scenario: ScenarioRef,
    /// The gateway under test.
    pub gateway: GatewayRef,
    /// One per probe of the plan, in plan order.
    pub exchanges: Vec<Exchange>,
    /// Every check's verdict in the live run.
    pub verdicts: Vec<Verdict>,
}

/// Which scenario a transcript was recorded with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRef {
    /// Its name.
    pub name: String,
    /// The file, as given on the command line.
    pub path: String,
    /// The GitLab instance version gateprobe played.
    pub instance_version: String,
}

/// The gateway a transcript was recorded against.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRef {
    /// `builtin`, `aigw`, `openai`.
    pub kind: String,
    /// Its base URL.
    pub url: Option<String>,
    /// The profile that judged it.
    pub profile: String,
    /// What the profile says it was observed on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile_observed: String,
}

/// One probe: what was sent, what came back, what the backends received.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The probe, as the plan described it.
    pub probe: ProbeKey,
    /// Correlation id.
    pub correlation_id: String,
    /// The model fields sent (the endpoint as rendered in the recorded run).
    pub fields: Fields,
    /// The request, as it went out; `None` when the probe never ran.
    pub request: Option<Sent>,
    /// The reply; `None` when there was none (see `transport_error`) or the probe
    /// never ran.
    pub reply: Option<RecordedReply>,
    /// Why there was no reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_error: Option<TransportError>,
    /// What the mock backends received for it.
    pub backend: Vec<Entry>,
}

/// A probe's identity, to tell whether a plan still matches a transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeKey {
    /// Feature.
    pub feature: String,
    /// Self-hosted model name.
    pub model: String,
    /// Endpoint variant: `as_configured`, `trailing_slash`, `without_v1`, `empty`.
    pub variant: String,
    /// Client credentials: `valid`, `missing`, `wrong_token`.
    pub auth: String,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// An identifier sent instead of the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// A proxy alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// [`ModelFields`] as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// Family.
    pub family: String,
    /// Endpoint.
    pub endpoint: String,
    /// Key.
    pub api_key: Option<String>,
    /// Identifier.
    pub identifier: String,
}

/// A reply as it came over the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`, `Cut` and the rest of the wire facts.
    #[serde(flatten)]
    pub wire: Wire,
    /// The body (lossy UTF-8, at most 1 MiB).
    pub body: String,
    /// Whether the body was cut at 1 MiB.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Milliseconds to the end of the body.
    pub elapsed_ms: f64,
}

/// A check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Check id.
    pub id: String,
    /// Its status.
    pub status: Status,
}

/// The name a transcript gives an endpoint variant.
pub fn variant_name(v: Variant) -> &'static str {
    match v {
        Variant::AsConfigured => "as_configured",
        Variant::TrailingSlash => "trailing_slash",
        Variant::WithoutV1 => "without_v1",
        Variant::Empty => "empty",
    }
}

/// The name a transcript gives client credentials.
pub fn auth_name(a: crate::adapter::ClientAuth) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn key(s: &Scenario, p: &Probe) -> ProbeKey {
    ProbeKey {
        feature: p.feature.name.to_owned(),
        model: s.models.get(p.model).map(|m| m.name.clone()).unwrap_or_default(),
        variant: variant_name(p.variant).to_owned(),
        auth: auth_name(p.auth),
        stream: p.stream,
        identifier: p.identifier.clone(),
        alias: p.alias.clone(),
    }
}

/// The transcript of a run, redacted.
pub fn record(
    s: &Scenario,
    plan: &Plan,
    outcomes: &[ProbeOutcome],
    checks: &[CheckResult],
    gateway: &crate::report::GatewayInfo,
    redactor: &Redactor,
) -> Transcript {
    let exchanges = plan
        .probes
        .iter()
        .zip(outcomes)
        .map(|(p, o)| {
            let (reply, transport_error) = match &o.result {
                Some(Ok(r)) => (
                    Some(RecordedReply {
                        status: r.status,
                        content_type: r.content_type.clone(),
                        wire: r.wire.clone(),
                        body: r.body.clone(),
                        truncated: r.truncated,
                        elapsed_ms: r.elapsed.as_secs_f64() * 1000.0,
                    }),
                    None,
                ),
                Some(Err(e)) => (None, Some(e.clone())),
                None => (None, None),
            };
            Exchange {
                probe: key(s, p),
                correlation_id: o.correlation_id.clone(),
                fields: Fields {
                    family: o.fields.family.clone(),
                    endpoint: o.fields.endpoint.clone(),
                    api_key: o.fields.api_key.clone(),
                    identifier: o.fields.identifier.clone(),
                },
                request: o.sent.clone(),
                reply,
                transport_error,
                backend: o.hits.iter().map(shape_only).collect(),
            }
        })
        .collect();
    let t = Transcript {
        format: FORMAT.into(),
        version: VERSION,
        tool: format!("gateprobe {}", env!("CARGO_PKG_VERSION")),
        recorded_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        note: std::env::var("GATEPROBE_RECORD_NOTE").unwrap_or_default(),
        scenario: ScenarioRef {
            name: s.name.clone(),
            path: s.path.display().to_string(),
            instance_version: s.instance.version.clone(),
        },
        gateway: GatewayRef {
            kind: gateway.kind.clone(),
            url: gateway.url.clone(),
            profile: s.gateway.profile.name.clone(),
            profile_observed: s.gateway.profile.observed.clone(),
        },
        exchanges,
        verdicts: checks
            .iter()
            .map(|c| Verdict {
                id: c.id.clone(),
                status: c.status,
            })
            .collect(),
    };
    redacted(t, redactor)
}

/// Texts longer than this in what the gateway sent upstream are kept as their length.
const MAX_KEPT_TEXT: usize = 64;

/// A backend request with the gateway's prompt text left out: every JSON string
/// longer than [`MAX_KEPT_TEXT`] characters becomes `«N chars»`, followed by the
/// correlation id when it held one. What the checks read (method, path, query,
/// headers, model, status) stays; the prompts a gateway sends are its own, not ours
/// to keep.
fn shape_only(e: &Entry) -> Entry {
    fn walk(v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) if s.chars().count() > MAX_KEPT_TEXT => {
                let id = crate::mock::journal::find_correlation_id(s)
                    .map(|id| format!(" {id}"))
                    .unwrap_or_default();
                *s = format!("«{} chars»{id}", s.chars().count());
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut e = e.clone();
    e.body = match serde_json::from_str::<serde_json::Value>(&e.body) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) if e.body.is_empty() => String::new(),
        Err(_) => format!("«{} bytes, not JSON»", e.body.len()),
    };
    e
}

/// Every string of the transcript with the secrets replaced.
fn redacted(t: Transcript, r: &Redactor) -> Transcript {
    let Ok(mut v) = serde_json::to_value(&t) else {
        return t;
    };
    r.redact_json_values(&mut v, &["status", "format", "kind"]);
    serde_json::from_value(v).unwrap_or(t)
}

/// Why a transcript cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Not a transcript of this format version.
    #[error("not a gateprobe transcript of version {VERSION}: {0}")]
    Format(String),
    /// The plan compiled from the scenario no longer sends what was recorded.
    #[error(
        "the plan no longer matches the recording at probe {index}: planned {planned}, recorded {recorded}; record it again"
    )]
    PlanChanged {
        /// Probe index.
        index: usize,
        /// What the plan sends now.
        planned: String,
        /// What was recorded.
        recorded: String,
    },
    /// A `kind: direct` run: its requests are not recorded.
    #[error("transcripts of `kind: direct` runs are not replayed")]
    Direct,
}

/// Reads a transcript.
pub fn parse(text: &str) -> Result<Transcript, ReplayError> {
    let t: Transcript = serde_json::from_str(text).map_err(|e| ReplayError::Format(e.to_string()))?;
    if t.format != FORMAT || t.version != VERSION {
        return Err(ReplayError::Format(format!(
            "format `{}` version {}",
            t.format, t.version
        )));
    }
    Ok(t)
}

/// Fills every `[redacted:<label>]` with the scenario's secret of that label.
fn unredacted(t: &Transcript, s: &Scenario) -> Transcript {
    fn walk(v: &mut serde_json::Value, secrets: &[(String, String)]) {
        use serde_json::Value;
        match v {
            Value::String(text) if text.contains("[redacted:") => {
                for (label, value) in secrets {
                    let mark = format!("[redacted:{label}]");
                    if text.contains(&mark) {
                        *text = text.replace(&mark, value);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, secrets)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, secrets)),
            _ => {}
        }
    }
    let Ok(mut v) = serde_json::to_value(t) else {
        return t.clone();
    };
    walk(&mut v, &s.secrets);
    serde_json::from_value(v).unwrap_or_else(|_| t.clone())
}

/// Judges a transcript again with the scenario it was recorded with: every check of
/// the plan, from the recorded exchanges.
pub fn replay(t: &Transcript, s: &Scenario) -> Result<Vec<CheckResult>, ReplayError> {
    if s.gateway.kind == GatewayKind::Direct {
        return Err(ReplayError::Direct);
    }
    let plan = crate::check::compile(s);
    let t = unredacted(t, s);
    // Each planned probe is matched to a recorded exchange of the same probe: the order
    // of sending (shuffled by a seed) is not part of a plan.
    let mut used = vec![false; t.exchanges.len()];
    let mut matched = Vec::with_capacity(plan.probes.len());
    for (index, p) in plan.probes.iter().enumerate() {
        let planned = key(s, p);
        let found = t
            .exchanges
            .iter()
            .enumerate()
            .position(|(k, e)| !used[k] && e.probe == planned);
        let Some(k) = found else {
            return Err(ReplayError::PlanChanged {
                index,
                planned: format!("{planned:?}"),
                recorded: "no such request".into(),
            });
        };
        used[k] = true;
        matched.push(&t.exchanges[k]);
    }
    let outcomes: Vec<ProbeOutcome> = plan.probes.iter().zip(matched).map(|(p, e)| outcome(s, p, e)).collect();
    let direct = vec![check::DirectOutcome::default(); plan.direct.len()];
    let cx = check::Ctx {
        scenario: s,
        probes: &plan.probes,
        outcomes: &outcomes,
        profile: &s.gateway.profile,
        not_run: Some("the transcript has no reply for it"),
        plan_direct: &plan.direct,
        direct: &direct,
    };
    Ok(plan.checks.iter().map(|c| check::judge(c, &cx)).collect())
}

/// The outcome a recorded exchange stands for, its reply parsed as a live run would.
fn outcome(s: &Scenario, p: &Probe, e: &Exchange) -> ProbeOutcome {
    let result = match (&e.reply, &e.transport_error) {
        (Some(r), _) => {
            let head = Head {
                status: r.status,
                content_type: r.content_type.clone(),
                encoding: r.wire.encoding.clone(),
                // What the live run found while reading (headers, past the kept body).
                leaks: r.wire.leaks.clone(),
            };
            let body = Body {
                bytes: r.body.as_bytes().to_vec(),
                truncated: r.truncated,
                cut: r.wire.cut.clone(),
                leaks: Vec::new(),
                unscanned: r.wire.unscanned,
            };
            let elapsed = Duration::from_secs_f64((r.elapsed_ms / 1000.0).max(0.0));
            Some(Ok(match s.gateway.kind {
                GatewayKind::Openai => crate::adapter::assemble(head, body, elapsed, crate::adapter::proxy::parse),
                _ => {
                    let surface = crate::instance::surface(s.instance.shapes, p.feature, p.stream);
                    crate::adapter::assemble(head, body, elapsed, |r: &mut Reply, _: &[u8]| {
                        crate::adapter::aigw::parse(surface, r)
                    })
                }
            }))
        }
        (None, Some(err)) => Some(Err(err.clone())),
        (None, None) => None,
    };
    ProbeOutcome {
        correlation_id: e.correlation_id.clone(),
        path: e.request.as_ref().map(|r| r.path.clone()).unwrap_or_default(),
        fields: ModelFields {
            family: e.fields.family.clone(),
            endpoint: e.fields.endpoint.clone(),
            api_key: e.fields.api_key.clone(),
            identifier: e.fields.identifier.clone(),
        },
        sent: e.request.clone(),
        result,
        hits: e.backend.clone(),
    }
}
