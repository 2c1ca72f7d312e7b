//! Unit tests of parsing, signing and verifying.

use super::*;
use crate::record::{Model, Output, PromptCommitment};

fn record() -> Record {
    let mut r = Record::new(
        Output::from_text("  Caf\u{e9}  au lait \n"),
        Model {
            sha256: Some(sha256(b"weights")),
            ..Model::named("tiny \"llama\"")
        },
    );
    r.prompt = Some(PromptCommitment {
        scheme: "sha256-salted-v1".into(),
        format: "text".into(),
        commitment: sha256(b"prompt"),
        tokens: None,
    });
    r.sampling = Some(crate::record::Sampling {
        temperature: Some(0.7),
        top_p: Some(0.95),
        extra: [(
            "z".to_owned(),
            serde_json::json!({"b": [1.5, null], "a": -3}),
        )]
        .into(),
        ..Default::default()
    });
    r
}

#[test]
fn hex_fields_decode_as_before() {
    let id = "0123456789abcdef".repeat(4);
    assert_eq!(
        lower_hex::<32>(&id, "id").unwrap().to_vec(),
        hex::decode(&id).unwrap()
    );
    let mut bad = vec![id.to_uppercase(), id[1..].to_owned(), format!("{id}0")];
    bad.push(id.replacen('0', "\u{e9}", 1)[..64].to_owned());
    bad.push(id.replacen('f', "g", 1));
    bad.push(String::new());
    for s in bad {
        assert_eq!(
            lower_hex::<32>(&s, "id").unwrap_err().to_string(),
            lower_hex_slowly::<32>(&s, "id").unwrap_err().to_string(),
            "{s}"
        );
    }
}

#[test]
fn a_record_is_accepted_or_refused_alike_in_one_pass_and_by_way_of_a_value() {
    let canonical = canonical::to_canonical_json(&record()).unwrap();
    // Edits of the canonical text: (what, into what), first occurrence.
    let edits = [
        (":", ": "),
        (r#""v":1"#, r#""v":2"#),
        (r#""v":1"#, r#""v":1.0"#),
        (r#""v":1"#, r#""v":"1""#),
        (r#""v":1"#, r#""v":1,"w":0"#),
        (r#""v":1"#, r#""v":1,"v":1"#),
        (r#""v":1"#, r#""time":null,"v":1"#),
        (r#""a":-3"#, r#""a":-3,"a":-3"#),
        (r#""a":-3"#, r#""a":-3.0"#),
        ("0.7", "0.70"),
        ("0.7", "7e-1"),
        (r#"{"model""#, r#"{"attestations":[],"model""#),
        (r#""bytes""#, r#""truncated":false,"bytes""#),
        (r#""top_p":0.95"#, r#""top_p":0.95,"seed":9007199254740992"#),
        ("Caf", "Ca\\u0066"),
    ];
    let mut contents = vec![canonical.clone()];
    contents.extend(edits.iter().map(|(a, b)| canonical.replacen(a, b, 1)));
    contents.extend([
        canonical[1..].to_owned(),
        format!("{canonical} "),
        "[]".to_owned(),
        r#"{"v":7}"#.to_owned(),
    ]);
    // Members out of order.
    let (model, rest) = canonical[1..].split_once(",\"output\"").unwrap();
    contents.push(format!("{{\"output\"{},{model}}}", &rest[..rest.len() - 1]));
    for content in &contents {
        assert_eq!(
            parse_record(content),
            parse_record_slowly(content),
            "{content}"
        );
    }
    assert!(parse_record(&contents[0]).is_ok());
}

#[test]
fn the_tag_test_agrees_with_the_described_tag_check() {
    let mut normalized_same = record();
    normalized_same.output = Output::from_text("same");
    let mut unnamed = record();
    unnamed.model.sha256 = None;
    for r in [record(), normalized_same, unnamed] {
        let good = tags_for(&r);
        let x = tag(["x", &"ab".repeat(32)]);
        let mut cases: Vec<Vec<Tag>> = vec![good.clone(), good.iter().rev().cloned().collect()];
        for i in 0..good.len() {
            let mut dropped = good.clone();
            dropped.remove(i);
            cases.push(dropped);
            let mut doubled = good.clone();
            doubled.push(good[i].clone());
            cases.push(doubled);
            let mut longer = good.clone();
            longer[i] =
                Tag::parse(good[i].as_slice().iter().chain(["more".into()].iter())).unwrap();
            cases.push(longer);
            let mut bare = good.clone();
            bare[i] = tag([good[i].kind()]);
            cases.push(bare);
        }
        for extra in [
            x.clone(),
            tag(["m", "text/html"]),
            tag(["model", &r.model.name]),
            tag(["model", "other", "sha256:00"]),
            tag(["e", "anything"]),
        ] {
            let mut more = good.clone();
            more.push(extra);
            cases.push(more);
        }
        let mut swapped = good.clone();
        swapped[0] = x;
        cases.push(swapped);
        for tags in cases {
            let tags = Tags::from_list(tags);
            let described = describe_tag_problems(&tags, &r);
            assert_eq!(
                tags_match(&tags, &r),
                described.code == Code::EventTagsConsistent,
                "{tags:?}: {described:?}"
            );
            assert_eq!(check_tags(&tags, &r), described);
        }
    }
}

#[test]
fn a_failed_evidence_claim_takes_back_the_verified_record_but_keeps_it_for_display() {
    let keys = Keys::generate();
    let event = sign_with_aux_rand(&record(), &keys, Timestamp::from_secs(1), &[7; 32]).unwrap();
    let mut verification = verify(&event);
    assert!(verification.verified().is_some());
    assert_eq!(verification.record(), Some(&record()));
    // Claim details read as before.
    let details: Vec<&str> = verification
        .claims()
        .iter()
        .map(|c| c.detail.as_str())
        .collect();
    assert_eq!(details[0], format!("id {} recomputed", event.id));
    assert_eq!(
        details[1],
        format!("BIP-340 signature by {} over id {}", event.pubkey, event.id)
    );
    assert_eq!(details[2], format!("kind {KIND}"));
    assert_eq!(details[3], "canonical record, version 1");
    let out = &record().output;
    let p = record().prompt.unwrap();
    assert!(
        details.contains(
            &format!(
                "output sha256 {} ({} bytes, {})",
                out.sha256, out.bytes, out.mime
            )
            .as_str()
        )
    );
    assert!(
        details
            .contains(&format!("{} commitment {} ({})", p.scheme, p.commitment, p.format).as_str())
    );
    let mismatch = verification.verified().unwrap().check_output(b"other");
    verification.add_evidence(mismatch);
    assert!(verification.verified().is_none());
    assert_eq!(verification.record(), Some(&record()));
}

#[test]
fn verify_batch_sizes_stay_within_the_measured_bounds_and_feed_every_thread() {
    // A chunk of 4,096 on two cores: the largest batch, two per thread.
    assert_eq!(verify_batch_size(4096, 2), MAX_VERIFY_BATCH);
    // Many threads: smaller batches, so that each gets two.
    assert_eq!(verify_batch_size(4096, 16), 128);
    // Few events or very many threads: never below the size that still gains.
    assert_eq!(verify_batch_size(4096, 64), MIN_VERIFY_BATCH);
    assert_eq!(verify_batch_size(10, 2), MIN_VERIFY_BATCH);
    assert_eq!(verify_batch_size(0, 0), MIN_VERIFY_BATCH);
    for threads in [0, 1, 2, 3, 8, 16, 64, 256] {
        for items in [0, 1, 10, 300, 1000, 4096] {
            let size = verify_batch_size(items, threads);
            assert!((MIN_VERIFY_BATCH..=MAX_VERIFY_BATCH).contains(&size));
            // Every thread gets a batch, unless that would take batches below the floor.
            if items >= 2 * threads * MIN_VERIFY_BATCH {
                assert!(items.div_ceil(size) >= threads, "{items} on {threads}");
            }
        }
    }
}
