//! The golden replay fixture (`fixtures/replay/tiny-seeded.*`, made by the portable
//! llama-server) with the tiny model written beside it, for the tests of `provenance replay`
//! and of `provenance verify --llama-server`.

use std::path::{Path, PathBuf};

use provenance::event::{Limits, parse_event, sign};
use provenance::{Keys, clock::SystemClock};
use provenance_harness::write_tiny_model;

use super::Tmp;

/// `fixtures/replay/`.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/replay")
}

/// The seeded tiny-model answer, its disclosed prompt and salt, and the model file.
pub(crate) struct Case {
    pub(crate) tmp: Tmp,
    pub(crate) model: PathBuf,
    pub(crate) prompt: PathBuf,
    pub(crate) salt: String,
    pub(crate) event: String,
}

impl Case {
    /// The case, with the tiny model written into a fresh directory named after `name`.
    pub(crate) fn new(name: &str) -> Self {
        let tmp = Tmp::new(name);
        let model = write_tiny_model(tmp.dir()).unwrap();
        let dir = fixtures();
        Self {
            model,
            prompt: dir.join("tiny-seeded.prompt.txt"),
            salt: std::fs::read_to_string(dir.join("salt.hex"))
                .unwrap()
                .trim()
                .to_owned(),
            event: std::fs::read_to_string(dir.join("tiny-seeded.json")).unwrap(),
            tmp,
        }
    }

    /// The fixture's record, changed by `edit` and signed again with a fresh key, in the
    /// case's directory as `name`.
    pub(crate) fn resigned(
        &self,
        name: &str,
        edit: impl FnOnce(&mut provenance::Record),
    ) -> PathBuf {
        let event = parse_event(self.event.trim(), &Limits::default()).unwrap();
        let mut record = provenance::event::verify(&event).record().unwrap().clone();
        edit(&mut record);
        let event = sign(&record, &Keys::generate(), &SystemClock).unwrap();
        self.tmp.write(name, event.as_json().as_bytes())
    }
}

/// Bytes as text, for messages.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
