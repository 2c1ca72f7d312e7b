//! The descriptor limit of a server: every open connection holds one (two when it is proxied),
//! and the soft limit is often 1,024 where the hard limit is far higher.

/// Raises the soft limit on open descriptors (RLIMIT_NOFILE) to the hard limit where the
/// system allows; returns the soft limit in force afterwards (`None`: unlimited or unknown).
#[cfg(unix)]
pub(crate) fn raise() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Refused (some systems cap the soft limit below an unlimited hard one): keep it.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    getrlimit(Resource::Nofile).current
}

/// Raises the soft limit on open descriptors where the system has one; nothing here.
#[cfg(not(unix))]
pub(crate) fn raise() -> Option<u64> {
    None
}
