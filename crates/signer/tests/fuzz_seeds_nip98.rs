//! The `nip98_header` fuzz target's property over its checked-in seeds
//! (`fuzz/seeds/nip98_header/`), so that it runs in every `cargo test`, without a nightly
//! toolchain or libFuzzer.
//!
//! Seeds named `valid-*` are headers (or event JSON) signed with the secret key 3 for
//! [`fuzzing::URL`] at [`fuzzing::NOW`]; they must be accepted, which also keeps them from
//! going stale. Every other seed must be rejected.

use std::fs;
use std::path::PathBuf;

use provenance_signer::nip98::fuzzing;

#[test]
fn nip98_header_seeds_hold_the_property() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/nip98_header");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 15,
        "expected at least 15 seeds, found {names:?}"
    );
    let mut valid = 0;
    for name in &names {
        let data = fs::read(dir.join(name)).unwrap();
        let accepted = fuzzing::check_header(&data);
        let expected = name.starts_with("valid-");
        assert_eq!(accepted, expected, "{name}: accepted {accepted}");
        valid += usize::from(expected);
    }
    assert!(valid >= 3, "expected at least 3 valid seeds");
}
