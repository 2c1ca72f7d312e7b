//! Where in-flight requests stand: given an id at response start, not yet signed (or never
//! to be), for [`Lookup`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{Lookup, RequestId};

/// In-flight requests: given an id at response start, not yet signed (or never to be).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    in_progress: HashMap<RequestId, ()>,
    failed: HashMap<RequestId, String>,
    failed_order: VecDeque<RequestId>,
}

/// Failures remembered for `GET /provenance/<id>`; older ones are forgotten (then 404).
const MAX_FAILED: usize = 10_000;

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryInner> {
        // The maps stay consistent whatever panicked: every update is one insert or remove.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start(&self, id: RequestId) {
        self.lock().in_progress.insert(id, ());
    }

    pub(crate) fn done(&self, id: RequestId) {
        self.lock().in_progress.remove(&id);
    }

    pub(crate) fn fail(&self, id: RequestId, reason: String) {
        let mut inner = self.lock();
        inner.in_progress.remove(&id);
        if inner.failed.insert(id, reason).is_none() {
            inner.failed_order.push_back(id);
        }
        while inner.failed_order.len() > MAX_FAILED {
            if let Some(old) = inner.failed_order.pop_front() {
                inner.failed.remove(&old);
            }
        }
    }

    pub(crate) fn state(&self, id: RequestId) -> Option<Lookup> {
        let inner = self.lock();
        if inner.in_progress.contains_key(&id) {
            return Some(Lookup::InProgress);
        }
        inner.failed.get(&id).map(|r| Lookup::Failed(r.clone()))
    }
}
