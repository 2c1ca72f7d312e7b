//! The pipeline through its reporting traits: order, errors, evidence and trust, from items
//! in hand and from files.

use std::io;
use std::io::Write as _;

use provenance::verdict::Code;
use provenance_fixtures::generate::EventGenerator;
use provenance_verify::{
    Evidence, Item, ItemError, Options, Pipeline, Sink, TrustList, Verdict, Verdicts,
};

/// Every report's items, in order.
fn flatten(reports: Vec<Verdicts>) -> Vec<Result<Verdict, ItemError>> {
    reports.into_iter().flat_map(|r| r.items).collect()
}

fn codes(verdict: &Verdict) -> Vec<Code> {
    verdict.claims.iter().map(|c| c.code).collect()
}

#[test]
fn items_come_back_in_input_order_with_errors_in_place() {
    let generator = EventGenerator::new();
    let mut items = Vec::new();
    for i in 0..700u64 {
        let text = match i % 100 {
            7 => Ok("not json".to_owned()),
            13 => Err("unreadable".to_owned()),
            _ => Ok(generator.event(i).as_json()),
        };
        items.push(Item::new(format!("item {i}"), text));
    }
    let pipeline = Pipeline::new(Evidence::default(), Options::default());
    let all = flatten(pipeline.verify_batches(items, &|_| Verdicts::default()));
    assert_eq!(all.len(), 700);
    for (i, item) in all.iter().enumerate() {
        match (i % 100, item) {
            (7, Err(ItemError { origin, message })) => {
                assert_eq!(origin, &format!("item {i}"));
                assert!(!message.is_empty());
            }
            (13, Err(ItemError { origin, message })) => {
                assert_eq!(origin, &format!("item {i}"));
                assert_eq!(message, "unreadable");
            }
            (7 | 13, Ok(_)) => panic!("item {i} should be an error"),
            (_, Ok(verdict)) => {
                assert_eq!(verdict.input.as_deref(), Some(format!("item {i}").as_str()));
                assert_eq!(verdict.id, generator.event(i as u64).id);
                assert!(verdict.holds, "item {i}: {:?}", codes(verdict));
            }
            (_, Err(e)) => panic!("item {i}: {e:?}"),
        }
    }
}

#[test]
fn evidence_adds_its_claims_to_every_verified_record() {
    let generator = EventGenerator::new();
    let event = generator.event(1);
    let mut evidence = Evidence::default();
    evidence.output = Some(b"not the output that was signed".to_vec());
    evidence.trusted = Some(TrustList::from_keys(vec![event.pubkey]));
    let pipeline = Pipeline::new(evidence, Options::default());
    let items = vec![Item::new("one".into(), Ok(event.as_json()))];
    let all = flatten(pipeline.verify_batches(items, &|_| Verdicts::default()));
    let Ok(verdict) = &all[0] else {
        panic!("{all:?}")
    };
    let codes = codes(verdict);
    assert!(codes.contains(&Code::OutputMismatch), "{codes:?}");
    assert!(codes.contains(&Code::SignerTrusted), "{codes:?}");
    assert!(!verdict.holds);
}

/// A sink that keeps what it is given.
#[derive(Default)]
struct Kept {
    items: Vec<Result<Verdict, ItemError>>,
    writes: usize,
}

impl Sink for Kept {
    type Report = Verdicts;

    fn write(&mut self, reports: Vec<Verdicts>, _: u64) -> io::Result<()> {
        self.writes += 1;
        self.items.extend(flatten(reports));
        Ok(())
    }
}

#[test]
fn files_are_read_in_order_and_a_missing_one_is_one_error() {
    let generator = EventGenerator::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for i in 0..3 {
        writeln!(file, "{}", generator.event(i).as_json()).unwrap();
    }
    writeln!(file, "{{\"truncated\":").unwrap();
    drop(file);
    let missing = dir.path().join("missing.jsonl");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pipeline = Pipeline::new(Evidence::default(), Options::default());
    let mut sink = Kept::default();
    pipeline
        .verify_files(
            &runtime,
            &mut sink,
            &|_| Verdicts::default(),
            vec![path.clone(), missing.clone()],
        )
        .unwrap();
    let name = path.display().to_string();
    let origins: Vec<String> = sink
        .items
        .iter()
        .map(|item| match item {
            Ok(v) => v.input.clone().unwrap_or_default(),
            Err(ItemError { origin, .. }) => origin.clone(),
        })
        .collect();
    assert_eq!(
        origins,
        [
            format!("{name}:1"),
            format!("{name}:2"),
            format!("{name}:3"),
            format!("{name}:4"),
            missing.display().to_string(),
        ]
    );
    assert!(
        sink.items[..3]
            .iter()
            .all(|i| i.as_ref().is_ok_and(|v| v.holds))
    );
    assert!(sink.items[3].is_err() && sink.items[4].is_err());
}

#[test]
fn the_verdict_serialises_in_the_documented_order() {
    let event = EventGenerator::new().event(0);
    let verification = provenance::event::verify(&event);
    let json = serde_json::to_string(&Verdict::new(&event, &verification)).unwrap();
    assert!(json.starts_with(r#"{"id":""#), "{json}");
    let with_input = Verdict::new(&event, &verification).with_input("x");
    let json = serde_json::to_string(&with_input).unwrap();
    assert!(json.starts_with(r#"{"input":"x","id":""#), "{json}");
    let holds = json.find(r#""holds":"#).unwrap();
    assert!(json.find(r#""kind":"#).unwrap() < holds);
    assert!(holds < json.find(r#""claims":"#).unwrap());
}
