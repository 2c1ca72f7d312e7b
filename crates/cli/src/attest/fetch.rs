//! `provenance attest verify nevent1...`: the attestation event fetched from relays.
//!
//! No relay is trusted: every copy is parsed and its id and signature recomputed, and the
//! first copy that holds is used, so a relay that answers first with a forgery (the requested
//! id over altered content) cannot hide the genuine event another relay holds. When no copy
//! holds, the first forged copy is verified like a file, and its event step fails (exit 1).

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use futures_util::StreamExt;
use provenance::event::{Limits, parse_event};
use provenance::nostr::prelude::Filter;
use provenance::{EventId, PublicKey};
use provenance_attest::bundle::{Bundle, MAX_BUNDLE_BYTES};
use provenance_relay::StreamItem;

use crate::output::warn;

/// A copy of the event, as one relay sent it.
struct Copy {
    relay: String,
    json: String,
    pubkey: PublicKey,
}

/// Fetches attestation event `id` from `relays` and returns it as a bundle, with where it
/// came from (`"{input} (from {relay})"`). Nothing found, or nothing usable, is an error
/// naming the relays asked.
pub(super) fn fetch(
    input: &str,
    id: EventId,
    author: Option<PublicKey>,
    relays: &[String],
    timeout: Duration,
) -> Result<(Bundle, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    let opts = provenance_relay::Options {
        eose_timeout: timeout,
        // An attestation event may be as large as a bundle (TDX collateral), plus the frame.
        max_message_bytes: MAX_BUNDLE_BYTES + 4096,
        ..provenance_relay::Options::default()
    };
    let limits = Limits {
        max_event_bytes: MAX_BUNDLE_BYTES,
        ..Limits::default()
    };
    let filter = Filter::new().id(id);
    let (found, forged, rejected, relay_errors) = runtime.block_on(async {
        let mut stream = std::pin::pin!(provenance_relay::stream(relays, &filter, &opts));
        let mut forged: Option<Copy> = None;
        let mut rejected = Vec::new();
        let mut relay_errors = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                StreamItem::Event(raw) => match parse_event(&raw.json, &limits) {
                    Err(e) => rejected.push(format!("{}: {e}", raw.relay)),
                    Ok(ev) if ev.id != id => {
                        rejected.push(format!("{}: sent event {} instead", raw.relay, ev.id));
                    }
                    Ok(ev) => {
                        let copy = Copy {
                            relay: raw.relay,
                            json: raw.json,
                            pubkey: ev.pubkey,
                        };
                        if ev.verify().is_ok() {
                            return (Some(copy), forged, rejected, relay_errors);
                        }
                        forged.get_or_insert(copy);
                    }
                },
                StreamItem::End(report) => {
                    if let Err(e) = report.outcome {
                        relay_errors.push((report.relay, e.to_string()));
                    }
                }
            }
        }
        (None, forged, rejected, relay_errors)
    });
    let copy = match (found, forged) {
        (Some(copy), _) => {
            for (relay, e) in &relay_errors {
                warn(&format!("{input}: relay {relay}: {e}"));
            }
            copy
        }
        (None, Some(copy)) => copy,
        (None, None) if !rejected.is_empty() => bail!(
            "{input}: no relay returned a usable copy of attestation event {id}: {}",
            rejected.join("; ")
        ),
        (None, None) => {
            let asked: Vec<String> = relays
                .iter()
                .map(|r| match relay_errors.iter().find(|(e, _)| e == r) {
                    Some((_, e)) => format!("{r} ({e})"),
                    None => r.clone(),
                })
                .collect();
            bail!(
                "{input}: attestation event {id} not found on {} relay{}: {}",
                relays.len(),
                if relays.len() == 1 { "" } else { "s" },
                asked.join(", ")
            )
        }
    };
    if let Some(author) = author {
        if copy.pubkey != author {
            bail!(
                "{input}: names author {author}, but attestation event {id} is signed by {}",
                copy.pubkey
            );
        }
    }
    let bundle = Bundle::read(copy.json.as_bytes())
        .map_err(|e| anyhow!("{input} (from {}): {e}", copy.relay))?;
    Ok((bundle, format!("{input} (from {})", copy.relay)))
}
