//! Failures grouped by root cause: one sentence per problem, naming the cause and the
//! checks it explains. A judge that recognises a cause says so in its verdict
//! ([`Cause`]); a failed check about a model whose cause is known is counted as a
//! consequence of it; what is left is a problem of its own, its rule the sentence.

use std::fmt;

use crate::report::{CheckResult, Problem, Status};

/// A root cause a failed check points at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A model's endpoint has no `/v1`.
    EndpointWithoutV1 {
        /// The model.
        model: String,
    },
    /// A model's server refuses the key configured for it.
    KeyRefused {
        /// The model.
        model: String,
        /// The backend that refused it.
        backend: String,
    },
    /// A model's endpoint points at a server that does not serve it.
    NotServed {
        /// The model.
        model: String,
        /// The backend it reached.
        backend: String,
    },
    /// The gateway sends backends the client's own token instead of each model's key.
    ClientTokenForwarded {
        /// The model whose request carried it.
        model: String,
    },
    /// The gateway sends a model another model's key, or none.
    WrongKey {
        /// The model.
        model: String,
        /// What arrived instead.
        got: String,
    },
    /// The gateway signs Bedrock calls with the wrong scope or not at all.
    BedrockSignature {
        /// What the runtime saw.
        detail: String,
    },
    /// The gateway calls a model's backend at a path the endpoint does not give.
    WrongPath {
        /// The model.
        model: String,
        /// The path it used.
        path: String,
    },
    /// The gateway routes a model to another backend or under another name.
    Misrouted {
        /// The model.
        model: String,
    },
}

impl Cause {
    /// The model the cause is about, if one.
    pub fn model(&self) -> Option<&str> {
        match self {
            Cause::EndpointWithoutV1 { model }
            | Cause::KeyRefused { model, .. }
            | Cause::NotServed { model, .. }
            | Cause::WrongKey { model, .. }
            | Cause::WrongPath { model, .. }
            | Cause::Misrouted { model }
            | Cause::ClientTokenForwarded { model } => Some(model),
            Cause::BedrockSignature { .. } => None,
        }
    }

    /// Whether the cause is in the setup (what the admin configured) rather than the
    /// gateway.
    pub fn in_setup(&self) -> bool {
        matches!(
            self,
            Cause::EndpointWithoutV1 { .. } | Cause::KeyRefused { .. } | Cause::NotServed { .. }
        )
    }
}

impl Cause {
    /// The cause with its model left out: causes that differ only in their model are
    /// one problem of the gateway, told once for all of them.
    fn shared(&self) -> Cause {
        let mut c = self.clone();
        match &mut c {
            Cause::EndpointWithoutV1 { model }
            | Cause::KeyRefused { model, .. }
            | Cause::NotServed { model, .. }
            | Cause::WrongKey { model, .. }
            | Cause::WrongPath { model, .. }
            | Cause::Misrouted { model }
            | Cause::ClientTokenForwarded { model } => model.clear(),
            Cause::BedrockSignature { .. } => {}
        }
        c
    }

    /// The sentence of the cause for `models` (one or several).
    fn sentence(&self, models: &[String]) -> String {
        let names = models.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
        let (one, of) = if models.len() == 1 {
            (format!("model {names}"), format!("model {names}'s"))
        } else {
            (
                format!("models {names}"),
                format!("the {} models {names}:", models.len()),
            )
        };
        match self {
            Cause::EndpointWithoutV1 { .. } => format!("{of} endpoint has no /v1, so its server answers 404"),
            Cause::KeyRefused { backend, .. } => {
                format!("backend `{backend}` refuses the API key configured for {one}")
            }
            Cause::NotServed { backend, .. } => {
                format!("{of} endpoint points at backend `{backend}`, which does not serve it")
            }
            Cause::ClientTokenForwarded { .. } => {
                "the gateway sends backends the instance's token instead of each model's key".into()
            }
            Cause::WrongKey { got, .. } => format!(
                "the gateway sends {one} {got} instead of {}",
                if models.len() == 1 {
                    "its own key"
                } else {
                    "their own keys"
                }
            ),
            Cause::BedrockSignature { detail } => format!("the gateway's Bedrock calls are {detail}"),
            Cause::WrongPath { path, .. } => format!("the gateway calls the backend of {one} at {path}"),
            Cause::Misrouted { .. } => format!("the gateway routes the requests of {one} elsewhere"),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let models: Vec<String> = self.model().map(str::to_owned).into_iter().collect();
        f.write_str(&self.sentence(&models))
    }
}

/// One failed check, as the diagnosis sees it: its id, the model it is about, and
/// the cause its judge named.
pub struct Failure<'a> {
    /// The check.
    pub check: &'a CheckResult,
    /// The self-hosted model its first request addressed.
    pub model: Option<&'a str>,
    /// The cause its judge named.
    pub cause: Option<Cause>,
}

/// Groups failed checks by root cause, biggest group first.
pub fn diagnose(failures: &[Failure<'_>]) -> Vec<Problem> {
    let failed: Vec<&Failure<'_>> = failures.iter().filter(|f| f.check.status == Status::Failed).collect();
    // (the cause without its model, the models, the checks) or (None, rule, checks).
    let mut caused: Vec<(Cause, Vec<String>, Vec<String>)> = Vec::new();
    let mut plain: Vec<(String, Vec<String>)> = Vec::new();
    let named: Vec<&Cause> = failed.iter().filter_map(|f| f.cause.as_ref()).collect();
    for f in &failed {
        // A failure names its cause, or follows from a cause named for its model.
        let cause = f.cause.clone().or_else(|| {
            named
                .iter()
                .find(|c| c.model().is_some() && c.model() == f.model)
                .map(|c| (*c).clone())
        });
        let id = f.check.id.clone();
        match cause {
            Some(c) => {
                let shared = c.shared();
                let model = c.model().map(str::to_owned);
                match caused.iter_mut().find(|(s, _, _)| *s == shared) {
                    Some((_, models, ids)) => {
                        if let Some(m) = model.filter(|m| !models.contains(m)) {
                            models.push(m);
                        }
                        ids.push(id);
                    }
                    None => caused.push((shared, model.into_iter().collect(), vec![id])),
                }
            }
            None => match plain.iter_mut().find(|(rule, _)| *rule == f.check.rule) {
                Some((_, ids)) => ids.push(id),
                None => plain.push((f.check.rule.clone(), vec![id])),
            },
        }
    }
    let mut problems: Vec<Problem> = caused
        .into_iter()
        .map(|(cause, models, checks)| Problem {
            setup: cause.in_setup(),
            sentence: cause.sentence(&models),
            checks,
        })
        .chain(plain.into_iter().map(|(sentence, checks)| Problem {
            setup: false,
            sentence,
            checks,
        }))
        .collect();
    problems.sort_by_key(|p| std::cmp::Reverse(p.checks.len()));
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckResult;

    fn check(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            family: "auth".into(),
            rule: format!("rule of {id}"),
            profile: None,
            status,
            expected: String::new(),
            actual: String::new(),
            evidence: vec![],
        }
    }

    #[test]
    fn one_cause_across_models_is_one_problem_with_its_consequences() {
        let checks = [
            check("auth.a.key_forwarded", Status::Failed),
            check("auth.b.key_forwarded", Status::Failed),
            check("feature_mapping.x.mapped", Status::Failed),
            check("routing.empty_identifier", Status::Failed),
            check("routing.c.backend", Status::Passed),
        ];
        let cause = |m: &str| Cause::WrongKey {
            model: m.into(),
            got: "`Bearer dummy_key`".into(),
        };
        let failures = [
            Failure {
                check: &checks[0],
                model: Some("a"),
                cause: Some(cause("a")),
            },
            Failure {
                check: &checks[1],
                model: Some("b"),
                cause: Some(cause("b")),
            },
            Failure {
                check: &checks[2],
                model: Some("a"),
                cause: None,
            },
            Failure {
                check: &checks[3],
                model: None,
                cause: None,
            },
            Failure {
                check: &checks[4],
                model: Some("c"),
                cause: None,
            },
        ];
        let p = diagnose(&failures);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0].sentence,
            "the gateway sends models `a`, `b` `Bearer dummy_key` instead of their own keys"
        );
        assert_eq!(
            p[0].checks,
            [
                "auth.a.key_forwarded",
                "auth.b.key_forwarded",
                "feature_mapping.x.mapped"
            ]
        );
        assert_eq!(p[1].sentence, "rule of routing.empty_identifier");
    }
}
