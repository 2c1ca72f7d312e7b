//! NIP-90 text-generation jobs: reading a kind 5050 request, and the kind 7000 feedback and
//! kind 6050 result events that answer it.
//!
//! A request is read strictly ([`read`]): it must `p`-tag the provider (requests to others, or
//! to nobody, are left to other providers), carry exactly the inputs and parameters this
//! provider understands, and nothing it would have to guess about. Encrypted parameters (an
//! `encrypted` tag, the `i` and `param` tags as a JSON array in the content) are opened with
//! NIP-04, as NIP-90 specifies, or NIP-44 v2, which newer clients use; the result is then
//! encrypted back with the same scheme and carries no `i` tag.
//!
//! | tag of the request | accepted |
//! |---|---|
//! | `["i", <text>, "text"]` | one or more; joined with a blank line, at most [`MAX_PROMPT_BYTES`] |
//! | `["i", _, "url" \| "event" \| "job"]` | refused: only text inputs are read (nothing is fetched on a stranger's behalf) |
//! | `["param", "max_tokens" \| "temperature" \| "top_p" \| "top_k" \| "frequency_penalty" \| "presence_penalty" \| "seed", <number>]` | within the ranges of [`Params`] |
//! | `["param", "model", <name>]` | must name the model this provider serves |
//! | any other `param` | refused, naming it |
//! | `["output", <mime>]` | `text/plain` or absent |
//! | `["relays", ...]`, `["bid", ...]`, `["t", ...]`, `["p", ...]`, `["encrypted"]` | read or ignored as NIP-90 says |
//!
//! The result is a kind 6050 event by the provider with the answer in its content and the
//! provenance tags: `x` (the SHA-256 of the answer, as in the provenance event), `model`
//! (copied from the provenance event) and `q` naming the provenance event (with a relay hint
//! and its author), besides NIP-90's `request`, `e`, `p` and `i`. `provenance verify` checks a
//! result against its provenance event.

use provenance::nostr::prelude::{Kind, SignEvent, Tag, UnsignedEvent};
use provenance::{Event, EventId, Keys, PublicKey, Timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The kind of a text-generation job request.
pub const REQUEST_KIND: u16 = 5050;
/// The kind of its result.
pub const RESULT_KIND: u16 = 6050;
/// The kind of job feedback.
pub const FEEDBACK_KIND: u16 = 7000;
/// The kind of a NIP-89 handler announcement.
pub const HANDLER_KIND: u16 = 31990;
/// The longest prompt read from a request, in bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;
/// How far in the future a request may be dated.
pub const MAX_FUTURE_SECS: u64 = 600;
/// Relays of a request's `relays` tag that results are also published to, at most.
pub const MAX_REQUEST_RELAYS: usize = 4;

/// How the request's parameters were encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// NIP-04 (AES-256-CBC), as NIP-90 specifies.
    Nip04,
    /// NIP-44 version 2.
    Nip44,
}

/// Sampling parameters of a request, as OpenAI chat completion fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// `max_tokens`: 1 to 1,000,000 (capped by the provider's own limit).
    pub max_tokens: Option<u32>,
    /// The other fields, checked: `temperature` 0 to 2, `top_p` 0 to 1, `top_k` 0 to 1,000,
    /// `frequency_penalty` and `presence_penalty` -2 to 2, `seed` a non-negative integer.
    pub sampling: Map<String, Value>,
}

/// A request read and checked.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request event.
    pub event: Event,
    /// The customer.
    pub customer: PublicKey,
    /// The prompt: the text inputs, joined.
    pub prompt: String,
    /// Its parameters.
    pub params: Params,
    /// The scheme the parameters were encrypted with, if they were.
    pub encrypted: Option<Scheme>,
    /// The `i` tags (in the clear only: never copied from encrypted parameters).
    pub inputs: Vec<Vec<String>>,
    /// The relays the customer asked results to go to (`ws://`/`wss://`, at most
    /// [`MAX_REQUEST_RELAYS`]).
    pub relays: Vec<String>,
}

/// Why a request is not answered with a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Not for this provider: no `p` tag naming it. Nothing is sent.
    #[error("not addressed to this provider")]
    NotForUs,
    /// Not a kind 5050 event.
    #[error("kind {0} is not a text-generation request (5050)")]
    NotRequest(u16),
    /// The id or signature does not verify. Nothing is sent: the customer is unknown.
    #[error("bad id or signature")]
    BadEvent,
    /// Dated more than [`MAX_FUTURE_SECS`] ahead. Nothing is sent.
    #[error("dated {0} s in the future")]
    FromTheFuture(u64),
    /// A request the provider reads but will not do; answered with `error` feedback.
    #[error("{0}")]
    Refused(String),
}

fn refused(reason: impl Into<String>) -> JobError {
    JobError::Refused(reason.into())
}

/// Reads a request addressed to `provider` (the provider's keys open encrypted parameters),
/// checking it at `now`; `model` is the name of the model served (a `model` parameter must
/// name it).
pub fn read(
    provider: &Keys,
    event: &Event,
    model: &str,
    now: Timestamp,
) -> Result<Request, JobError> {
    if event.kind != Kind::from_u16(REQUEST_KIND) {
        return Err(JobError::NotRequest(event.kind.as_u16()));
    }
    let tags: Vec<Vec<String>> = event.tags.iter().map(|t| t.as_slice().to_vec()).collect();
    let me = provider.public_key().to_hex();
    if !tags
        .iter()
        .any(|t| t.len() >= 2 && t[0] == "p" && t[1] == me)
    {
        return Err(JobError::NotForUs);
    }
    let ahead = event.created_at.as_secs().saturating_sub(now.as_secs());
    if ahead > MAX_FUTURE_SECS {
        return Err(JobError::FromTheFuture(ahead));
    }
    if event.verify().is_err() {
        return Err(JobError::BadEvent);
    }
    let encrypted_tag = tags
        .iter()
        .any(|t| t.first().is_some_and(|n| n == "encrypted"));
    let (private, encrypted) = if encrypted_tag {
        let (text, scheme) = open(provider, &event.pubkey, &event.content)?;
        let private: Vec<Vec<String>> = serde_json::from_str(&text)
            .map_err(|_| refused("the encrypted parameters are not a JSON array of tags"))?;
        (private, Some(scheme))
    } else {
        (Vec::new(), None)
    };
    let mut texts = Vec::new();
    let mut params = Params::default();
    let mut relays = Vec::new();
    let mut inputs = Vec::new();
    let public = tags.iter().map(|t| (t, false));
    let hidden = private.iter().map(|t| (t, true));
    for (tag, secret) in public.chain(hidden) {
        let Some(name) = tag.first() else { continue };
        match name.as_str() {
            "i" => {
                let data = tag.get(1).ok_or_else(|| refused("an i tag without data"))?;
                match tag.get(2).map(String::as_str) {
                    Some("text") => texts.push(data.clone()),
                    Some(other) => {
                        return Err(refused(format!(
                            "input type {other:?} is not supported: only text inputs are read"
                        )));
                    }
                    None => return Err(refused("an i tag without an input type")),
                }
                if !secret {
                    inputs.push(tag.clone());
                }
            }
            "param" => {
                let (Some(key), Some(value)) = (tag.get(1), tag.get(2)) else {
                    return Err(refused("a param tag without a name and a value"));
                };
                param(&mut params, key, value, model)?;
            }
            "output" => match tag.get(1).map(String::as_str) {
                None | Some("text/plain") => {}
                Some(other) => {
                    return Err(refused(format!(
                        "output {other:?} is not supported: results are text/plain"
                    )));
                }
            },
            "relays" => {
                for r in &tag[1..] {
                    if (r.starts_with("ws://") || r.starts_with("wss://"))
                        && relays.len() < MAX_REQUEST_RELAYS
                        && !relays.contains(r)
                    {
                        relays.push(r.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if texts.is_empty() {
        return Err(refused("no text input (an [\"i\", <text>, \"text\"] tag)"));
    }
    let prompt = texts.join("\n\n");
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(refused(format!(
            "the input is {} bytes, over {MAX_PROMPT_BYTES}",
            prompt.len()
        )));
    }
    Ok(Request {
        customer: event.pubkey,
        event: event.clone(),
        prompt,
        params,
        encrypted,
        inputs,
        relays,
    })
}

/// One `param`, checked into `params`.
fn param(params: &mut Params, key: &str, value: &str, model: &str) -> Result<(), JobError> {
    let number = |lo: f64, hi: f64| -> Result<Value, JobError> {
        let n: f64 = value
            .trim()
            .parse()
            .map_err(|_| refused(format!("param {key} = {value:?} is not a number")))?;
        if !(lo..=hi).contains(&n) {
            return Err(refused(format!(
                "param {key} = {value} is outside {lo} to {hi}"
            )));
        }
        Ok(Value::from(n))
    };
    let integer = |lo: u64, hi: u64| -> Result<u64, JobError> {
        let n: u64 = value
            .trim()
            .parse()
            .map_err(|_| refused(format!("param {key} = {value:?} is not a whole number")))?;
        if !(lo..=hi).contains(&n) {
            return Err(refused(format!(
                "param {key} = {value} is outside {lo} to {hi}"
            )));
        }
        Ok(n)
    };
    match key {
        "max_tokens" => {
            params.max_tokens = Some(integer(1, 1_000_000)? as u32);
        }
        "temperature" | "frequency_penalty" | "presence_penalty" => {
            let (lo, hi) = if key == "temperature" {
                (0.0, 2.0)
            } else {
                (-2.0, 2.0)
            };
            params.sampling.insert(key.to_owned(), number(lo, hi)?);
        }
        "top_p" => {
            params.sampling.insert(key.to_owned(), number(0.0, 1.0)?);
        }
        "top_k" | "top-k" => {
            params
                .sampling
                .insert("top_k".to_owned(), Value::from(integer(0, 1000)?));
        }
        "seed" => {
            params.sampling.insert(
                key.to_owned(),
                Value::from(integer(0, u64::from(u32::MAX))?),
            );
        }
        "model" => {
            if value != model {
                return Err(refused(format!(
                    "this provider serves {model}, not {value}"
                )));
            }
        }
        other => return Err(refused(format!("unknown param {other:?}"))),
    }
    Ok(())
}

/// Opens encrypted parameters: NIP-04 (`<base64>?iv=<base64>`) or NIP-44 v2.
fn open(
    provider: &Keys,
    customer: &PublicKey,
    content: &str,
) -> Result<(String, Scheme), JobError> {
    if content.contains("?iv=") {
        provenance::nostr::nips::nip04::decrypt(provider.secret_key(), customer, content)
            .map(|t| (t, Scheme::Nip04))
            .map_err(|e| {
                refused(format!(
                    "the encrypted parameters do not open (NIP-04): {e}"
                ))
            })
    } else {
        let key = provenance_dm::nip44::ConversationKey::derive(provider.secret_key(), customer)
            .map_err(|e| refused(format!("the customer's key: {e}")))?;
        provenance_dm::nip44::decrypt(&key, content)
            .map(|t| (t, Scheme::Nip44))
            .map_err(|e| {
                refused(format!(
                    "the encrypted parameters do not open (NIP-44): {e}"
                ))
            })
    }
}

/// Encrypts `text` to `customer` with `scheme`.
fn seal(
    provider: &Keys,
    customer: &PublicKey,
    text: &str,
    scheme: Scheme,
) -> Result<String, String> {
    match scheme {
        Scheme::Nip04 => {
            provenance::nostr::nips::nip04::encrypt(provider.secret_key(), customer, text)
                .map_err(|e| e.to_string())
        }
        Scheme::Nip44 => {
            let key =
                provenance_dm::nip44::ConversationKey::derive(provider.secret_key(), customer)
                    .map_err(|e| e.to_string())?;
            provenance_dm::nip44::encrypt(&key, text).map_err(|e| e.to_string())
        }
    }
}

fn tag(parts: &[&str]) -> Option<Tag> {
    Tag::parse(parts.iter().copied()).ok()
}

fn sign(
    keys: &Keys,
    kind: u16,
    tags: Vec<Tag>,
    content: String,
    now: Timestamp,
) -> Result<Event, String> {
    let unsigned = UnsignedEvent::new(keys.public_key(), now, Kind::from_u16(kind), tags, content);
    keys.sign_event(unsigned).map_err(|e| e.to_string())
}

/// A kind 7000 feedback event: `status` (`processing`, `error`, `payment-required`, ...) with
/// an optional human-readable line.
pub fn feedback(
    keys: &Keys,
    request: &Event,
    relay_hint: &str,
    status: &str,
    info: Option<&str>,
    now: Timestamp,
) -> Result<Event, String> {
    feedback_with_amount(keys, request, relay_hint, status, info, None, now)
}

/// [`feedback`] with NIP-90's `amount` tag: the msat asked for and, when there is one, the
/// BOLT11 invoice that pays it (`payment-required`).
pub fn feedback_with_amount(
    keys: &Keys,
    request: &Event,
    relay_hint: &str,
    status: &str,
    info: Option<&str>,
    amount: Option<(u64, Option<&str>)>,
    now: Timestamp,
) -> Result<Event, String> {
    let id = request.id.to_hex();
    let customer = request.pubkey.to_hex();
    let mut status_tag = vec!["status", status];
    if let Some(info) = info {
        status_tag.push(info);
    }
    let msat = amount.map(|(msat, _)| msat.to_string());
    let amount_tag = match (&msat, amount.and_then(|(_, invoice)| invoice)) {
        (Some(msat), Some(invoice)) => tag(&["amount", msat, invoice]),
        (Some(msat), None) => tag(&["amount", msat]),
        _ => None,
    };
    let tags = [
        tag(&status_tag),
        amount_tag,
        tag(&["e", &id, relay_hint]),
        tag(&["p", &customer]),
    ]
    .into_iter()
    .flatten()
    .collect();
    sign(keys, FEEDBACK_KIND, tags, String::new(), now)
}

/// The kind 6050 result of `request`: `output` (encrypted to the customer when the request
/// was), the provenance event's `x` and `model` tags, and a `q` tag naming it.
pub fn result(
    keys: &Keys,
    request: &Request,
    relay_hint: &str,
    output: &str,
    provenance_event: &Event,
    now: Timestamp,
) -> Result<Event, String> {
    let request_json = request.event.as_json();
    let id = request.event.id.to_hex();
    let customer = request.customer.to_hex();
    let mut tags: Vec<Tag> = [
        tag(&["request", &request_json]),
        tag(&["e", &id, relay_hint]),
        tag(&["p", &customer]),
    ]
    .into_iter()
    .flatten()
    .collect();
    if request.encrypted.is_none() {
        for input in &request.inputs {
            tags.extend(Tag::parse(input.iter().map(String::as_str)).ok());
        }
    }
    let x = hex(&Sha256::digest(output.as_bytes()));
    tags.extend(tag(&["x", &x]));
    for t in provenance_event.tags.iter() {
        if t.as_slice().first().is_some_and(|n| n == "model") {
            tags.push(t.clone());
        }
    }
    tags.extend(tag(&[
        "q",
        &provenance_event.id.to_hex(),
        relay_hint,
        &provenance_event.pubkey.to_hex(),
    ]));
    let content = match request.encrypted {
        Some(scheme) => {
            tags.extend(tag(&["encrypted"]));
            seal(keys, &request.customer, output, scheme)?
        }
        None => output.to_owned(),
    };
    sign(keys, RESULT_KIND, tags, content, now)
}

/// The NIP-89 announcement (kind 31990) of a text-generation provider.
pub fn announcement(keys: &Keys, name: &str, about: &str, now: Timestamp) -> Result<Event, String> {
    let content = serde_json::json!({"name": name, "about": about}).to_string();
    let tags = [tag(&["d", "provenance-5050"]), tag(&["k", "5050"])]
        .into_iter()
        .flatten()
        .collect();
    sign(keys, HANDLER_KIND, tags, content, now)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the provenance event a result names (its `q` tag), with the relay hint.
pub fn provenance_reference(result: &Event) -> Option<(EventId, Option<String>)> {
    result.tags.iter().find_map(|t| {
        let t = t.as_slice();
        if t.first().map(String::as_str) != Some("q") {
            return None;
        }
        let id = EventId::from_hex(t.get(1)?).ok()?;
        Some((id, t.get(2).filter(|r| !r.is_empty()).cloned()))
    })
}

#[cfg(test)]
mod tests {
    use provenance::nostr::prelude::SignEvent as _;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn request(customer: &Keys, tags: &[&[&str]], content: &str) -> Event {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|t| Tag::parse(t.iter().copied()).unwrap())
            .collect();
        let unsigned = UnsignedEvent::new(
            customer.public_key(),
            Timestamp::from_secs(NOW),
            Kind::from_u16(REQUEST_KIND),
            tags,
            content,
        );
        customer.sign_event(unsigned).unwrap()
    }

    #[test]
    fn a_plain_request_is_read_with_its_params_and_relays() {
        let provider = Keys::generate();
        let customer = Keys::generate();
        let p = provider.public_key().to_hex();
        let event = request(
            &customer,
            &[
                &["i", "What is 2+2?", "text"],
                &["param", "max_tokens", "16"],
                &["param", "temperature", "0.5"],
                &["param", "model", "tiny"],
                &["output", "text/plain"],
                &[
                    "relays",
                    "wss://a.example",
                    "https://not-a-relay",
                    "ws://b.example",
                ],
                &["bid", "1000"],
                &["p", &p],
            ],
            "",
        );
        let read = read(&provider, &event, "tiny", Timestamp::from_secs(NOW)).unwrap();
        assert_eq!(read.prompt, "What is 2+2?");
        assert_eq!(read.params.max_tokens, Some(16));
        assert_eq!(read.params.sampling["temperature"], 0.5);
        assert_eq!(read.relays, ["wss://a.example", "ws://b.example"]);
        assert_eq!(read.encrypted, None);
        assert_eq!(read.inputs.len(), 1);
    }

    #[test]
    fn requests_are_refused_with_a_reason_naming_what_is_wrong() {
        let provider = Keys::generate();
        let customer = Keys::generate();
        let p = provider.public_key().to_hex();
        let now = Timestamp::from_secs(NOW);
        let cases: &[(&[&[&str]], &str)] = &[
            (
                &[&["i", "hi", "text"], &["param", "frobnicate", "1"]],
                "unknown param \"frobnicate\"",
            ),
            (
                &[&["i", "hi", "text"], &["param", "temperature", "9"]],
                "outside 0 to 2",
            ),
            (
                &[&["i", "hi", "text"], &["param", "max_tokens", "-1"]],
                "not a whole number",
            ),
            (
                &[&["i", "hi", "text"], &["param", "model", "gpt-9"]],
                "serves tiny, not gpt-9",
            ),
            (&[&["i", "https://x", "url"]], "input type \"url\""),
            (&[&["param", "seed", "1"]], "no text input"),
            (
                &[&["i", "hi", "text"], &["output", "image/png"]],
                "output \"image/png\"",
            ),
        ];
        for (tags, expected) in cases {
            let mut tags = tags.to_vec();
            let p_tag: &[&str] = &["p", &p];
            tags.push(p_tag);
            let event = request(&customer, &tags, "");
            match read(&provider, &event, "tiny", now) {
                Err(JobError::Refused(reason)) => {
                    assert!(reason.contains(expected), "{reason} / {expected}");
                    assert!(!reason.contains('\n'));
                }
                other => panic!("{tags:?}: {other:?}"),
            }
        }
        // Not ours, forged, or from the future: no feedback at all.
        let event = request(&customer, &[&["i", "hi", "text"]], "");
        assert_eq!(
            read(&provider, &event, "tiny", now).unwrap_err(),
            JobError::NotForUs
        );
        let mut forged = request(&customer, &[&["i", "hi", "text"], &["p", &p]], "");
        forged.content = "changed".to_owned();
        assert_eq!(
            read(&provider, &forged, "tiny", now).unwrap_err(),
            JobError::BadEvent
        );
        let event = request(&customer, &[&["i", "hi", "text"], &["p", &p]], "");
        let early = Timestamp::from_secs(NOW - 3600);
        assert!(matches!(
            read(&provider, &event, "tiny", early),
            Err(JobError::FromTheFuture(3600))
        ));
    }

    #[test]
    fn encrypted_params_open_with_nip04_and_nip44_and_the_result_is_encrypted_back() {
        let provider = Keys::generate();
        let customer = Keys::generate();
        let p = provider.public_key().to_hex();
        let private = r#"[["i","secret question","text"],["param","max_tokens","8"]]"#;
        for scheme in [Scheme::Nip04, Scheme::Nip44] {
            let content = seal(&customer, &provider.public_key(), private, scheme).unwrap();
            let event = request(&customer, &[&["p", &p], &["encrypted"]], &content);
            let read = read(&provider, &event, "tiny", Timestamp::from_secs(NOW)).unwrap();
            assert_eq!(read.encrypted, Some(scheme));
            assert_eq!(read.prompt, "secret question");
            assert!(
                read.inputs.is_empty(),
                "encrypted inputs are never copied out"
            );
            let provenance_event = sign(
                &provider,
                1988,
                vec![tag(&["model", "tiny", "sha256:00"]).unwrap()],
                "{}".to_owned(),
                Timestamp::from_secs(NOW),
            )
            .unwrap();
            let result = result(
                &provider,
                &read,
                "ws://box",
                "the answer",
                &provenance_event,
                Timestamp::from_secs(NOW),
            )
            .unwrap();
            assert_ne!(result.content, "the answer");
            assert!(!result.content.contains("the answer"));
            let (opened, again) = open(&customer, &provider.public_key(), &result.content).unwrap();
            assert_eq!((opened.as_str(), again), ("the answer", scheme));
            assert!(!result.as_json().contains("secret question"));
            assert_eq!(
                provenance_reference(&result),
                Some((provenance_event.id, Some("ws://box".to_owned())))
            );
        }
        // Garbage in the content of an encrypted request: refused, one line.
        let event = request(&customer, &[&["p", &p], &["encrypted"]], "garbage");
        let err = read(&provider, &event, "tiny", Timestamp::from_secs(NOW)).unwrap_err();
        assert!(err.to_string().contains("do not open"), "{err}");
    }
}
