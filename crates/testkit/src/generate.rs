//! A deterministic generator of signed provenance events, for batch tests and benchmarks.
//!
//! Event `i` of the sequence is a function of `i` alone: signed by one of [`SIGNERS`] fixed
//! keys (signer `i % SIGNERS`, as a batch from a few operators would be), stamped
//! [`crate::CREATED_AT`]` + i`, with BIP-340 auxiliary randomness derived from `i`, over a record
//! of a short answer with a prompt commitment and full model digests. So `gen-events N` writes
//! the same bytes on every machine, and any slice of the sequence can be made in parallel.

use provenance::commitment::{FORMAT_TEXT, PromptCommitment, Salt};
use provenance::digest::{Blake3Digest, sha256};
use provenance::{Event, Keys, Model, Output, Record, SecretKey, Timestamp, event};

/// How many distinct signers the sequence cycles through.
pub const SIGNERS: u64 = 16;

/// Makes event `i` of the deterministic sequence.
pub struct EventGenerator {
    keys: Vec<Keys>,
}

impl Default for EventGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl EventGenerator {
    /// The generator with its [`SIGNERS`] fixed keys.
    pub fn new() -> Self {
        let keys = (0..SIGNERS)
            .map(|k| {
                let secret = sha256(format!("provenance-testkit gen-events signer {k}").as_bytes());
                // A SHA-256 output is a valid secret key except with probability ~2^-128;
                // these sixteen are checked by the tests.
                Keys::new(SecretKey::from_slice(secret.as_bytes()).expect("valid secret key"))
            })
            .collect();
        Self { keys }
    }

    /// The keys of the signers, in signer order.
    pub fn keys(&self) -> &[Keys] {
        &self.keys
    }

    /// Event `i` of the sequence.
    pub fn event(&self, i: u64) -> Event {
        let text = format!(
            "Answer {i}: the sky looks blue because air molecules scatter short wavelengths of sunlight more strongly than long ones."
        );
        let prompt = format!("Question {i}: why is the sky blue? Answer in one sentence.");
        let salt = Salt::from_bytes(*sha256(format!("salt {i}").as_bytes()).as_bytes());
        let mut output = Output::from_text(&text);
        output.finish_reason = Some("stop".into());
        let model = Model {
            quantization: Some("Q8_0".into()),
            sha256: Some(sha256(b"generated weights")),
            tensor_root: Some(Blake3Digest::from_bytes([0x33; 32])),
            ..Model::named("tiny-llama-q8_0.gguf")
        };
        let mut record = Record::new(output, model);
        record.prompt = Some(PromptCommitment::commit(
            FORMAT_TEXT,
            prompt.as_bytes(),
            &salt,
        ));
        let keys = &self.keys[(i % SIGNERS) as usize];
        let aux = *sha256(format!("aux {i}").as_bytes()).as_bytes();
        // The record is a valid v1 record built above, so signing cannot fail.
        event::sign_with_aux_rand(
            &record,
            keys,
            Timestamp::from_secs(crate::CREATED_AT + i),
            &aux,
        )
        .expect("a generated record signs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_events_verify_and_are_reproducible() {
        let generator = EventGenerator::new();
        for i in [0, 1, SIGNERS, 12_345] {
            let ev = generator.event(i);
            assert!(event::verify(&ev).holds(), "event {i}");
            assert_eq!(ev.as_json(), EventGenerator::new().event(i).as_json());
        }
        assert_ne!(generator.event(0).pubkey, generator.event(1).pubkey);
        assert_eq!(generator.event(0).pubkey, generator.event(SIGNERS).pubkey);
    }
}
