//! Matching a reply against the outcome a gateway profile predicts.

use crate::adapter::Reply;
use crate::scenario::profile::{ContentRule, Outcome};

/// The error message of a reply: an OpenAI-style `error.message`, an AI-gateway
/// `error` string, FastAPI's `detail`, or the adapter's summary.
pub fn error_message(reply: &Reply) -> Option<String> {
    crate::wire::openai::error_message(&reply.body).or_else(|| reply.error.clone())
}

/// How a reply is held to a profile's outcome.
pub trait Matches {
    /// Matches a reply: `Ok(actual)` when it is the predicted outcome, `Err(actual)`
    /// otherwise.
    fn matches(&self, r: &Reply) -> Result<String, String>;
}

impl Matches for Outcome {
    /// The outcome or, failing it, any of its alternatives (`or`); a reply that
    /// matches none is described as held to the first.
    fn matches(&self, r: &Reply) -> Result<String, String> {
        matching(self, r).map(|(_, actual)| actual)
    }
}

/// Which of `o` and its alternatives the reply is, and how it looked.
pub fn matching<'a>(o: &'a Outcome, r: &Reply) -> Result<(&'a Outcome, String), String> {
    let first = one(o, r);
    if let Ok(actual) = first {
        return Ok((o, actual));
    }
    for alt in &o.or {
        if let Ok(actual) = one(alt, r) {
            return Ok((alt, actual));
        }
    }
    first.map(|actual| (o, actual))
}

/// One outcome, without its alternatives.
fn one(o: &Outcome, r: &Reply) -> Result<String, String> {
    let end = if r.aborted.is_some() {
        "; the body then broke off"
    } else {
        ""
    };
    head(o, r)
        .map(|ok| format!("{ok}{end}"))
        .map_err(|bad| format!("{bad}{end}"))
        .and_then(|ok| match (o.aborted, &r.aborted) {
            (Some(true), None) => Err(format!("{ok}; the body ended properly")),
            (Some(false), Some(_)) => Err(ok),
            _ => Ok(ok),
        })
}

/// The status, error and content part of [`Matches::matches`].
fn head(o: &Outcome, r: &Reply) -> Result<String, String> {
    let msg = error_message(r);
    let short = |m: &Option<String>| {
        m.as_deref()
            .map(|m| format!(" {:?}", crate::text::trunc(m, 120)))
            .unwrap_or_default()
    };
    if r.status != o.status {
        return Err(format!("{}{}", r.status, short(&msg.or_else(|| r.error.clone()))));
    }
    match o.content {
        Some(rule) => {
            if let Some(e) = &r.error {
                return Err(format!("{} with an error: {}", r.status, crate::text::trunc(e, 120)));
            }
            let empty = r.content.is_empty();
            if empty != (rule == ContentRule::Empty) {
                return Err(format!(
                    "{} with {} content",
                    r.status,
                    if empty { "empty" } else { "some" }
                ));
            }
            return Ok(format!(
                "{} with {} content and no error",
                r.status,
                if empty { "empty" } else { "some" }
            ));
        }
        None => {
            // A body that breaks off is an error the client sees, even without a
            // word in it (a streamed reply whose gateway gave up mid-way).
            if r.error.is_none() && r.aborted.is_none() {
                let c = if r.content.is_empty() { "empty" } else { "some" };
                return Err(format!("{} with {c} content and no error", r.status));
            }
        }
    }
    if o.in_band && r.events.as_ref().is_none_or(|e| e.errors.is_empty()) {
        return Err(format!(
            "{} without an in-band error event{}",
            r.status,
            short(&r.error)
        ));
    }
    let text = if o.in_band {
        r.events.as_ref().and_then(|e| e.errors.first().cloned())
    } else {
        msg.clone()
    };
    if let Some(want) = &o.message
        && text.as_deref() != Some(want.as_str())
    {
        return Err(format!("{}{}", r.status, short(&text)));
    }
    if let Some(want) = &o.message_contains
        && !text.as_deref().unwrap_or(&r.body).contains(want.as_str())
        && !r.body.contains(want.as_str())
    {
        return Err(format!("{}{}", r.status, short(&text)));
    }
    Ok(format!("{}{}", r.status, short(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, in_band: bool, contains: &str) -> Outcome {
        Outcome {
            status,
            in_band,
            message: None,
            message_contains: Some(contains.into()),
            content: None,
            aborted: None,
            observed: None,
            weakness: None,
            or: Vec::new(),
        }
    }

    /// LiteLLM answering a stream whose upstream was cut before its first chunk had
    /// been read: a 500, where a later cut is an in-band error event.
    fn early_cut() -> Reply {
        Reply {
            status: 500,
            body: r#"{"error": {"message": "litellm.APIConnectionError: Response payload is not completed"}}"#.into(),
            error: Some("500".into()),
            ..Reply::default()
        }
    }

    #[test]
    fn a_reply_may_match_an_alternative_outcome() {
        let mut o = outcome(200, true, "APIConnectionError");
        assert_eq!(
            o.matches(&early_cut()),
            Err(r#"500 "litellm.APIConnectionError: Response payload is not completed""#.into())
        );
        let mut alt = outcome(500, false, "Response payload is not completed");
        alt.weakness = Some("w".into());
        o.or.push(alt);
        let (which, actual) = matching(&o, &early_cut()).expect("the alternative");
        assert_eq!((which.status, which.weakness.as_deref()), (500, Some("w")));
        assert!(actual.starts_with("500"), "{actual}");
        // A reply that is neither is described as held to the first.
        let other = Reply {
            status: 502,
            error: Some("bad gateway".into()),
            ..Reply::default()
        };
        assert_eq!(o.matches(&other), Err(r#"502 "bad gateway""#.into()));
    }
}
