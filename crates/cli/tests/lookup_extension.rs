//! The browser extension end to end: `extension/e2e/run.mjs` ingests the demo corpus (and one
//! text signed by three fresh keys) with the real `provenance` binary, serves it on 127.0.0.1,
//! and drives Debian's Chromium (new headless mode, the unpacked extension loaded) with
//! playwright-core: the options page (server address, its test and permission, the reader's
//! trust list with a NIP-05 name served on loopback), then for each case the badge and the
//! sentence a reader sees: exact text (by keyboard only, with the details folded and unfolded),
//! a whitespace variant, a copied paragraph, an edited copy, unrelated text, a forged event, an
//! event altered after the server (the warning), several records of one text (trusted first), a
//! server that is down, one that refuses and one not allowed; WCAG AA contrast on every page;
//! and a selection on a web page checked from the toolbar popup and through the context menu's
//! click listener.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::process::Command;

use provenance_fixtures as kit;

const BIN: &str = env!("CARGO_BIN_EXE_provenance");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_extension_checks_text_in_headless_chromium() {
    let ext = repo().join("extension");
    assert!(
        ext.join("node_modules/playwright-core").is_dir() && ext.join("vendor/nostr.js").is_file(),
        "the extension's packages are missing: run `npm ci --prefix extension` (.ci/run does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is missing: `apt-get install chromium` (.ci/run does), or set CHROMIUM"
    );
    let dir = tempfile::tempdir().unwrap();
    kit::write_lookup_demo(dir.path()).unwrap();
    let out = Command::new("node")
        .current_dir(&ext)
        .args(["e2e/run.mjs", "--provenance", BIN, "--corpus"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("all passed") && !stdout.contains("FAIL"),
        "{stdout}"
    );
}
