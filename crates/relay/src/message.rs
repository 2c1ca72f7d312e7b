//! Parsing the relay-to-client messages of NIP-01 out of one websocket text frame.
//!
//! Frames are already bounded by `Options::max_message_bytes` when they reach this module. The
//! event object of an `EVENT` message is not parsed into a `nostr::Event`: it is handed on as
//! the exact JSON text the relay sent (a `serde_json::value::RawValue`), so that the caller can
//! apply its own limits and recompute the id from those bytes. Only the `id` field is read, as
//! a string, for de-duplication and for matching `OK` answers.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{EXCERPT_BYTES, RelayError, excerpt};

/// One relay-to-client message, borrowing from the frame text.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// `["CLOSED", <subscription_id>, <message>]`
    Closed {
        subscription: String,
        message: String,
    },
    /// `["EOSE", <subscription_id>]`
    Eose { subscription: String },
    /// `["EVENT", <subscription_id>, <event JSON>]`
    Event {
        subscription: String,
        id: String,
        json: &'a RawValue,
    },
    /// `["NOTICE", <message>]`
    Notice { message: String },
    /// `["OK", <event_id>, <true|false>, <message>]`
    Ok {
        id: String,
        accepted: bool,
        message: String,
    },
    /// A well-formed message of a type this client does not use (`AUTH`, `COUNT`, `NEG-*`, or
    /// one from a future NIP). Ignored, for forward compatibility.
    Other,
}

/// Only the `id` of an event object. Unknown fields are skipped without being stored.
#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Parses one text frame.
pub(crate) fn parse(frame: &str) -> Result<Incoming<'_>, RelayError> {
    let garbage = |what: &'static str| RelayError::Garbage {
        what,
        excerpt: excerpt(frame, EXCERPT_BYTES),
    };
    // Bounded by the frame size: at most one element per two bytes of input.
    let items: Vec<&RawValue> =
        serde_json::from_str(frame).map_err(|_| garbage("not a JSON array"))?;
    let Some((kind, rest)) = items.split_first() else {
        return Err(garbage("empty array"));
    };
    let kind: &str = serde_json::from_str(kind.get())
        .map_err(|_| garbage("message type is not a plain JSON string"))?;
    let string = |index: usize, what: &'static str| -> Result<String, RelayError> {
        let value = rest.get(index).ok_or_else(|| garbage(what))?;
        serde_json::from_str(value.get()).map_err(|_| garbage(what))
    };
    let optional = |index: usize, what: &'static str| match rest.get(index) {
        Some(_) => string(index, what),
        None => Ok(String::new()),
    };
    let incoming = match kind {
        "EVENT" => {
            if rest.len() != 2 {
                return Err(garbage("EVENT message without exactly 2 arguments"));
            }
            let subscription = string(0, "EVENT subscription id is not a string")?;
            let json = rest[1];
            if !json.get().starts_with('{') {
                return Err(garbage("EVENT payload is not a JSON object"));
            }
            let IdOnly { id } = serde_json::from_str(json.get())
                .map_err(|_| garbage("EVENT payload has no single string id"))?;
            Incoming::Event {
                subscription,
                id,
                json,
            }
        }
        "OK" => {
            let id = string(0, "OK event id is not a string")?;
            let accepted = rest
                .get(1)
                .and_then(|value| serde_json::from_str::<bool>(value.get()).ok())
                .ok_or_else(|| garbage("OK status is not a boolean"))?;
            // NIP-01 makes the message mandatory, but a missing one is harmless.
            let message = optional(2, "OK message is not a string")?;
            Incoming::Ok {
                id,
                accepted,
                message,
            }
        }
        "EOSE" => Incoming::Eose {
            subscription: string(0, "EOSE subscription id is not a string")?,
        },
        "CLOSED" => {
            let subscription = string(0, "CLOSED subscription id is not a string")?;
            let message = optional(1, "CLOSED message is not a string")?;
            Incoming::Closed {
                subscription,
                message,
            }
        }
        "NOTICE" => Incoming::Notice {
            message: string(0, "NOTICE message is not a string")?,
        },
        _ => Incoming::Other,
    };
    Ok(incoming)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keeps_exact_bytes() {
        let frame = r#"["EVENT","s1", {"id":"ab\u0063", "kind":1988 ,"content":"x"} ]"#;
        let Incoming::Event {
            subscription,
            id,
            json,
        } = parse(frame).unwrap()
        else {
            panic!("not an event");
        };
        assert_eq!(subscription, "s1");
        assert_eq!(id, "abc");
        assert_eq!(
            json.get(),
            r#"{"id":"ab\u0063", "kind":1988 ,"content":"x"}"#
        );
    }

    #[test]
    fn control_messages() {
        assert!(matches!(
            parse(r#"["EOSE","s"]"#).unwrap(),
            Incoming::Eose { subscription } if subscription == "s"
        ));
        assert!(matches!(
            parse(r#"["CLOSED","s","error: nope"]"#).unwrap(),
            Incoming::Closed { subscription, message } if subscription == "s" && message == "error: nope"
        ));
        assert!(matches!(
            parse(r#"["NOTICE","hi"]"#).unwrap(),
            Incoming::Notice { message } if message == "hi"
        ));
        assert!(matches!(
            parse(r#"["OK","e1",false,"blocked: no"]"#).unwrap(),
            Incoming::Ok { id, accepted: false, message } if id == "e1" && message == "blocked: no"
        ));
        assert!(matches!(
            parse(r#"["AUTH","challenge"]"#).unwrap(),
            Incoming::Other
        ));
    }

    #[test]
    fn garbage_is_named() {
        let cases = [
            ("hello", "not a JSON array"),
            ("{}", "not a JSON array"),
            ("[]", "empty array"),
            ("[1]", "message type is not a plain JSON string"),
            (
                r#"["EVENT","s"]"#,
                "EVENT message without exactly 2 arguments",
            ),
            (r#"["EVENT",1,{}]"#, "EVENT subscription id is not a string"),
            (r#"["EVENT","s",[1]]"#, "EVENT payload is not a JSON object"),
            (
                r#"["EVENT","s",{"kind":1}]"#,
                "EVENT payload has no single string id",
            ),
            (
                r#"["EVENT","s",{"id":1}]"#,
                "EVENT payload has no single string id",
            ),
            (
                r#"["EVENT","s",{"id":"a","id":"b"}]"#,
                "EVENT payload has no single string id",
            ),
            (r#"["OK","e","yes",""]"#, "OK status is not a boolean"),
            (r#"["EOSE"]"#, "EOSE subscription id is not a string"),
            (r#"["NOTICE",{}]"#, "NOTICE message is not a string"),
        ];
        for (frame, expected) in cases {
            match parse(frame) {
                Err(RelayError::Garbage { what, excerpt }) => {
                    assert_eq!(what, expected, "{frame}");
                    assert_eq!(excerpt, frame);
                }
                other => panic!("{frame}: {other:?}"),
            }
        }
    }

    #[test]
    fn excerpt_is_cut_at_a_character_boundary() {
        let frame = "é".repeat(100);
        let Err(RelayError::Garbage { excerpt, .. }) = parse(&frame) else {
            panic!("accepted");
        };
        assert_eq!(excerpt, "é".repeat(40));
    }
}
