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
