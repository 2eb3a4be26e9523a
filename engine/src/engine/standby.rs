//! A standby engine: it follows the change log another instance writes, publishing a version
//! after each page, until the writer role frees up; then it becomes the writer.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use super::writer::{writer_loop, Pending};
use super::Shared;
use crate::error::EngineError;
use crate::model::Millis;
use crate::snapshot;
use crate::state::State;
use crate::store::Store;

/// A standby: follows the change log until the writer role is free, then becomes the
/// writer on the same store handle (which now holds the role).
pub(super) fn standby_then_write(shared: &Shared, mut store: Box<dyn Store>, mut st: State) {
    match follow(shared, &mut *store, &mut st) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            shared.poison(format!("following the change log as a standby failed: {e}"));
            return;
        }
    }
    let (tx, rx) = mpsc::sync_channel::<Pending>(shared.config.max_batch * 4);
    {
        let mut slot = shared.tx.lock().expect("sender lock");
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        *slot = Some(tx);
        *shared.standby.lock().expect("standby lock") = None;
    }
    writer_loop(shared, store, &rx, st);
}

/// Follows the log; answers true once this instance holds the writer role and has caught
/// up with everything the previous writer committed, false when the engine stops first.
fn follow(shared: &Shared, store: &mut dyn Store, st: &mut State) -> Result<bool, EngineError> {
    loop {
        if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        catch_up(shared, store, st)?;
        if store.try_become_writer(&shared.config.instance)? {
            // Whatever the old writer committed before it lost the role is in the log now.
            catch_up(shared, store, st)?;
            let meta = store.meta()?;
            let now = (shared.config.clock)();
            let ttl = shared.config.idempotency_ttl.as_millis() as Millis;
            let keys = store.idempotency_keys(now - ttl)?;
            st.next_id = st.next_id.max(meta.next_id);
            for e in keys {
                st.idempotency.insert(e.key.clone(), Arc::new(e));
            }
            return Ok(true);
        }
        if let Some(a) = store.active_instance()? {
            *shared.standby.lock().expect("standby lock") = Some(a);
        }
        store.wait_for_changes(Duration::from_millis(200))?;
    }
}

/// Applies the changes other instances committed since this state's last one, publishing a
/// version after each page.
fn catch_up(shared: &Shared, store: &mut dyn Store, st: &mut State) -> Result<(), EngineError> {
    loop {
        let page = store.changes_after(st.applied_seq, 10_000)?;
        if page.is_empty() {
            return Ok(());
        }
        snapshot::apply_changes(st, page)?;
        for s in st.spaces.values() {
            s.idx.prepare_lookups();
        }
        shared.publish(Arc::new(st.clone()));
        shared.set_committed(st.applied_seq);
    }
}
