//! What one request may cost: the work budget of its reads (deadline, cancellation when the
//! client goes away, a cap on objects examined) and the admission of heavy reads (scans), a
//! few at a time in all and per user, so that no request and no user can take the service.
//!
//! Heavy reads run on their own few threads ([`ScanPool`]) at a lower CPU priority (nice
//! 10): on a busy machine the write path and short reads go first, and a scan takes what is
//! left over. Short lookups stay on the async threads.
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
    /// Heavy reads (listings and searches that scan) running at once, in all (default: half
    /// the cores, at least 1).
    pub heavy_total: usize,
    /// Heavy reads running at once for one user.
    pub heavy_per_user: usize,
}

/// The nice value of the scan threads (0 is normal, 19 the lowest priority).
const SCAN_NICE: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// The threads heavy reads run on: as many as may run at once, each at a lower CPU priority.
pub(crate) struct ScanPool {
    tx: Mutex<Option<std::sync::mpsc::SyncSender<Job>>>,
}

impl ScanPool {
    /// Starts `threads` scan threads.
    pub(crate) fn new(threads: usize) -> ScanPool {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(threads * 4);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ipam-scan-{i}"))
                .spawn(move || {
                    let me = rustix::thread::gettid();
                    if let Err(e) = rustix::process::setpriority_process(Some(me), SCAN_NICE) {
                        tracing::warn!("scan thread keeps normal CPU priority: {e}");
                    }
                    loop {
                        let job = rx.lock().expect("scan queue lock").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a scan thread");
        }
        ScanPool {
            tx: Mutex::new(Some(tx)),
        }
    }

    /// Runs `f` on a scan thread and answers its result (`None` if the pool stopped).
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (done, wait) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        let tx = self.tx.lock().expect("scan pool lock").clone()?;
        // Admission keeps at most as many jobs in flight as there are threads, so the queue
        // (four places per thread) always has room.
        tx.try_send(job).ok()?;
        wait.await.ok()
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            timeout: Duration::from_secs(10),
            max_examined: 2_000_000,
            // Half the cores: a scan slows the write path even at the lowest priority when it
            // shares a physical core with it (hyperthreads), so scans get at most half.
            heavy_total: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
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
