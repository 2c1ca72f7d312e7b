//! Helpers shared by the signer's integration tests.

use serde_json::Value;

/// The text a client reads from a response body (one JSON document, an SSE stream or NDJSON),
/// with code independent of the adapters.
pub(crate) fn client_text(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let documents: Vec<Value> = if let Ok(whole) = serde_json::from_str(text) {
        vec![whole]
    } else if text.contains("data:") {
        text.split("\n\n")
            .filter_map(|m| m.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut out = String::new();
    for d in documents {
        for pointer in [
            "/choices/0/delta/content",
            "/choices/0/message/content",
            "/choices/0/text",
            "/content",
            "/response",
            "/message/content",
        ] {
            if let Some(s) = d.pointer(pointer).and_then(Value::as_str) {
                out.push_str(s);
            }
        }
    }
    out
}
