//! Which checks a run plans: the scenario's `checks:` list (and `gateprobe run
//! --check`). An entry is a check family (`routing`), a pattern over check ids with
//! `*` for any run of characters (`auth.*.signed`, `endpoint.*`), or either of those
//! after `!` to leave checks out (`!auth.client.*`). Without an entry that selects,
//! every family is planned; a left-out check stays in the report as skipped, saying
//! which entry left it out.

use super::CheckFamily;

/// The parsed `checks:` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Entries that select: family names and id patterns. Empty: every family.
    include: Vec<String>,
    /// Entries that leave checks out (without their `!`).
    exclude: Vec<String>,
    /// `checks: []`: nothing at all.
    none: bool,
}

/// What the selection does with one planned check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Run it.
    Run,
    /// Not selected: leave it out of the plan.
    Drop,
    /// Selected, then left out by this entry (with its `!`): report it as skipped.
    Excluded(String),
}

/// Why an entry was refused, and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

impl Selection {
    /// Every family, nothing left out.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// `checks: []`.
    pub fn none() -> Selection {
        Selection {
            none: true,
            ..Selection::default()
        }
    }

    /// Adds one entry of the list.
    pub fn add(&mut self, entry: &str) -> Result<(), EntryError> {
        let (negated, body) = match entry.trim().strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, entry.trim()),
        };
        let family = CheckFamily::ALL.iter().any(|f| f.name() == body);
        let pattern = body.contains(['.', '*']);
        if body.is_empty() || !(family || pattern) || body.chars().any(char::is_whitespace) {
            let names: Vec<&str> = CheckFamily::ALL.iter().map(|f| f.name()).collect();
            let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            let also = "or a check id pattern such as `auth.*.signed`, or either after `!` to leave checks out";
            let hint = match super::error::did_you_mean(body, names.iter().copied()) {
                Some(h) => format!("{h} (expected one of {list}; {also})"),
                None => format!("expected one of {list}; {also}"),
            };
            let shown = crate::text::trunc(entry, 60);
            let message = if pattern {
                format!("`{shown}` is not a check id pattern (no white space)")
            } else {
                format!("unknown check family `{shown}`")
            };
            return Err(EntryError { message, hint });
        }
        let list = if negated { &mut self.exclude } else { &mut self.include };
        if !list.iter().any(|e| e == body) {
            list.push(body.to_owned());
        }
        Ok(())
    }

    /// The families whose checks are planned.
    pub fn families(&self) -> Vec<CheckFamily> {
        if self.none {
            return Vec::new();
        }
        if self.include.is_empty() {
            return CheckFamily::ALL.to_vec();
        }
        let mut out: Vec<CheckFamily> = CheckFamily::ALL
            .into_iter()
            .filter(|f| {
                self.include.iter().any(|e| {
                    let first = e.split('.').next().unwrap_or_default();
                    e == f.name() || glob(first, f.name())
                })
            })
            .collect();
        out.sort();
        out
    }

    /// What to do with the check `id` of `family`.
    pub fn choose(&self, family: CheckFamily, id: &str) -> Choice {
        if self.none {
            return Choice::Drop;
        }
        let matches = |e: &str| e == family.name() || glob(e, id);
        if !self.include.is_empty() && !self.include.iter().any(|e| matches(e)) {
            return Choice::Drop;
        }
        match self.exclude.iter().find(|e| matches(e)) {
            Some(e) => Choice::Excluded(format!("!{e}")),
            None => Choice::Run,
        }
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters
/// (dots included) and everything else for itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Greedy matching with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_ids() {
        assert!(glob("auth.client.*", "auth.client.missing_token"));
        assert!(glob("auth.*.signed", "auth.claude-apac.signed"));
        assert!(!glob("auth.*.signed", "auth.claude-apac.key_forwarded"));
        assert!(glob("*", "anything.at.all"));
        assert!(glob("routing.empty_identifier", "routing.empty_identifier"));
        assert!(!glob("routing", "routing.empty_identifier"));
        assert!(glob("*.v1_suffix", "endpoint.m.v1_suffix"));
    }

    #[test]
    fn exclusions_alone_start_from_every_family() {
        let mut s = Selection::all();
        s.add("!auth.client.*").expect("valid");
        assert_eq!(s.families(), CheckFamily::ALL.to_vec());
        assert_eq!(s.choose(CheckFamily::Auth, "auth.m.key_forwarded"), Choice::Run);
        assert_eq!(
            s.choose(CheckFamily::Auth, "auth.client.wrong_token"),
            Choice::Excluded("!auth.client.*".into())
        );
    }

    #[test]
    fn patterns_select_their_family_and_only_their_checks() {
        let mut s = Selection::all();
        s.add("routing").expect("valid");
        s.add("auth.*.signed").expect("valid");
        assert_eq!(s.families(), vec![CheckFamily::Routing, CheckFamily::Auth]);
        assert_eq!(s.choose(CheckFamily::Auth, "auth.b.signed"), Choice::Run);
        assert_eq!(s.choose(CheckFamily::Auth, "auth.b.key_forwarded"), Choice::Drop);
        assert_eq!(s.choose(CheckFamily::Routing, "routing.b.model"), Choice::Run);
        assert_eq!(
            Selection::none().choose(CheckFamily::Routing, "routing.b.model"),
            Choice::Drop
        );
    }

    #[test]
    fn unknown_entries_get_a_hint() {
        let e = Selection::all().add("routin").unwrap_err();
        assert!(e.hint.contains("did you mean `routing`"), "{e:?}");
        assert!(Selection::all().add("!").is_err());
    }
}
