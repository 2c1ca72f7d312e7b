//! Helpers shared by the CLI's integration tests.

use std::path::PathBuf;

/// A temporary directory for one test's files, removed on drop.
pub(crate) struct Tmp(tempfile::TempDir);

impl Tmp {
    /// A fresh directory whose name starts with `provenance-cli-<name>-`.
    pub(crate) fn new(name: &str) -> Self {
        Self(
            tempfile::Builder::new()
                .prefix(&format!("provenance-cli-{name}-"))
                .tempdir()
                .unwrap(),
        )
    }

    /// The directory itself.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.0.path()
    }

    /// The path of `name` inside the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes `content` to `name` and returns its path.
    pub(crate) fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Like [`Tmp::write`], returning the path as a string (for command-line arguments).
    pub(crate) fn write_str(&self, name: &str, content: &[u8]) -> String {
        self.write(name, content).to_str().unwrap().to_owned()
    }
}
