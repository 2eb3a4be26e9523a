//! Allocation: next free addresses and blocks, decided inside the writer so that no two
//! clients ever get the same one.

use std::net::IpAddr;

use ipam_index::{BlockSize, Start};

use crate::command::{
    AllocMode, AllocRequest, BlockRequest, BlockSpec, NewRange, Outcome, MAX_ALLOC,
};
use crate::error::EngineError;
use crate::model::{Hold, ObjKey, ObjType, Object, RecordState};

use super::ranges::secs_to_ms;
use super::Tx;

impl Tx<'_> {
    pub(super) fn allocate(&mut self, req: &AllocRequest) -> Result<Outcome, EngineError> {
        if req.count == 0 || req.count > MAX_ALLOC {
            return Err(EngineError::invalid(
                "count",
                format!("must be 1 to {MAX_ALLOC}, not {}", req.count),
            ));
        }
        if req.pool.is_empty() {
            return Err(EngineError::invalid(
                "pool",
                "name at least one range to allocate from",
            ));
        }
        let (state, hold) = match req.mode {
            AllocMode::Assign => (RecordState::Assigned, None),
            AllocMode::Claim => (RecordState::Claimed, None),
            AllocMode::Hold { seconds } => (
                RecordState::Held,
                Some(Hold {
                    expires: self.now.saturating_add(secs_to_ms(seconds)?),
                    user: self.actor.id,
                }),
            ),
        };
        let props = self.st.merge_properties(
            ObjType::IpamRecord,
            &Default::default(),
            &req.properties,
            false,
            true,
        )?;
        let want = req.count as usize;
        let mut out: Vec<IpAddr> = Vec::with_capacity(want);
        let mut space = None;
        let mut started = req.start.is_none();
        let mut names = Vec::new();
        for (i, &rid) in req.pool.iter().enumerate() {
            let r = self.open_range(rid, "allocating addresses")?;
            names.push(r.name.clone());
            if *space.get_or_insert(r.space) != r.space {
                return Err(EngineError::invalid(
                    "pool",
                    "all ranges of a pool must be in one address space",
                ));
            }
            let (sp, from, to) = (r.space, r.from, r.to);
            let start = match req.start {
                Some(s) if !started => {
                    if s < from
                        || s > to
                        || std::mem::discriminant(&s) != std::mem::discriminant(&from)
                    {
                        continue;
                    }
                    started = true;
                    Start::At(s)
                }
                _ if req.random => Start::Random(self.seed.wrapping_add(i as u64)),
                _ => Start::First,
            };
            let e = &self.st.ranges[&rid];
            let found = self.st.spaces[&sp].idx.next_free_n(
                e.rid,
                start,
                &req.exclude,
                want - out.len(),
            )?;
            for &addr in &found {
                let mut rec = self.st.record(sp, addr);
                rec.state = state;
                rec.hold = hold;
                for (k, v) in &props {
                    rec.properties.insert(k.clone(), v.clone());
                }
                self.put(
                    ObjKey::IpamRecord { space: sp, addr },
                    Some(Object::IpamRecord(rec)),
                )?;
            }
            out.extend(found);
            if out.len() == want {
                break;
            }
        }
        if !started {
            return Err(EngineError::invalid(
                "start",
                format!(
                    "{} is in none of the pool's ranges",
                    req.start.expect("set when not started")
                ),
            ));
        }
        if out.len() < want {
            return Err(EngineError::Exhausted {
                pool: names.join(", "),
                asked: want as u64,
                found: out.len() as u64,
            });
        }
        Ok(Outcome::Addresses(out))
    }

    pub(super) fn allocate_blocks(&mut self, req: &BlockRequest) -> Result<Outcome, EngineError> {
        if req.count == 0 || req.count > MAX_BLOCKS {
            return Err(EngineError::invalid(
                "count",
                format!("must be 1 to {MAX_BLOCKS}, not {}", req.count),
            ));
        }
        let r = self.open_range(req.range, "allocating blocks")?.clone();
        let size = match req.size {
            BlockSpec::Prefix(p) => BlockSize::Prefix(u32::from(p)),
            BlockSpec::Size(n) => BlockSize::Count(u128::from(n)),
        };
        let rid = self.st.ranges[&req.range].rid;
        let blocks = self.st.spaces[&r.space].idx.next_free_blocks(
            rid,
            size,
            req.start,
            req.count as usize,
        )?;
        if blocks.len() < req.count as usize {
            return Err(EngineError::Exhausted {
                pool: r.name.clone(),
                asked: u64::from(req.count),
                found: blocks.len() as u64,
            });
        }
        let mut created = Vec::new();
        if let Some(t) = &req.create {
            for &(from, to) in &blocks {
                let nr = NewRange {
                    space: Some(r.space),
                    from: Some(from),
                    to: Some(to),
                    ..t.clone()
                };
                created.push(self.create_range(&nr)?);
            }
        }
        Ok(Outcome::Blocks { blocks, created })
    }
}

/// Most blocks one command finds.
const MAX_BLOCKS: u32 = 65_536;
