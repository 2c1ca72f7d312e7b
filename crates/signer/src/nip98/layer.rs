//! NIP-98 as a tower layer in front of the signing layer: a request passes only with an
//! `Authorization: Nostr ...` header that [`Nip98Verifier::check`] accepts for its method,
//! URL and body.
//!
//! Everything but the `payload` tag is checked before the body is read
//! ([`Nip98Verifier::check_head`]): a request refused anyway is answered at once, its body
//! unread. Then the body is read whole (at most the configured bytes; over it or unreadable:
//! `413`) to check the `payload` tag, and handed on rebuilt from the same bytes. A refused request
//! gets `401` with the reason as the JSON error body ([`crate::reply`]) and
//! `WWW-Authenticate: Nostr`. An accepted one loses its `Authorization` header (it is for
//! this server, not the next) and gains the caller's key as a [`Caller`] extension, which the
//! signer writes into records with [`crate::SignerBuilder::record_caller`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use provenance::nostr::prelude::Timestamp;
use tower_layer::Layer;
use tower_service::Service;

use super::{Nip98Verifier, request_url};
use crate::Caller;
use crate::body::BoxError;
use crate::reply;

/// Requires NIP-98 auth of every request; see the module.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    verifier: Nip98Verifier,
    public_url: String,
    max_request_bytes: usize,
}

impl AuthLayer {
    /// Checks with `verifier` against URLs under `public_url` (the base URL clients reach the
    /// server at, see [`request_url`]), reading bodies of at most `max_request_bytes`.
    pub fn new(verifier: Nip98Verifier, public_url: &str, max_request_bytes: usize) -> Self {
        Self {
            config: Arc::new(Config {
                verifier,
                public_url: public_url.to_owned(),
                max_request_bytes,
            }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    config: Arc<Config>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// The inner service's answer, or the layer's own refusal.
    type Response = Response<Either<Full<Bytes>, RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the ready service is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let url = request_url(&config.public_url, path);
            let header = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
            // Everything but the payload first: a caller refused anyway makes the server read
            // no body.
            let head =
                config
                    .verifier
                    .check_head(header, parts.method.as_str(), &url, Timestamp::now());
            let checked = match head {
                Ok(head) => {
                    let Ok(collected) =
                        Limited::new(body, config.max_request_bytes).collect().await
                    else {
                        return Ok(refusal(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request body too large or unreadable",
                        ));
                    };
                    let bytes = collected.to_bytes();
                    // The id may be written to a store (a blocking write): off the runtime.
                    let (checker, body) = (config.clone(), bytes.clone());
                    match tokio::task::spawn_blocking(move || {
                        checker.verifier.check_body(head, Some(&body))
                    })
                    .await
                    {
                        Ok(checked) => checked.map(|key| (key, bytes)),
                        Err(e) => Err(super::AuthError::Remember(
                            crate::store::StoreError::Thread(e.to_string()),
                        )),
                    }
                }
                Err(e) => Err(e),
            };
            match checked {
                Ok((key, bytes)) => {
                    parts.headers.remove(AUTHORIZATION);
                    parts.extensions.insert(Caller(key));
                    let response = inner
                        .call(Request::from_parts(parts, B::from(bytes)))
                        .await?;
                    Ok(response.map(Either::Right))
                }
                Err(reason) => {
                    let mut response = refusal(StatusCode::UNAUTHORIZED, &reason.to_string());
                    response
                        .headers_mut()
                        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Nostr"));
                    Ok(response)
                }
            }
        })
    }
}

fn refusal<RB>(status: StatusCode, message: &str) -> Response<Either<Full<Bytes>, RB>> {
    reply::error_as(status, message, |bytes| Either::Left(Full::new(bytes)))
}
