//! The scenario file as written: serde types mirroring the YAML, with source positions
//! on every value that later validation may need to point at.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A 1-based line and column in the scenario file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub col: u32,
}

/// A value with the position it was written at.
#[derive(Clone, Debug)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it stands in the file.
    pub pos: Pos,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let pos = Pos {
            line: u32::try_from(s.referenced.line()).unwrap_or(0),
            col: u32::try_from(s.referenced.column()).unwrap_or(0),
        };
        Ok(Located { value: s.value, pos })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        T::json_schema(g)
    }
}

/// A YAML mapping that keeps the order and position of its keys.
#[derive(Clone, Debug)]
pub struct OrderedMap<V>(pub Vec<(Located<String>, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(Located<String>, V)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<Located<String>, V>()? {
                    if out.iter().any(|(o, _)| o.value == k.value) {
                        return Err(de::Error::custom(format_args!("duplicate key `{}`", k.value)));
                    }
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for OrderedMap<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        <std::collections::BTreeMap<String, V>>::json_schema(g)
    }
}

/// The whole scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Format version; only `1` exists.
    #[serde(default)]
    pub version: Option<Located<u32>>,
    /// A short name for reports; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// The GitLab instance gateprobe plays in front of an AI gateway (`kind: aigw`,
    /// `builtin`): its version picks the request shapes gateprobe sends.
    #[serde(default)]
    pub instance: InstanceSpec,
    /// The gateway under test (default: the built-in one). A file with only
    /// `backends:` is a mock profile for `gateprobe mock`.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// Mock model backends gateprobe starts, by name.
    #[serde(default)]
    pub backends: OrderedMap<BackendSpec>,
    /// The self-hosted models as registered in GitLab's admin area.
    #[serde(default)]
    pub self_hosted_models: Vec<SelfHostedModelSpec>,
    /// Feature name -> self-hosted model name, `disabled`, or `vendored` (GitLab serves
    /// it with its own models: gateprobe sends it nowhere). Omitted Chat sub-features
    /// fall back to `duo_chat`'s model; one set to `vendored` does not.
    #[serde(default)]
    pub features: OrderedMap<Located<String>>,
    /// Checks to run: families (`routing`, `endpoint`, `auth`, `feature_mapping`,
    /// `streaming`, `vendor`, `resilience`), check id patterns with `*`
    /// (`auth.*.signed`), and either after `!` to leave checks out (`!auth.client.*`).
    /// All that apply when omitted, none with `[]`.
    #[serde(default)]
    pub checks: Option<Vec<Located<String>>>,
    /// `kind: direct`: a transcript of a run through an AI gateway (`gateprobe run
    /// --record DIR` writes `DIR/<scenario>/transcript.json`), whose requests to model
    /// servers are sent again to the model endpoints (`readiness.<model>.replay.<feature>`),
    /// prompt texts as filler of their length. Relative to this file.
    #[serde(default)]
    pub replay: Option<Located<String>>,
    /// Load phases, run after the checks, in order.
    #[serde(default)]
    pub load: Vec<LoadPhaseSpec>,
}

/// One load phase: a feature's requests under a schedule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadPhaseSpec {
    /// Name in reports and threshold ids.
    pub name: Located<String>,
    /// The Duo feature whose request is sent (its mapped model serves it).
    pub feature: Located<String>,
    /// `kind: direct`: the self-hosted model whose endpoint is loaded (default: the
    /// feature's model, or the only model).
    #[serde(default)]
    pub model: Option<Located<String>>,
    /// Ask for streamed replies (default: yes where the endpoint streams).
    #[serde(default)]
    pub stream: Option<bool>,
    /// Open loop: requests at scheduled instants, whatever the gateway's speed.
    #[serde(default)]
    pub open: Option<OpenSpec>,
    /// Closed loop: N clients, each sending when its last reply ended.
    #[serde(default)]
    pub closed: Option<ClosedSpec>,
    /// Rising constant rates until the SLO breaks; reports the capacity.
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// How long to send (after warm-up), e.g. `20s`.
    #[serde(default)]
    pub duration: Option<Located<String>>,
    /// How many requests to send at most.
    #[serde(default)]
    pub requests: Option<Located<u64>>,
    /// Load sent first and left out of the results, e.g. `2s`.
    #[serde(default)]
    pub warmup: Option<Located<String>>,
    /// Open loop: requests in flight at most (default 256).
    #[serde(default)]
    pub max_in_flight: Option<Located<usize>>,
    /// Per-request timeout (default: the gateway's).
    #[serde(default)]
    pub timeout: Option<Located<String>>,
    /// CI gates: `ttft.p99 < 500ms`, `error_rate < 0.5%`, `gateway_overhead.p99 < 50ms`, `rps >= 40`.
    #[serde(default)]
    pub thresholds: Vec<Located<String>>,
    /// What the requests carry: Duo-shaped prompts whose token counts follow seeded
    /// distributions, or prompts from a dataset file. Default: one small canned request.
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    /// Through a gateway: send every other request straight to the model's own endpoint
    /// (the same workload, interleaved) and compare TTFT, ITL, TPOT and service time per
    /// percentile (`ttft_overhead.p99`, ...). Works with real backends, no journal needed.
    #[serde(default)]
    pub compare_direct: Option<Located<bool>>,
}

/// A phase's workload: a preset for a Duo feature, distributions of prompt and output
/// tokens, or a dataset.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Start from the built-in numbers of a Duo feature (`code_completions`, `duo_chat`,
    /// ...), or `feature` for the phase's own feature.
    #[serde(default)]
    pub preset: Option<Located<String>>,
    /// Prompt tokens per request: a number or a distribution
    /// (`{dist: lognormal, median: 1000, sigma: 0.6, min: 64, max: 8192}`).
    #[serde(default)]
    pub prompt_tokens: Option<Located<CountSpec>>,
    /// Output tokens asked per request (`max_tokens`): a number or a distribution.
    #[serde(default)]
    pub output_tokens: Option<Located<CountSpec>>,
    /// Chat features: earlier turns (question and answer pairs) before the question.
    #[serde(default)]
    pub history_turns: Option<Located<CountSpec>>,
    /// Code features: the share of the code context after the cursor (0 to 1).
    #[serde(default)]
    pub below_cursor: Option<Located<f64>>,
    /// A JSONL file of prompts (`{"prompt": ...}`, optional `output_tokens`), OpenAI
    /// `{"messages": [...]}` or ShareGPT `{"conversations": [{"from", "value"}]}`,
    /// relative to the scenario. Records are drawn with the seed.
    #[serde(default)]
    pub dataset: Option<Located<String>>,
    /// Seed of every draw (default 1).
    #[serde(default)]
    pub seed: Option<u64>,
    /// A Hugging Face `tokenizer.json` that counts tokens (needs the `tokenizer` build
    /// feature), relative to the scenario. Default: `chars_per_token`.
    #[serde(default)]
    pub tokenizer: Option<Located<String>>,
    /// Characters per token when no tokenizer is given (default 4, as GitLab sizes
    /// prompts).
    #[serde(default)]
    pub chars_per_token: Option<Located<f64>>,
    /// Force the output length where the server can be told: vLLM's `min_tokens` and
    /// `ignore_eos` (default true). `max_tokens` is always sent.
    #[serde(default)]
    pub force_output: Option<bool>,
}

/// A token count: a number, or a distribution.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CountSpec {
    /// Always this many.
    Count(u64),
    /// `{dist: uniform, min, max}`, `{dist: normal, mean, stddev}`, `{dist: lognormal,
    /// median, sigma}`; `min`/`max` clamp normal and lognormal draws.
    Shaped(CountMap),
}

/// A token-count distribution's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountMap {
    /// `fixed`, `uniform`, `normal` or `lognormal`.
    pub dist: String,
    /// Fixed value.
    #[serde(default)]
    pub value: Option<f64>,
    /// Lower bound (uniform) or clamp.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound (uniform) or clamp.
    #[serde(default)]
    pub max: Option<f64>,
    /// Normal mean.
    #[serde(default)]
    pub mean: Option<f64>,
    /// Normal standard deviation.
    #[serde(default)]
    pub stddev: Option<f64>,
    /// Log-normal median.
    #[serde(default)]
    pub median: Option<f64>,
    /// Log-normal shape.
    #[serde(default)]
    pub sigma: Option<f64>,
}

/// An open-loop schedule: `rate`, `ramp` or `steps`, spread by `arrivals`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSpec {
    /// Constant requests per second.
    #[serde(default)]
    pub rate: Option<Located<f64>>,
    /// A linear ramp.
    #[serde(default)]
    pub ramp: Option<RampSpec>,
    /// Constant rates one after another.
    #[serde(default)]
    pub steps: Option<Vec<StepSpec>>,
    /// `uniform` (default), `poisson` or `gamma`.
    #[serde(default)]
    pub arrivals: Option<Located<String>>,
    /// Gamma shape: 1 is Poisson, below 1 burstier.
    #[serde(default)]
    pub burstiness: Option<Located<f64>>,
    /// Seed for poisson/gamma.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// A linear ramp.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RampSpec {
    /// Rate at the start.
    pub from: f64,
    /// Rate at the end.
    pub to: f64,
    /// Length, e.g. `30s`.
    pub over: Located<String>,
}

/// One constant step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Requests per second.
    pub rate: f64,
    /// How long, e.g. `10s`.
    #[serde(rename = "for")]
    pub duration: Located<String>,
}

/// A closed loop.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedSpec {
    /// Concurrent clients.
    pub clients: Located<usize>,
    /// Pause between a reply and the next request.
    #[serde(default)]
    pub think: Option<Located<String>>,
}

/// A capacity sweep.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Rates to try, rising.
    pub rates: Located<Vec<f64>>,
    /// How long each rate runs, e.g. `5s`.
    pub step: Located<String>,
    /// The SLO that defines capacity, e.g. `ttft.p99 < 500ms`.
    pub slo: Located<String>,
    /// `uniform` (default) or `poisson`.
    #[serde(default)]
    pub arrivals: Option<Located<String>>,
}

/// The `gateway:` block.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// `builtin` (the embedded reference gateway), `aigw` (a running GitLab AI gateway at `url`),
    /// `openai` (an OpenAI-compatible proxy such as LiteLLM at `url`, launched, or the reference
    /// gateway's OpenAI front when neither is given) or `direct` (no gateway: validate the model
    /// endpoints themselves).
    #[serde(default)]
    pub kind: Option<Located<String>>,
    /// Base URL of a running gateway (`aigw`, `openai`). `--gateway-url` overrides it. With
    /// `launch`, defaults to `http://127.0.0.1:{{ launch.port }}`.
    #[serde(default)]
    pub url: Option<Located<String>>,
    /// The gateway profile that says what this gateway answers when a rule is exercised: a
    /// built-in name (`aigw`, `openai`, `litellm`) or a YAML file, relative to the scenario.
    /// Default: `aigw` for `builtin`/`aigw`, `openai` for `openai`.
    #[serde(default)]
    pub profile: Option<Located<String>>,
    /// `openai`: how features reach models. `model` (default): one alias per self-hosted
    /// model, the client picks it per feature. `feature`: one alias per feature, the proxy
    /// owns the mapping (Chat fallback, disabled features refused).
    #[serde(default)]
    pub features_by: Option<Located<String>>,
    /// `openai`: alias names, by self-hosted model name (or feature name with
    /// `features_by: feature`); default: the name itself.
    #[serde(default)]
    pub aliases: OrderedMap<Located<String>>,
    /// `openai`: the proxy also serves `<alias>--no-v1` and `<alias>--slash` (the endpoint
    /// without `/v1`, and with a trailing slash), so endpoint handling can be checked.
    /// Default: true when gateprobe writes the proxy's config (`launch.config`).
    #[serde(default)]
    pub endpoint_variants: Option<bool>,
    /// How gateprobe starts the gateway itself (after its mocks), waits for it, and stops it.
    #[serde(default)]
    pub launch: Option<Located<LaunchSpec>>,
    /// How gateprobe authenticates as the GitLab instance.
    #[serde(default)]
    pub auth: ClientAuthSpec,
    /// Per-request timeout, e.g. `10s` (default 30s).
    #[serde(default)]
    pub timeout: Option<Located<String>>,
    /// Settings of the built-in reference gateway.
    #[serde(default)]
    pub builtin: BuiltinSpec,
    /// TLS towards an `https://` gateway (with `kind: direct`, the model endpoints).
    #[serde(default)]
    pub tls: TlsSpec,
}

/// The GitLab instance gateprobe plays.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// The GitLab version whose requests gateprobe sends, `MAJOR.MINOR` (e.g. `17.7`);
    /// default: the newest gateprobe knows (18.9). The AI gateway should run the version
    /// that matches it; a feature that version does not serve for a model's family is
    /// skipped, saying so.
    #[serde(default)]
    pub version: Option<Located<String>>,
    /// How long the instance waits for the AI gateway's answer (the admin setting "AI
    /// gateway request timeout"; default `60s`): `live` checks fail slower answers, as
    /// Duo Chat then shows an error.
    #[serde(default)]
    pub gateway_timeout: Option<Located<String>>,
}

/// How certificates are checked (by default against the system's trust store), and the
/// client certificate presented, on the connections gateprobe's own code opens: to the
/// gateway, to the model endpoints with `kind: direct`, and from the built-in gateway
/// to the model endpoints.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// A PEM file of extra trusted CA certificates (an internal CA), relative to the
    /// scenario; or `{{ mocks.ca }}`, the CA of the run's TLS mocks (`kind: builtin`,
    /// `direct`, or `openai` without a URL).
    #[serde(default)]
    pub ca: Option<Located<String>>,
    /// `false` accepts any certificate (self-signed, expired, wrong host). Default `true`.
    #[serde(default)]
    pub verify: Option<Located<bool>>,
    /// A client certificate to present (mTLS): a PEM file relative to the scenario, or
    /// `{{ mocks.client_cert }}`, the one the run's mTLS mocks accept. Needs `client_key`.
    #[serde(default)]
    pub client_cert: Option<Located<String>>,
    /// The client certificate's private key: a PKCS#8 PEM file, or `{{ mocks.client_key }}`.
    #[serde(default)]
    pub client_key: Option<Located<String>>,
}

/// A gateway gateprobe starts: after the mocks (so `command` and `env` can use
/// `{{ backends.NAME.url }}`, `{{ launch.port }}` and `{{ launch.config }}`), stopped by
/// process group when the run ends, however it ends.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    /// Program and arguments, e.g. `["${env:LITELLM:-litellm}", "--config", "{{ launch.config }}"]`.
    pub command: Vec<Located<String>>,
    /// Environment variables added to gateprobe's own.
    #[serde(default)]
    pub env: OrderedMap<Located<String>>,
    /// A config file gateprobe writes from the scenario before the launch: `litellm`.
    #[serde(default)]
    pub config: Option<Located<String>>,
    /// With `config: litellm`: keep LiteLLM's router defaults (retries, cooldowns) instead of
    /// gateprobe's deterministic `num_retries: 0`, `disable_cooldowns: true`.
    #[serde(default)]
    pub keep_defaults: bool,
    /// Health URL polled until it answers 2xx (default: the gateway URL).
    #[serde(default)]
    pub ready: Option<Located<String>>,
    /// How long to wait for readiness, e.g. `90s` (default 120s).
    #[serde(default)]
    pub timeout: Option<Located<String>>,
}

/// Client authentication towards the gateway.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSpec {
    /// Bearer token sent as `Authorization: Bearer <token>`. Use `${env:NAME}`.
    #[serde(default)]
    pub token: Option<Located<String>>,
    /// Extra headers (the `X-Gitlab-*` set); they override gateprobe's defaults.
    #[serde(default)]
    pub headers: OrderedMap<Located<String>>,
}

/// Built-in reference gateway settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuiltinSpec {
    /// `enforce` (default), `bypass` (like `AIGW_AUTH__BYPASS_EXTERNAL=true`) or
    /// `bypass_with_header` (only requests with `Bypass-Auth: true`).
    #[serde(default)]
    pub auth: Option<Located<String>>,
}

/// One mock backend.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendSpec {
    /// Wire format: `openai` (vLLM-compatible), `azure` (Azure OpenAI) or `bedrock` (AWS Bedrock runtime).
    pub provider: Located<String>,
    /// Served model names (`GET /v1/models` ids).
    pub models: Vec<Located<String>>,
    /// API key the backend requires (vLLM `--api-key`, Azure `api-key`, Bedrock API keys).
    #[serde(default)]
    pub api_key: Option<Located<String>>,
    /// Bedrock: the access key id requests must be signed with.
    #[serde(default)]
    pub access_key_id: Option<Located<String>>,
    /// Bedrock: the secret access key that signs them.
    #[serde(default)]
    pub secret_access_key: Option<Located<String>>,
    /// Bedrock: the region in the signature's credential scope (default `us-east-1`).
    #[serde(default)]
    pub region: Option<Located<String>>,
    /// Bedrock: the STS session token of temporary credentials (`AWS_SESSION_TOKEN`).
    /// Requests must then carry it as a signed `X-Amz-Security-Token`. Use `${env:NAME}`.
    #[serde(default)]
    pub session_token: Option<Located<String>>,
    /// Bedrock: models the runtime serves only through an inference profile (ids, or
    /// prefixes ending in `*`): a bare id of one is refused with Bedrock's 400
    /// `ValidationException`. Replaces the built-in list (Claude 3.7 and 4 family,
    /// DeepSeek-R1); write `default` in the list to keep it.
    #[serde(default)]
    pub profile_only: Option<Located<Vec<Located<String>>>>,
    /// Azure: the `api-version`s this resource serves; others get Azure's 404. Replaces
    /// the built-in list (the GA and preview versions Azure OpenAI serves); write
    /// `default` in the list to keep it.
    #[serde(default)]
    pub api_versions: Option<Located<Vec<Located<String>>>>,
    /// Serve HTTPS instead of HTTP: `{mode: ca}` (a certificate from a CA gateprobe
    /// makes for the run), `{mode: mtls}` (the same, and a client certificate from that
    /// CA is required) or `{mode: bad_cert}` (a certificate a client must refuse).
    #[serde(default)]
    pub tls: Option<Located<BackendTlsSpec>>,
    /// Timing model (default: instant replies).
    #[serde(default)]
    pub timing: Option<TimingSpec>,
    /// Scripted faults, first matching rule wins.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Listen on this port of 127.0.0.1 instead of any free one: for a gateway that was
    /// configured before the run (a proxy deployed with `gateprobe export`'s config).
    #[serde(default)]
    pub port: Option<Located<u16>>,
    /// How the model server is set up where real ones often go wrong for Duo (OpenAI
    /// backends): `strict_roles` (a chat template without a system role),
    /// `no_tool_parser` (no automatic tool choice), `reasoning` (the answer after a
    /// thinking phase, in `reasoning_content`), `ignore_limits` (`stop` and `max_tokens`
    /// ignored).
    #[serde(default)]
    pub personality: Vec<Located<String>>,
    /// The context window in tokens (vLLM's `--max-model-len`, default 32768): listed by
    /// `/v1/models`, and a longer prompt plus `max_tokens` is refused.
    #[serde(default)]
    pub max_model_len: Option<Located<u32>>,
}

/// How a mock backend serves TLS.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsSpec {
    /// `ca`, `mtls` or `bad_cert`.
    pub mode: Located<String>,
    /// With `bad_cert`: what is wrong with the certificate: `wrong_host` (issued by the
    /// run's CA for another host name; the default), `self_signed` or `expired`.
    #[serde(default)]
    pub defect: Option<Located<String>>,
}

/// A backend's timing model.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    /// Time to first token: a duration (`100ms`) or a distribution.
    #[serde(default)]
    pub ttft: Option<Located<DistSpec>>,
    /// Inter-token latency: a duration or a distribution.
    #[serde(default)]
    pub itl: Option<Located<DistSpec>>,
    /// Tokens per reply: a number, or `max_tokens` (the request's, default 16).
    #[serde(default)]
    pub tokens: Option<Located<TokensSpec>>,
    /// Extra time to first token per prompt token, e.g. `0.05ms`.
    #[serde(default)]
    pub prefill_per_token: Option<Located<String>>,
    /// The same as a prefill rate: prompt tokens per second (`20000` is 0.05 ms per
    /// token). Give this or `prefill_per_token`.
    #[serde(default)]
    pub prefill_rate: Option<Located<f64>>,
    /// A Hugging Face `tokenizer.json` the mock counts prompt tokens with (prefill,
    /// `usage`; needs the `tokenizer` build feature), relative to the scenario.
    #[serde(default)]
    pub tokenizer: Option<Located<String>>,
    /// Characters per prompt token when no tokenizer is given (default 4).
    #[serde(default)]
    pub chars_per_token: Option<Located<f64>>,
    /// Requests served at once; more wait in a queue.
    #[serde(default)]
    pub max_concurrency: Option<Located<usize>>,
    /// Each running request beyond the first stretches token gaps by this fraction.
    #[serde(default)]
    pub slowdown: Option<Located<f64>>,
    /// Seed for all sampling (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// A duration, or a distribution of durations.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DistSpec {
    /// A fixed duration such as `20ms`.
    Fixed(String),
    /// `{dist: uniform, min, max}`, `{dist: normal, mean, stddev}`, `{dist: lognormal, median, sigma}`.
    Shaped(DistMap),
}

/// A distribution's parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistMap {
    /// `fixed`, `uniform`, `normal` or `lognormal`.
    pub dist: String,
    /// Fixed value.
    #[serde(default)]
    pub value: Option<String>,
    /// Uniform lower bound.
    #[serde(default)]
    pub min: Option<String>,
    /// Uniform upper bound.
    #[serde(default)]
    pub max: Option<String>,
    /// Normal mean.
    #[serde(default)]
    pub mean: Option<String>,
    /// Normal standard deviation.
    #[serde(default)]
    pub stddev: Option<String>,
    /// Log-normal median.
    #[serde(default)]
    pub median: Option<String>,
    /// Log-normal shape (e.g. 0.25).
    #[serde(default)]
    pub sigma: Option<f64>,
}

/// A token count: a number or `max_tokens`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TokensSpec {
    /// Always this many.
    Count(u32),
    /// `max_tokens`.
    Word(String),
}

/// One scripted fault.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Which requests: `{first: N}`, `{every: N}`, `{percent: P}` or `{model: NAME}`; all when omitted.
    #[serde(default)]
    pub when: Option<Located<MatchSpec>>,
    /// `error`, `slow_first_byte`, `stall`, `cut`, `malformed_json`, `malformed_sse`,
    /// `corrupt_crc`, `empty_200` or `non_sse`.
    #[serde(rename = "do")]
    pub action: Located<String>,
    /// HTTP status for `error` (401, 403, 404, 429, 500, 503, ...).
    #[serde(default)]
    pub status: Option<Located<u16>>,
    /// `Retry-After` for `error` (429/503), e.g. `2s`.
    #[serde(default)]
    pub retry_after: Option<Located<String>>,
    /// Tokens sent before `stall` or `cut`.
    #[serde(default)]
    pub after_tokens: Option<u32>,
    /// How long for `stall` and `slow_first_byte`.
    #[serde(default, rename = "for")]
    pub duration: Option<Located<String>>,
    /// Seed for `percent`.
    #[serde(default)]
    pub seed: Option<u64>,
}

/// Which requests a fault applies to (exactly one key).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// The first N requests.
    #[serde(default)]
    pub first: Option<u64>,
    /// Every Nth request.
    #[serde(default)]
    pub every: Option<u64>,
    /// A seeded percentage of requests.
    #[serde(default)]
    pub percent: Option<f64>,
    /// Requests for this model.
    #[serde(default)]
    pub model: Option<String>,
}

/// One self-hosted model, in the admin UI's words.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfHostedModelSpec {
    /// Deployment name (unique).
    pub name: Located<String>,
    /// Model family (`mistral`, `mixtral`, `codestral`, ...).
    pub family: Located<String>,
    /// Endpoint URL; for vLLM it must end in `/v1`. May reference a backend:
    /// `{{ backends.NAME.url }}/v1`.
    #[serde(default)]
    pub endpoint: Option<Located<String>>,
    /// API key sent to the endpoint.
    #[serde(default)]
    pub api_key: Option<Located<String>>,
    /// Model identifier: `custom_openai/<served name>`, `bedrock/<id>`, `azure/<deployment>`.
    pub identifier: Located<String>,
}
