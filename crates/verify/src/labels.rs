//! NIP-32 audit labels (kind 1985) about verified events: fetched from the relays, checked,
//! and added as one claim each.
//!
//! A genuine label by a trusted labeller is an asserted claim (`label.trusted`), by anyone
//! else an unknown one (`label.untrusted`); a label event that is not genuine is reported as
//! ignored (`label.invalid`). Labels are never required: a relay that fails is a warning.
//!
//! Replay labels (values starting `replay.`, as `provenance replay --label` publishes) are
//! also counted in one more claim (`label.replay.independent`): the independent replays, by
//! distinct labellers other than the event's author, each labeller's latest one counted once.

use std::collections::{HashMap, HashSet};

use provenance::event::{Verification, Verifier};
use provenance::label::{self, VerifiedLabel};
use provenance::nostr::prelude::{Filter, Kind};
use provenance::verdict::{Claim, Code, Status};
use provenance::{Event, EventId, PublicKey, event, nip19};

use crate::pipeline::{Checked, Pipeline};
use crate::report::Sink;

/// Most event ids in one label query filter.
pub const LABEL_IDS_PER_QUERY: usize = 256;

/// Most characters of a label's own text in a claim.
const MAX_LABEL_DETAIL_CHARS: usize = 200;

/// A label event and the relay that served it.
pub(crate) struct LabelEvent {
    relay: String,
    event: Event,
}

/// Label events found, by the id of the event they label.
pub(crate) type Found = HashMap<EventId, Vec<LabelEvent>>;

impl Pipeline {
    /// Fetches audit labels about the chunk's events from the relays: one query per
    /// [`LABEL_IDS_PER_QUERY`] ids. Relay errors are warnings.
    pub(crate) async fn fetch_labels<S: Sink>(&self, checked: &[Checked], sink: &mut S) -> Found {
        let ids: Vec<EventId> = checked
            .iter()
            .filter_map(|c| match c {
                Checked::Event { event, .. } => Some(event.id),
                Checked::Error { .. } => None,
            })
            .collect();
        let mut found = Found::new();
        let mut seen = HashSet::new();
        for part in ids.chunks(LABEL_IDS_PER_QUERY) {
            let wanted: HashSet<String> = part.iter().map(EventId::to_hex).collect();
            let filter = Filter::new()
                .kind(Kind::Custom(label::KIND))
                .events(part.iter().copied());
            let outcome =
                provenance_relay::fetch(&self.options.relays, &filter, &self.options.relay_options)
                    .await;
            for report in &outcome.relays {
                if let Err(e) = &report.outcome {
                    sink.warning(&format!("labels: relay {}: {e}", report.relay));
                }
            }
            for raw in outcome.events {
                let Ok(ev) = event::parse_event(&raw.json, &self.options.limits) else {
                    continue;
                };
                if !seen.insert(ev.id) {
                    continue;
                }
                // File the label under every event of this query it names.
                for t in ev.tags.iter() {
                    let v = t.as_slice();
                    if v.len() >= 2 && v[0] == "e" && wanted.contains(&v[1]) {
                        if let Ok(id) = event::parse_event_id(&v[1]) {
                            found.entry(id).or_default().push(LabelEvent {
                                relay: raw.relay.clone(),
                                event: ev.clone(),
                            });
                        }
                    }
                }
            }
        }
        found
    }

    /// Adds one claim per label event about `ev`.
    pub(crate) fn add_labels(
        &self,
        verifier: &mut Verifier,
        ev: &Event,
        found: &[LabelEvent],
        verification: &mut Verification,
    ) {
        let labellers = self.options.labellers.as_ref();
        let trusted = labellers.map_or(&[][..], |t| t.keys());
        let mut replays = Vec::new();
        for LabelEvent {
            relay,
            event: label_event,
        } in found
        {
            let claim = match label::verify_label(label_event, &ev.id, verifier) {
                Ok(l) => {
                    let claim = label_claim(&l, labellers, trusted);
                    if l.values.iter().any(|v| v.starts_with(REPLAY_PREFIX)) {
                        replays.push(l);
                    }
                    claim
                }
                Err(e) => Claim::new(
                    Code::LabelInvalid,
                    format!("label event {} from {relay} ignored: {e}", label_event.id),
                ),
            };
            verification.add_claim(claim);
        }
        if let Some(claim) = replay_count(&replays, &ev.pubkey, trusted) {
            verification.add_claim(claim);
        }
    }
}

/// Label values that report a replay start with this.
pub const REPLAY_PREFIX: &str = "replay.";

/// The independent replays among genuine replay labels: each labeller other than the event's
/// author counted once, with the values of their latest replay label; `None` without any
/// replay label.
fn replay_count(
    replays: &[VerifiedLabel],
    author: &PublicKey,
    trusted: &[PublicKey],
) -> Option<Claim> {
    if replays.is_empty() {
        return None;
    }
    let mut latest: HashMap<PublicKey, &VerifiedLabel> = HashMap::new();
    let mut by_author = 0usize;
    for l in replays {
        if l.labeller == *author {
            by_author += 1;
            continue;
        }
        let entry = latest.entry(l.labeller).or_insert(l);
        if (l.created_at, l.id) > (entry.created_at, entry.id) {
            *entry = l;
        }
    }
    let mut values: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for l in latest.values() {
        for v in l.values.iter().filter(|v| v.starts_with(REPLAY_PREFIX)) {
            *values.entry(v.as_str()).or_default() += 1;
        }
    }
    let n = latest.len();
    let mut detail = format!(
        "{n} independent replay{} by labellers other than the author",
        if n == 1 { "" } else { "s" }
    );
    if n > 0 {
        let listed: Vec<String> = values.iter().map(|(v, c)| format!("{c} {v}")).collect();
        let on_list = latest.keys().filter(|k| trusted.contains(k)).count();
        detail.push_str(&format!(
            ": {} ({on_list} by trusted labellers)",
            listed.join(", ")
        ));
    }
    if by_author > 0 {
        detail.push_str(&format!(
            "; {by_author} replay label{} by the event's author not counted",
            if by_author == 1 { "" } else { "s" }
        ));
    }
    Some(Claim::new(Code::LabelReplayCount, detail))
}

fn label_claim(
    l: &VerifiedLabel,
    labellers: Option<&crate::TrustList>,
    trusted: &[PublicKey],
) -> Claim {
    let who = match labellers {
        Some(list) => list.describe(&l.labeller),
        None => nip19::encode_npub(&l.labeller),
    };
    let detail: String = l.detail.chars().take(MAX_LABEL_DETAIL_CHARS).collect();
    let text = format!(
        "{who} labelled it {} (label event {}){}{detail}",
        l.values.join(", "),
        l.id,
        if detail.is_empty() { "" } else { ": " },
    );
    match l.status(trusted) {
        Status::Asserted => Claim::new(Code::LabelTrusted, text),
        _ => Claim::new(
            Code::LabelUntrusted,
            format!("{text} [labeller not trusted]"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use provenance::Keys;
    use provenance::nostr::prelude::Timestamp;

    use super::*;

    fn label(labeller: &PublicKey, at: u64, value: &str) -> VerifiedLabel {
        VerifiedLabel {
            id: EventId::from_byte_array([at as u8; 32]),
            labeller: *labeller,
            created_at: Timestamp::from_secs(at),
            values: vec![value.to_owned()],
            detail: String::new(),
        }
    }

    #[test]
    fn replays_are_counted_once_per_labeller_other_than_the_author_by_their_latest_label() {
        let [author, a, b] = [(); 3].map(|()| Keys::generate().public_key());
        assert!(replay_count(&[], &author, &[]).is_none());
        let labels = [
            label(&a, 1, "replay.match"),
            // a's later label replaces their earlier one.
            label(&a, 3, "replay.mismatch"),
            label(&b, 2, "replay.match"),
            label(&author, 4, "replay.match"),
        ];
        let claim = replay_count(&labels, &author, &[b]).unwrap();
        assert_eq!(claim.code, Code::LabelReplayCount);
        assert_eq!(
            claim.detail,
            "2 independent replays by labellers other than the author: 1 replay.match, \
             1 replay.mismatch (1 by trusted labellers); 1 replay label by the event's author \
             not counted"
        );
        let claim = replay_count(&labels[3..], &author, &[]).unwrap();
        assert_eq!(
            claim.detail,
            "0 independent replays by labellers other than the author; 1 replay label by the \
             event's author not counted"
        );
    }
}
