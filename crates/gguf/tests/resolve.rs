//! Resolving `ollama:` and `hf:` names in store layouts built the way Ollama and
//! huggingface_hub lay them out.
#![allow(clippy::unwrap_used)] // A failed unwrap is a failed test.

use std::fs;
use std::path::Path;

use provenance::digest::sha256;
use provenance_gguf::resolve::{ResolveError, StoreDirs, resolve};
use provenance_gguf::write::{self, TinyLlama};

fn tiny() -> Vec<u8> {
    write::tiny_llama(&TinyLlama::default()).build()
}

fn ollama_store(root: &Path, namespace: &str, model: &str, tag: &str, blob: &[u8], named: &str) {
    let manifest_dir = root
        .join("manifests/registry.ollama.ai")
        .join(namespace)
        .join(model);
    fs::create_dir_all(&manifest_dir).unwrap();
    fs::create_dir_all(root.join("blobs")).unwrap();
    fs::write(root.join("blobs").join(format!("sha256-{named}")), blob).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": format!("sha256:{}", "0".repeat(64)), "size": 2},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model",
             "digest": format!("sha256:{named}"), "size": blob.len()},
            {"mediaType": "application/vnd.ollama.image.template",
             "digest": format!("sha256:{}", "1".repeat(64)), "size": 10}
        ]
    });
    fs::write(manifest_dir.join(tag), manifest.to_string()).unwrap();
}

fn dirs(root: &Path) -> StoreDirs {
    StoreDirs {
        ollama_models: Some(root.join("ollama")),
        hf_hub_cache: Some(root.join("hub")),
    }
}

#[test]
fn ollama_names_lead_to_the_model_blob() {
    let dir = tempfile::tempdir().unwrap();
    let blob = tiny();
    let digest = sha256(&blob).to_string();
    let store = dir.path().join("ollama");
    ollama_store(&store, "library", "tiny", "latest", &blob, &digest);
    ollama_store(&store, "someone", "tiny", "q8", &blob, &digest);

    for name in [
        "ollama:tiny",
        "ollama:tiny:latest",
        "ollama:someone/tiny:q8",
    ] {
        let r = resolve(name, &dirs(dir.path())).unwrap();
        assert_eq!(
            r.path,
            store.join("blobs").join(format!("sha256-{digest}")),
            "{name}"
        );
        assert_eq!(r.expected_sha256, Some(sha256(&blob)));
        assert_eq!(r.expected_size, Some(blob.len() as u64));
        let identity = provenance_gguf::digest_file(&r.path).unwrap();
        assert_eq!(Some(identity.sha256), r.expected_sha256);
    }
    let missing = resolve("ollama:absent", &dirs(dir.path())).unwrap_err();
    assert!(
        matches!(missing, ResolveError::NotFound { .. }),
        "{missing}"
    );
    assert!(missing.to_string().contains("OLLAMA_MODELS"), "{missing}");
    for bad in [
        "ollama:../x",
        "ollama:a/b/c/d",
        "ollama:tiny:",
        "ollama:ti ny",
        "ollama:",
    ] {
        let error = resolve(bad, &dirs(dir.path())).unwrap_err();
        assert!(
            matches!(error, ResolveError::BadName { .. }),
            "{bad}: {error}"
        );
    }
}

#[test]
fn malformed_manifests_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("ollama/manifests/registry.ollama.ai/library/bad");
    fs::create_dir_all(&path).unwrap();
    fs::write(path.join("latest"), b"{\"layers\": 7}").unwrap();
    fs::write(path.join("nolayer"), b"{\"layers\": []}").unwrap();
    for name in ["ollama:bad", "ollama:bad:nolayer"] {
        let error = resolve(name, &dirs(dir.path())).unwrap_err();
        assert!(
            matches!(error, ResolveError::BadStoreFile { .. }),
            "{name}: {error}"
        );
    }
}

#[cfg(unix)]
#[test]
fn hugging_face_cache_paths_and_lfs_oids() {
    let dir = tempfile::tempdir().unwrap();
    let blob = tiny();
    let oid = sha256(&blob).to_string();
    let repo = dir.path().join("hub/models--someone--tiny-GGUF");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit).join("sub");
    fs::create_dir_all(&snapshot).unwrap();
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("blobs").join(&oid), &blob).unwrap();
    fs::write(repo.join("refs/main"), commit).unwrap();
    std::os::unix::fs::symlink(format!("../../../blobs/{oid}"), snapshot.join("tiny.gguf"))
        .unwrap();

    for name in [
        "hf:someone/tiny-GGUF/sub/tiny.gguf",
        &format!("hf:someone/tiny-GGUF@{commit}/sub/tiny.gguf"),
        "hf:someone/tiny-GGUF@main/sub/tiny.gguf",
    ] {
        let r = resolve(name, &dirs(dir.path())).unwrap();
        assert_eq!(r.expected_sha256, Some(sha256(&blob)), "{name}");
        assert_eq!(fs::read(&r.path).unwrap(), blob);
    }
    for (name, expect_bad_name) in [
        ("hf:someone/tiny-GGUF/../x.gguf", true),
        ("hf:someone/tiny-GGUF", true),
        ("hf:someone/tiny-GGUF/absent.gguf", false),
        ("hf:someone/other/tiny.gguf", false),
    ] {
        let error = resolve(name, &dirs(dir.path())).unwrap_err();
        assert_eq!(
            matches!(error, ResolveError::BadName { .. }),
            expect_bad_name,
            "{name}: {error}"
        );
    }
}

#[test]
fn plain_paths_pass_through() {
    let r = resolve(
        "models/x.gguf",
        &StoreDirs {
            ollama_models: None,
            hf_hub_cache: None,
        },
    )
    .unwrap();
    assert_eq!(r.path, Path::new("models/x.gguf"));
    assert_eq!(r.expected_sha256, None);
}

#[test]
fn identify_hashes_what_resolves_and_checks_the_stores_digest() {
    use provenance_gguf::resolve::{IdentifyError, identify};
    let dir = tempfile::tempdir().unwrap();
    let blob = tiny();
    let digest = sha256(&blob).to_string();
    let store = dir.path().join("ollama");
    ollama_store(&store, "library", "tiny", "latest", &blob, &digest);
    // A blob that is not the file the store names it by.
    ollama_store(&store, "library", "liar", "latest", &blob, &"2".repeat(64));
    let mut hashed = Vec::new();
    let (resolved, identity) = identify("ollama:tiny", &dirs(dir.path()), None, &mut |r| {
        hashed.push(r.path.clone())
    })
    .unwrap();
    assert_eq!(identity.sha256.to_string(), digest);
    assert_eq!(hashed, std::slice::from_ref(&resolved.path));
    let err = identify("ollama:liar", &dirs(dir.path()), None, &mut |_| {}).unwrap_err();
    assert!(matches!(err, IdentifyError::StoreMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("the store names the file sha256"),
        "{err}"
    );
    // Nothing is hashed when the name does not resolve.
    let mut called = false;
    let err = identify("ollama:absent", &dirs(dir.path()), None, &mut |_| {
        called = true
    });
    assert!(matches!(err, Err(IdentifyError::Resolve(_))));
    assert!(!called);
}
