//! The committed JSON Schemas match the code, and real reports validate against them.

use std::path::Path;

use gateprobe::gateway::Fault;
use gateprobe::run::{self, RunOptions};
use tokio_util::sync::CancellationToken;

fn committed(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("schema is JSON")
}

#[test]
fn committed_schemas_are_current() {
    assert_eq!(
        committed("schema/report.schema.json"),
        gateprobe::report::json_schema(),
        "regenerate: cargo run -- schema --report > schema/report.schema.json"
    );
    assert_eq!(
        committed("schema/scenario.schema.json"),
        gateprobe::scenario::json_schema(),
        "regenerate: cargo run -- schema > schema/scenario.schema.json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_validate_against_the_committed_schema() {
    let schema = committed("schema/report.schema.json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let load = |p: &str| {
        let path = Path::new(p);
        gateprobe::scenario::load_str(path, &std::fs::read_to_string(path).expect("read"), &|_| None).expect("valid")
    };
    let (quickstart, front) = (load("scenarios/quickstart.yaml"), load("scenarios/openai-front.yaml"));
    for (s, faults) in [
        (&quickstart, vec![]),
        (&quickstart, vec![Fault::ReuseFirstEndpoint]),
        (&front, vec![Fault::NoChatFallback]),
    ] {
        let r = run::run(
            s,
            &RunOptions {
                shard: None,
                gateway_url: None,
                faults,
                ..RunOptions::default()
            },
            &CancellationToken::new(),
        )
        .await;
        let v = serde_json::to_value(&r).expect("json");
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    // And the validator is not vacuous.
    let bad = serde_json::json!({"schema_version": "one"});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn shipped_scenarios_validate_against_the_scenario_schema() {
    let schema = committed("schema/scenario.schema.json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for path in [
        "scenarios/quickstart.yaml",
        "scenarios/litellm.yaml",
        "scenarios/openai-front.yaml",
        "mocks/cloud-realism.yaml",
    ] {
        let text = std::fs::read_to_string(path).expect("read");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        assert!(
            validator.is_valid(&doc),
            "{path}: {:?}",
            validator.iter_errors(&doc).map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }
}

/// A YAML file as the JSON value an editor's validator sees.
fn yaml_value(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn schema_errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    validator
        .iter_errors(&yaml_value(text))
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn the_scenario_schema_has_an_id_and_rejects_unknown_names() {
    let schema = committed("schema/scenario.schema.json");
    assert_eq!(schema["$id"], gateprobe::scenario::schema::ID);
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    // Every file gateprobe ships validates: the enumerations are not too strict.
    for dir in ["scenarios", "mocks", "templates"] {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let errors = schema_errors(&validator, &text);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }
    // What an editor must flag, each a mistake the loader refuses too.
    let base = std::fs::read_to_string("templates/aigw.yaml").expect("template");
    for (from, to, at) in [
        ("provider: openai", "provider: azur", "/backends/vllm/provider"),
        ("  code_completions: mistral", "  code_completion: mistral", "/features"),
        ("family: mistral", "family: mistrall", "/self_hosted_models/0/family"),
        ("kind: aigw", "kind: aigw2", "/gateway/kind"),
        ("features:\n", "checks: [routing, routng]\nfeatures:\n", "/checks/1"),
        ("features:\n", "checks: [\"!streamng\"]\nfeatures:\n", "/checks/0"),
        ("version: \"18.9\"", "version: eighteen", "/instance/version"),
        ("version: 1\n", "version: 2\n", "/version"),
    ] {
        assert!(base.contains(from), "{from}");
        let errors = schema_errors(&validator, &base.replacen(from, to, 1));
        assert!(
            errors.iter().any(|e| e.ends_with(&format!(" at {at}"))),
            "`{to}` is not flagged at {at}: {errors:#?}"
        );
        // The loader refuses the same file.
        let text = base.replacen(from, to, 1);
        assert!(
            gateprobe::scenario::load_str(Path::new("t.yaml"), &text, &|_| None).is_err(),
            "the loader accepts `{to}`"
        );
    }
    // Patterns and exclusions stay valid.
    let ok = base.replacen(
        "features:\n",
        "checks: [\"!auth.client.*\", \"*.signed\", routing]\nfeatures:\n",
        1,
    );
    assert!(schema_errors(&validator, &ok).is_empty());
}
