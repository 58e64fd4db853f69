//! Validation of a backend's cloud and network realism: the Bedrock models served only
//! through inference profiles (`profile_only`), the Azure `api_versions` a resource
//! serves, and how a mock serves TLS (`tls`).

use super::error::ScenarioError;
use super::raw::{BackendSpec, Located};
use super::validate::Ctx;
use super::{BackendProvider, CertDefect, MockTls};
use crate::wire::{azure, bedrock};

/// The list entry that stands for the built-in list.
const DEFAULT: &str = "default";

/// A setting that belongs to one provider only: refused elsewhere.
fn only_for(
    cx: &Ctx<'_>,
    field: &str,
    provider: BackendProvider,
    want: BackendProvider,
    value: Option<&Located<impl Sized>>,
    name: &str,
) -> Result<bool, ScenarioError> {
    let Some(v) = value else { return Ok(false) };
    if provider == want {
        return Ok(true);
    }
    let want = match want {
        BackendProvider::Azure => "azure",
        BackendProvider::Bedrock => "bedrock",
        BackendProvider::Openai => "openai",
    };
    Err(cx
        .err(
            v.pos,
            format!("{field}.{name}"),
            format!("`{name}` belongs to `{want}` backends"),
        )
        .hint(format!("remove it, or set `provider: {want}`")))
}

/// The entries of a list setting, `default` replaced by `defaults`; `check` vets the
/// others.
fn list(
    cx: &mut Ctx<'_>,
    field: &str,
    items: &[Located<String>],
    defaults: &[&str],
    mut check: impl FnMut(&Ctx<'_>, &Located<String>, &str, &str) -> Result<(), ScenarioError>,
) -> Result<Vec<String>, ScenarioError> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let value = cx.string(item, &at, None)?;
        if value == DEFAULT {
            out.extend(defaults.iter().map(|d| (*d).to_owned()));
            continue;
        }
        check(cx, item, &at, &value)?;
        out.push(value);
    }
    out.dedup();
    Ok(out)
}

/// `profile_only` of a Bedrock backend (default: [`bedrock::PROFILE_ONLY`]).
pub(super) fn profile_only(
    cx: &mut Ctx<'_>,
    field: &str,
    provider: BackendProvider,
    b: &BackendSpec,
) -> Result<Vec<String>, ScenarioError> {
    let defaults = bedrock::PROFILE_ONLY.map(str::to_owned).to_vec();
    if !only_for(
        cx,
        field,
        provider,
        BackendProvider::Bedrock,
        b.profile_only.as_ref(),
        "profile_only",
    )? {
        return Ok(if provider == BackendProvider::Bedrock {
            defaults
        } else {
            Vec::new()
        });
    }
    let Some(items) = &b.profile_only else {
        return Ok(defaults);
    };
    let field = format!("{field}.profile_only");
    list(
        cx,
        &field,
        &items.value,
        &bedrock::PROFILE_ONLY,
        |cx, item, at, value| {
            if value.is_empty() || value == "*" {
                return Err(cx
                .err(item.pos, at, "an empty model id or a bare `*` is not a model")
                .hint("name a foundation model id such as `anthropic.claude-3-5-sonnet-20241022-v2:0`, or a prefix such as `anthropic.claude-3-7-*`"));
            }
            if !bedrock::is_bare(value) {
                return Err(cx
                    .err(item.pos, at, format!("`{value}` is an inference profile, not a model"))
                    .hint(format!(
                        "list the foundation model the profile contains: `{}`",
                        bedrock::base_model(value)
                    )));
            }
            Ok(())
        },
    )
}

/// `api_versions` of an Azure backend (default: [`azure::API_VERSIONS`]).
pub(super) fn api_versions(
    cx: &mut Ctx<'_>,
    field: &str,
    provider: BackendProvider,
    b: &BackendSpec,
) -> Result<Vec<String>, ScenarioError> {
    let defaults = azure::API_VERSIONS.map(str::to_owned).to_vec();
    if !only_for(
        cx,
        field,
        provider,
        BackendProvider::Azure,
        b.api_versions.as_ref(),
        "api_versions",
    )? {
        return Ok(if provider == BackendProvider::Azure {
            defaults
        } else {
            Vec::new()
        });
    }
    let Some(items) = &b.api_versions else {
        return Ok(defaults);
    };
    let field = format!("{field}.api_versions");
    let out = list(cx, &field, &items.value, &azure::API_VERSIONS, |cx, item, at, value| {
        if azure::is_version_shaped(value) {
            return Ok(());
        }
        Err(cx
            .err(item.pos, at, format!("`{value}` is not an api-version"))
            .hint("write `YYYY-MM-DD` or `YYYY-MM-DD-preview` (e.g. `2024-10-21`), or `default` for the versions Azure serves"))
    })?;
    if out.is_empty() {
        return Err(cx
            .err(items.pos, field, "an Azure resource serves at least one api-version")
            .hint("list the versions it serves, e.g. `api_versions: [2024-10-21]`, or leave the setting out"));
    }
    Ok(out)
}

/// `tls` of a backend.
pub(super) fn tls(cx: &Ctx<'_>, field: &str, b: &BackendSpec) -> Result<Option<MockTls>, ScenarioError> {
    let Some(t) = &b.tls else { return Ok(None) };
    let field = format!("{field}.tls");
    let mode = cx.one_of(
        &t.value.mode,
        &format!("{field}.mode"),
        "TLS mode",
        &["ca", "mtls", "bad_cert"],
    )?;
    let defect = match &t.value.defect {
        None => CertDefect::WrongHost,
        Some(d) if mode != "bad_cert" => {
            return Err(cx
                .err(d.pos, format!("{field}.defect"), "`defect` goes with `mode: bad_cert`")
                .hint("remove it, or set `mode: bad_cert`"));
        }
        Some(d) => match cx.one_of(d, &format!("{field}.defect"), "certificate defect", &CertDefect::NAMES)? {
            "self_signed" => CertDefect::SelfSigned,
            "expired" => CertDefect::Expired,
            _ => CertDefect::WrongHost,
        },
    };
    Ok(Some(match mode {
        "ca" => MockTls::Ca,
        "mtls" => MockTls::Mtls,
        _ => MockTls::BadCert(defect),
    }))
}
