//! The lookup crate's error type.

/// Why an index or server operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SQLite database failed.
    #[error("index database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database was written by a newer version of this crate.
    #[error("index schema version {found} is newer than this program knows ({known})")]
    SchemaTooNew {
        /// Migrations recorded in the database.
        found: u64,
        /// Migrations this crate knows.
        known: u64,
    },
    /// Something stored in the index does not read back.
    #[error("index is corrupt: {detail}")]
    Corrupt {
        /// What did not read back.
        detail: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A source of events (a signer's store) cannot be read.
    #[error("{detail}")]
    Source {
        /// What is wrong, naming the source.
        detail: String,
    },
    /// A trust list line is not a key.
    #[error("trust list line {line}: {detail}")]
    TrustList {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        detail: String,
    },
}
