//! Trust lists for `verify --trust` and `--trust-labellers`.
//!
//! One entry per line, `#` starts a comment:
//!
//! - `npub1...` or 64 hex: the key is trusted;
//! - `alice@example.com npub1...`: the key is trusted and shown with that name; the name is
//!   **pinned**, never looked up, so whatever the domain serves later changes nothing;
//! - `alice@example.com` alone: the name is looked up over NIP-05 when the run starts
//!   (`https://example.com/.well-known/nostr.json?name=alice`) and the key the domain serves
//!   then is trusted; the claims say the key came from a lookup. A name that does not resolve
//!   is an error (exit 2), never a silently shorter list.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use provenance::nip19;
use provenance::nostr::prelude::PublicKey;
use provenance_relay::nip05::{self, Nip05Options};

/// Most bytes of a trust list read.
const MAX_TRUST_BYTES: u64 = 1 << 20;
/// Most NIP-05 names one list may ask to look up.
const MAX_LOOKUPS: usize = 256;

/// How a trusted key got its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameSource {
    /// Written next to the key in the list.
    Pinned,
    /// Looked up over NIP-05 when the run started.
    Resolved,
}

/// Trusted keys, with the names the trust file gives them.
#[derive(Debug, Default)]
pub(crate) struct TrustList {
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) names: HashMap<PublicKey, (String, NameSource)>,
}

impl TrustList {
    /// `npub1...`, followed by ` (name, how it was named)` when the list names it.
    pub(crate) fn describe(&self, key: &PublicKey) -> String {
        let npub = nip19::encode_npub(key);
        match self.names.get(key) {
            Some((name, source)) => format!("{npub} ({name}, {})", source.phrase()),
            None => npub,
        }
    }

    /// The detail of a signer claim, with the signer's name when the list has one.
    pub(crate) fn name_detail(&self, key: &PublicKey) -> Option<String> {
        self.names
            .get(key)
            .map(|(name, source)| format!("as {name} ({})", source.long_phrase()))
    }
}

impl NameSource {
    fn phrase(self) -> &'static str {
        match self {
            Self::Pinned => "pinned in the trust list",
            Self::Resolved => "looked up over NIP-05",
        }
    }

    fn long_phrase(self) -> &'static str {
        match self {
            Self::Pinned => "name pinned in the trust list, not resolved over NIP-05",
            Self::Resolved => {
                "key looked up over NIP-05 when this run started: trusted as the domain served it then"
            }
        }
    }
}

/// A public key as a trust list writes it: `npub1...` or 64 hex.
pub(crate) fn parse_key(entry: &str) -> Result<PublicKey, String> {
    if entry.starts_with("npub1") {
        return nip19::decode_npub(entry).map_err(|e| e.to_string());
    }
    PublicKey::from_hex(entry)
        .ok()
        .filter(|k| k.xonly().is_ok())
        .ok_or_else(|| "not an npub or a 64-hex public key".to_owned())
}

/// Reads a trust list (see the module docs), looking up NIP-05 names written without a key,
/// each within `timeout`.
pub(crate) fn load_trust(path: &Path, timeout: Duration) -> Result<TrustList> {
    let text = read_list(path)?;
    let mut list = TrustList::default();
    let mut lookups = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        let fields: Vec<&str> = entry.split_whitespace().collect();
        let at = |e: String| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1);
        let (name, key) = match fields.as_slice() {
            [] => continue,
            [name] if name.contains('@') => {
                lookups.push((n + 1, (*name).to_owned()));
                continue;
            }
            [key] => (None, *key),
            [name, key] => (Some(*name), *key),
            _ => return Err(at("expected \"[NAME] KEY\" or a NIP-05 name".to_owned())),
        };
        let key = parse_key(key).map_err(at)?;
        if let Some(name) = name {
            if name.chars().any(char::is_control) || name.len() > 253 {
                return Err(at(format!("{name:?} is not a usable name")));
            }
            list.names
                .insert(key, (name.to_owned(), NameSource::Pinned));
        }
        list.keys.push(key);
    }
    if lookups.len() > MAX_LOOKUPS {
        bail!(
            "{}: {} NIP-05 names to look up, at most {MAX_LOOKUPS}",
            path.display(),
            lookups.len()
        );
    }
    if !lookups.is_empty() {
        for (line, name, key) in resolve_all(lookups, timeout)? {
            let key = key.map_err(|e| anyhow::anyhow!("{}:{line}: {e}", path.display()))?;
            list.names
                .entry(key)
                .or_insert((name, NameSource::Resolved));
            list.keys.push(key);
        }
    }
    if list.keys.is_empty() {
        bail!("trust list {} names no keys", path.display());
    }
    Ok(list)
}

fn read_list(path: &Path) -> Result<String> {
    let bytes = crate::sign::read_capped(&path.to_path_buf(), MAX_TRUST_BYTES)?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))
}

type Lookup = (usize, String, Result<PublicKey, nip05::Nip05Error>);

/// Looks up all names at once (each with its own deadline).
fn resolve_all(names: Vec<(usize, String)>, timeout: Duration) -> Result<Vec<Lookup>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let options = Nip05Options {
        timeout,
        ..Nip05Options::default()
    };
    Ok(runtime.block_on(async {
        let lookups = names.into_iter().map(|(line, name)| {
            let options = options.clone();
            async move {
                let key = nip05::resolve(&name, &options).await;
                (line, name, key)
            }
        });
        futures_util::future::join_all(lookups).await
    }))
}
