//! The index of one address space, addressed by engine ids and `IpAddr`.
//!
//! `ipam-index` issues its own range ids and reuses them after removal; this wrapper maps them
//! to the engine's never-reused [`Id`]s in both directions and dispatches over the family.

use std::net::IpAddr;

use ipam_index::{
    Addr, AddressSpace, AnyRangeId, BlockSize, ChunkVec, FreeQuery, IndexError, RangeId,
    RemoveMode, Space, Start, Utilization,
};

use crate::model::Id;

/// Runs `$body` with `$s` bound to the typed space of `$rid`'s family and `$r` to its id.
macro_rules! on_family {
    ($idx:expr, $rid:expr, |$s:ident, $r:ident| $body:expr) => {
        match $rid {
            AnyRangeId::V4($r) => {
                let $s = $idx.v4();
                $body
            }
            AnyRangeId::V6($r) => {
                let $s = $idx.v6();
                $body
            }
        }
    };
}

/// The index of one address space plus the id maps.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpaceIndex {
    pub(crate) index: AddressSpace,
    /// Engine id by raw index id, per family (0: no range); copy-on-write like the index.
    pub(crate) ids_v4: ChunkVec<Id>,
    pub(crate) ids_v6: ChunkVec<Id>,
}

fn conv<A: Addr>(ip: IpAddr) -> Result<A, IndexError> {
    A::from_ip(ip).ok_or(IndexError::FamilyMismatch {
        first: ip,
        second: A::from_u128(0).to_ip(),
    })
}

fn slot(v: &mut ChunkVec<Id>, raw: u32) -> &mut Id {
    let i = raw as usize;
    while v.len() <= i {
        v.push(0);
    }
    &mut v[i]
}

impl SpaceIndex {
    /// The engine id of an index range.
    pub(crate) fn id_of(&self, rid: AnyRangeId) -> Id {
        let (v, raw) = match rid {
            AnyRangeId::V4(r) => (&self.ids_v4, r.get()),
            AnyRangeId::V6(r) => (&self.ids_v6, r.get()),
        };
        v.get(raw as usize).copied().unwrap_or(0)
    }

    fn set_id(&mut self, rid: AnyRangeId, id: Id) {
        match rid {
            AnyRangeId::V4(r) => *slot(&mut self.ids_v4, r.get()) = id,
            AnyRangeId::V6(r) => *slot(&mut self.ids_v6, r.get()) = id,
        }
    }

    pub(crate) fn insert(
        &mut self,
        id: Id,
        from: IpAddr,
        to: IpAddr,
    ) -> Result<AnyRangeId, IndexError> {
        let rid = self.index.insert(from, to)?;
        self.set_id(rid, id);
        Ok(rid)
    }

    /// Removes a range, handing its children to its parent.
    pub(crate) fn remove(&mut self, rid: AnyRangeId) -> Result<(), IndexError> {
        match rid {
            AnyRangeId::V4(r) => self.index.v4_mut().remove(r, RemoveMode::Reparent)?,
            AnyRangeId::V6(r) => self.index.v6_mut().remove(r, RemoveMode::Reparent)?,
        };
        self.set_id(rid, 0);
        Ok(())
    }

    pub(crate) fn parent(&self, rid: AnyRangeId) -> Option<Id> {
        on_family!(self.index, rid, |s, r| s
            .get(r)
            .and_then(|i| i.parent)
            .map(|p| self.id_of(wrap(rid, p))))
    }

    pub(crate) fn prefix_len(&self, rid: AnyRangeId) -> Option<u8> {
        on_family!(self.index, rid, |s, r| s.get(r).and_then(|i| i.prefix_len))
    }

    pub(crate) fn child_count(&self, rid: AnyRangeId) -> usize {
        on_family!(self.index, rid, |s, r| s.get(r).map_or(0, |i| i.children))
    }

    /// Engine ids of the ranges containing `rid`, nearest first.
    pub(crate) fn ancestors(&self, rid: AnyRangeId) -> Vec<Id> {
        on_family!(self.index, rid, |s, r| s
            .ancestors(r)
            .unwrap_or_default()
            .into_iter()
            .map(|a| self.id_of(wrap(rid, a)))
            .collect())
    }

    /// Engine ids of `rid` and every range below it, parents before children.
    pub(crate) fn subtree(&self, rid: AnyRangeId) -> Vec<Id> {
        on_family!(self.index, rid, |s, r| match s.subtree(r) {
            Ok(it) => it.map(|a| self.id_of(wrap(rid, a))).collect(),
            Err(_) => Vec::new(),
        })
    }

    /// Engine ids of one page of the children of `rid` (`None`: top level of `family_of`).
    pub(crate) fn children(
        &self,
        parent: Option<AnyRangeId>,
        v6: bool,
        start: Option<IpAddr>,
        limit: usize,
    ) -> Result<Vec<Id>, IndexError> {
        fn page<A: Addr>(
            s: &Space<A>,
            p: Option<RangeId>,
            start: Option<IpAddr>,
            limit: usize,
        ) -> Result<Vec<RangeId>, IndexError> {
            let start = start.map(conv::<A>).transpose()?;
            s.children(p, start, limit)
        }
        Ok(match parent {
            Some(AnyRangeId::V4(r)) => page(self.index.v4(), Some(r), start, limit)?
                .into_iter()
                .map(|k| self.id_of(AnyRangeId::V4(k)))
                .collect(),
            Some(AnyRangeId::V6(r)) => page(self.index.v6(), Some(r), start, limit)?
                .into_iter()
                .map(|k| self.id_of(AnyRangeId::V6(k)))
                .collect(),
            None if !v6 => page(self.index.v4(), None, start, limit)?
                .into_iter()
                .map(|k| self.id_of(AnyRangeId::V4(k)))
                .collect(),
            None => page(self.index.v6(), None, start, limit)?
                .into_iter()
                .map(|k| self.id_of(AnyRangeId::V6(k)))
                .collect(),
        })
    }

    /// Engine id of the deepest range containing `addr`.
    pub(crate) fn deepest(&self, addr: IpAddr) -> Option<Id> {
        self.index.deepest(addr).map(|r| self.id_of(r))
    }

    pub(crate) fn is_used(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.index.v4().is_used(u32::from(a)),
            IpAddr::V6(a) => self.index.v6().is_used(u128::from(a)),
        }
    }

    pub(crate) fn set_used(&mut self, addr: IpAddr, used: bool) {
        if used {
            self.index.mark_used(addr);
        } else {
            self.index.mark_free(addr);
        }
    }

    /// Up to `n` free addresses of a range (not marked).
    pub(crate) fn next_free_n(
        &self,
        rid: AnyRangeId,
        start: Start<IpAddr>,
        exclude: &[(IpAddr, IpAddr)],
        n: usize,
    ) -> Result<Vec<IpAddr>, IndexError> {
        fn go<A: Addr>(
            s: &Space<A>,
            r: RangeId,
            start: Start<IpAddr>,
            exclude: &[(IpAddr, IpAddr)],
            n: usize,
        ) -> Result<Vec<IpAddr>, IndexError> {
            let start = match start {
                Start::First => Start::First,
                Start::At(a) => Start::At(conv::<A>(a)?),
                Start::Random(seed) => Start::Random(seed),
            };
            let ex: Vec<(A, A)> = exclude
                .iter()
                .filter_map(|&(a, b)| Some((A::from_ip(a)?, A::from_ip(b)?)))
                .collect();
            let q = FreeQuery {
                start,
                skip_children: true,
                exclude: &ex,
                ..FreeQuery::default()
            };
            Ok(s.next_free_n(r, &q, n)?.into_iter().map(A::to_ip).collect())
        }
        on_family!(self.index, rid, |s, r| go(s, r, start, exclude, n))
    }

    /// Up to `n` free blocks of a range.
    pub(crate) fn next_free_blocks(
        &self,
        rid: AnyRangeId,
        size: BlockSize,
        start: Option<IpAddr>,
        n: usize,
    ) -> Result<Vec<(IpAddr, IpAddr)>, IndexError> {
        fn go<A: Addr>(
            s: &Space<A>,
            r: RangeId,
            size: BlockSize,
            start: Option<IpAddr>,
            n: usize,
        ) -> Result<Vec<(IpAddr, IpAddr)>, IndexError> {
            let start = start.map(conv::<A>).transpose()?;
            Ok(s.next_free_blocks(r, size, start, n)?
                .into_iter()
                .map(|(a, b)| (a.to_ip(), b.to_ip()))
                .collect())
        }
        on_family!(self.index, rid, |s, r| go(s, r, size, start, n))
    }

    pub(crate) fn utilization(&self, rid: AnyRangeId) -> Result<Utilization, IndexError> {
        on_family!(self.index, rid, |s, r| s.utilization(r))
    }

    /// Up to `limit` used addresses in `from..=to`.
    pub(crate) fn used_in(
        &self,
        from: IpAddr,
        to: IpAddr,
        limit: usize,
    ) -> Result<Vec<IpAddr>, IndexError> {
        fn go<A: Addr>(
            s: &Space<A>,
            from: IpAddr,
            to: IpAddr,
            limit: usize,
        ) -> Result<Vec<IpAddr>, IndexError> {
            Ok(s.used_in(conv::<A>(from)?, conv::<A>(to)?, limit)?
                .into_iter()
                .map(A::to_ip)
                .collect())
        }
        match from {
            IpAddr::V4(_) => go(self.index.v4(), from, to, limit),
            IpAddr::V6(_) => go(self.index.v6(), from, to, limit),
        }
    }

    pub(crate) fn prepare_lookups(&self) {
        self.index.v4().prepare_lookups();
        self.index.v6().prepare_lookups();
    }
}

fn wrap(like: AnyRangeId, r: RangeId) -> AnyRangeId {
    match like {
        AnyRangeId::V4(_) => AnyRangeId::V4(r),
        AnyRangeId::V6(_) => AnyRangeId::V6(r),
    }
}
