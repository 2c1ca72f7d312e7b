//! The trust list: keys whose events the server reports as `signer.trusted`.

use provenance::PublicKey;
use provenance::nip19;

use crate::error::Error;

/// Trusted signer keys. Empty means "no list given": every signer is reported as unknown,
/// never as untrusted.
#[derive(Clone, Debug, Default)]
pub struct TrustList {
    keys: Vec<PublicKey>,
}

impl TrustList {
    /// Parses a trust file: one key per line (`npub1...` or 64 hex digits), optionally
    /// preceded by a name (`alice@example.com npub1...`); `#` starts a comment. The same
    /// format as `provenance verify --trust`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            let key = match entry.split_whitespace().collect::<Vec<_>>().as_slice() {
                [] => continue,
                [key] | [_, key] => *key,
                _ => {
                    return Err(Error::TrustList {
                        line: n + 1,
                        detail: "expected \"[NAME] KEY\"".to_owned(),
                    });
                }
            };
            let parsed = if key.starts_with("npub1") {
                nip19::decode_npub(key).map_err(|e| e.to_string())
            } else {
                PublicKey::from_hex(key).map_err(|e| e.to_string())
            };
            keys.push(parsed.map_err(|detail| Error::TrustList {
                line: n + 1,
                detail,
            })?);
        }
        Ok(Self { keys })
    }

    /// A list of these keys.
    pub fn from_keys(keys: Vec<PublicKey>) -> Self {
        Self { keys }
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// True when no list was given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
