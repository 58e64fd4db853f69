//! The built-in reference gateway: the embedded default system under test. It serves
//! the subset of the GitLab AI gateway API that Duo Self-Hosted uses, with the same
//! auth rules, error bodies and routing by model identifier, and an OpenAI-compatible
//! front (`/v1/chat/completions`, `/v1/completions`) that owns a feature map the way
//! a proxy does: one alias per model and per feature, Chat sub-features falling back
//! to `duo_chat`'s model, disabled features refused. It can be told to break one rule
//! at a time ([`fault::Fault`]).

pub mod bedrock;
pub mod fault;
mod front;
mod handlers;
pub mod hostile;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;

pub use fault::{Fault, FaultFront};

use crate::scenario::BuiltinAuth;

/// How the reference gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Client auth mode.
    pub auth: BuiltinAuth,
    /// The token it accepts (when enforcing). `None` accepts any bearer token.
    pub token: Option<String>,
    /// Active faults.
    pub faults: Vec<Fault>,
    /// Timeout of each upstream call.
    pub upstream_timeout: Duration,
    /// Bedrock runtime endpoint, region and credentials, when the gateway has them.
    pub aws: Option<bedrock::AwsSettings>,
    /// The OpenAI front's aliases and feature map.
    pub features: FeatureMap,
    /// How it checks the certificates of HTTPS model endpoints (and which client
    /// certificate it presents).
    pub upstream_tls: crate::scenario::Tls,
    /// The origins (`http://host:port`) it may call for OpenAI-compatible and Azure
    /// models; `None` calls whatever endpoint a request names. Bedrock calls go to
    /// [`GatewaySettings::aws`]'s endpoint only.
    pub upstreams: Option<Vec<String>>,
}

impl GatewaySettings {
    /// Settings with client auth and an upstream timeout only: no AWS settings, no
    /// faults, no OpenAI-front aliases.
    pub fn new(auth: BuiltinAuth, token: Option<String>, upstream_timeout: Duration) -> Self {
        GatewaySettings {
            auth,
            token,
            faults: Vec::new(),
            upstream_timeout,
            aws: None,
            features: FeatureMap::default(),
            upstream_tls: crate::scenario::Tls::default(),
            upstreams: None,
        }
    }

    /// Whether it may call `url`: any URL when no upstreams are set, else one at an
    /// origin of [`GatewaySettings::upstreams`].
    pub fn may_call(&self, url: &str) -> bool {
        match &self.upstreams {
            None => true,
            Some(allowed) => upstream::origin(url).is_some_and(|o| allowed.contains(&o)),
        }
    }
}

/// What the OpenAI front serves: model aliases, and feature aliases as the admin set
/// them (explicit mappings and `Disabled`; fallbacks are the gateway's own business).
#[derive(Clone, Debug, Default)]
pub struct FeatureMap {
    /// Alias -> model fields (self-hosted models and their endpoint variants).
    pub models: Vec<(String, upstream::ModelMeta)>,
    /// Feature alias -> its model, or `None` when disabled.
    pub features: Vec<(String, Option<upstream::ModelMeta>)>,
}

/// Shared state of a running reference gateway.
pub struct State {
    settings: GatewaySettings,
    client: reqwest::Client,
    sticky: Mutex<Sticky>,
}

/// What the stateful faults remember between requests.
#[derive(Default)]
struct Sticky {
    by_family: HashMap<String, (String, Option<String>)>,
    last_key: Option<String>,
    first_prompt_model: Option<upstream::ModelMeta>,
    last_model: Option<upstream::ModelMeta>,
}

impl FeatureMap {
    /// The map a scenario describes; `url(backend)` answers a backend's address. Every
    /// model also gets its endpoint variants (`--no-v1`, `--slash`); with
    /// `features_by: feature`, every explicitly mapped or disabled feature is an alias
    /// (fallbacks are the gateway's own rule, not part of the admin's map).
    pub fn of(s: &crate::scenario::Scenario, url: &dyn Fn(&str) -> Option<String>) -> FeatureMap {
        use crate::scenario::{FeaturesBy, ModelConfig, Target};
        use crate::scenario::{NO_V1_SUFFIX, SLASH_SUFFIX};
        use crate::wire::endpoint::{normalize as normalize_endpoint, without_v1};
        let g = &s.gateway;
        let endpoint = |m: &ModelConfig| m.endpoint.as_ref().map(|t| t.render(url)).unwrap_or_default();
        let meta = |m: &ModelConfig, endpoint: String| upstream::ModelMeta {
            family: m.family.clone(),
            endpoint,
            api_key: m.api_key.clone(),
            identifier: m.identifier.to_string(),
        };
        let mut map = FeatureMap::default();
        for m in &s.models {
            let alias = g.alias(&m.name);
            let e = endpoint(m);
            map.models
                .push((format!("{alias}{NO_V1_SUFFIX}"), meta(m, without_v1(&e))));
            let slash = format!("{}/", normalize_endpoint(&e));
            map.models.push((format!("{alias}{SLASH_SUFFIX}"), meta(m, slash)));
            map.models.push((alias, meta(m, e)));
        }
        if g.features_by == FeaturesBy::Feature {
            for fs in &s.features {
                let target = match fs.target {
                    Target::Model(i) => Some(meta(&s.models[i], endpoint(&s.models[i]))),
                    Target::Disabled => None,
                    // GitLab serves it: the proxy has no alias for it.
                    Target::Fallback(_) | Target::Vendored => continue,
                };
                map.features.push((g.alias(fs.feature.name), target));
            }
        }
        map
    }

    /// The origins of the models' endpoints: the backends the gateway serves, where
    /// their address is known.
    pub fn origins(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .models
            .iter()
            .filter_map(|(_, m)| upstream::origin(&m.endpoint))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Builds the gateway's router.
pub fn router(settings: GatewaySettings) -> reqwest::Result<Router> {
    // No proxy from the environment, and no redirect followed: a backend that
    // redirects gets its 3xx relayed as an error, never a call to another host.
    let client = settings
        .upstream_tls
        .apply(
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(30))
                .tcp_nodelay(true),
        )?
        .build()?;
    let state = Arc::new(State {
        settings,
        client,
        sticky: Mutex::new(Sticky::default()),
    });
    Ok(Router::new()
        .route("/v1/chat/completions", axum::routing::any(front::chat))
        .route("/v1/completions", axum::routing::any(front::completions))
        .route("/v1/models", axum::routing::any(front::models))
        .fallback(handlers::handle)
        .with_state(state))
}
