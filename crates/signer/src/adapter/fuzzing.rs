//! The property behind the `adapter_parse` fuzz target: every adapter reads any bytes as a
//! request body, a whole answer and a stream without panicking, and a stream gives the same
//! reading whatever the split of its bytes into pieces.

use super::stream::Framing;
use super::{Api, Generation, parse_request};

/// The APIs in the order the input's first byte picks them (`byte % 7`).
pub const APIS: [Api; 7] = [
    Api::AnthropicMessages,
    Api::LlamaCompletion,
    Api::OllamaChat,
    Api::OllamaGenerate,
    Api::OpenAiChat,
    Api::OpenAiCompletions,
    Api::OpenAiResponses,
];

/// The first byte picks the API (`byte % 7`) and the piece size (`byte / 7`, at least 1); the
/// rest is read as that API's request body, as a whole answer and as a stream, once whole and
/// once in pieces. Nothing may panic, the two stream readings must be equal, and the output the
/// record would cover is computed for both readings.
pub fn check_answer(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let api = APIS[usize::from(head) % APIS.len()];
    let piece = (usize::from(head) / APIS.len()).max(1);
    let _ = parse_request(api, rest);
    let mut whole = Generation::default();
    whole.apply_body(api, rest);
    let _ = whole.output();
    let once = stream(api, &[rest]);
    let pieces: Vec<&[u8]> = rest.chunks(piece).collect();
    let split = stream(api, &pieces);
    assert_eq!(once, split, "splitting the stream changed what was read");
    let _ = once.output();
}

/// `pieces` read in order as a stream of `api`, then finished.
pub fn stream(api: Api, pieces: &[&[u8]]) -> Generation {
    let mut generation = Generation::default();
    let mut framing = Framing::new(api.framing());
    let mut items = Vec::new();
    for piece in pieces {
        framing.feed(piece, &mut |item| items.push(item));
    }
    framing.finish(&mut |item| items.push(item));
    for item in &items {
        generation.apply_item(api, item);
    }
    generation
}
