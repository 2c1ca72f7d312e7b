//! Trust lists: the one file format for trusted signers and labellers.
//!
//! One entry per line, `#` starts a comment:
//!
//! - `npub1...` or 64 hex: the key is trusted (it must be a point on secp256k1);
//! - `alice@example.com npub1...`: the key is trusted and shown with that name; the name is
//!   **pinned**, never looked up, so whatever the domain serves later changes nothing;
//! - `alice@example.com` alone: the name is looked up over NIP-05 ([`TrustFile::resolve`]) and
//!   the key the domain serves then is trusted; the claims say the key came from a lookup. A
//!   name that does not resolve is an error, never a silently shorter list.
//!
//! `provenance verify --trust` and `--trust-labellers`, and the lookup server's `--trust`,
//! read this format through [`TrustFile::parse`].

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use provenance::PublicKey;
use provenance::nip19;
use provenance_relay::nip05::{self, Nip05Error, Nip05Options};

use crate::source::{ReadFileError, read_capped};

/// Most bytes of a trust list read.
pub const MAX_TRUST_BYTES: u64 = 1 << 20;
/// Most NIP-05 names one list may ask to look up.
pub const MAX_LOOKUPS: usize = 256;

/// How a trusted key got its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameSource {
    /// Written next to the key in the list.
    Pinned,
    /// Looked up over NIP-05 when the list was loaded.
    Resolved,
}

/// Trusted keys, with the names the trust file gives them.
#[derive(Clone, Debug, Default)]
pub struct TrustList {
    keys: Vec<PublicKey>,
    names: HashMap<PublicKey, (String, NameSource)>,
}

/// A parsed trust file whose NIP-05 names (if any) are still to be looked up.
#[derive(Clone, Debug, Default)]
pub struct TrustFile {
    list: TrustList,
    lookups: Vec<Lookup>,
}

/// A NIP-05 name written without a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Its line, from 1.
    pub line: usize,
    /// The name, `name@domain`.
    pub name: String,
}

/// Why a line of a trust file is not an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {detail}")]
pub struct LineError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub detail: String,
}

/// Why [`load`] gave no list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadFileError),
    /// The file is not UTF-8.
    #[error("{path} is not UTF-8: {error}")]
    NotUtf8 {
        /// The file.
        path: String,
        /// Where.
        error: std::string::FromUtf8Error,
    },
    /// A line is not an entry.
    #[error("{path}:{error}")]
    Line {
        /// The file.
        path: String,
        /// The line and what is wrong with it.
        error: LineError,
    },
    /// The list names more NIP-05 names than [`MAX_LOOKUPS`].
    #[error("{path}: {count} NIP-05 names to look up, at most {MAX_LOOKUPS}")]
    TooManyLookups {
        /// The file.
        path: String,
        /// How many it names.
        count: usize,
    },
    /// A NIP-05 name did not resolve.
    #[error("{path}:{line}: {error}")]
    Lookup {
        /// The file.
        path: String,
        /// The name's line.
        line: usize,
        /// Why it did not resolve.
        error: Nip05Error,
    },
    /// The list names no key.
    #[error("trust list {path} names no keys")]
    Empty {
        /// The file.
        path: String,
    },
    /// The lookups could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl TrustList {
    /// A list of these keys, without names.
    pub fn from_keys(keys: Vec<PublicKey>) -> Self {
        Self {
            keys,
            names: HashMap::new(),
        }
    }

    /// The trusted keys, in the order of the file (looked-up names last).
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// True when the list names no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The name the list gives `key`, and how it got it.
    pub fn name(&self, key: &PublicKey) -> Option<(&str, NameSource)> {
        self.names
            .get(key)
            .map(|(name, source)| (name.as_str(), *source))
    }

    /// `npub1...`, followed by ` (name, how it was named)` when the list names it.
    pub fn describe(&self, key: &PublicKey) -> String {
        let npub = nip19::encode_npub(key);
        match self.names.get(key) {
            Some((name, source)) => format!("{npub} ({name}, {})", source.phrase()),
            None => npub,
        }
    }

    /// The detail a signer claim adds for a key the list names.
    pub fn name_detail(&self, key: &PublicKey) -> Option<String> {
        self.names
            .get(key)
            .map(|(name, source)| format!("as {name} ({})", source.long_phrase()))
    }
}

impl TrustFile {
    /// Parses a trust file (see the module docs). Keys are checked to be on the curve; names
    /// written alone are kept for [`TrustFile::resolve`].
    ///
    /// # Errors
    ///
    /// The first line that is not an entry.
    pub fn parse(text: &str) -> Result<Self, LineError> {
        let mut file = Self::default();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            let fields: Vec<&str> = entry.split_whitespace().collect();
            let at = |detail: String| LineError {
                line: n + 1,
                detail,
            };
            let (name, key) = match fields.as_slice() {
                [] => continue,
                [name] if name.contains('@') => {
                    file.lookups.push(Lookup {
                        line: n + 1,
                        name: (*name).to_owned(),
                    });
                    continue;
                }
                [key] => (None, *key),
                [name, key] => (Some(*name), *key),
                _ => return Err(at("expected \"[NAME] KEY\" or a NIP-05 name".to_owned())),
            };
            let key = nip19::parse_public_key(key).map_err(|e| at(e.to_string()))?;
            if let Some(name) = name {
                if name.chars().any(char::is_control) || name.len() > 253 {
                    return Err(at(format!("{name:?} is not a usable name")));
                }
                file.list
                    .names
                    .insert(key, (name.to_owned(), NameSource::Pinned));
            }
            file.list.keys.push(key);
        }
        Ok(file)
    }

    /// The names still to be looked up.
    pub fn lookups(&self) -> &[Lookup] {
        &self.lookups
    }

    /// The list, when no name is left to look up.
    pub fn into_list(self) -> Result<TrustList, Self> {
        if self.lookups.is_empty() {
            Ok(self.list)
        } else {
            Err(self)
        }
    }

    /// Looks up every NIP-05 name at once, each within `timeout`, and trusts the keys the
    /// domains serve now. Returns each failed name's line and error.
    ///
    /// # Errors
    ///
    /// The first name that does not resolve.
    pub async fn resolve(self, timeout: Duration) -> Result<TrustList, (usize, Nip05Error)> {
        let Self { mut list, lookups } = self;
        let options = Nip05Options {
            timeout,
            ..Nip05Options::default()
        };
        let resolved = futures_util::future::join_all(lookups.into_iter().map(|lookup| {
            let options = options.clone();
            async move {
                let key = nip05::resolve(&lookup.name, &options).await;
                (lookup, key)
            }
        }))
        .await;
        for (lookup, key) in resolved {
            let key = key.map_err(|e| (lookup.line, e))?;
            list.names
                .entry(key)
                .or_insert((lookup.name, NameSource::Resolved));
            list.keys.push(key);
        }
        Ok(list)
    }
}

/// Reads a trust list from a file, looking up its NIP-05 names (each within `timeout`) on a
/// runtime of its own. Call it outside an async runtime.
///
/// # Errors
///
/// The file cannot be read, a line is not an entry, a name does not resolve, or the list names
/// no key.
pub fn load(path: &Path, timeout: Duration) -> Result<TrustList, TrustError> {
    let name = path.display().to_string();
    let bytes = read_capped(path, MAX_TRUST_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|error| TrustError::NotUtf8 {
        path: name.clone(),
        error,
    })?;
    let file = TrustFile::parse(&text).map_err(|error| TrustError::Line {
        path: name.clone(),
        error,
    })?;
    if file.lookups.len() > MAX_LOOKUPS {
        return Err(TrustError::TooManyLookups {
            path: name,
            count: file.lookups.len(),
        });
    }
    let list = match file.into_list() {
        Ok(list) => list,
        Err(file) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(TrustError::Runtime)?;
            runtime
                .block_on(file.resolve(timeout))
                .map_err(|(line, error)| TrustError::Lookup {
                    path: name.clone(),
                    line,
                    error,
                })?
        }
    };
    if list.is_empty() {
        return Err(TrustError::Empty { path: name });
    }
    Ok(list)
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn entries_keys_pinned_names_and_names_to_look_up() {
        let text = format!("# list\n{KEY}\nalice@example.com {KEY} # pinned\n\nbob@example.com\n");
        let file = TrustFile::parse(&text).unwrap();
        assert_eq!(
            file.lookups(),
            [Lookup {
                line: 5,
                name: "bob@example.com".into()
            }]
        );
        let list = file.list.clone();
        assert_eq!(list.keys().len(), 2);
        let key = list.keys()[0];
        assert_eq!(
            list.name(&key),
            Some(("alice@example.com", NameSource::Pinned))
        );
        assert!(file.into_list().is_err(), "a name is left to look up");
    }

    #[test]
    fn keys_off_the_curve_and_bad_lines_are_refused_with_their_line() {
        let off_curve = format!("{:064x}", 5);
        let err = TrustFile::parse(&format!("{KEY}\n{off_curve}\n")).unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.detail, "not an npub or a 64-hex public key");
        let err = TrustFile::parse(&format!("a b {KEY}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1: expected \"[NAME] KEY\" or a NIP-05 name"
        );
        let err = TrustFile::parse(&format!("al\u{7}ice {KEY}")).unwrap_err();
        assert!(err.detail.ends_with("is not a usable name"), "{err}");
    }
}
