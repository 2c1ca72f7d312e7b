//! The official BIP-340 test vectors through batch verification.
//!
//! Same fixture as `bip340_vectors.rs` (`fixtures/external/bip340/test-vectors.csv`, see its
//! `SOURCE.md`). Every row, alone, through [`BatchVerifier::verify_all`] and
//! [`BatchVerifier::verify_each`] gives the row's expected result; all valid rows together pass;
//! all rows together through `verify_each` give each row's result. Each check runs with the
//! default small-batch bound and with every batch forced through the batch equation, where a
//! batch of one row exercises the multi-scalar multiplication on its own.

use std::path::PathBuf;

use provenance::schnorr_batch::{BatchVerifier, Item};

/// One row: the columns the verifier needs, decoded.
struct Vector {
    index: usize,
    pubkey: [u8; 32],
    msg: Vec<u8>,
    sig: [u8; 64],
    expected: bool,
}

impl Vector {
    fn item(&self) -> Item<'_> {
        Item {
            pubkey: &self.pubkey,
            msg: &self.msg,
            sig: &self.sig,
        }
    }
}

fn load() -> Vec<Vector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/external/bip340/test-vectors.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let vectors: Vec<Vector> = reader
        .records()
        .map(|record| {
            let record = record.unwrap_or_else(|e| panic!("bad row in {}: {e}", path.display()));
            let field = |i: usize| {
                record
                    .get(i)
                    .unwrap_or_else(|| panic!("{record:?}: column {i}"))
            };
            let bytes = |i: usize| {
                hex::decode(field(i)).unwrap_or_else(|e| panic!("{record:?}: column {i}: {e}"))
            };
            Vector {
                index: field(0).parse().expect("index"),
                pubkey: bytes(2).try_into().expect("32-byte key"),
                msg: bytes(4),
                sig: bytes(5).try_into().expect("64-byte signature"),
                expected: match field(6) {
                    "TRUE" => true,
                    "FALSE" => false,
                    other => panic!("{record:?}: verification result {other:?}"),
                },
            }
        })
        .collect();
    assert_eq!(vectors.len(), 19, "rows 0 to 18");
    vectors
}

/// A default verifier and one that sends every batch through the batch equation.
fn verifiers() -> [(BatchVerifier, &'static str); 2] {
    let mut forced = BatchVerifier::new();
    forced.single_below(0);
    [(BatchVerifier::new(), "default"), (forced, "batch only")]
}

#[test]
fn every_row_alone() {
    let vectors = load();
    for (mut verifier, label) in verifiers() {
        for v in &vectors {
            let items = [v.item()];
            assert_eq!(
                verifier.verify_all(&items),
                v.expected,
                "{label}: row {} verify_all",
                v.index
            );
            assert_eq!(
                verifier.verify_each(&items),
                [v.expected],
                "{label}: row {} verify_each",
                v.index
            );
            // The single-verification reference agrees with the file.
            assert_eq!(
                provenance::schnorr::verify(&v.pubkey, &v.msg, &v.sig),
                v.expected
            );
        }
    }
}

#[test]
fn all_valid_rows_together() {
    let vectors = load();
    let valid: Vec<Item<'_>> = vectors
        .iter()
        .filter(|v| v.expected)
        .map(Vector::item)
        .collect();
    assert_eq!(valid.len(), 9, "rows 0 to 4 and 15 to 18");
    for (mut verifier, label) in verifiers() {
        assert!(verifier.verify_all(&valid), "{label}");
        assert!(verifier.verify_each(&valid).iter().all(|ok| *ok), "{label}");
        // Twice over, and in reverse order.
        let mut doubled = valid.clone();
        doubled.extend(valid.iter().rev());
        assert!(verifier.verify_all(&doubled), "{label}: doubled");
    }
}

#[test]
fn all_rows_together() {
    let vectors = load();
    let items: Vec<Item<'_>> = vectors.iter().map(Vector::item).collect();
    let expected: Vec<bool> = vectors.iter().map(|v| v.expected).collect();
    for (mut verifier, label) in verifiers() {
        assert!(!verifier.verify_all(&items), "{label}");
        assert_eq!(verifier.verify_each(&items), expected, "{label}");
        // Each invalid row spoils an otherwise valid batch on its own.
        let valid: Vec<Item<'_>> = vectors
            .iter()
            .filter(|v| v.expected)
            .map(Vector::item)
            .collect();
        for bad in vectors.iter().filter(|v| !v.expected) {
            let mut batch = valid.clone();
            batch.insert(bad.index % (batch.len() + 1), bad.item());
            assert!(!verifier.verify_all(&batch), "{label}: row {}", bad.index);
            let each = verifier.verify_each(&batch);
            assert_eq!(
                each.iter().filter(|ok| !**ok).count(),
                1,
                "{label}: row {}",
                bad.index
            );
        }
    }
}
