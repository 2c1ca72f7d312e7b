//! Record templates: what a signer knows before the answer (model, runtime, sampling, ...),
//! completed with the output it served and, optionally, a prompt commitment.
//!
//! A template is a JSON object in the record's shape without `output`, which is always
//! computed from the output bytes and never taken from the template. `v`, when present, must
//! be the supported [`RECORD_VERSION`]. `provenance sign --record` and the C ABI's
//! `provenance_sign` both build records this way.

use serde_json::{Map, Value};

use crate::commitment::PromptCommitment;
use crate::record::{Output, RECORD_VERSION, Record};

/// A record without `output`, checked to be a JSON object of the supported version.
#[derive(Clone, Debug, PartialEq)]
pub struct Template(Map<String, Value>);

/// Why a template gives no record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template is not JSON.
    #[error("is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// The template is JSON but not an object.
    #[error("is not a JSON object")]
    NotObject,
    /// The template has `output`, which only the output bytes may give.
    #[error("contains `output`: it is computed from the output bytes")]
    HasOutput,
    /// The template names another record version.
    #[error("only record version {RECORD_VERSION} is supported")]
    Version,
    /// With `output` added, the template is not a valid record (an unknown field, a missing
    /// `model.name`, ...).
    #[error("is not a valid record: {0}")]
    Invalid(serde_json::Error),
}

impl Template {
    /// Parses a template from JSON text.
    ///
    /// # Errors
    ///
    /// The text is not a JSON object, has `output`, or names another version.
    pub fn parse(json: &[u8]) -> Result<Self, TemplateError> {
        let value: Value = serde_json::from_slice(json).map_err(TemplateError::NotJson)?;
        let Value::Object(fields) = value else {
            return Err(TemplateError::NotObject);
        };
        if fields.contains_key("output") {
            return Err(TemplateError::HasOutput);
        }
        if fields
            .get("v")
            .is_some_and(|v| v != &Value::from(RECORD_VERSION))
        {
            return Err(TemplateError::Version);
        }
        Ok(Self(fields))
    }

    /// A template naming only the model.
    pub fn for_model(name: &str) -> Self {
        let mut model = Map::new();
        model.insert("name".into(), Value::from(name));
        let mut fields = Map::new();
        fields.insert("model".into(), Value::Object(model));
        Self(fields)
    }

    /// The record: the template with `output`, the prompt commitment (replacing any in the
    /// template) and the version.
    ///
    /// # Errors
    ///
    /// The completed template is not a valid record.
    pub fn fill(
        self,
        output: &Output,
        prompt: Option<&PromptCommitment>,
    ) -> Result<Record, TemplateError> {
        let Self(mut fields) = self;
        if let Some(prompt) = prompt {
            fields.insert("prompt".into(), to_value(prompt));
        }
        fields.insert("output".into(), to_value(output));
        fields.insert("v".into(), Value::from(RECORD_VERSION));
        serde_json::from_value(Value::Object(fields)).map_err(TemplateError::Invalid)
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    // Record parts serialise to JSON objects of strings and integers: this cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::{FORMAT_TEXT, Salt};

    #[test]
    fn a_template_is_completed_with_output_prompt_and_version() {
        let template =
            Template::parse(br#"{"model":{"name":"m"},"sampling":{"seed":42}}"#).unwrap();
        let salt = Salt::random();
        let prompt = PromptCommitment::commit(FORMAT_TEXT, b"hi", &salt);
        let output = Output::from_bytes(b"answer", "text/plain");
        let record = template.fill(&output, Some(&prompt)).unwrap();
        assert_eq!(record.model.name, "m");
        assert_eq!(record.output, output);
        assert!(record.prompt.unwrap().check(b"hi", &salt));
        let record = Template::for_model("n").fill(&output, None).unwrap();
        assert_eq!(record.model.name, "n");
    }

    #[test]
    fn templates_that_cannot_be_records_are_refused_by_kind() {
        let output = Output::from_bytes(b"x", "text/plain");
        let kind = |json: &str| match Template::parse(json.as_bytes()) {
            Err(e) => e,
            Ok(t) => t.fill(&output, None).unwrap_err(),
        };
        assert!(matches!(kind("not json"), TemplateError::NotJson(_)));
        assert!(matches!(kind("[]"), TemplateError::NotObject));
        let has_output = r#"{"model":{"name":"m"},"output":{}}"#;
        assert!(matches!(kind(has_output), TemplateError::HasOutput));
        assert!(matches!(
            kind(r#"{"model":{"name":"m"},"v":2}"#),
            TemplateError::Version
        ));
        assert!(matches!(kind(r#"{"model":{}}"#), TemplateError::Invalid(_)));
    }
}
