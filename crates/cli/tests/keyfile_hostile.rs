//! Key files in hostile places: `keygen` never writes through a symlink (with `--force` it
//! used to replace the symlink's target with the key and chmod it 0600), and loading a key
//! from a FIFO with no writer fails at once instead of blocking in `open`.

#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn provenance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provenance"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn keygen_force_refuses_a_symlink_and_leaves_its_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("key.nsec");
    std::os::unix::fs::symlink(&victim, &link).unwrap();

    for extra in [&["--force"][..], &[][..]] {
        let mut args = vec!["keygen", "-o", link.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = provenance(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the symlink's target was chmodded");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Nothing was left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn keygen_force_replaces_a_key_file_and_keeps_it_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.nsec");
    let path = path.to_str().unwrap();
    assert!(provenance(&["keygen", "-o", path]).status.success());
    let first = std::fs::read_to_string(path).unwrap();
    let again = provenance(&["keygen", "-o", path]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(path).unwrap(), first);

    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        provenance(&["keygen", "-o", path, "--force"])
            .status
            .success()
    );
    let second = std::fs::read_to_string(path).unwrap();
    assert_ne!(first, second);
    assert!(second.starts_with("nsec1"), "{second}");
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
}

#[test]
fn a_key_on_a_fifo_with_no_writer_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let answer = dir.path().join("answer.txt");
    std::fs::write(&answer, "hi").unwrap();
    let start = Instant::now();
    let out = provenance(&[
        "sign",
        "--key",
        fifo.to_str().unwrap(),
        "--model-name",
        "m",
        "--output-file",
        answer.to_str().unwrap(),
    ]);
    assert!(start.elapsed() < Duration::from_secs(10), "blocked");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a regular file"),
        "{}",
        stderr(&out)
    );
}
