//! Verifying attestation evidence offline: the real SEV-SNP report (Milan, with its VCEK) and
//! the real TDX quote (with its collateral, `now` pinned inside its window) of
//! `fixtures/attest/`, every step; the synthetic SEV-SNP attestation event (event signature
//! and binding too); and loading AMD's roots, which a verifier does once.
//!
//! `cargo bench -p provenance-attest --bench attest`; figures in `docs/benchmarks.md`.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use nostr::prelude::{Keys, Timestamp};
use provenance_attest::bundle::{Bundle, Evidence, Platform};
use provenance_attest::snp::Roots;
use provenance_attest::testing::{MEASUREMENT, SyntheticReport, TestChain};
use provenance_attest::{Policy, binding, event, verify};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).expect("fixture")
}

fn bare(ev: Evidence) -> Bundle {
    Bundle {
        provenance_attest_bundle: 1,
        event: None,
        evidence: Some(ev),
        vcek: None,
        collateral: None,
        crls: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let milan = hex::decode(
        String::from_utf8(read("sev/report_milan.hex"))
            .expect("utf-8")
            .trim(),
    )
    .expect("hex");
    let mut ev = Evidence::new(Platform::SevSnp, &milan, &[0; 32]);
    ev.vcek = Some(hex::encode(read("sev/vcek_milan.der")));
    let snp = bare(ev);
    let mut snp_policy = Policy::new(1_796_342_400);
    snp_policy.snp_roots = Some(Roots::amd().expect("AMD roots"));
    let out = verify(&snp, &snp_policy).expect("usable");
    assert!(!out.has_failed(), "{out:#?}");
    c.bench_function("snp_verify_milan_report", |b| {
        b.iter(|| verify(&snp, &snp_policy).expect("usable"))
    });

    let mut ev = Evidence::new(Platform::Tdx, &read("dcap-qvl/tdx_quote"), &[0; 32]);
    ev.collateral =
        Some(String::from_utf8(read("dcap-qvl/tdx_quote_collateral.json")).expect("utf-8"));
    let tdx = bare(ev);
    let tdx_policy = Policy::new(1_751_328_000);
    let out = verify(&tdx, &tdx_policy).expect("usable");
    assert!(!out.has_failed(), "{out:#?}");
    c.bench_function("tdx_verify_quote_with_collateral", |b| {
        b.iter(|| verify(&tdx, &tdx_policy).expect("usable"))
    });

    let chain = TestChain::load(&fixture("test-root")).expect("test chain");
    let keys = Keys::generate();
    let nonce = [9; 32];
    let r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    let mut ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let now = 1_798_761_600;
    let signed = event::sign(&ev, &keys, Timestamp::from(now - 60)).expect("sign");
    let bundle = Bundle {
        provenance_attest_bundle: 1,
        event: Some(serde_json::to_value(&signed).expect("json")),
        evidence: None,
        vcek: None,
        collateral: None,
        crls: Vec::new(),
    };
    let mut policy = Policy::new(now);
    policy.snp_roots = Some(chain.roots().expect("test roots"));
    policy.expected.measurements = vec![MEASUREMENT];
    assert!(verify(&bundle, &policy).expect("usable").is_proven());
    c.bench_function("snp_verify_attestation_event_all_steps", |b| {
        b.iter(|| verify(&bundle, &policy).expect("usable"))
    });

    c.bench_function("snp_load_amd_roots", |b| {
        b.iter(|| Roots::amd().expect("AMD roots"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
