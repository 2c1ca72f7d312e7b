//! NIP-57 zap requests as the box's LNURL-pay callback receives them (outside bytes): checked
//! as appendix D says, and addressed to the model's key, before an invoice is made for one.

use nostr::prelude::{Event, Kind, PublicKey};

/// The largest zap request accepted, in bytes.
pub const MAX_ZAP_REQUEST_BYTES: usize = 16 * 1024;

/// The relays a zap request names for its receipt (`ws://` and `wss://` only), at most `max`.
pub fn relays(zap: &Event, max: usize) -> Vec<String> {
    zap.tags
        .iter()
        .find(|t| t.kind() == "relays")
        .map(|t| {
            t.as_slice()
                .iter()
                .skip(1)
                .filter(|r| r.starts_with("ws://") || r.starts_with("wss://"))
                .take(max)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the zap request `text` for `msat` to `recipient` (NIP-57 appendix D): a signed
/// kind 9734 with one `p` tag (`recipient`), at most one `e` and one `P` tag, an `amount` tag
/// equal to `msat` when there is one, an `a` tag that is an event coordinate when there is
/// one, and relays for the receipt. The event, or why not (one line).
pub fn check_request(text: &str, msat: u64, recipient: &PublicKey) -> Result<Event, String> {
    if text.len() > MAX_ZAP_REQUEST_BYTES {
        return Err(format!("longer than {MAX_ZAP_REQUEST_BYTES} bytes"));
    }
    let zap = Event::from_json(text).map_err(|_| "not a Nostr event".to_owned())?;
    if zap.kind != Kind::ZapRequest {
        return Err(format!("kind {} is not 9734", zap.kind.as_u16()));
    }
    zap.verify()
        .map_err(|_| "the id or signature does not verify".to_owned())?;
    let named = |name: &str| {
        zap.tags
            .iter()
            .filter(|t| t.kind() == name)
            .collect::<Vec<_>>()
    };
    let p = named("p");
    if p.len() != 1 {
        return Err("it must have exactly one p tag".into());
    }
    if p[0].content() != Some(&recipient.to_hex()) {
        return Err("its p tag is not this model's key".into());
    }
    if named("e").len() > 1 {
        return Err("it has more than one e tag".into());
    }
    if named("P").len() > 1 {
        return Err("it has more than one P tag".into());
    }
    if let Some(amount) = named("amount").first().and_then(|t| t.content())
        && amount != msat.to_string()
    {
        let amount: String = amount.chars().take(32).collect();
        return Err(format!(
            "its amount tag {amount:?} is not the amount {msat}"
        ));
    }
    if let Some(a) = named("a").first().and_then(|t| t.content()) {
        let parts: Vec<&str> = a.splitn(3, ':').collect();
        if parts.len() != 3
            || parts[0].parse::<u16>().is_err()
            || PublicKey::from_hex(parts[1]).is_err()
        {
            return Err("its a tag is not an event coordinate".into());
        }
    }
    if relays(&zap, 1).is_empty() {
        return Err("it names no relays for the receipt".into());
    }
    Ok(zap)
}

/// Properties the fuzz targets check (`fuzz/fuzz_targets/lightning_parse.rs`).
#[doc(hidden)]
pub mod fuzzing {
    use nostr::prelude::{EventBuilder, FinalizeEvent, Keys, Kind, SecretKey, Tag};

    use crate::bolt11::Invoice;

    /// The first byte picks what the rest is (`byte % 3`): a BOLT11 invoice, a zap request as
    /// the callback receives it, or the content and amount of a zap request that is signed
    /// properly around them (so the checks after the signature are reached).
    ///
    /// An invoice never panics; one that parses has a 64-hex payment hash, expires after it was
    /// made, and parses the same in upper case. A zap request never panics, a refusal is one
    /// line, and one that is accepted is a kind 9734 to the recipient with relays. A proper
    /// request is accepted for its own amount and refused for another.
    pub fn check(data: &[u8]) {
        let Some((&first, rest)) = data.split_first() else {
            return;
        };
        let text = String::from_utf8_lossy(rest);
        let recipient = Keys::new(
            SecretKey::from_slice(&[7; 32]).unwrap_or_else(|_| unreachable!("a constant key")),
        );
        match first % 3 {
            0 => {
                if let Ok(invoice) = Invoice::parse(&text) {
                    assert_eq!(invoice.payment_hash.len(), 64);
                    assert!(invoice.expires_at() >= invoice.timestamp);
                    assert_eq!(Invoice::parse(&text.to_uppercase()), Ok(invoice));
                }
            }
            1 => {
                let msat = u64::from(first);
                match super::check_request(&text, msat, &recipient.public_key()) {
                    Ok(zap) => {
                        assert_eq!(zap.kind, Kind::ZapRequest);
                        assert!(!super::relays(&zap, 8).is_empty());
                    }
                    Err(why) => assert!(!why.is_empty() && !why.contains('\n'), "{why}"),
                }
            }
            _ => {
                let sender = Keys::new(
                    SecretKey::from_slice(&[9; 32])
                        .unwrap_or_else(|_| unreachable!("a constant key")),
                );
                let amount = u64::from(rest.first().copied().unwrap_or(1)) * 1000;
                let tags = [
                    Tag::parse(["p", &recipient.public_key().to_hex()]),
                    Tag::parse(["amount", &amount.to_string()]),
                    Tag::parse(["relays", "wss://relay.example"]),
                ]
                .into_iter()
                .flatten();
                let Ok(zap) = EventBuilder::new(Kind::ZapRequest, text.as_ref())
                    .tags(tags)
                    .finalize(&sender)
                else {
                    return;
                };
                let json = zap.as_json();
                let accepted = super::check_request(&json, amount, &recipient.public_key());
                if json.len() <= super::MAX_ZAP_REQUEST_BYTES {
                    assert_eq!(accepted.map(|z| z.id), Ok(zap.id));
                    assert!(
                        super::check_request(&json, amount + 1, &recipient.public_key()).is_err()
                    );
                } else {
                    assert!(accepted.is_err());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_property_holds_on_its_seeds() {
        let invoice = "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z9kmrgvr7xlaqm47apw3d48zm203kzcq357a4ls9al2ea73r8jcceyjtya6fu5wzzpe50zrge6ulk4nvjcpxlekvmxl6qcs9j3tz0469gq5g658y";
        for seed in [
            [&[0u8][..], invoice.as_bytes()].concat(),
            [&[1u8][..], b"{\"kind\":9734}"].concat(),
            [&[2u8][..], b"\x05for the model"].concat(),
            [&[2u8][..], "x".repeat(MAX_ZAP_REQUEST_BYTES).as_bytes()].concat(),
            vec![3u8],
        ] {
            fuzzing::check(&seed);
        }
    }
}
