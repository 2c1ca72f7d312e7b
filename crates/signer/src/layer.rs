//! The tower [`Layer`] that puts a [`crate::Signer`] in front of a model server's service.

use std::sync::Arc;

use tower_layer::Layer;

use crate::Signer;
use crate::service::SigningService;

/// Wraps a service so that every answer of a known API is signed; see [`SigningService`].
#[derive(Clone, Debug)]
pub struct SigningLayer {
    signer: Arc<Signer>,
}

impl SigningLayer {
    /// A layer signing with `signer`.
    pub fn new(signer: Arc<Signer>) -> Self {
        Self { signer }
    }
}

impl<S> Layer<S> for SigningLayer {
    type Service = SigningService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SigningService::new(inner, self.signer.clone())
    }
}
