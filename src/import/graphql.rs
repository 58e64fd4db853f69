//! The GitLab GraphQL client of `gateprobe import gitlab`: it asks the instance which
//! types and fields exist (introspection), then selects only fields that do, since an
//! unknown field fails the whole query and the Duo Self-Hosted types grew from 17.1 to
//! 19.x. It reads every page of the self-hosted models and feature settings (100 a
//! page), bounds every reply, and never selects `apiToken`, which returns the plaintext
//! key to admins.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION};
use serde_json::{Value, json};

use super::{ImportError, Readout, RemoteFeature, RemoteModel, Snapshot};
use crate::adapter::TransportError;

/// The largest reply read (a page of 100 models is a few tens of KiB).
pub(super) const MAX_REPLY: usize = 8 << 20;
/// Nodes per page: GitLab's maximum.
const PAGE: u32 = 100;
/// Pages read per connection at most (10,000 nodes), so a server that always claims a
/// next page cannot keep the import going.
const MAX_PAGES: usize = 100;
/// Fields that are never selected: `apiToken` answers admins with the plaintext key.
const NEVER: &[&str] = &["apiToken"];

/// Self-hosted model fields gateprobe reads, when the instance has them (`provider`
/// is 19.x; `identifier` came after the first self-hosted releases).
const MODEL_FIELDS: &[&str] = &[
    "id",
    "name",
    "model",
    "endpoint",
    "identifier",
    "hasApiToken",
    "provider",
];
/// Feature setting fields gateprobe reads.
const FEATURE_FIELDS: &[&str] = &["feature", "provider", "selfHostedModel"];

/// One request: the types (named as in GitLab's GraphQL reference) and their fields.
const INTROSPECTION: &str = "query gateprobeSchema { \
    query: __type(name: \"Query\") { fields { name } } \
    model: __type(name: \"AiSelfHostedModel\") { fields { name } } \
    feature: __type(name: \"AiFeatureSetting\") { fields { name } } \
    duo: __type(name: \"DuoSettings\") { fields { name } } \
    meta: __type(name: \"Metadata\") { fields { name } } }";

/// What the instance's schema offers, as far as the import cares.
#[derive(Clone, Debug, Default)]
pub(super) struct Schema {
    /// `metadata { version }` exists.
    version: bool,
    /// `duoSettings { aiGatewayUrl }` exists (17.9+).
    gateway_url: bool,
    /// The model fields to select; `None` without `aiSelfHostedModels`.
    models: Option<Vec<&'static str>>,
    /// The feature setting fields to select; `None` without `aiFeatureSettings` (17.5+).
    features: Option<Vec<&'static str>>,
}

impl Schema {
    /// Reads the introspection reply's `data`.
    pub(super) fn from_data(data: &Value) -> Schema {
        let fields = |alias: &str| -> Vec<String> {
            data.get(alias)
                .and_then(|t| t.get("fields"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let query = fields("query");
        let has = |name: &str| query.iter().any(|f| f == name);
        let pick = |wanted: &[&'static str], present: &[String]| -> Vec<&'static str> {
            wanted
                .iter()
                .copied()
                .filter(|w| !NEVER.contains(w) && present.iter().any(|p| p == w))
                .collect()
        };
        let model_fields = pick(MODEL_FIELDS, &fields("model"));
        let mut feature_fields = pick(FEATURE_FIELDS, &fields("feature"));
        if model_fields.is_empty() {
            feature_fields.retain(|f| *f != "selfHostedModel");
        }
        Schema {
            version: has("metadata") && fields("meta").iter().any(|f| f == "version"),
            gateway_url: has("duoSettings") && fields("duo").iter().any(|f| f == "aiGatewayUrl"),
            models: (has("aiSelfHostedModels") && ["name", "model"].iter().all(|f| model_fields.contains(f)))
                .then_some(model_fields),
            features: (has("aiFeatureSettings") && ["feature", "provider"].iter().all(|f| feature_fields.contains(f)))
                .then_some(feature_fields),
        }
    }

    /// The query for one round: the scalars (first round only) and the connections
    /// still to read, each after its cursor (variables `$models`, `$features`).
    pub(super) fn query(&self, scalars: bool, models: bool, features: bool) -> String {
        let mut vars = Vec::new();
        let mut parts = Vec::new();
        if scalars && self.version {
            parts.push("metadata { version }".to_owned());
        }
        if scalars && self.gateway_url {
            parts.push("duoSettings { aiGatewayUrl }".to_owned());
        }
        let model_nodes = self.models.as_deref().unwrap_or_default().join(" ");
        if models && self.models.is_some() {
            vars.push("$models: String");
            parts.push(format!(
                "aiSelfHostedModels(first: {PAGE}, after: $models) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {model_nodes} }} }}"
            ));
        }
        if features && let Some(fields) = &self.features {
            let nodes: Vec<String> = fields
                .iter()
                .map(|f| {
                    if *f == "selfHostedModel" {
                        format!("selfHostedModel {{ {model_nodes} }}")
                    } else {
                        (*f).to_owned()
                    }
                })
                .collect();
            vars.push("$features: String");
            parts.push(format!(
                "aiFeatureSettings(first: {PAGE}, after: $features) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {} }} }}",
                nodes.join(" ")
            ));
        }
        let vars = if vars.is_empty() {
            String::new()
        } else {
            format!("({})", vars.join(", "))
        };
        format!("query gateprobeImport{vars} {{ {} }}", parts.join(" "))
    }
}

/// Where and how to ask.
pub(super) struct Client<'a> {
    pub(super) http: reqwest::Client,
    /// `https://gitlab.example.com/api/graphql`.
    pub(super) endpoint: String,
    pub(super) token: &'a str,
    pub(super) timeout: Duration,
}

impl Client<'_> {
    /// Reads the whole setup: schema first, then every page.
    pub(super) async fn snapshot(&self) -> Result<Snapshot, ImportError> {
        let schema = Schema::from_data(&self.post(INTROSPECTION, json!({})).await?);
        if schema.models.is_none() {
            return Err(ImportError::Unsupported(
                "the instance's GraphQL API has no `aiSelfHostedModels` (GitLab 17.1 or later with Duo Self-Hosted)"
                    .into(),
            ));
        }
        let mut snap = Snapshot::default();
        let mut models = Pager::new("aiSelfHostedModels");
        let mut features = Pager::new("aiFeatureSettings");
        if schema.features.is_none() {
            features.done = true;
            snap.features = Readout::Missing;
        }
        let mut first = true;
        while first || !models.done || !features.done {
            let query = schema.query(first, !models.done, !features.done);
            // Only the variables the query declares.
            let mut vars = serde_json::Map::new();
            if !models.done {
                vars.insert("models".into(), json!(models.cursor));
            }
            if !features.done {
                vars.insert("features".into(), json!(features.cursor));
            }
            let data = self.post(&query, Value::Object(vars)).await?;
            if first {
                snap.version = data
                    .pointer("/metadata/version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                snap.gateway_url = if !schema.gateway_url {
                    Readout::Missing
                } else {
                    match data.get("duoSettings") {
                        Some(d) if d.is_object() => {
                            Readout::Read(d.get("aiGatewayUrl").and_then(Value::as_str).map(str::to_owned))
                        }
                        _ => Readout::Hidden,
                    }
                };
            }
            if !models.done {
                match models.page(&data)? {
                    Some(nodes) => snap.models.extend(nodes.iter().map(RemoteModel::from_node)),
                    None => {
                        return Err(ImportError::NoAccess("aiSelfHostedModels"));
                    }
                }
            }
            if !features.done {
                match features.page(&data)? {
                    Some(nodes) => {
                        let list = match &mut snap.features {
                            Readout::Read(l) => l,
                            other => {
                                *other = Readout::Read(Vec::new());
                                match other {
                                    Readout::Read(l) => l,
                                    _ => unreachable!("just set"),
                                }
                            }
                        };
                        list.extend(nodes.iter().filter_map(RemoteFeature::from_node));
                    }
                    None => snap.features = Readout::Hidden,
                }
            }
            first = false;
        }
        Ok(snap)
    }

    /// Posts one query and returns its `data`; HTTP failures, GraphQL errors and replies
    /// that are not GraphQL become errors that name no secret.
    async fn post(&self, query: &str, variables: Value) -> Result<Value, ImportError> {
        if NEVER.iter().any(|f| query.contains(f)) {
            return Err(ImportError::Bug(
                "a query selected a field gateprobe never reads".into(),
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|_| ImportError::Token("the token holds characters an HTTP header cannot carry".into()))?;
        auth.set_sensitive(true);
        let body = serde_json::to_vec(&json!({"query": query, "variables": variables}))
            .map_err(|e| ImportError::Bug(e.to_string()))?;
        let resp = self
            .http
            .post(&self.endpoint)
            .header(AUTHORIZATION, auth)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| ImportError::Transport(TransportError::from_reqwest(e)))?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| crate::redact::display_url(&String::from_utf8_lossy(l.as_bytes())));
        let body = crate::adapter::read_body(resp, MAX_REPLY).await;
        if let Some(cut) = body.cut {
            return Err(ImportError::Transport(cut));
        }
        if status.is_redirection() {
            return Err(ImportError::Status {
                status: status.as_u16(),
                detail: format!(
                    "a redirect to {}; give --url as the instance serves it",
                    location.unwrap_or_else(|| "nowhere".into())
                ),
            });
        }
        if !status.is_success() {
            return Err(ImportError::Status {
                status: status.as_u16(),
                detail: error_text(&body.bytes),
            });
        }
        if body.truncated {
            return Err(ImportError::Reply(format!(
                "the reply is larger than {} MiB",
                MAX_REPLY >> 20
            )));
        }
        let v: Value = serde_json::from_slice(&body.bytes)
            .map_err(|e| ImportError::Reply(format!("the reply is not JSON: {e}")))?;
        if let Some(errors) = v.get("errors").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let messages: Vec<String> = errors
                .iter()
                .take(5)
                .map(|e| {
                    let m = e.get("message").and_then(Value::as_str).unwrap_or("(no message)");
                    crate::text::trunc(m, 300)
                })
                .collect();
            return Err(ImportError::GraphQl(messages.join("; ")));
        }
        match v.get("data") {
            Some(d) if d.is_object() => Ok(d.clone()),
            _ => Err(ImportError::Reply("the reply has no `data`".into())),
        }
    }
}

/// The start of an error body, for a message.
fn error_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let v: Option<Value> = serde_json::from_str(&text).ok();
    let msg = v
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    if msg.is_empty() {
        "no body".into()
    } else {
        crate::text::trunc(&msg, 200)
    }
}

/// Cursor state of one connection.
struct Pager {
    field: &'static str,
    cursor: Option<String>,
    pages: usize,
    done: bool,
}

impl Pager {
    fn new(field: &'static str) -> Pager {
        Pager {
            field,
            cursor: None,
            pages: 0,
            done: false,
        }
    }

    /// The nodes of this round's page (`None` when the field is `null`: no access),
    /// advancing the cursor.
    fn page<'v>(&mut self, data: &'v Value) -> Result<Option<&'v Vec<Value>>, ImportError> {
        let conn = match data.get(self.field) {
            Some(Value::Null) | None => {
                self.done = true;
                return Ok(None);
            }
            Some(c) => c,
        };
        let nodes = conn
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| ImportError::Reply(format!("`{}` has no `nodes` list", self.field)))?;
        self.pages += 1;
        let next = conn
            .pointer("/pageInfo/hasNextPage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let cursor = conn
            .pointer("/pageInfo/endCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if !next {
            self.done = true;
        } else if cursor.is_none() || cursor == self.cursor {
            return Err(ImportError::Reply(format!(
                "`{}` claims a next page but gives no new cursor",
                self.field
            )));
        } else if self.pages >= MAX_PAGES {
            return Err(ImportError::Reply(format!(
                "`{}` has more than {} pages of {PAGE}; gateprobe stops there",
                self.field, MAX_PAGES
            )));
        } else {
            self.cursor = cursor;
        }
        Ok(Some(nodes))
    }
}

impl RemoteModel {
    fn from_node(n: &Value) -> RemoteModel {
        let s = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_owned);
        RemoteModel {
            id: s("id"),
            name: s("name"),
            family: s("model"),
            endpoint: s("endpoint"),
            identifier: s("identifier"),
            has_api_token: n.get("hasApiToken").and_then(Value::as_bool).unwrap_or(false),
            provider: s("provider"),
        }
    }
}

impl RemoteFeature {
    fn from_node(n: &Value) -> Option<RemoteFeature> {
        Some(RemoteFeature {
            feature: n.get("feature").and_then(Value::as_str)?.to_owned(),
            provider: n.get("provider").and_then(Value::as_str)?.to_owned(),
            model: n
                .get("selfHostedModel")
                .filter(|m| m.is_object())
                .map(RemoteModel::from_node),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(model: &[&str], query: &[&str]) -> Schema {
        let names = |l: &[&str]| json!({"fields": l.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});
        Schema::from_data(&json!({
            "query": names(query),
            "model": names(model),
            "feature": names(&["feature", "title", "provider", "selfHostedModel", "validModels"]),
            "duo": null,
            "meta": names(&["version", "revision"]),
        }))
    }

    #[test]
    fn only_fields_the_schema_has_are_selected_and_never_the_key() {
        let s = schema(
            &[
                "id",
                "name",
                "model",
                "endpoint",
                "identifier",
                "hasApiToken",
                "apiToken",
            ],
            &["metadata", "aiSelfHostedModels", "aiFeatureSettings", "duoSettings"],
        );
        let q = s.query(true, true, true);
        assert!(
            !q.contains("apiToken") && !q.contains("provider }") && !q.contains("duoSettings"),
            "{q}"
        );
        assert!(
            q.contains("nodes { id name model endpoint identifier hasApiToken }"),
            "{q}"
        );
        assert!(
            q.contains("metadata { version }") && q.contains("$features: String"),
            "{q}"
        );
        // A later page asks only for what is left, and declares only its variable.
        let q = s.query(false, false, true);
        assert_eq!(
            q,
            "query gateprobeImport($features: String) { aiFeatureSettings(first: 100, after: $features) { pageInfo \
             { hasNextPage endCursor } nodes { feature provider selfHostedModel { id name model endpoint identifier \
             hasApiToken } } } }"
        );
        let s19 = schema(
            &[
                "id",
                "name",
                "model",
                "endpoint",
                "identifier",
                "hasApiToken",
                "provider",
            ],
            &["aiSelfHostedModels"],
        );
        assert!(s19.query(true, true, true).contains("hasApiToken provider }"));
        assert!(s19.features.is_none() && !s19.version);
    }

    #[test]
    fn a_next_page_without_a_new_cursor_is_refused() {
        let mut p = Pager::new("aiSelfHostedModels");
        let page = |cursor: &str| json!({"aiSelfHostedModels": {"pageInfo": {"hasNextPage": true, "endCursor": cursor}, "nodes": []}});
        assert!(p.page(&page("a")).is_ok() && !p.done);
        assert!(p.page(&page("a")).is_err());
        let mut p = Pager::new("aiSelfHostedModels");
        assert!(matches!(p.page(&json!({"aiSelfHostedModels": null})), Ok(None)) && p.done);
    }
}
