//! What one request may cost: the work budget of its reads (deadline, cancellation when the
//! client goes away, a cap on objects examined) and the admission of heavy reads (scans), a
//! few at a time in all and per user, so that no request and no user can take the service.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipam_engine::{Budget, Id};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Deadline of a request's reads (exports are exempt: they run a chunk at a time).
    pub timeout: Duration,
    /// Most objects (records, ranges, ...) one request's scans may examine; a filter's regular
    /// expressions count extra per object.
    pub max_examined: u64,
    /// Heavy reads (listings and searches that scan) running at once, in all.
    pub heavy_total: usize,
    /// Heavy reads running at once for one user.
    pub heavy_per_user: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            timeout: Duration::from_secs(10),
            max_examined: 2_000_000,
            heavy_total: 4,
            heavy_per_user: 2,
        }
    }
}

impl ReadLimits {
    /// A fresh budget for one request, stopped by `cancel`.
    pub(crate) fn budget(&self, cancel: Arc<AtomicBool>) -> Budget {
        Budget::unlimited()
            .with_timeout(self.timeout)
            .with_max_examined(self.max_examined)
            .with_cancel(cancel)
    }
}

/// Sets its flag when dropped: held by the request's future, so that when the client goes
/// away (the server drops the future) the reads it started stop at their next check.
pub(crate) struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Admission of heavy reads.
pub(crate) struct HeavyReads {
    total: Arc<Semaphore>,
    total_permits: usize,
    per_user: Mutex<HashMap<Id, Arc<Semaphore>>>,
    per_user_permits: usize,
}

/// A heavy read's places (per user and in all), given back when dropped.
pub(crate) struct Admitted {
    _user: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// Why a heavy read was not admitted.
#[derive(Debug)]
pub(crate) enum Busy {
    /// The user's own heavy reads fill its places until the deadline.
    User(usize),
    /// Every place is taken until the deadline.
    Total(usize),
}

impl HeavyReads {
    pub(crate) fn new(l: &ReadLimits) -> HeavyReads {
        HeavyReads {
            total: Arc::new(Semaphore::new(l.heavy_total.max(1))),
            total_permits: l.heavy_total.max(1),
            per_user: Mutex::new(HashMap::new()),
            per_user_permits: l.heavy_per_user.max(1),
        }
    }

    /// Waits (until `deadline`) for a place for `user`: first among its own, then in all, so
    /// that one user's queue never holds places others could use.
    pub(crate) async fn admit(&self, user: Id, deadline: Instant) -> Result<Admitted, Busy> {
        let mine = {
            let mut m = self.per_user.lock().expect("heavy reads lock");
            if m.len() > 10_000 {
                // Forget idle users (a semaphore with every permit free is idle).
                let n = self.per_user_permits;
                m.retain(|_, s| s.available_permits() < n);
            }
            m.entry(user)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_user_permits)))
                .clone()
        };
        let at = tokio::time::Instant::from_std(deadline);
        let user_permit = tokio::time::timeout_at(at, mine.acquire_owned())
            .await
            .map_err(|_| Busy::User(self.per_user_permits))?
            .map_err(|_| Busy::User(self.per_user_permits))?;
        let total_permit = tokio::time::timeout_at(at, self.total.clone().acquire_owned())
            .await
            .map_err(|_| Busy::Total(self.total_permits))?
            .map_err(|_| Busy::Total(self.total_permits))?;
        Ok(Admitted {
            _user: user_permit,
            _total: total_permit,
        })
    }
}
