//! Helpers shared by the CLI's integration tests.

pub(crate) mod golden;

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

/// Runs `command` with `stdin` piped in (written from another thread, so a large input cannot
/// deadlock against a full stdout pipe) and stdout and stderr captured. Also returns whether
/// all of `stdin` was written: a command may stop reading early.
pub(crate) fn output_with_stdin(
    mut command: std::process::Command,
    stdin: &[u8],
) -> (std::process::Output, std::io::Result<()>) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let output = child.wait_with_output().unwrap();
    (output, writer.join().unwrap())
}
