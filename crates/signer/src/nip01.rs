//! A read-only NIP-01 relay over the signer's own events: the answer to one client message.
//!
//! The signer's box can then be the relay hint of its events' `nevent`s. It answers `REQ` with
//! the stored events that match (newest first, at most [`MAX_LIMIT`] per filter) and `EOSE`,
//! and `COUNT` (NIP-45) with a bounded count. It does not keep subscriptions open for new
//! events, refuses `EVENT` (`OK false`, `blocked:`), ignores `CLOSE`, and answers anything
//! else with a `NOTICE`. The websocket itself is the server's business (see
//! `provenance serve`); this module maps text to text.

use std::collections::HashSet;

use provenance::nostr::prelude::{ClientMessage, RelayMessage};

use crate::store::Store;

/// Most events sent for one filter, and the default when the filter sets no `limit`.
pub const MAX_LIMIT: usize = 500;

/// Largest client message read, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The relay's answer to one client message, as JSON texts to send in order.
pub fn respond(store: &dyn Store, text: &str) -> Vec<String> {
    if text.len() > MAX_MESSAGE_BYTES {
        return vec![notice("invalid: message too large")];
    }
    let message = match ClientMessage::from_json(text) {
        Ok(message) => message,
        Err(e) => return vec![notice(&format!("invalid: {e}"))],
    };
    match message {
        ClientMessage::Req {
            subscription_id,
            filters,
        } => {
            let id = subscription_id.into_owned();
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for filter in filters {
                let limit = filter.limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
                match store.query(&filter, limit) {
                    Ok(events) => {
                        for event in events {
                            if seen.insert(event.id) {
                                out.push(RelayMessage::event(id.clone(), event).as_json());
                            }
                        }
                    }
                    Err(_) => {
                        return vec![RelayMessage::closed(id, "error: the store failed").as_json()];
                    }
                }
            }
            out.push(RelayMessage::eose(id).as_json());
            out
        }
        ClientMessage::Count {
            subscription_id,
            filter,
        } => {
            let id = subscription_id.into_owned();
            match store.query(&filter, MAX_LIMIT) {
                Ok(events) => vec![RelayMessage::count(id, events.len()).as_json()],
                Err(_) => vec![RelayMessage::closed(id, "error: the store failed").as_json()],
            }
        }
        ClientMessage::Event(event) => vec![
            RelayMessage::ok(
                event.id,
                false,
                "blocked: this relay only serves the events its signer made",
            )
            .as_json(),
        ],
        ClientMessage::Close(_) => Vec::new(),
        _ => vec![notice("unsupported: only REQ, COUNT and CLOSE")],
    }
}

fn notice(text: &str) -> String {
    RelayMessage::notice(text).as_json()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use provenance::clock::FixedClock;
    use provenance::{Keys, Model, Output, Record, Timestamp};

    use super::*;
    use crate::store::{RequestId, SqliteStore};

    #[test]
    fn req_count_event_and_junk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("e.sqlite")).unwrap());
        let keys = Keys::generate();
        let mut ids = Vec::new();
        for (n, text) in ["a", "b", "c"].iter().enumerate() {
            let record = Record::new(Output::from_text(text), Model::named("m"));
            let event = provenance::event::sign(
                &record,
                &keys,
                &FixedClock(Timestamp::from_secs(1000 + n as u64)),
            )
            .unwrap();
            ids.push(event.id.to_hex());
            store.put(RequestId::random(), &event).unwrap();
        }
        let out = respond(store.as_ref(), r#"["REQ","s",{"kinds":[1988],"limit":2}]"#);
        assert_eq!(out.len(), 3);
        assert!(out[0].starts_with(r#"["EVENT","s",{"#) && out[0].contains(&ids[2]));
        assert!(out[1].contains(&ids[1]));
        assert_eq!(out[2], r#"["EOSE","s"]"#);
        // Two filters matching the same event send it once.
        let req = format!(r#"["REQ","t",{{"ids":["{0}"]}},{{"ids":["{0}"]}}]"#, ids[0]);
        assert_eq!(respond(store.as_ref(), &req).len(), 2);
        let out = respond(store.as_ref(), r#"["COUNT","c",{"kinds":[1988]}]"#);
        assert_eq!(out, vec![r#"["COUNT","c",{"count":3}]"#.to_owned()]);
        assert!(respond(store.as_ref(), r#"["CLOSE","s"]"#).is_empty());
        assert!(respond(store.as_ref(), "not json")[0].starts_with(r#"["NOTICE","invalid:"#));
        let big = format!(r#"["REQ","{}",{{}}]"#, "x".repeat(MAX_MESSAGE_BYTES));
        assert!(respond(store.as_ref(), &big)[0].contains("too large"));
        let record = Record::new(Output::from_text("z"), Model::named("m"));
        let event =
            provenance::event::sign(&record, &keys, &FixedClock(Timestamp::from_secs(1))).unwrap();
        let out = respond(store.as_ref(), &ClientMessage::event(event).as_json());
        assert!(out[0].starts_with(r#"["OK","#) && out[0].contains("false"));
    }
}
