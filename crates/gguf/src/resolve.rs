//! Finding a model file from a name: a path, an Ollama model (`ollama:NAME[:TAG]`) or a file in
//! the Hugging Face cache (`hf:OWNER/REPO[@REVISION]/FILE`).
//!
//! Both stores name files by their SHA-256, so a resolved model comes with the digest it should
//! have ([`Resolved::expected_sha256`]); hashing it checks the store as a side effect.
//!
//! - **Ollama**: the manifest at `<models>/manifests/<host>/<namespace>/<model>/<tag>` lists
//!   layers; the one with media type `application/vnd.ollama.image.model` is the GGUF, stored
//!   as `<models>/blobs/sha256-<hex>`. `<models>` is `$OLLAMA_MODELS`, else
//!   `$HOME/.ollama/models`; host, namespace and tag default to `registry.ollama.ai`, `library`
//!   and `latest`. Note that the `digest` Ollama's API reports for a model is the SHA-256 of
//!   the manifest, not of the GGUF: the GGUF's is the blob name.
//! - **Hugging Face**: `<hub>/models--<owner>--<repo>/snapshots/<commit>/<file>` is a symlink to
//!   `blobs/<sha256>` for LFS files. `<hub>` is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//!   `$XDG_CACHE_HOME/huggingface/hub`, else `$HOME/.cache/huggingface/hub`; the revision
//!   defaults to `main` (read from `refs/main`), and may be a branch or a commit hash.
//!
//! Names are checked before they touch the file system: no component may be empty, `.` or
//! `..`, or contain anything but ASCII letters, digits and `-_.` (`/` separates components in
//! Hugging Face file paths), so a name cannot reach outside its store.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use provenance::digest::Sha256Digest;
use serde::Deserialize;

/// Where a model name led.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolved {
    /// The file to hash.
    pub path: PathBuf,
    /// The SHA-256 the store names the file by, if it does.
    pub expected_sha256: Option<Sha256Digest>,
    /// The size the store records, if it does.
    pub expected_size: Option<u64>,
}

/// Where the stores live. [`StoreDirs::from_env`] reads the usual variables; tests pass their
/// own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreDirs {
    /// Ollama's models directory (holding `manifests/` and `blobs/`).
    pub ollama_models: Option<PathBuf>,
    /// The Hugging Face hub cache (holding `models--*` directories).
    pub hf_hub_cache: Option<PathBuf>,
}

/// Why a name did not resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name is malformed.
    #[error("invalid model name {name:?}: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A store file is malformed.
    #[error("{}: {reason}", path.display())]
    BadStoreFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The model is not in the store.
    #[error("{what} not found: {} does not exist{hint}", path.display())]
    NotFound {
        /// What was looked for.
        what: String,
        /// Where it would be.
        path: PathBuf,
        /// How to fix it, starting with "; " (or empty).
        hint: &'static str,
    },
    /// The store directory is unknown because the environment names none.
    #[error("cannot locate the {0} store: set {1}")]
    NoStore(&'static str, &'static str),
}

impl StoreDirs {
    /// The store locations from the environment (see the module docs).
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME");
        let ollama_models = var("OLLAMA_MODELS")
            .or_else(|| home.as_ref().map(|h| h.join(".ollama").join("models")));
        let hf_hub_cache = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
            .or_else(|| home.map(|h| h.join(".cache").join("huggingface").join("hub")));
        Self {
            ollama_models,
            hf_hub_cache,
        }
    }
}

/// Resolves `name`: `ollama:...`, `hf:...`, or else a path, which is returned as it is.
pub fn resolve(name: &str, dirs: &StoreDirs) -> Result<Resolved, ResolveError> {
    if let Some(rest) = name.strip_prefix("ollama:") {
        let Some(models) = &dirs.ollama_models else {
            return Err(ResolveError::NoStore("Ollama", "OLLAMA_MODELS or HOME"));
        };
        return resolve_ollama(name, rest, models);
    }
    if let Some(rest) = name.strip_prefix("hf:") {
        let Some(hub) = &dirs.hf_hub_cache else {
            return Err(ResolveError::NoStore(
                "Hugging Face",
                "HF_HUB_CACHE or HOME",
            ));
        };
        return resolve_hf(name, rest, hub);
    }
    Ok(Resolved {
        path: PathBuf::from(name),
        expected_sha256: None,
        expected_size: None,
    })
}

/// The largest manifest or ref file read: real ones are well under a kilobyte.
const MAX_STORE_FILE: u64 = 1 << 20;

const OLLAMA_MODEL_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";

#[derive(Deserialize)]
struct Manifest {
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: Option<u64>,
}

/// Why [`identify`] gave no identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyError {
    /// The name did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The file could not be hashed.
    #[error(transparent)]
    Hash(#[from] crate::HashError),
    /// The file does not have the digest the store names it by.
    #[error("{name}: the store names the file sha256 {expected}, but it hashes to {found}")]
    StoreMismatch {
        /// The name given.
        name: String,
        /// The digest the store names the file by.
        expected: Sha256Digest,
        /// The digest of the file.
        found: Sha256Digest,
    },
}

/// Resolves `name` ([`resolve`]), hashes the file (through `cache` when given) and checks the
/// digest the store names it by: the one way a model name becomes a [`ModelIdentity`], for the
/// signer (whose record names the weights) and the verifier (which compares them). Nothing is
/// hashed when the name does not resolve.
/// `before_hashing` is called once the name resolved, before the (long) hashing starts.
///
/// # Errors
///
/// The name does not resolve, the file cannot be hashed, or it is not the file the store
/// names.
///
/// [`ModelIdentity`]: crate::ModelIdentity
pub fn identify(
    name: &str,
    dirs: &StoreDirs,
    cache: Option<&crate::Cache>,
    before_hashing: &mut dyn FnMut(&Resolved),
) -> Result<(Resolved, crate::ModelIdentity), IdentifyError> {
    let resolved = resolve(name, dirs)?;
    before_hashing(&resolved);
    let identity = match cache {
        Some(cache) => cache.digest_file(&resolved.path)?,
        None => crate::Hasher::new().hash_file(&resolved.path)?,
    };
    if let Some(expected) = resolved.expected_sha256 {
        if expected != identity.sha256 {
            return Err(IdentifyError::StoreMismatch {
                name: name.to_owned(),
                expected,
                found: identity.sha256,
            });
        }
    }
    Ok((resolved, identity))
}

fn resolve_ollama(name: &str, spec: &str, models: &Path) -> Result<Resolved, ResolveError> {
    let bad = |reason| ResolveError::BadName {
        name: name.to_owned(),
        reason,
    };
    let (path_part, tag) = match spec.rsplit_once(':') {
        // A colon before the last slash belongs to a host's port, not a tag.
        Some((path_part, tag)) if !tag.contains('/') => (path_part, tag),
        _ => (spec, "latest"),
    };
    let parts: Vec<&str> = path_part.split('/').collect();
    let (host, namespace, model) = match parts.as_slice() {
        [model] => ("registry.ollama.ai", "library", *model),
        [namespace, model] => ("registry.ollama.ai", *namespace, *model),
        [host, namespace, model] => (*host, *namespace, *model),
        _ => return Err(bad("expected [HOST/][NAMESPACE/]MODEL[:TAG]")),
    };
    check_component(host, true).map_err(bad)?;
    for component in [namespace, model, tag] {
        check_component(component, false).map_err(bad)?;
    }
    let manifest_path = models
        .join("manifests")
        .join(host)
        .join(namespace)
        .join(model)
        .join(tag);
    let bytes = read_small(
        &manifest_path,
        "Ollama model manifest",
        "; is the model pulled (`ollama list`), and is OLLAMA_MODELS set as for the server? (the Linux service keeps models in /usr/share/ollama/.ollama/models)",
    )?;
    let bad_manifest = |reason: String| ResolveError::BadStoreFile {
        path: manifest_path.clone(),
        reason,
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad_manifest(format!("not an Ollama manifest: {e}")))?;
    let mut layers = manifest
        .layers
        .iter()
        .filter(|layer| layer.media_type == OLLAMA_MODEL_MEDIA_TYPE);
    let (Some(layer), None) = (layers.next(), layers.next()) else {
        return Err(bad_manifest(format!(
            "expected exactly one layer of type {OLLAMA_MODEL_MEDIA_TYPE}"
        )));
    };
    let digest = layer
        .digest
        .strip_prefix("sha256:")
        .and_then(|hex| hex.parse::<Sha256Digest>().ok())
        .ok_or_else(|| bad_manifest(format!("bad layer digest {:?}", layer.digest)))?;
    let blob = models.join("blobs").join(format!("sha256-{digest}"));
    if !blob.exists() {
        return Err(ResolveError::NotFound {
            what: "Ollama model blob".into(),
            path: blob,
            hint: "; the store is incomplete: pull the model again",
        });
    }
    Ok(Resolved {
        path: blob,
        expected_sha256: Some(digest),
        expected_size: layer.size,
    })
}

fn resolve_hf(name: &str, spec: &str, hub: &Path) -> Result<Resolved, ResolveError> {
    let bad = |reason| ResolveError::BadName {
        name: name.to_owned(),
        reason,
    };
    let mut parts = spec.splitn(3, '/');
    let (Some(owner), Some(repo_rev), Some(file)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected hf:OWNER/REPO[@REVISION]/FILE"));
    };
    let (repo, revision) = match repo_rev.split_once('@') {
        Some((repo, revision)) => (repo, revision),
        None => (repo_rev, "main"),
    };
    for component in [owner, repo, revision] {
        check_component(component, false).map_err(bad)?;
    }
    for component in file.split('/') {
        check_component(component, false).map_err(bad)?;
    }
    let repo_dir = hub.join(format!("models--{owner}--{repo}"));
    let commit = if is_commit_hash(revision) {
        revision.to_owned()
    } else {
        let ref_path = repo_dir.join("refs").join(revision);
        let bytes = read_small(
            &ref_path,
            "Hugging Face revision",
            "; is the repository downloaded (`hf download` or huggingface_hub), and is HF_HUB_CACHE or HF_HOME set as when it was?",
        )?;
        let commit = String::from_utf8_lossy(&bytes).trim().to_owned();
        if !is_commit_hash(&commit) {
            return Err(ResolveError::BadStoreFile {
                path: ref_path,
                reason: "expected a 40-character commit hash".into(),
            });
        }
        commit
    };
    let snapshot = repo_dir.join("snapshots").join(&commit).join(file);
    if !snapshot.exists() {
        return Err(ResolveError::NotFound {
            what: "Hugging Face file".into(),
            path: snapshot,
            hint: "; download that file of the repository",
        });
    }
    // LFS files are symlinks to `blobs/<sha256>`; other files have git blob ids, which are not
    // SHA-256 and are not used.
    let expected_sha256 = fs::canonicalize(&snapshot)
        .ok()
        .and_then(|target| target.file_name()?.to_str()?.parse().ok());
    Ok(Resolved {
        path: snapshot,
        expected_sha256,
        expected_size: None,
    })
}

fn read_small(path: &Path, what: &str, hint: &'static str) -> Result<Vec<u8>, ResolveError> {
    let file = crate::hash::open_regular(path).map_err(|_| ResolveError::NotFound {
        what: what.to_owned(),
        path: path.to_owned(),
        hint,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_STORE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ResolveError::BadStoreFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > MAX_STORE_FILE {
        return Err(ResolveError::BadStoreFile {
            path: path.to_owned(),
            reason: format!("larger than {MAX_STORE_FILE} bytes"),
        });
    }
    Ok(bytes)
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks one path component of a store name; `host` also allows a `:port`.
fn check_component(component: &str, host: bool) -> Result<(), &'static str> {
    if component.is_empty() {
        return Err("empty name component");
    }
    if component == "." || component == ".." {
        return Err("`.` and `..` are not names");
    }
    if component.len() > 255 {
        return Err("name component longer than 255 bytes");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c) || (host && c == ':');
    if !component.chars().all(allowed) {
        return Err("names may only contain ASCII letters, digits and -_.");
    }
    Ok(())
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn components_that_could_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a b", "ü"] {
            assert!(check_component(bad, false).is_err(), "{bad:?}");
        }
        assert!(check_component("llama3.2-1b_q4", false).is_ok());
        assert!(check_component("localhost:11434", true).is_ok());
        assert!(check_component("localhost:11434", false).is_err());
    }
}
