//! Every answer adapter of the signer (OpenAI chat, completions and Responses, Anthropic
//! Messages, llama.cpp, Ollama) reads any bytes as a request, a whole answer and a stream
//! without panicking, and a stream reads the same whatever its split into pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    provenance_signer::adapter::fuzzing::check_answer(data);
});
