//! `provenance attest`: verify, bundle and take, through the binary: exit status, the step
//! lines, `--json`, and one-line errors for unusable input. SEV-SNP evidence that binds a key
//! is synthetic (signed by the test chain of `fixtures/attest/test-root/`); the real report
//! and quotes of `fixtures/attest/` check the chains.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nostr::prelude::{Keys, Timestamp};
use provenance_attest::binding;
use provenance_attest::bundle::{Evidence, Platform};
use provenance_attest::testing::{MEASUREMENT, SyntheticReport, TestChain, TestCrl};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .env_remove("PROVENANCE_PASSPHRASE")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attest")
        .join(rel)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn chain() -> TestChain {
    TestChain::load(&fixture("test-root")).unwrap()
}

/// Writes an attestation event over a synthetic report binding a new key, taken a minute ago.
fn synthetic_event(dir: &Path, tweak: impl FnOnce(&mut SyntheticReport)) -> PathBuf {
    let chain = chain();
    let keys = Keys::generate();
    let nonce = [0x33; 32];
    let mut r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    tweak(&mut r);
    let mut ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let now = Timestamp::now().as_secs();
    let event = provenance_attest::event::sign(&ev, &keys, Timestamp::from(now - 60)).unwrap();
    let path = dir.join("attestation.json");
    fs::write(&path, serde_json::to_string(&event).unwrap()).unwrap();
    path
}

fn test_root_args() -> Vec<String> {
    vec![
        "--snp-root".into(),
        s(&fixture("test-root/ark.pem")).into(),
        "--snp-ask".into(),
        s(&fixture("test-root/ask.pem")).into(),
        "--measurement".into(),
        hex::encode(MEASUREMENT),
    ]
}

fn verify(input: &Path, extra: &[String]) -> Output {
    let mut args = vec!["attest".to_owned(), "verify".into(), s(input).into()];
    args.extend_from_slice(extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

fn summary(o: &Output) -> Value {
    let last = text(&o.stdout).lines().last().unwrap().to_owned();
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["type"], "summary", "{last}");
    v["data"].clone()
}

#[test]
fn a_synthetic_event_under_the_test_root_is_proven_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let ev = synthetic_event(dir.path(), |_| {});
    let o = verify(&ev, &test_root_args());
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    for step in [
        "event",
        "chain",
        "signature",
        "tcb",
        "chip",
        "policy",
        "binding",
        "measurement",
        "freshness",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("proven") && l[9..].starts_with(step)),
            "{step}: {out}"
        );
    }
    // No CRL given: revocation is not checked, a warning that the verdict names.
    assert!(
        out.contains("unknown  revocation  not checked: no CRL given"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("TEE claim proven (sev-snp); warning: revocation not checked"),
        "{out}"
    );

    let mut json = test_root_args();
    json.push("--json".into());
    let o = verify(&ev, &json);
    assert_eq!(o.status.code(), Some(0));
    let lines: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11);
    assert!(lines[..10].iter().all(|l| l["type"] == "step"
        && (l["data"]["status"] == "proven"
            || (l["data"]["step"] == "revocation" && l["data"]["status"] == "unknown"))));
    assert_eq!(summary(&o)["status"], "proven");
    assert_eq!(summary(&o)["platform"], "sev-snp");
    assert_eq!(summary(&o)["warnings"], serde_json::json!(["revocation"]));

    // --require-crl: no CRL is a failure of the revocation step (exit 1).
    let mut required = test_root_args();
    required.push("--require-crl".into());
    let o = verify(&ev, &required);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("TEE claim not proven (sev-snp): revocation failed: crl: no CRL given"),
        "{out}"
    );
}

#[test]
fn the_test_root_is_refused_without_snp_root_and_the_chain_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ev = synthetic_event(dir.path(), |_| {});
    let o = verify(&ev, &["--json".into()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(summary(&o)["status"], "failed");
    assert_eq!(summary(&o)["deciding_step"], "chain");
}

#[test]
fn a_flipped_report_data_bit_fails_the_binding() {
    let dir = tempfile::tempdir().unwrap();
    let ev = synthetic_event(dir.path(), |r| r.report_data[0] ^= 0x80);
    let o = verify(&ev, &test_root_args());
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("TEE claim not proven (sev-snp): binding failed: report.report_data:"),
        "{out}"
    );
}

#[test]
fn a_debug_guest_and_an_unknown_measurement_fail_their_steps() {
    let dir = tempfile::tempdir().unwrap();
    let ev = synthetic_event(dir.path(), |r| r.policy |= 1 << 19);
    let o = verify(&ev, &test_root_args());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("policy failed: report.policy:"));
    let ev = synthetic_event(dir.path(), |r| r.measurement = [1; 48]);
    let o = verify(&ev, &test_root_args());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("measurement failed: report.measurement:"));
}

#[test]
fn bundle_packs_an_event_with_its_vcek_for_one_step_verification() {
    let dir = tempfile::tempdir().unwrap();
    // An event without the VCEK: the bundle adds it.
    let chain = chain();
    let keys = Keys::generate();
    let nonce = [1; 32];
    let r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    let ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    let now = Timestamp::now().as_secs();
    let event = provenance_attest::event::sign(&ev, &keys, Timestamp::from(now)).unwrap();
    let ev_path = dir.path().join("ev.json");
    fs::write(&ev_path, serde_json::to_string(&event).unwrap()).unwrap();

    let o = verify(&ev_path, &test_root_args());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("chain unknown: no VCEK given"));

    let vcek = dir.path().join("vcek.der");
    fs::write(&vcek, &chain.vcek_der).unwrap();
    let b = dir.path().join("bundle.json");
    let o = run(&[
        "attest",
        "bundle",
        "--event",
        s(&ev_path),
        "--vcek",
        s(&vcek),
        "-o",
        s(&b),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = verify(&b, &test_root_args());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

#[test]
fn the_real_milan_report_chains_but_binds_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("milan.json");
    let o = run(&[
        "attest",
        "bundle",
        "--report",
        s(&fixture("sev/report_milan.hex")),
        "--platform",
        "sev-snp",
        "--vcek",
        s(&fixture("sev/vcek_milan.der")),
        "-o",
        s(&b),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = verify(&b, &["--now".into(), "1796342400".into()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("proven   chain       VCEK signed by the Milan ASK"),
        "{out}"
    );
    assert!(out.contains("proven   tcb"), "{out}");
    assert!(out.contains("unknown  binding"), "{out}");
}

#[test]
fn the_real_tdx_quote_verifies_at_a_pinned_time_and_expired_collateral_fails() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("tdx.json");
    let o = run(&[
        "attest",
        "bundle",
        "--report",
        s(&fixture("dcap-qvl/tdx_quote")),
        "--platform",
        "tdx",
        "--collateral",
        s(&fixture("dcap-qvl/tdx_quote_collateral.json")),
        "-o",
        s(&b),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = verify(&b, &["--now".into(), "1751328000".into()]);
    let out = text(&o.stdout);
    assert!(out.contains("proven   chain"), "{out}");
    assert!(
        out.contains("proven   tcb         TCB status UpToDate"),
        "{out}"
    );
    let o = verify(&b, &["--now".into(), "1796342400".into()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("not proven (tdx): chain failed"), "{out}");
}

/// Unusable input: exit 2 and one line on stderr naming the step and the field.
fn assert_unusable(o: &Output, want: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "want {want:?}: {err}");
    assert!(!err.contains("panicked"));
}

fn bare_bundle(dir: &Path, platform: Platform, raw: &[u8], name: &str) -> PathBuf {
    let p = dir.join(name);
    let b = serde_json::json!({
        "provenance_attest_bundle": 1,
        "evidence": Evidence::new(platform, raw, &[0; 32]),
    });
    fs::write(&p, b.to_string()).unwrap();
    p
}

#[test]
fn unusable_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let milan =
        hex::decode(text(&fs::read(fixture("sev/report_milan.hex")).unwrap()).trim()).unwrap();
    let p = bare_bundle(d, Platform::SevSnp, &milan[..800], "short.json");
    assert_unusable(&verify(&p, &[]), "input: report: truncated: 800 bytes");
    let mut long = milan.clone();
    long.extend_from_slice(&[0; 16]);
    let p = bare_bundle(d, Platform::SevSnp, &long, "long.json");
    assert_unusable(&verify(&p, &[]), "input: report: oversized: 1200 bytes");
    let mut v6 = milan.clone();
    v6[0] = 6;
    let p = bare_bundle(d, Platform::SevSnp, &v6, "v6.json");
    assert_unusable(
        &verify(&p, &[]),
        "input: report.version: version 6 is newer",
    );
    let mut quote = fs::read(fixture("dcap-qvl/tdx_quote")).unwrap();
    quote.extend_from_slice(b"trailing");
    let p = bare_bundle(d, Platform::Tdx, &quote, "trailing.json");
    assert_unusable(
        &verify(&p, &[]),
        "input: quote: 78 trailing bytes, not all zero padding",
    );
    let p = d.join("not.json");
    fs::write(&p, "{not json").unwrap();
    assert_unusable(&verify(&p, &[]), "input: not JSON");
    fs::write(&p, "{\"kind\": 1}").unwrap();
    assert_unusable(
        &verify(&p, &[]),
        "neither an attestation event nor a bundle",
    );
    let ev = synthetic_event(d, |_| {});
    assert_unusable(
        &verify(&ev, &["--measurement".into(), "abcd".into()]),
        "--measurement \"abcd\": 48 bytes of hex",
    );
}

#[test]
fn take_writes_the_binding_to_configfs_and_signs_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.nsec");
    let o = run(&["keygen", "-o", s(&key)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A fake configfs-tsm tree (no TEE here): the kernel would fill outblob; a canned
    // synthetic report stands in.
    let tsm = dir.path().join("tsm");
    let entry = tsm.join("provenance");
    fs::create_dir_all(&entry).unwrap();
    fs::write(entry.join("provider"), "sev_guest\n").unwrap();
    fs::write(entry.join("generation"), "3\n").unwrap();
    let canned = SyntheticReport::default().sign(&chain().key);
    fs::write(entry.join("outblob"), &canned).unwrap();

    let o = run(&[
        "attest",
        "take",
        "--platform",
        "sev-snp",
        "--tsm",
        s(&tsm),
        "--key",
        s(&key),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let event: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(event["kind"], 1989);
    let ev: Evidence = serde_json::from_str(event["content"].as_str().unwrap()).unwrap();
    assert_eq!(hex::decode(&ev.evidence).unwrap(), canned);
    // What was written to inblob is the binding of the event's key and nonce.
    let pubkey: [u8; 32] = hex::decode(event["pubkey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let nonce: [u8; 32] = hex::decode(&ev.nonce).unwrap().try_into().unwrap();
    let inblob = fs::read(entry.join("inblob")).unwrap();
    assert_eq!(inblob, binding::report_data(&pubkey, &nonce));

    // A TDX request against an SEV-SNP provider is refused in one line.
    let o = run(&[
        "attest",
        "take",
        "--platform",
        "tdx",
        "--tsm",
        s(&tsm),
        "--key",
        s(&key),
    ]);
    assert_unusable(&o, "provider \"sev_guest\" is not tdx_guest");
}

/// A provenance event by `keys` whose record references `attestation` (an attestation event
/// file), signed `after` seconds after the attestation.
fn record_referencing(dir: &Path, keys: &Keys, attestation: &Path, after: u64) -> PathBuf {
    use provenance::clock::FixedClock;
    use provenance::record::{Model, Output, Record};
    let att: nostr::prelude::Event =
        serde_json::from_slice(&fs::read(attestation).unwrap()).unwrap();
    let checked = provenance_attest::event::check(att.clone())
        .unwrap()
        .unwrap();
    let mut record = Record::new(
        Output::from_bytes(b"an answer", provenance::record::TEXT_PLAIN_UTF8),
        Model::named("gemma3:270m"),
    );
    record.attestations = vec![provenance_attest::event::attestation_ref(&checked)];
    let at = Timestamp::from(att.created_at.as_secs() + after);
    let event = provenance::event::sign(&record, keys, &FixedClock(at)).unwrap();
    let path = dir.join("record.json");
    fs::write(&path, serde_json::to_string(&event).unwrap()).unwrap();
    path
}

/// An attestation event file binding `keys`, taken a minute ago, after `tweak`.
fn attestation_by(dir: &Path, keys: &Keys, tweak: impl FnOnce(&mut SyntheticReport)) -> PathBuf {
    let chain = chain();
    let nonce = [0x44; 32];
    let mut r = SyntheticReport {
        report_data: binding::report_data(&keys.public_key().to_bytes(), &nonce),
        ..SyntheticReport::default()
    };
    tweak(&mut r);
    let mut ev = Evidence::new(Platform::SevSnp, &r.sign(&chain.key), &nonce);
    ev.vcek = Some(hex::encode(&chain.vcek_der));
    let now = Timestamp::now().as_secs();
    let event = provenance_attest::event::sign(&ev, keys, Timestamp::from(now - 60)).unwrap();
    let path = dir.join("attestation.json");
    fs::write(&path, serde_json::to_string(&event).unwrap()).unwrap();
    path
}

fn verify_record(record: &Path, attestation: Option<&Path>, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["verify", s(record), "--json"];
    if let Some(a) = attestation {
        args.extend(["--attestation", s(a)]);
    }
    args.extend_from_slice(extra);
    let o = run(&args);
    let verdict = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "verdict")
        .unwrap();
    (o, verdict["data"].clone())
}

fn attestation_claim(verdict: &Value) -> Value {
    let claims: Vec<&Value> = verdict["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"].as_str().unwrap().starts_with("attestation."))
        .collect();
    assert_eq!(claims.len(), 1, "{verdict}");
    claims[0].clone()
}

#[test]
fn verify_reports_the_tee_claim_proven_only_when_every_step_holds() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate();
    let att = attestation_by(dir.path(), &keys, |_| {});
    let record = record_referencing(dir.path(), &keys, &att, 30);
    let root = fixture("test-root/ark.pem");
    let ask = fixture("test-root/ask.pem");
    let m = hex::encode(MEASUREMENT);
    let trust = [
        "--attest-snp-root",
        s(&root),
        "--attest-snp-ask",
        s(&ask),
        "--attest-measurement",
        &m,
    ];

    // Without the bundle: unchecked, as before.
    let (o, v) = verify_record(&record, None, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        attestation_claim(&v)["code"],
        "attestation.evidence.unchecked"
    );

    let (o, v) = verify_record(&record, Some(&att), &trust);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.proven", "{v}");
    assert_eq!(c["status"], "proven");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains("binds the author's key"), "{detail}");
    // The bundle carries no CRL: revocation is named as not checked, never as proven.
    assert!(
        detail.contains("every step proven (event, chain, signature,"),
        "{detail}"
    );
    assert!(
        detail.contains("; warning: revocation not checked: no CRL given"),
        "{detail}"
    );
    assert_eq!(o.status.code(), Some(0));

    // A bundle that carries a current CRL of the test ARK: revocation is proven too.
    let now = Timestamp::now().as_secs();
    let chain = chain();
    let crl = |revoked: Vec<Vec<u8>>| {
        chain.sign_crl(
            &TestCrl {
                this_update: now - 86_400,
                next_update: now + 7 * 86_400,
                revoked,
            },
            &chain.ark_key,
        )
    };
    let bundled = |name: &str, der: Vec<u8>| {
        let crl_path = dir.path().join(format!("{name}.crl"));
        fs::write(&crl_path, der).unwrap();
        let b = dir.path().join(format!("{name}.bundle.json"));
        let o = run(&[
            "attest",
            "bundle",
            "--event",
            s(&att),
            "--crl",
            s(&crl_path),
            "-o",
            s(&b),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        b
    };
    let b = bundled("empty", crl(Vec::new()));
    let (o, v) = verify_record(&record, Some(&b), &trust);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.proven", "{v}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains("every step proven (event, chain, revocation, signature,"),
        "{detail}"
    );
    assert!(!detail.contains("warning"), "{detail}");
    assert_eq!(o.status.code(), Some(0));
    // ... and a bundled CRL that revokes the VCEK fails the claim.
    let vcek = provenance_attest::snp::Vcek::from_der(&chain.vcek_der).unwrap();
    let b = bundled("revoked", crl(vec![vcek.serial]));
    let (o, v) = verify_record(&record, Some(&b), &trust);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.failed", "{v}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("revocation failed: crl: the VCEK"),
        "{c}"
    );
    assert_eq!(o.status.code(), Some(1));

    // Without an expected measurement the claim cannot be proven, and says which step.
    let (_, v) = verify_record(&record, Some(&att), &trust[..4]);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.unchecked");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("measurement unknown"),
        "{c}"
    );

    // AMD's roots only: the test chain fails, the verdict does not hold (exit 1).
    let (o, v) = verify_record(&record, Some(&att), &["--attest-measurement", &m]);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.failed");
    assert!(
        c["detail"].as_str().unwrap().contains("chain failed"),
        "{c}"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn verify_fails_the_tee_claim_of_another_key_or_a_stale_attestation() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, other) = (Keys::generate(), Keys::generate());
    let root = fixture("test-root/ark.pem");
    let ask = fixture("test-root/ask.pem");
    let m = hex::encode(MEASUREMENT);
    let trust = [
        "--attest-snp-root",
        s(&root),
        "--attest-snp-ask",
        s(&ask),
        "--attest-measurement",
        &m,
    ];
    // The attestation binds `other`; the record is signed by `keys`.
    let att = attestation_by(dir.path(), &other, |_| {});
    let record = record_referencing(dir.path(), &keys, &att, 30);
    let (o, v) = verify_record(&record, Some(&att), &trust);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.failed", "{v}");
    assert!(
        c["detail"].as_str().unwrap().contains("not the author"),
        "{c}"
    );
    assert_eq!(o.status.code(), Some(1));

    // A record signed two days after its attestation: older than --attest-max-age allows.
    let att = attestation_by(dir.path(), &keys, |_| {});
    let record = record_referencing(dir.path(), &keys, &att, 2 * 86_400);
    let (_, v) = verify_record(&record, Some(&att), &trust);
    let c = attestation_claim(&v);
    assert_eq!(c["code"], "attestation.evidence.failed");
    assert!(
        c["detail"].as_str().unwrap().contains("freshness failed"),
        "{c}"
    );
    let mut longer = trust.to_vec();
    longer.extend(["--attest-max-age", "259200"]);
    let (_, v) = verify_record(&record, Some(&att), &longer);
    assert_eq!(attestation_claim(&v)["code"], "attestation.evidence.proven");
}

#[test]
fn receipt_checks_the_published_near_ai_receipt_and_refuses_an_unreadable_one() {
    let receipt = fixture("near-ai/receipt.json");
    let response = fixture("near-ai/response.sse");
    // The request body of this receipt is not published: proven where it can be, not overall.
    let out = run(&["attest", "receipt", s(&receipt), "--response", s(&response)]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("proven   response"), "{stdout}");
    assert!(
        stdout.contains("proven   signature   EIP-191 ECDSA signature by 0x319f1b8bb3b723a5d098ffb67005bdf7bb579aca"),
        "{stdout}"
    );
    assert!(
        stdout.contains("receipt not proven: request unknown"),
        "{stdout}"
    );

    let out = run(&[
        "attest",
        "receipt",
        s(&receipt),
        "--response",
        s(&receipt),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["type"] == "step"
            && l["data"]["step"] == "response"
            && l["data"]["status"] == "failed"),
        "{lines:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    fs::write(
        &bad,
        r#"{"text":"x","signature":"00","signing_address":"00","signing_algo":"ecdsa"}"#,
    )
    .unwrap();
    let out = run(&["attest", "receipt", s(&bad)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("receipt text:") && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
}
