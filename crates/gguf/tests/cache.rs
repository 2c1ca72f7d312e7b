//! The hash cache: an unchanged file is not read again, a changed file never looks unchanged.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use provenance_gguf::write::{self, TinyLlama};
use provenance_gguf::{Cache, Hasher};

fn model(seed: u64) -> Vec<u8> {
    write::tiny_llama(&TinyLlama {
        seed,
        ..TinyLlama::default()
    })
    .build()
}

fn cache(dir: &std::path::Path) -> Cache {
    let mut cache = Cache::new(dir.join("cache"));
    cache.settle_time(Duration::ZERO);
    cache
}

#[test]
fn unchanged_file_is_answered_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    fs::write(&path, model(1)).unwrap();
    let cache = cache(dir.path());
    let first = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(!first.from_cache);
    let second = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.identity, second.identity);
    assert_eq!(cache.digest_file(&path).unwrap(), first.identity);
}

#[test]
fn same_size_rewrite_with_restored_mtime_is_not_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    let original = model(1);
    fs::write(&path, &original).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let cache = cache(dir.path());
    let before = cache.digest_file(&path).unwrap();

    // Flip one byte of tensor data in place, then put the modification time back, as
    // `touch -d` or a careless copy tool would: only the status-change time moves.
    std::thread::sleep(Duration::from_millis(20));
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(original.len() as u64 - 1))
        .unwrap();
    file.write_all(&[!original[original.len() - 1]]).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);

    let after = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(!after.from_cache);
    assert_ne!(after.identity.sha256, before.sha256);
    assert_eq!(after.identity, Hasher::new().hash_file(&path).unwrap());
    let diff = before.compare(&after.identity);
    assert_eq!(diff.len(), 1);
    assert_eq!(diff[0].name(), "output.weight");
}

#[test]
fn replaced_file_is_not_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    fs::write(&path, model(1)).unwrap();
    let cache = cache(dir.path());
    let before = cache.digest_file(&path).unwrap();
    // Same length, other weights, written to a new file renamed over the old one.
    let tmp = dir.path().join("m.tmp");
    fs::write(&tmp, model(2)).unwrap();
    fs::rename(&tmp, &path).unwrap();
    let after = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(!after.from_cache);
    assert_ne!(after.identity.sha256, before.sha256);
}

#[test]
fn freshly_written_files_are_not_stored_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    fs::write(&path, model(1)).unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    cache.digest_file(&path).unwrap();
    let again = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(
        !again.from_cache,
        "a file written just now must be hashed again"
    );
}

#[test]
fn corrupt_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    fs::write(&path, model(1)).unwrap();
    let cache = cache(dir.path());
    let expected = cache.digest_file(&path).unwrap();
    let mut entries = 0;
    for entry in fs::read_dir(cache.dir().join("v1")).unwrap() {
        let mut file = File::create(entry.unwrap().path()).unwrap();
        file.write_all(b"{\"format\":1,").unwrap();
        entries += 1;
    }
    assert_eq!(entries, 1);
    let again = cache.digest_file_with_progress(&path, |_, _| {}).unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.identity, expected);
    // The miss stored a good entry again.
    assert!(
        cache
            .digest_file_with_progress(&path, |_, _| {})
            .unwrap()
            .from_cache
    );
}
