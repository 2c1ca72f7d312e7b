//! `Verifier::verify_many` (signatures checked together by BIP-340 batch verification) gives
//! for every event exactly the `Verification` that `Verifier::verify_expected` gives alone:
//! on every golden, tampered and external event fixture, and on mixed slices of generated
//! events with bad signatures, ids, keys and requests placed anywhere in them.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;

use provenance::event::{self, Expect, Limits, Verification, Verifier};
use provenance::{Event, Keys, Model, Output, Record, SecretKey, Timestamp};
use serde_json::Value;

/// The events of every fixture under `fixtures/events/`, by file name.
fn fixture_events() -> Vec<(String, Event)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events");
    let mut events = Vec::new();
    for set in ["valid", "invalid", "external"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(set))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for path in files {
            let fixture: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let json = fixture["event"].to_string();
            // An external fixture that does not parse is about parsing, not verification.
            if let Ok(ev) = event::parse_event(&json, &Limits::default()) {
                events.push((path.display().to_string(), ev));
            }
        }
    }
    assert!(events.len() >= 25, "{} fixture events", events.len());
    events
}

/// Asserts that two verifications are the same in every respect the API shows.
fn assert_same(many: &Verification, alone: &Verification, what: &str) {
    assert_eq!(many.claims(), alone.claims(), "{what}");
    assert_eq!(many.holds(), alone.holds(), "{what}");
    assert_eq!(many.record(), alone.record(), "{what}");
    match (many.verified(), alone.verified()) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(
                (a.id(), a.author(), a.created_at(), a.record()),
                (b.id(), b.author(), b.created_at(), b.record()),
                "{what}"
            );
        }
        _ => panic!("{what}: verified in one way only"),
    }
}

/// `verify_many` on `slice` against `verify_expected` on each item, with a fresh verifier
/// for each way (and a reused one for the batches, as a thread of the CLI holds one).
fn check(reused: &mut Verifier, slice: &[(&Event, &Expect)], what: &str) {
    let many = reused.verify_many(slice);
    assert_eq!(many.len(), slice.len(), "{what}");
    for (i, (v, (ev, expect))) in many.iter().zip(slice).enumerate() {
        let alone = Verifier::new().verify_expected(ev, expect);
        assert_same(v, &alone, &format!("{what}, item {i} ({})", ev.id));
    }
}

#[test]
fn verify_many_equals_verify_expected_on_every_fixture() {
    let fixtures = fixture_events();
    let none = Expect::default();
    let mut verifier = Verifier::new();
    for (name, ev) in &fixtures {
        check(&mut verifier, &[(ev, &none)], name);
    }
    // All of them in one slice, good and bad signatures together, and in reverse.
    let mut all: Vec<(&Event, &Expect)> = fixtures.iter().map(|(_, ev)| (ev, &none)).collect();
    check(&mut verifier, &all, "all fixtures");
    all.reverse();
    check(&mut verifier, &all, "all fixtures, reversed");
    check(&mut verifier, &[], "no events");
}

/// `n` signed provenance events by four keys.
fn generated(n: usize) -> Vec<Event> {
    let keys: Vec<Keys> = (1..=4u8)
        .map(|k| Keys::new(SecretKey::from_slice(&[k; 32]).unwrap()))
        .collect();
    (0..n)
        .map(|i| {
            let record = Record::new(Output::from_text(&format!("answer {i}")), Model::named("m"));
            let at = Timestamp::from_secs(1_700_000_000 + i as u64);
            event::sign_with_aux_rand(&record, &keys[i % 4], at, &[i as u8; 32]).unwrap()
        })
        .collect()
}

/// `ev` with one field of its JSON replaced, parsed again.
fn edited(ev: &Event, field: &str, value: Value) -> Event {
    let mut json: Value = serde_json::from_str(&ev.as_json()).unwrap();
    json[field] = value;
    event::parse_event(&json.to_string(), &Limits::default()).unwrap()
}

#[test]
fn verify_many_equals_verify_expected_on_mixed_batches() {
    let good = generated(120);
    let sig = |ev: &Event| ev.sig.to_string();
    let mut events = good.clone();
    // A flipped signature bit, a signature of another event, s >= n, r >= p, a key that is
    // not on the curve, a key swapped for another valid one, and an edited content (id
    // mismatch, signature still over the claimed id).
    let mut flipped = sig(&good[3]);
    flipped.replace_range(10..11, if &flipped[10..11] == "0" { "1" } else { "0" });
    events[3] = edited(&good[3], "sig", flipped.into());
    events[17] = edited(&good[17], "sig", sig(&good[18]).into());
    events[40] = edited(
        &good[40],
        "sig",
        format!("{}{}", &sig(&good[40])[..64], "f".repeat(64)).into(),
    );
    events[41] = edited(
        &good[41],
        "sig",
        format!("{}{}", "f".repeat(64), &sig(&good[41])[64..]).into(),
    );
    events[63] = edited(
        &good[63],
        "pubkey",
        "0".repeat(63)
            .chars()
            .chain(['5'])
            .collect::<String>()
            .into(),
    );
    events[64] = edited(&good[64], "pubkey", good[65].pubkey.to_hex().into());
    events[100] = edited(&good[100], "content", "{}".into());
    events[119] = edited(&good[119], "sig", sig(&good[0]).into());

    // Requests: the right and the wrong id and author.
    let none = Expect::default();
    let right = Expect {
        id: Some(events[5].id),
        author: Some(events[5].pubkey),
    };
    let wrong = Expect {
        id: Some(events[6].id),
        author: Some(events[7].pubkey),
    };
    let mut slice: Vec<(&Event, &Expect)> = events.iter().map(|ev| (ev, &none)).collect();
    slice[5].1 = &right;
    slice[8].1 = &wrong;

    let mut verifier = Verifier::new();
    check(&mut verifier, &slice, "120 events");
    for size in [1, 2, 3, 7, 8, 9, 16, 64, 65] {
        for (n, part) in slice.chunks(size).enumerate() {
            check(
                &mut verifier,
                part,
                &format!("slices of {size}, number {n}"),
            );
        }
    }
    let all_good: Vec<(&Event, &Expect)> = good.iter().map(|ev| (ev, &none)).collect();
    let many = verifier.verify_many(&all_good);
    assert!(many.iter().all(Verification::holds));
    let bad = verifier.verify_many(&slice);
    let failing: Vec<usize> = (0..bad.len()).filter(|&i| !bad[i].holds()).collect();
    assert_eq!(failing, [3, 8, 17, 40, 41, 63, 64, 100, 119]);
}
