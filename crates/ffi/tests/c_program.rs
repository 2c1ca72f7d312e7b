//! The C ABI from C: `tests/c/sign_and_verify.c` is compiled with the system C compiler
//! against the `cdylib` of this package, run, and what it prints is checked here with the
//! Rust library: the event it signed verifies and opens with its output and prompt, and every
//! failure case returns its documented code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use provenance::Keys;
use provenance::commitment::Salt;
use provenance::event::{self, Limits};
use provenance::verdict::{Code, Status};
use provenance_ffi::{
    PROVENANCE_ERR_NULL, PROVENANCE_ERR_RECORD, PROVENANCE_ERR_TOO_LARGE, PROVENANCE_ERR_UTF8,
    PROVENANCE_OK, PROVENANCE_VERIFY_ERROR, PROVENANCE_VERIFY_FAILS,
};

const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000003";
const OUTPUT: &[u8] = b"The sky is blue.";
const PROMPT: &[u8] = b"Why is the sky blue?";

/// The folder holding `libprovenance_ffi.so` (or `.dylib`) built for this test run: cargo
/// builds every crate type of the library before it runs the test, into the `deps/` folder
/// next to the test binary. (The copy one folder up is refreshed only by `cargo build`, so it
/// may be stale: it is never used.)
fn library_dir() -> PathBuf {
    let name = format!(
        "{}provenance_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("path of the test binary");
    let deps = exe.parent().expect("the test binary is in a folder");
    assert!(
        deps.join(&name).is_file(),
        "{name} not found next to the test binary in {}",
        deps.display()
    );
    deps.to_path_buf()
}

/// Compiles the C program; fails (never skips) when no C compiler runs.
fn compile(lib_dir: &Path) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sign_and_verify");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/sign_and_verify.c"))
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-lprovenance_ffi", "-lpthread", "-o"])
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run the C compiler `{cc}` ({e}); install one (gcc) or set CC")
        });
    assert!(
        status.success(),
        "`{cc}` failed to compile sign_and_verify.c"
    );
    exe
}

/// What the C program printed: `<tag> <rest>` lines.
struct Printed(Vec<(String, String)>);

impl Printed {
    fn one(&self, tag: &str) -> &str {
        let found: Vec<_> = self.0.iter().filter(|(t, _)| t == tag).collect();
        assert_eq!(found.len(), 1, "expected one `{tag}` line");
        &found[0].1
    }
}

#[test]
fn c_program_signs_verifies_and_gets_documented_codes() {
    let exe = compile(&library_dir());
    let out = Command::new(&exe).arg(KEY).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let printed = Printed(
        stdout
            .lines()
            .map(|l| {
                let (tag, rest) = l.split_once(' ').unwrap_or((l, ""));
                (tag.to_owned(), rest.to_owned())
            })
            .collect(),
    );

    assert_eq!(printed.one("version"), env!("CARGO_PKG_VERSION"));

    // The event verifies, is by the key, and opens with the output and the disclosed prompt.
    let parsed = event::parse_event(printed.one("event"), &Limits::default()).unwrap();
    let verification = event::verify(&parsed);
    let verified = verification.verified().expect("the event from C verifies");
    assert_eq!(verified.author(), Keys::parse(KEY).unwrap().public_key());
    assert_eq!(verified.check_output(OUTPUT).status, Status::Proven);
    let salt: Salt = printed.one("salt").parse().unwrap();
    assert_eq!(verified.check_prompt(PROMPT, &salt).code, Code::PromptMatch);
    let sampling = verified.record().sampling.as_ref().unwrap();
    assert_eq!(sampling.seed, Some(42));

    // The library's own verdict, as C saw it.
    let (code, verdict) = printed.one("verify").split_once(' ').unwrap();
    assert_eq!(code.parse::<i32>().unwrap(), PROVENANCE_OK);
    let verdict: serde_json::Value = serde_json::from_str(verdict).unwrap();
    assert_eq!(verdict["holds"], true);
    assert_eq!(verdict["id"], parsed.id.to_hex());
    assert!(
        verdict["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "event.sig.valid" && c["status"] == "proven"),
        "{verdict}"
    );

    let codes: BTreeMap<&str, i32> = printed
        .0
        .iter()
        .filter(|(t, _)| t == "rc")
        .map(|(_, rest)| {
            let (name, code) = rest.split_once(' ').unwrap();
            (name, code.parse().unwrap())
        })
        .collect();
    let expected = BTreeMap::from([
        ("verify_tampered", PROVENANCE_VERIFY_FAILS),
        ("verify_not_json", PROVENANCE_VERIFY_ERROR),
        ("verify_null", PROVENANCE_VERIFY_ERROR),
        ("verify_not_utf8", PROVENANCE_VERIFY_ERROR),
        ("verify_null_out", PROVENANCE_VERIFY_ERROR),
        ("sign_empty_output", PROVENANCE_OK),
        ("sign_null_signer", PROVENANCE_ERR_NULL),
        ("sign_null_record", PROVENANCE_ERR_NULL),
        ("sign_null_event_out", PROVENANCE_ERR_NULL),
        ("sign_prompt_without_salt_out", PROVENANCE_ERR_NULL),
        ("sign_null_output_with_length", PROVENANCE_ERR_NULL),
        ("sign_template_with_output", PROVENANCE_ERR_RECORD),
        ("sign_template_not_json", PROVENANCE_ERR_RECORD),
        ("sign_template_no_model", PROVENANCE_ERR_RECORD),
        ("sign_template_not_utf8", PROVENANCE_ERR_UTF8),
        ("sign_mime_too_large", PROVENANCE_ERR_TOO_LARGE),
        ("sign_output_too_large", PROVENANCE_ERR_TOO_LARGE),
        // 1: NULL with a message, as documented.
        ("signer_new_bad_key", 1),
        ("signer_new_null", 1),
    ]);
    assert_eq!(codes, expected, "stderr:\n{stderr}");
    assert_eq!(printed.one("threads"), "4");
}
