//! Setup mistakes, found before the checks run and reported once (the run is aborted,
//! exit 3) instead of failing every check as if the gateway had broken a rule: a
//! built-in fault asked of a gateway it cannot break, a Bedrock backend an external
//! gateway cannot find, a gateway nothing listens at, a client token it refuses.

use std::time::Duration;

use super::RunOptions;
use crate::adapter::Reply;
use crate::identifier::Provider;
use crate::plan::{ClientAuth, Plan};
use crate::scenario::{GatewayKind, Scenario};

/// The gateway under test is one gateprobe does not start itself (a URL).
fn external(s: &Scenario, opts: &RunOptions) -> Option<String> {
    opts.gateway_url.clone().or_else(|| match s.gateway.kind {
        GatewayKind::Aigw | GatewayKind::Openai if s.gateway.launch.is_none() => s.gateway.url.clone(),
        _ => None,
    })
}

/// What is wrong with the setup before anything starts.
pub(super) fn before_start(s: &Scenario, opts: &RunOptions) -> Option<String> {
    let url = external(s, opts);
    if let (Some(f), Some(url)) = (opts.faults.first(), &url) {
        return Some(format!(
            "--builtin-fault {} breaks the built-in gateway, and this run tests the gateway at {}: drop the fault, or the URL to test the built-in gateway",
            f.name(),
            crate::redact::display_url(url)
        ));
    }
    let front = if s.gateway.kind == GatewayKind::Openai {
        crate::gateway::FaultFront::OpenaiFront
    } else {
        crate::gateway::FaultFront::AiGatewayApi
    };
    if let Some(f) = opts.faults.iter().find(|f| !f.applies_to(front)) {
        return Some(format!(
            "--builtin-fault {} breaks a rule of the {}, and this scenario tests the {}: it would change nothing",
            f.name(),
            f.front()
                .map_or("built-in gateway", crate::gateway::FaultFront::describe),
            front.describe()
        ));
    }
    None
}

/// A backend the external gateway under test cannot have been told about. Asked after
/// [`unreachable`]: a gateway that is not there is the first thing to fix.
pub(super) fn unknowable_backend(s: &Scenario, opts: &RunOptions, plan: &Plan) -> Option<String> {
    let url = external(s, opts);
    if matches!(s.gateway.kind, GatewayKind::Aigw | GatewayKind::Builtin) && url.is_some() {
        // The instance's requests carry every model's endpoint, except Bedrock's: the
        // gateway finds the runtime in its own environment, set before the run.
        let probed = |m: usize| plan.probes.iter().any(|p| p.model == m);
        let ephemeral = s.models.iter().enumerate().find_map(|(i, m)| {
            let b = &s.backends[m.backend?];
            (m.identifier.provider == Provider::Bedrock && b.port.is_none() && probed(i)).then_some(&b.name)
        });
        if let Some(name) = ephemeral {
            return Some(format!(
                "backend `{name}` (Bedrock) listens on a port chosen at run time, which the gateway at {} cannot know: give it a fixed `port:` and start the gateway with the AWS_* lines `gateprobe mock` prints",
                crate::redact::display_url(url.as_deref().unwrap_or_default())
            ));
        }
    }
    None
}

/// Whether anything listens at the gateway's address (an external gateway only: the
/// built-in one and a launched one are known to).
pub(super) async fn unreachable(s: &Scenario, opts: &RunOptions, url: &str) -> Option<String> {
    external(s, opts)?;
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    let port = parsed.port_or_known_default()?;
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    let wait = s.gateway.timeout.min(Duration::from_secs(10));
    match tokio::time::timeout(wait, connect).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!(
            "nothing answers at the gateway's address {} ({e}): start the gateway, or give its URL with --gateway-url",
            crate::redact::display_url(url)
        )),
        Err(_) => Some(format!(
            "the gateway's address {} does not accept a connection within {}s",
            crate::redact::display_url(url),
            wait.as_secs()
        )),
    }
}

/// Whether the reply to the run's first request with the scenario's credentials says
/// the gateway refuses them: then every check would fail for the same reason.
pub(super) fn token_refused(s: &Scenario, auth: ClientAuth, reply: &Reply) -> Option<String> {
    if auth != ClientAuth::Valid || !matches!(reply.status, 401 | 403) {
        return None;
    }
    // A gateway that refuses the probe the way its profile says it refuses a wrong
    // token (or with a plain 401) refused the token, not the request.
    let wrong = s.gateway.profile.get("client_auth.wrong");
    let as_wrong = wrong.is_some_and(|o| o.status == reply.status) || reply.status == 401;
    if !as_wrong {
        return None;
    }
    let said = crate::check::outcome::error_message(reply)
        .map(|m| format!(": {}", crate::text::trunc(&m, 120)))
        .unwrap_or_default();
    Some(match &s.gateway.token {
        Some(_) => format!(
            "the gateway refuses the scenario's client token ({}{said}): give gateway.auth.token a token it accepts",
            reply.status
        ),
        None => format!(
            "the gateway requires a client token and the scenario gives none ({}{said}): set gateway.auth.token",
            reply.status
        ),
    })
}
