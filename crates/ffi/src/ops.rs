//! The operations behind the C functions, in safe Rust: the C layer only converts pointers.

use std::ffi::c_int;

use provenance::clock::SystemClock;
use provenance::commitment::{FORMAT_TEXT, PromptCommitment, Salt};
use provenance::event::{self, Limits};
use provenance::record::Output;
use provenance::template::{Template, TemplateError};
use provenance::{Keys, SecretKey};
use provenance_verify::Verdict;

use crate::{
    MAX_EVENT_JSON_BYTES, PROVENANCE_ERR_RECORD, PROVENANCE_ERR_SIGN, PROVENANCE_VERIFY_ERROR,
};

/// An error code with its one-line message.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: c_int,
    pub(crate) message: String,
}

impl Error {
    pub(crate) fn new(code: c_int, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Parses a secret key. The input is never repeated in the error: it may be a real key with a
/// typo.
pub(crate) fn keys(secret: &str) -> Result<Keys, String> {
    SecretKey::parse(secret.trim())
        .map(Keys::new)
        .map_err(|_| "secret key is not an nsec1 or a 64-hex secret key".to_owned())
}

/// A signed event and, when a prompt was committed to, the salt (hex).
pub(crate) struct Signed {
    pub(crate) event_json: String,
    pub(crate) salt_hex: Option<String>,
}

/// Builds the record from a template (a JSON object without `output`), the output bytes and
/// an optional prompt, and signs it: what `provenance sign` does with `--record`.
pub(crate) fn sign(
    keys: &Keys,
    template: &str,
    output: &[u8],
    mime: &str,
    prompt: Option<&[u8]>,
    fingerprints: bool,
) -> Result<Signed, Error> {
    let record_err =
        |e: TemplateError| Error::new(PROVENANCE_ERR_RECORD, format!("record template {e}"));
    let template = Template::parse(template.as_bytes()).map_err(record_err)?;
    let salt = prompt.map(|prompt| (Salt::random(), prompt));
    let commitment = salt
        .as_ref()
        .map(|(salt, prompt)| PromptCommitment::commit(FORMAT_TEXT, prompt, salt));
    let mut described = Output::from_bytes(output, mime);
    // Fingerprints of a text output, as for its normalised hash.
    if fingerprints
        && described.normalized.is_some()
        && let Ok(text) = std::str::from_utf8(output)
    {
        described = described.with_fingerprints(text);
    }
    let record = template
        .fill(&described, commitment.as_ref())
        .map_err(record_err)?;
    let salt = salt.map(|(salt, _)| salt);
    let signed = event::sign(&record, keys, &SystemClock)
        .map_err(|e| Error::new(PROVENANCE_ERR_SIGN, e.to_string()))?;
    Ok(Signed {
        event_json: signed.as_json(),
        salt_hex: salt.as_ref().map(Salt::to_string),
    })
}

/// Parses and verifies event JSON; returns whether it holds and the verdict JSON.
pub(crate) fn verify(event_json: &str) -> Result<(bool, String), Error> {
    let limits = Limits {
        max_event_bytes: MAX_EVENT_JSON_BYTES,
        ..Limits::default()
    };
    let parsed = event::parse_event(event_json, &limits)
        .map_err(|e| Error::new(PROVENANCE_VERIFY_ERROR, e.to_string()))?;
    let verification = event::verify(&parsed);
    // The verdict every reporting path serialises (`provenance verify --json` adds the input).
    let verdict = Verdict::new(&parsed, &verification);
    let json = serde_json::to_string(&verdict)
        .map_err(|e| Error::new(PROVENANCE_VERIFY_ERROR, e.to_string()))?;
    Ok((verdict.holds, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000003";

    #[test]
    fn signs_a_template_and_the_event_verifies_with_its_evidence() {
        let keys = keys(KEY).unwrap();
        let signed = sign(
            &keys,
            r#"{"model":{"name":"gemma3:270m"},"sampling":{"seed":42}}"#,
            b"The sky is blue.",
            provenance::record::TEXT_PLAIN_UTF8,
            Some(b"hi"),
            true,
        )
        .unwrap();
        let event = event::parse_event(&signed.event_json, &Limits::default()).unwrap();
        let verification = event::verify(&event);
        let verified = verification.verified().unwrap();
        assert_eq!(verified.author(), keys.public_key());
        assert_eq!(verified.record().sampling.as_ref().unwrap().seed, Some(42));
        let salt: Salt = signed.salt_hex.unwrap().parse().unwrap();
        assert!(
            verified
                .record()
                .prompt
                .as_ref()
                .unwrap()
                .check(b"hi", &salt)
        );
        assert_eq!(
            verified.check_output(b"The sky is blue.").status,
            provenance::verdict::Status::Proven
        );
        // Fingerprints by default, none when turned off (five words make one).
        let text = b"one two three four five six seven eight nine ten";
        let with = |on| {
            let signed = sign(
                &keys,
                r#"{"model":{"name":"m"}}"#,
                text,
                "text/plain",
                None,
                on,
            )
            .unwrap();
            let event = event::parse_event(&signed.event_json, &Limits::default()).unwrap();
            let verification = event::verify(&event);
            verification
                .verified()
                .unwrap()
                .record()
                .output
                .fingerprints
                .is_some()
        };
        assert!(with(true));
        assert!(!with(false));
        let (holds, json) = verify(&signed.event_json).unwrap();
        assert!(holds, "{json}");
        // The shared verdict, without an input: the fields `provenance verify --json` writes.
        let shared = serde_json::to_string(&Verdict::new(&event, &verification)).unwrap();
        assert_eq!(json, shared);
        assert!(json.starts_with(r#"{"id":""#), "{json}");
    }

    #[test]
    fn template_errors_are_record_errors() {
        let keys = keys(KEY).unwrap();
        for template in [
            "[]",
            "not json",
            r#"{"model":{"name":"m"},"output":{}}"#,
            r#"{"model":{"name":"m"},"v":2}"#,
            r#"{"model":{}}"#,
            r#"{"model":{"name":"m"},"colour":"blue"}"#,
        ] {
            let err = sign(&keys, template, b"x", "text/plain", None, true)
                .err()
                .unwrap_or_else(|| panic!("{template} signed"));
            assert_eq!(
                err.code, PROVENANCE_ERR_RECORD,
                "{template}: {}",
                err.message
            );
        }
    }

    #[test]
    fn integers_outside_i_json_are_sign_errors() {
        let keys = keys(KEY).unwrap();
        let template = r#"{"model":{"name":"m","bytes":9007199254740993}}"#;
        let err = sign(&keys, template, b"x", "text/plain", None, true)
            .err()
            .unwrap();
        assert_eq!(err.code, PROVENANCE_ERR_SIGN, "{}", err.message);
    }

    #[test]
    fn bad_keys_are_not_echoed() {
        let err = keys("nsec1notarealkeybutasecretanyway").unwrap_err();
        assert!(!err.contains("secretanyway"), "{err}");
        assert!(keys(KEY).is_ok());
    }
}
