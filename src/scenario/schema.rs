//! The JSON Schema of the scenario format, for editors (yaml-language-server reads it
//! through a `# yaml-language-server: $schema=...` first line) and CI validators.
//!
//! schemars derives the shape from [`raw`](super::raw); the closed sets of names are
//! added here from the catalogues validation uses (providers, gateway kinds, features,
//! families, check families, fault actions, ...), so an editor flags `provider: azur`
//! or `code_completion:` as the loader would, and the lists cannot drift apart.

use serde_json::{Value, json};

use super::CheckFamily;

/// The schema's `$id`: a stable name for this version of the format, not a location.
pub const ID: &str = "urn:gateprobe:schema:scenario:1";

/// The scenario schema with its enumerations and `$id`.
pub fn json_schema() -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(super::raw::ScenarioFile)).unwrap_or_default();
    let Some(root) = v.as_object_mut() else { return v };
    // `$id` right after `$schema`, where readers look for it.
    let mut out = serde_json::Map::new();
    for (k, val) in std::mem::take(root) {
        let schema_key = k == "$schema";
        out.insert(k, val);
        if schema_key {
            out.insert("$id".into(), Value::from(ID));
        }
    }
    *root = out;

    let features: Vec<&str> = crate::feature::FEATURES.iter().map(|f| f.name).collect();
    let families: Vec<&str> = CheckFamily::ALL.iter().map(|f| f.name()).collect();
    let excluded: Vec<String> = families.iter().map(|f| format!("!{f}")).collect();

    set(&mut v, "/properties/version", |s| {
        s.insert("enum".into(), json!([1, null]));
    });
    set(&mut v, "/properties/features", |s| {
        s.insert("propertyNames".into(), json!({"enum": features}));
    });
    set(&mut v, "/properties/checks/items", |s| {
        s.insert(
            "anyOf".into(),
            json!([
                {"enum": families},
                {"enum": excluded},
                {"pattern": "^!?[^\\s]*[.*][^\\s]*$", "description": "a check id pattern, `*` for any part"}
            ]),
        );
    });
    let nullable = |names: &[&str]| {
        let mut e: Vec<Value> = names.iter().map(|n| Value::from(*n)).collect();
        e.push(Value::Null);
        Value::Array(e)
    };
    let defs = "/$defs";
    set(&mut v, &format!("{defs}/BackendSpec/properties/provider"), |s| {
        s.insert("enum".into(), json!(["openai", "azure", "bedrock"]));
    });
    set(&mut v, &format!("{defs}/GatewaySpec/properties/kind"), |s| {
        s.insert("enum".into(), nullable(&["builtin", "aigw", "openai", "direct"]));
    });
    set(&mut v, &format!("{defs}/GatewaySpec/properties/features_by"), |s| {
        s.insert("enum".into(), nullable(&["model", "feature"]));
    });
    set(&mut v, &format!("{defs}/SelfHostedModelSpec/properties/family"), |s| {
        s.insert("enum".into(), json!(crate::feature::FAMILIES));
    });
    set(&mut v, &format!("{defs}/OpenSpec/properties/arrivals"), |s| {
        s.insert("enum".into(), nullable(&["uniform", "poisson", "gamma"]));
    });
    set(&mut v, &format!("{defs}/FaultSpec/properties/do"), |s| {
        s.insert("enum".into(), json!(super::behavior::FaultAction::NAMES));
    });
    set(&mut v, &format!("{defs}/DistMap/properties/dist"), |s| {
        s.insert("enum".into(), json!(["fixed", "uniform", "normal", "lognormal"]));
    });
    set(&mut v, &format!("{defs}/LaunchSpec/properties/config"), |s| {
        s.insert("enum".into(), nullable(&["litellm"]));
    });
    set(&mut v, &format!("{defs}/InstanceSpec/properties/version"), |s| {
        s.insert("pattern".into(), Value::from("^[0-9]+\\.[0-9]+$"));
    });
    v
}

/// Applies `f` to the schema object at `pointer`, if there is one (a renamed field
/// shows up in `tests/schema.rs`, which checks each enumeration is in place).
fn set(v: &mut Value, pointer: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    if let Some(obj) = v.pointer_mut(pointer).and_then(Value::as_object_mut) {
        f(obj);
    }
}
