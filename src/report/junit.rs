//! JUnit XML: one testcase per check, `<failure>` for a failed check and `<error>` for
//! a harness error, as GitLab's unit test report reads it. Each case carries its
//! `time` (the check's requests, end to end), the scenario as its `file`, and a skip's
//! reason as text as well as `message`; the file keeps to the JUnit 4 schema of
//! Jenkins' xUnit plugin, which GitLab's parser also accepts
//! (`tests/fixtures/junit/junit-4.xsd`).

use std::fmt::Write;

use super::{CheckResult, RunReport, Status};

/// Renders the report as JUnit XML.
pub fn render(r: &RunReport) -> String {
    let s = &r.summary;
    let secs = r.duration_ms / 1000.0;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // The schema has no `skipped` on <testsuites>; each <testsuite> has it.
    let _ = writeln!(
        out,
        "<testsuites name=\"gateprobe\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{secs:.3}\">",
        s.total, s.failed, s.errors
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{secs:.3}\" timestamp=\"{}\">",
        esc(&r.scenario.name),
        s.total,
        s.failed,
        s.errors,
        s.skipped,
        esc(&r.started_at)
    );
    if !r.diagnosis.is_empty() {
        out.push_str("    <properties>\n");
        for p in &r.diagnosis {
            let _ = writeln!(
                out,
                "      <property name=\"problem\" value=\"{} ({} checks: {})\"/>",
                esc(&p.sentence),
                p.checks.len(),
                esc(&p.checks.join(", "))
            );
        }
        out.push_str("    </properties>\n");
    }
    for c in &r.checks {
        let problem = r.diagnosis.iter().find(|p| p.checks.contains(&c.id));
        testcase(&mut out, c, &r.scenario.path, problem.map(|p| p.sentence.as_str()));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Seconds a check took: its requests, each from send to the end of the reply (a
/// request judged by several checks counts for each). Checks judged from the scenario
/// alone, and requests without a reply, add nothing.
pub fn check_seconds(c: &CheckResult) -> f64 {
    c.evidence
        .iter()
        .filter_map(|e| e.response.as_ref())
        .map(|r| r.elapsed_ms)
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .sum::<f64>()
        / 1000.0
}

fn testcase(out: &mut String, c: &CheckResult, file: &str, problem: Option<&str>) {
    let _ = write!(
        out,
        "    <testcase classname=\"gateprobe.{}\" file=\"{}\" time=\"{:.3}\" name=\"{}\"",
        esc(&c.family),
        esc(file),
        check_seconds(c),
        esc(&c.id)
    );
    let detail = || {
        let mut d = match problem {
            Some(p) => format!("problem: {p}\n"),
            None => String::new(),
        };
        let _ = write!(d, "rule: {}\nexpected: {}\nactual: {}\n", c.rule, c.expected, c.actual);
        for e in &c.evidence {
            let _ = write!(
                d,
                "request {} {} (feature {}, model {})",
                e.correlation_id, e.request.path, e.request.feature, e.request.model
            );
            if let Some(resp) = &e.response {
                let _ = write!(d, " -> {}", resp.status);
            }
            if let Some(t) = &e.transport_error {
                let _ = write!(d, " -> {t}");
            }
            d.push('\n');
            for h in &e.backend {
                let _ = writeln!(
                    d,
                    "  backend {} got {} {} model={}",
                    h.backend,
                    h.method,
                    h.path,
                    h.model.as_deref().unwrap_or("-")
                );
            }
        }
        d
    };
    match c.status {
        Status::Passed => out.push_str("/>\n"),
        Status::Failed => {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                esc(&c.actual),
                esc(&c.family),
                esc(&detail())
            );
        }
        Status::Error => {
            let _ = writeln!(
                out,
                ">\n      <error message=\"{}\" type=\"harness\">{}</error>\n    </testcase>",
                esc(&c.actual),
                esc(&detail())
            );
        }
        // The reason as text too: GitLab shows an element's text, not its attributes.
        Status::Skipped => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\">{}</skipped>\n    </testcase>",
                esc(&c.actual),
                esc(&c.actual)
            );
        }
        // A tolerated break passes the gate; its warning goes to the case's output,
        // which GitLab shows with the test.
        Status::Warning => {
            let _ = writeln!(
                out,
                ">\n      <system-out>WARNING: {}\n{}</system-out>\n    </testcase>",
                esc(&c.actual),
                esc(&detail())
            );
        }
    }
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' | '\t' | '\r' => o.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(esc("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{FFFD}");
    }
}
