//! The trust list: keys whose events the server reports as `signer.trusted`.

use provenance::PublicKey;
use provenance_verify::trust::TrustFile;

use crate::error::Error;

/// Trusted signer keys. Empty means "no list given": every signer is reported as unknown,
/// never as untrusted.
#[derive(Clone, Debug, Default)]
pub struct TrustList {
    keys: Vec<PublicKey>,
}

impl TrustList {
    /// Parses a trust file in the one trust-list format ([`provenance_verify::trust`]): one
    /// key per line (`npub1...` or 64 hex digits, on the curve), optionally preceded by a name
    /// (`alice@example.com npub1...`); `#` starts a comment. A NIP-05 name written alone needs
    /// a lookup, which this does not do: load such a list with
    /// [`provenance_verify::trust::load`] and pass its keys to [`TrustList::from_keys`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let file = TrustFile::parse(text).map_err(|e| Error::TrustList {
            line: e.line,
            detail: e.detail,
        })?;
        match file.into_list() {
            Ok(list) => Ok(Self::from_keys(list.keys().to_vec())),
            Err(file) => {
                let first = &file.lookups()[0];
                Err(Error::TrustList {
                    line: first.line,
                    detail: format!(
                        "{} is a NIP-05 name to look up; load the list with provenance_verify::trust::load",
                        first.name
                    ),
                })
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_format_is_the_verifiers_with_the_curve_check() {
        let key = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let list = TrustList::parse(&format!("alice@example.com {key} # pinned\n")).unwrap();
        assert_eq!(list.keys().len(), 1);
        let off_curve = format!("{:064x}", 5);
        let err = TrustList::parse(&format!("{key}\n{off_curve}\n")).unwrap_err();
        assert!(matches!(err, Error::TrustList { line: 2, .. }), "{err}");
        let err = TrustList::parse("bob@example.com\n").unwrap_err();
        assert!(err.to_string().contains("NIP-05 name"), "{err}");
    }
}
