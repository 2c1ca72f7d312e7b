//! Why a replay did not run: each is one line, and none is a divergence (those are
//! [`crate::Outcome::Diverged`]).

/// A reason not to replay, or not to trust what a replay would say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The record lacks a value replay needs.
    #[error("cannot replay: {0}")]
    Missing(String),
    /// The record asks for something replay does not reproduce.
    #[error("cannot replay: {0}")]
    Unsupported(String),
    /// The disclosed prompt and salt do not open the record's commitment.
    #[error("the disclosed prompt and salt do not open the record's prompt commitment")]
    Prompt,
    /// The weights file is not the recorded one.
    #[error("the model file is not the recorded one: {0}")]
    Model(String),
    /// The engine binary is not the recorded one, and that was not allowed.
    #[error("{0}; pass --allow-other-engine to replay anyway (reported as such)")]
    OtherEngine(String),
    /// The engine did not start, or could not be read.
    #[error("engine: {0}")]
    Engine(String),
    /// The server answered with an error, or with other settings than requested.
    #[error("server: {0}")]
    Server(String),
}
