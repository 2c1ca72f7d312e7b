//! The checked-in fixtures under `fixtures/gguf/`: up to date with their generator, valid ones
//! parse and round-trip, invalid ones fail with the error their name announces.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::PathBuf;

use provenance_gguf::write::{self, fixtures};
use provenance_gguf::{Gguf, Hasher};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf")
}

#[test]
fn checked_in_fixtures_are_up_to_date() {
    let regenerate = "run `cargo run -p provenance-gguf --example gguf-gen -- fixtures`";
    let mut expected: Vec<String> = Vec::new();
    for fixture in fixtures::all() {
        let path = dir().join(fixture.path);
        let on_disk = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; {regenerate}", path.display()));
        assert!(
            on_disk == fixture.bytes,
            "{} is stale; {regenerate}",
            path.display()
        );
        expected.push(fixture.path.to_owned());
    }
    // No leftovers from an older generator.
    for sub in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir().join(sub)).unwrap() {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(
                expected.contains(&name),
                "{name} is not generated; {regenerate}"
            );
        }
    }
}

#[test]
fn valid_fixtures_parse_hash_and_round_trip() {
    for fixture in fixtures::all()
        .iter()
        .filter(|f| f.path.starts_with("valid/"))
    {
        let gguf = Gguf::parse(&fixture.bytes).unwrap_or_else(|e| panic!("{}: {e}", fixture.path));
        let header = write::encode_header(&gguf);
        assert_eq!(
            header,
            fixture.bytes[..gguf.data_offset as usize],
            "{}",
            fixture.path
        );
        Hasher::new()
            .buffer_size(4096)
            .hash_bytes(&fixture.bytes)
            .unwrap();
        provenance_gguf::internal::fuzz_parse(&fixture.bytes);
    }
}

#[test]
fn all_value_types_are_read_back() {
    use provenance_gguf::{Array, Value};
    let file = std::fs::read(dir().join("valid/all-value-types.gguf")).unwrap();
    let gguf = Gguf::parse(&file).unwrap();
    assert_eq!(gguf.alignment, 16);
    assert_eq!(gguf.data_offset % 16, 0);
    assert!(matches!(gguf.get("i64"), Some(Value::I64(i64::MIN))));
    assert!(matches!(gguf.get("f64"), Some(Value::F64(v)) if *v == f64::MAX));
    assert_eq!(gguf.get_u64("u32"), Some(0xffff_fffe));
    assert_eq!(gguf.get_u64("i8"), None);
    let Some(Value::Array(Array::String(strings))) = gguf.get("array.string") else {
        panic!("array.string");
    };
    assert_eq!(strings.get(4), Some("日本語".as_bytes()));
    assert_eq!(strings.get(0), Some(&b""[..]));
    let Some(Value::Array(Array::Array(nested))) = gguf.get("array.nested") else {
        panic!("array.nested");
    };
    assert_eq!(nested.len(), 3);
    assert!(matches!(&nested[2], Array::Array(inner) if inner.len() == 2));
    let scalar = gguf.tensor("scalar").unwrap();
    assert_eq!((scalar.n_elements, scalar.n_bytes), (1, 4));
    let q8 = gguf.tensor("a.q8_0").unwrap();
    assert_eq!((q8.n_elements, q8.n_bytes), (128, 136)); // 4 blocks of 34 bytes
}

#[test]
fn invalid_fixtures_fail_with_the_announced_error() {
    for fixture in fixtures::all()
        .iter()
        .filter(|f| f.path.starts_with("invalid/"))
    {
        let stem = fixture.path["invalid/".len()..].trim_end_matches(".gguf");
        let variant: String = stem
            .split('-')
            .next()
            .unwrap()
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        let error = Gguf::parse(&fixture.bytes).unwrap_err();
        let debug = format!("{error:?}");
        assert!(
            debug.starts_with(&format!("{variant} ")) || debug == variant,
            "{}: expected {variant}, got {debug}",
            fixture.path
        );
        // The streaming hasher refuses it too, with the same error.
        let hashed = Hasher::new().buffer_size(4096).hash_bytes(&fixture.bytes);
        assert_eq!(hashed.unwrap_err(), error, "{}", fixture.path);
        // Messages are one line, lowercase first word, no trailing period.
        let message = error.to_string();
        assert!(
            !message.contains('\n') && !message.ends_with('.'),
            "{message}"
        );
    }
}

/// The fuzz target's property over every fixture and over mutations of them (flipped bytes,
/// cuts, huge numbers written over 8 bytes), so that `cargo test` exercises it on stable.
#[test]
fn fuzz_property_holds_on_fixtures_and_their_mutations() {
    let mut rng = write::SplitMix64::new(42);
    for fixture in fixtures::all() {
        provenance_gguf::internal::fuzz_parse(&fixture.bytes);
        if fixture.bytes.len() > 1 << 16 {
            continue;
        }
        for _ in 0..200 {
            let mut bytes = fixture.bytes.clone();
            let at = (rng.next_u64() % bytes.len() as u64) as usize;
            match rng.next_u64() % 3 {
                0 => bytes[at] ^= 1 << (rng.next_u64() % 8),
                1 => bytes.truncate(at),
                _ => {
                    let end = (at + 8).min(bytes.len());
                    let huge = (u64::MAX >> (rng.next_u64() % 40)).to_le_bytes();
                    bytes[at..end].copy_from_slice(&huge[..end - at]);
                }
            }
            provenance_gguf::internal::fuzz_parse(&bytes);
        }
    }
}
