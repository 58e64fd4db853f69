//! What every family's rule plans with: the scenario, the plan so far, and how a
//! model is reached through the gateway front under test (its *address*): as the
//! GitLab instance's feature request in the scenario's version (`aigw`, `builtin`), as
//! an OpenAI client of the model's proxy alias (`openai`), or straight at its endpoint
//! (`direct`). Family files ask for probes in those terms, so one rule serves every
//! front.

use crate::feature::{self, Endpoint, FEATURES, Feature};
use crate::instance::{Shapes, Surface, served, surface};
use crate::plan::{CheckId, ClientAuth, Judge, Plan, Probe, Variant};
use crate::scenario::behavior::FaultAction;
use crate::scenario::{CheckFamily, GatewayKind, ModelConfig, NO_V1_SUFFIX, SLASH_SUFFIX, Scenario};

/// The front of the gateway under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// The AI gateway API: gateprobe plays the GitLab instance.
    AiGateway,
    /// An OpenAI-compatible proxy: gateprobe plays an OpenAI client of its aliases.
    Proxy,
    /// No gateway: the model endpoints themselves.
    Direct,
}

/// A plan being built.
pub struct Planner<'s> {
    /// The scenario.
    pub s: &'s Scenario,
    /// The plan so far.
    pub plan: Plan,
}

/// Why nothing backend-side can be judged for a model.
pub const UNSEEN: &str = "the endpoint is not a gateprobe mock, so what the backend received cannot be seen";

impl<'s> Planner<'s> {
    /// An empty plan of `s`.
    pub fn new(s: &'s Scenario) -> Self {
        Planner {
            s,
            plan: Plan::default(),
        }
    }

    /// The front under test.
    pub fn front(&self) -> Front {
        match self.s.gateway.kind {
            GatewayKind::Builtin | GatewayKind::Aigw => Front::AiGateway,
            GatewayKind::Openai => Front::Proxy,
            GatewayKind::Direct => Front::Direct,
        }
    }

    /// The instance version's request shapes.
    pub fn shapes(&self) -> Shapes {
        self.s.instance.shapes
    }

    /// Whether the scenario selected the family.
    pub fn wants(&self, f: CheckFamily) -> bool {
        self.s.checks.contains(&f)
    }

    /// Adds a probe (shared when equal to one planned) and returns its index.
    pub fn probe(&mut self, p: Probe) -> usize {
        self.plan.probe(p)
    }

    /// Adds a check reading `probes`.
    pub fn check(&mut self, id: CheckId, rule: &str, judge: Judge, probes: Vec<usize>) {
        self.plan.check(id, rule, judge, probes);
    }

    /// Adds a check that does not apply, saying why.
    pub fn skip(&mut self, id: CheckId, rule: &str, judge: Judge, why: &str) {
        self.plan.skipped(id, rule, judge, why);
    }

    /// Adds `probe` and a check reading it, or the check skipped when there is none.
    pub fn check_or_skip(&mut self, id: CheckId, rule: &str, judge: Judge, probe: Result<Probe, String>) {
        match probe {
            Ok(p) => {
                let i = self.probe(p);
                self.check(id, rule, judge, vec![i]);
            }
            Err(why) => self.skip(id, rule, judge, &why),
        }
    }

    /// The scripted fault a model's backend plays for it, if it is a *fault model*
    /// (which only `resilience` checks use).
    pub fn fault(&self, i: usize) -> Option<&'s FaultAction> {
        self.s.model_fault(i)
    }

    /// Whether a model is served by a gateprobe mock and is not a fault model: only
    /// then can what its backend received be judged.
    pub fn observed(&self, i: usize) -> bool {
        self.s.models[i].backend.is_some() && self.fault(i).is_none()
    }

    /// The first observed model, if any.
    pub fn first_observed(&self) -> Option<usize> {
        (0..self.s.models.len()).find(|&i| self.observed(i))
    }

    /// The proxy alias of a model (or, with `features_by: feature`, of a feature).
    pub fn alias(&self, name: &str) -> String {
        self.s.gateway.alias(name)
    }

    /// A probe of feature `f` for model `i` as the front sends it.
    pub fn feature_probe(&self, f: &'static Feature, i: usize, stream: bool) -> Probe {
        let alias = (self.front() == Front::Proxy).then(|| match self.s.gateway.features_by {
            crate::scenario::FeaturesBy::Feature => self.alias(f.name),
            crate::scenario::FeaturesBy::Model => self.alias(&self.s.models[i].name),
        });
        Probe {
            feature: f,
            model: i,
            variant: Variant::AsConfigured,
            auth: ClientAuth::Valid,
            stream,
            identifier: None,
            alias,
        }
    }

    /// The probe that reaches model `i` for routing, endpoint and key checks: through
    /// the first feature its family is served on (AI gateway: Duo Chat where it can,
    /// else code completions, ...), or its chat alias (proxy). `Err` says why none.
    pub fn reach(&self, i: usize) -> Result<Probe, String> {
        let m = &self.s.models[i];
        match self.front() {
            Front::AiGateway => {
                let f = routing_feature(self.shapes(), m)?;
                Ok(self.feature_probe(f, i, f.endpoint == Endpoint::ChatAgent))
            }
            Front::Proxy => {
                let mut p = self.feature_probe(chat(), i, false);
                p.alias = Some(self.alias(&m.name));
                Ok(p)
            }
            Front::Direct => Err("no gateway: the endpoint is checked by the vendor rules".into()),
        }
    }

    /// [`Planner::reach`] with an endpoint variant; a proxy reaches a variant through
    /// the alias its config declares for it (`<alias>--no-v1`, `<alias>--slash`), when
    /// it declares them.
    pub fn variant(&self, i: usize, v: Variant) -> Option<Probe> {
        let mut p = self.reach(i).ok()?;
        p.variant = v;
        if self.front() == Front::Proxy {
            if !self.s.gateway.endpoint_variants {
                return None;
            }
            let suffix = match v {
                Variant::WithoutV1 => NO_V1_SUFFIX,
                Variant::TrailingSlash => SLASH_SUFFIX,
                _ => return None,
            };
            p.alias = Some(format!("{}{suffix}", self.alias(&self.s.models[i].name)));
        }
        Some(p)
    }

    /// The surfaces of the front under test, as gateway profiles name them.
    pub fn surfaces(&self) -> Vec<&'static str> {
        match self.front() {
            Front::AiGateway => Surface::ALL.iter().map(|s| s.name()).collect(),
            Front::Proxy => vec!["chat", "chat_stream"],
            Front::Direct => vec![],
        }
    }

    /// A probe of model `i` whose reply is on `surface`, if a feature served for its
    /// family reaches it.
    pub fn on_surface(&self, i: usize, surface_name: &str) -> Option<Probe> {
        match self.front() {
            Front::AiGateway => {
                let m = &self.s.models[i];
                preference().find_map(|f| {
                    if served(self.shapes(), f, &m.family).is_err() {
                        return None;
                    }
                    [false, true]
                        .into_iter()
                        .find(|&stream| surface(self.shapes(), f, stream).name() == surface_name)
                        .map(|stream| self.feature_probe(f, i, stream))
                })
            }
            Front::Proxy => {
                let mut p = self.reach(i).ok()?;
                p.stream = match surface_name {
                    "chat" => false,
                    "chat_stream" => true,
                    _ => return None,
                };
                Some(p)
            }
            Front::Direct => None,
        }
    }

    /// Whether a model's configured endpoint ends in `/v1`.
    pub fn has_v1(&self, i: usize) -> bool {
        self.s.models[i]
            .endpoint
            .as_ref()
            .is_some_and(|e| crate::wire::endpoint::has_v1_suffix(&e.render(|_| Some(String::new()))))
    }

    /// Every probe planned so far that addresses model `i` as configured, with valid
    /// credentials and the model's own identifier: the requests a rule about the
    /// model's keys, path or name holds for.
    pub fn requests_of(&self, i: usize) -> Vec<usize> {
        self.plan
            .probes
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.model == i
                    && p.variant == Variant::AsConfigured
                    && p.auth == ClientAuth::Valid
                    && p.identifier.is_none()
            })
            .map(|(k, _)| k)
            .collect()
    }
}

/// Duo Chat's feature.
pub fn chat() -> &'static Feature {
    feature::by_name(feature::DUO_CHAT).unwrap_or(&FEATURES[2])
}

/// The features a model is probed through, most telling first: Duo Chat (the agent
/// reads the whole reply), code completions, code generations, then the prompts.
pub fn preference() -> impl Iterator<Item = &'static Feature> {
    let first = ["duo_chat", "code_completions", "code_generations"];
    first
        .into_iter()
        .filter_map(feature::by_name)
        .chain(FEATURES.iter().filter(move |f| !first.contains(&f.name)))
}

/// The feature a model is probed through on the AI gateway API, or why there is none.
pub fn routing_feature(shapes: Shapes, m: &ModelConfig) -> Result<&'static Feature, String> {
    preference()
        .find(|f| served(shapes, f, &m.family).is_ok())
        .ok_or_else(|| {
            format!(
                "GitLab {} serves no feature gateprobe probes with family `{}`",
                shapes.name(),
                m.family
            )
        })
}
