//! NIP-90 job results (kinds 6000-6999) that name the provenance event of their content.
//!
//! A provider that signs its answers publishes, with a job's result, the tags of its
//! provenance event: `x` (the SHA-256 of the output), `model`, and a `q` tag naming the event
//! (`["q", <id>, <relay>, <author>]`). [`read_result`] checks what the result itself can say:
//! its id and signature, that it names a provenance event, and, when its content is in the
//! clear, that `x` is the SHA-256 of that content. The verifier then checks the provenance
//! event, fetched by id and required to be by the result's author, with the content as the
//! output evidence: the record must commit to exactly the text the customer received.
//!
//! An encrypted result (an `encrypted` tag) cannot be matched without the customer's key: the
//! customer decrypts it and gives the text as `--output`.

use provenance::{Event, EventId, PublicKey};
use sha2::{Digest, Sha256};

/// A job result read and checked.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The result event.
    pub event: Event,
    /// The provenance event it names.
    pub provenance: EventId,
    /// The relay hint of its `q` tag, if any.
    pub relay: Option<String>,
    /// The output the provenance event must sign: the content, unless it is encrypted.
    pub output: Option<Vec<u8>>,
    /// The job request it answers (`e` tag), if named.
    pub job: Option<EventId>,
    /// The customer (`p` tag), if named.
    pub customer: Option<PublicKey>,
}

/// Why a job result cannot be checked against its provenance event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobResultError {
    /// Not JSON of an event.
    #[error("not a Nostr event: {0}")]
    Parse(String),
    /// Not a job result kind.
    #[error("kind {0} is not a NIP-90 job result (6000-6999)")]
    NotResult(u16),
    /// The id or signature does not verify.
    #[error("the job result's id or signature does not verify")]
    BadEvent,
    /// No `q` tag with an event id.
    #[error("the job result names no provenance event (no [\"q\", <event id>] tag)")]
    NoReference,
    /// An `x` tag that is not the SHA-256 of the content.
    #[error("the job result's x tag {tagged} is not the SHA-256 of its content ({actual})")]
    HashMismatch {
        /// The tag's value.
        tagged: String,
        /// The content's SHA-256.
        actual: String,
    },
    /// No `x` tag on a result in the clear.
    #[error("the job result has no x tag (the SHA-256 of its content)")]
    NoHash,
}

/// Whether `kind` is a NIP-90 job result.
pub fn is_result_kind(kind: u16) -> bool {
    (6000..=6999).contains(&kind)
}

/// Reads a job result from its JSON; see the module.
pub fn read_result(json: &str) -> Result<JobResult, JobResultError> {
    let event = Event::from_json(json).map_err(|e| JobResultError::Parse(e.to_string()))?;
    let kind = event.kind.as_u16();
    if !is_result_kind(kind) {
        return Err(JobResultError::NotResult(kind));
    }
    if event.verify().is_err() {
        return Err(JobResultError::BadEvent);
    }
    let tags: Vec<&[String]> = event.tags.iter().map(|t| t.as_slice()).collect();
    let find = |name: &str| {
        tags.iter()
            .copied()
            .find(|t| t.first().is_some_and(|n| n == name))
    };
    let (provenance, relay) = find("q")
        .and_then(|t| {
            let id = EventId::from_hex(t.get(1)?).ok()?;
            Some((id, t.get(2).filter(|r| !r.is_empty()).cloned()))
        })
        .ok_or(JobResultError::NoReference)?;
    let encrypted = find("encrypted").is_some();
    let output = if encrypted {
        None
    } else {
        let actual: String = Sha256::digest(event.content.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tagged = find("x")
            .and_then(|t| t.get(1))
            .ok_or(JobResultError::NoHash)?;
        if !tagged.eq_ignore_ascii_case(&actual) {
            return Err(JobResultError::HashMismatch {
                tagged: tagged.clone(),
                actual,
            });
        }
        Some(event.content.as_bytes().to_vec())
    };
    let job = find("e").and_then(|t| EventId::from_hex(t.get(1)?).ok());
    let customer = find("p").and_then(|t| PublicKey::from_hex(t.get(1)?).ok());
    Ok(JobResult {
        provenance,
        relay,
        output,
        job,
        customer,
        event,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use provenance::nostr::prelude::{Kind, SignEvent, Tag, UnsignedEvent};
    use provenance::{Keys, Timestamp};

    use super::*;

    fn result(keys: &Keys, tags: &[&[&str]], content: &str, kind: u16) -> String {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|t| Tag::parse(t.iter().copied()).unwrap())
            .collect();
        let unsigned = UnsignedEvent::new(
            keys.public_key(),
            Timestamp::from_secs(1_800_000_000),
            Kind::from_u16(kind),
            tags,
            content,
        );
        keys.sign_event(unsigned).unwrap().as_json()
    }

    const X_OF_HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_result_in_the_clear_names_its_event_and_hash() {
        let keys = Keys::generate();
        let id = "aa".repeat(32);
        let json = result(
            &keys,
            &[
                &["x", X_OF_HELLO],
                &["q", &id, "ws://box"],
                &["e", &"bb".repeat(32)],
            ],
            "hello",
            6050,
        );
        let read = read_result(&json).unwrap();
        assert_eq!(read.provenance.to_hex(), id);
        assert_eq!(read.relay.as_deref(), Some("ws://box"));
        assert_eq!(read.output.as_deref(), Some(&b"hello"[..]));
        assert_eq!(read.job.unwrap().to_hex(), "bb".repeat(32));
    }

    #[test]
    fn bad_results_are_refused_in_one_line() {
        let keys = Keys::generate();
        let id = "aa".repeat(32);
        let cases = [
            (
                result(&keys, &[&["x", X_OF_HELLO]], "hello", 6050),
                "names no provenance event",
            ),
            (result(&keys, &[&["q", &id]], "hello", 6050), "has no x tag"),
            (
                result(
                    &keys,
                    &[&["q", &id], &["x", &"00".repeat(32)]],
                    "hello",
                    6050,
                ),
                "is not the SHA-256 of its content",
            ),
            (result(&keys, &[&["q", &id]], "hello", 1), "kind 1 is not"),
            ("{".to_owned(), "not a Nostr event"),
        ];
        for (json, expected) in cases {
            let err = read_result(&json).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} / {expected}");
            assert!(!err.contains('\n'));
        }
        let mut forged: serde_json::Value = serde_json::from_str(&result(
            &keys,
            &[&["q", &id], &["x", X_OF_HELLO]],
            "hello",
            6050,
        ))
        .unwrap();
        forged["content"] = "HELLO".into();
        assert!(matches!(
            read_result(&forged.to_string()),
            Err(JobResultError::BadEvent)
        ));
        // Encrypted: the content is not the output; the customer supplies it.
        let read = read_result(&result(
            &keys,
            &[&["q", &id], &["encrypted"]],
            "c2VjcmV0",
            6050,
        ))
        .unwrap();
        assert_eq!(read.output, None);
    }
}
