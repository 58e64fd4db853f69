//! The one rule for names whose values are credentials: environment variables
//! (`OPENAI_API_KEY`, `DB_PASS`, `HF_PAT`), headers (`X-Api-Key`, `Authorization`) and
//! command-line flags (`--master-key`, `--password=`).

/// Words that name a credential wherever they stand in a name (`MASTERKEY`,
/// `AWS_SECRET_ACCESS_KEY`, `PRIVATE-TOKEN`).
const CONTAINED: &[&str] = &[
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "AUTHORIZATION",
    "COOKIE",
];

/// Short words that name a credential only as a word of their own (`DB_PASS`,
/// `HF_PAT`, `AUTH_HEADER`), never inside another (`PASSTHROUGH`, `PATH`, `AUTHOR`).
const WORDS: &[&str] = &[
    "PASS",
    "PAT",
    "PWD",
    "AUTH",
    "CRED",
    "CREDS",
    "SIG",
    "JWT",
    "BEARER",
    "SESSION",
    "SESSIONID",
    "APIKEY",
];

/// Names that contain such a word but hold no credential.
const NOT_SECRET: &[&str] = &["PWD", "OLDPWD"];

/// Whether a variable, header or flag of this name holds a credential. Words are
/// split at `_`, `-`, `.` and lower-to-upper case changes (`apiKey`).
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.trim_start_matches('-').to_ascii_uppercase();
    if NOT_SECRET.contains(&upper.as_str()) {
        return false;
    }
    if CONTAINED.iter().any(|w| upper.contains(w)) {
        return true;
    }
    words(name.trim_start_matches('-'))
        .iter()
        .any(|w| WORDS.contains(&w.as_str()))
}

/// The words of a name, upper case.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_uppercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_secret_name;

    #[test]
    fn credential_names() {
        for n in [
            "OPENAI_API_KEY",
            "DB_PASS",
            "AUTH_HEADER",
            "CREDENTIALS",
            "HF_PAT",
            "AWS_SECRET_ACCESS_KEY",
            "LITELLM_MASTER_KEY",
            "X-Api-Key",
            "Private-Token",
            "Authorization",
            "--master-key",
            "--password",
            "apiKey",
            "SESSION_ID",
            "MY_JWT",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PATH",
            "PWD",
            "HOME",
            "PASSTHROUGH",
            "AUTHOR",
            "--port",
            "--host",
            "LITELLM_LOCAL_MODEL_COST_MAP",
            "AWS_REGION_NAME",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
