//! Shared by the attestation tests: fixture paths, the test chain, synthetic events.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use nostr::prelude::{Event, Keys, Timestamp};
use provenance_attest::binding;
use provenance_attest::bundle::{Bundle, Evidence, Platform};
use provenance_attest::testing::{SyntheticReport, TestChain};
use provenance_attest::{Policy, event};

/// 2027-01-01T00:00:00Z, inside the test chain's validity (from 2026-12-05) and the Milan VCEK's.
pub const NOW: u64 = 1_798_761_600;

/// The path of a file under `fixtures/attest/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

/// The bytes of a file under `fixtures/attest/`.
pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The test chain of `fixtures/attest/test-root/`.
pub fn chain() -> TestChain {
    TestChain::load(&fixture("test-root")).expect("test chain")
}

/// A policy trusting only the test root, expecting the synthetic measurement.
pub fn test_policy(chain: &TestChain) -> Policy {
    let mut p = Policy::new(NOW);
    p.snp_roots = Some(chain.roots().expect("test roots"));
    p.expected.measurements = vec![provenance_attest::testing::MEASUREMENT];
    p
}

/// An attestation event by `keys` over a synthetic report that binds them, after `tweak`
/// changed the report's fields; signed by the test VCEK, taken 60 s before [`NOW`].
pub fn snp_event(
    chain: &TestChain,
    keys: &Keys,
    tweak: impl FnOnce(&mut SyntheticReport),
) -> (Event, [u8; 32]) {
    let nonce = [0x5a; 32];
    let mut r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    tweak(&mut r);
    let raw = r.sign(&chain.key);
    let mut ev = Evidence::new(Platform::SevSnp, &raw, &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let event = event::sign(&ev, keys, Timestamp::from(NOW - 60)).expect("sign");
    (event, nonce)
}

/// A bundle holding `event`.
pub fn event_bundle(event: &Event) -> Bundle {
    Bundle {
        provenance_attest_bundle: 1,
        event: Some(serde_json::to_value(event).expect("event json")),
        evidence: None,
        vcek: None,
        collateral: None,
        crls: Vec::new(),
    }
}

/// A bundle holding bare evidence.
pub fn evidence_bundle(ev: Evidence) -> Bundle {
    Bundle {
        provenance_attest_bundle: 1,
        event: None,
        evidence: Some(ev),
        vcek: None,
        collateral: None,
        crls: Vec::new(),
    }
}
