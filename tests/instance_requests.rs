//! The table of what the AI gateway asks of a model server per feature
//! (`gateprobe::instance::requests`) is the one the golden transcripts recorded from
//! GitLab's real AI gateway: for every feature, the largest prompt (in characters; a
//! transcript keeps long texts as `«N chars»`) and the largest `max_tokens` the mocks
//! received over the OpenAI-compatible path, and the roles of its messages.

use std::collections::BTreeMap;

use gateprobe::instance::Shapes;
use gateprobe::instance::requests;
use serde_json::Value;

/// Characters of a recorded text, with each `«N chars»` counted as N.
fn chars(s: &str) -> u32 {
    let mut n = 0u32;
    let mut rest = s;
    while let Some(i) = rest.find('«') {
        n += rest[..i].chars().count() as u32;
        let after = &rest[i + '«'.len_utf8()..];
        let Some(j) = after.find('»') else {
            return n + rest[i..].chars().count() as u32;
        };
        let inner = &after[..j];
        n += match inner.strip_suffix(" chars").and_then(|d| d.parse::<u32>().ok()) {
            Some(k) => k,
            None => inner.chars().count() as u32 + 2,
        };
        rest = &after[j + '»'.len_utf8()..];
    }
    n + rest.chars().count() as u32
}

#[derive(Default, Debug)]
struct Seen {
    prompt_chars: u32,
    max_tokens: u32,
    roles: Vec<Vec<String>>,
}

fn observed(prefix: &str) -> BTreeMap<String, Seen> {
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    let dir = std::path::Path::new("tests/fixtures/transcripts");
    for entry in std::fs::read_dir(dir).expect("transcripts") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let t: Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("transcript.json")).expect("read")).expect("json");
        for x in t["exchanges"].as_array().expect("exchanges") {
            let feature = x["probe"]["feature"].as_str().expect("feature");
            for hit in x["backend"].as_array().into_iter().flatten() {
                let path = hit["path"].as_str().unwrap_or_default();
                if !path.ends_with("/chat/completions") {
                    continue;
                }
                let Ok(body) = serde_json::from_str::<Value>(hit["body"].as_str().unwrap_or_default()) else {
                    continue;
                };
                let messages = body["messages"].as_array().expect("messages");
                let n: u32 = messages
                    .iter()
                    .map(|m| chars(m["content"].as_str().unwrap_or_default()))
                    .sum();
                let roles: Vec<String> = messages
                    .iter()
                    .map(|m| m["role"].as_str().unwrap_or_default().to_owned())
                    .collect();
                let seen = out.entry(feature.to_owned()).or_default();
                seen.prompt_chars = seen.prompt_chars.max(n);
                seen.max_tokens = seen.max_tokens.max(body["max_tokens"].as_u64().unwrap_or(0) as u32);
                if !seen.roles.contains(&roles) {
                    seen.roles.push(roles);
                }
            }
        }
    }
    out
}

fn matches_the_transcripts(shapes: Shapes, prefix: &str) {
    let seen = observed(prefix);
    let table = requests::all(shapes);
    for row in table {
        let s = seen
            .get(row.feature)
            .unwrap_or_else(|| panic!("{prefix}: no recorded request of {}", row.feature));
        assert_eq!(row.prompt_chars, s.prompt_chars, "{prefix} {} prompt", row.feature);
        assert_eq!(row.max_tokens, s.max_tokens, "{prefix} {} max_tokens", row.feature);
        let want: Vec<&str> = row.roles.iter().map(|r| r.name()).collect();
        assert!(
            s.roles.iter().any(|r| *r == want),
            "{prefix} {}: roles {want:?} not among {:?}",
            row.feature,
            s.roles
        );
        // The table's roles are the longest sequence the feature sends.
        assert!(s.roles.iter().all(|r| r.len() <= want.len()), "{}", row.feature);
    }
    for feature in seen.keys() {
        assert!(
            table.iter().any(|r| r.feature == feature),
            "{prefix}: {feature} was recorded but is not in the table"
        );
    }
}

#[test]
fn the_18_9_table_is_what_the_real_gateway_sent() {
    matches_the_transcripts(Shapes::V18_9, "aigw-474164f4");
}

#[test]
fn the_17_7_table_is_what_the_real_gateway_sent() {
    matches_the_transcripts(Shapes::V17_7, "aigw-2025-01-14");
}
