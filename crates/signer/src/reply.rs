//! The one shape of every answer the signer gives itself instead of the model server: a JSON
//! error body in the OpenAI style, so that clients already parse it.
//!
//! ```json
//! {"error":{"message":"request body over 8388608 bytes","type":"provenance"}}
//! ```

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

/// The JSON error body with `message`.
pub fn error_body(message: &str) -> Bytes {
    let body = serde_json::json!({ "error": { "message": message, "type": "provenance" } });
    Bytes::from(body.to_string())
}

/// A response of `status` with the JSON error body (see the module).
pub fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    error_as(status, message, Full::new)
}

/// [`error`], with the body made by `body` from the bytes.
pub(crate) fn error_as<B>(
    status: StatusCode,
    message: &str,
    body: impl FnOnce(Bytes) -> B,
) -> Response<B> {
    let mut response = Response::new(body(error_body(message)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_body_is_openai_shaped_json() {
        let response = error(StatusCode::BAD_GATEWAY, "upstream \"x\" down");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let value: serde_json::Value = serde_json::from_slice(&error_body("a \"b\"")).unwrap();
        assert_eq!(value["error"]["message"], "a \"b\"");
        assert_eq!(value["error"]["type"], "provenance");
    }
}
