//! The box's relay takes a direct message addressed to the model, seen from outside: a gift
//! wrap made by nostr-tools (tests/differential/dm-oracle.mjs) is sent to `provenance serve`
//! by Node's own WebSocket client (`Nip01Client`), read back after NIP-42 authentication as
//! the box's key, and opened by nostr-tools again, so our code is in the middle only.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

mod serve_common;

use provenance::nostr::prelude::{EventBuilder, FinalizeEvent, Kind, Tag};
use provenance::{Event, Keys};
use serde_json::{Value, json};
use serve_common::{Nip01Client, serve};

/// An address with nothing behind it: the relay needs no upstream.
const NOWHERE: &str = "http://127.0.0.1:9";

fn oracle(request: &Value) -> Value {
    provenance_harness::dm_oracle(request)
}

fn parse(message: &str) -> Value {
    serde_json::from_str(message).unwrap_or_else(|e| panic!("{e}: {message}"))
}

/// The box's key: the one `serve` wrote to the directory.
fn box_keys(dir: &std::path::Path) -> Keys {
    Keys::parse(
        std::fs::read_to_string(dir.join("key.nsec"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

#[test]
fn a_gift_wrap_made_by_nostr_tools_goes_in_and_comes_out_to_the_box_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), NOWHERE, &[]);
    let keys = box_keys(dir.path());
    let url = server.base.replacen("http://", "ws://", 1);
    let friend = Keys::generate();
    let answer = oracle(&json!({"wrap": [{
        "sender_secret": friend.secret_key().to_secret_hex(),
        "recipient": keys.public_key().to_hex(),
        "message": "hello, model",
        "kind": 1059,
    }]}));
    let wrap = answer["wrap"][0].as_str().unwrap().to_owned();
    let id = parse(&wrap)["id"].as_str().unwrap().to_owned();

    let mut client = Nip01Client::connect(&url);
    client.send(&format!(r#"["EVENT",{wrap}]"#));
    assert_eq!(client.next(), format!(r#"["OK","{id}",true,""]"#));

    // Unauthenticated: the challenge, then the REQ for wraps refused.
    client.send(r#"["REQ","dm",{"kinds":[1059]}]"#);
    let challenge = parse(&client.next());
    assert_eq!(challenge[0], "AUTH", "{challenge}");
    let challenge = challenge[1].as_str().unwrap();
    let closed = parse(&client.next());
    assert_eq!(closed[0], "CLOSED");
    assert!(
        closed[2].as_str().unwrap().starts_with("auth-required:"),
        "{closed}"
    );
    // A REQ for everything: the rest, not the wrap.
    client.send(r#"["REQ","all",{}]"#);
    assert_eq!(client.next(), r#"["EOSE","all"]"#);

    // Another key: accepted, but reads no wraps.
    let auth = |keys: &Keys| {
        let event = EventBuilder::new(Kind::Authentication, "")
            .tag(Tag::parse(["relay", url.as_str()]).unwrap())
            .tag(Tag::parse(["challenge", challenge]).unwrap())
            .finalize(keys)
            .unwrap();
        format!(r#"["AUTH",{}]"#, event.as_json())
    };
    client.send(&auth(&friend));
    assert_eq!(parse(&client.next())[2], true);
    client.send(r#"["REQ","dm",{"kinds":[1059]}]"#);
    assert_eq!(client.next(), r#"["EOSE","dm"]"#);
    // The box's key reads it, and nostr-tools opens it.
    client.send(&auth(&keys));
    assert_eq!(parse(&client.next())[2], true);
    client.send(r#"["REQ","dm",{"kinds":[1059]}]"#);
    let got = parse(&client.next());
    assert_eq!(got[0], "EVENT", "{got}");
    assert_eq!(got[2]["id"], id.as_str());
    assert_eq!(client.next(), r#"["EOSE","dm"]"#);
    let wrap = Event::from_json(got[2].to_string()).unwrap();
    let opened = oracle(&json!({"unwrap": [{
        "recipient_secret": keys.secret_key().to_secret_hex(),
        "event": serde_json::from_str::<Value>(&wrap.as_json()).unwrap(),
    }]}));
    let opened = &opened["unwrap"][0];
    assert_eq!(opened["wrap_valid"], true, "{opened}");
    assert_eq!(opened["rumor"]["content"], "hello, model");
    assert_eq!(opened["rumor"]["pubkey"], friend.public_key().to_hex());
}

#[test]
fn a_connection_sending_events_faster_than_the_rate_is_refused_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), NOWHERE, &[]);
    let keys = box_keys(dir.path());
    let mut client = Nip01Client::connect(&server.base.replacen("http://", "ws://", 1));
    let mut answers = Vec::new();
    for n in 0..12 {
        let job = EventBuilder::new(Kind::from_u16(5050), "")
            .tag(Tag::public_key(keys.public_key()))
            .tag(Tag::parse(["i", &format!("question {n}"), "text"]).unwrap())
            .finalize(&Keys::generate())
            .unwrap();
        client.send(&format!(r#"["EVENT",{}]"#, job.as_json()));
        let ok = parse(&client.next());
        assert_eq!(ok[1], job.id.to_hex().as_str());
        answers.push((ok[2].as_bool().unwrap(), ok[3].as_str().unwrap().to_owned()));
    }
    // A burst of 10, then 20 a minute: the 11th and 12th, sent at once, are refused.
    assert!(answers[..10].iter().all(|(ok, _)| *ok), "{answers:?}");
    for (ok, why) in &answers[10..] {
        assert!(!ok && why.starts_with("rate-limited:"), "{why}");
    }
    // The accepted ones are public.
    client.send(r#"["COUNT","jobs",{"kinds":[5050]}]"#);
    assert_eq!(client.next(), r#"["COUNT","jobs",{"count":10}]"#);
}
