//! Edge cases: whole-family containers, /32 and /128, the top of each family, size limits,
//! and the errors for bad input (each leaving the index unchanged).

use std::net::IpAddr;

use ipam_index::{
    AddrCount, AddressSpace, AnyRangeId, BlockSize, FreeQuery, IndexError, RemoveMode, Space, Start,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

#[test]
fn whole_v4_space_as_a_container() {
    let mut s = Space::<u32>::new();
    let all = s.insert(0, u32::MAX).unwrap();
    let net10 = s.insert(v4("10.0.0.0"), v4("10.255.255.255")).unwrap();
    let top = s.insert(v4("255.255.255.0"), u32::MAX).unwrap();
    let host = s.insert(u32::MAX, u32::MAX).unwrap();
    s.validate().unwrap();
    assert_eq!(s.get(all).unwrap().prefix_len, Some(0));
    assert_eq!(s.get(net10).unwrap().parent, Some(all));
    assert_eq!(s.get(host).unwrap().parent, Some(top));
    assert_eq!(s.get(host).unwrap().prefix_len, Some(32));
    assert_eq!(s.deepest(u32::MAX), Some(host));
    assert_eq!(s.deepest(v4("10.1.2.3")), Some(net10));
    assert_eq!(s.deepest(v4("11.0.0.0")), Some(all));
    s.prepare_lookups();
    assert_eq!(s.deepest(u32::MAX), Some(host));
    assert_eq!(s.deepest(0), Some(all));
    let u = s.utilization(all).unwrap();
    assert_eq!(u.size.get(), Some(1 << 32));
    assert_eq!(u.in_children.get(), Some((1 << 24) + 256));
    // /32 holds one address; it is free until marked, and has no network/broadcast to skip.
    assert_eq!(s.next_free(host, &FreeQuery::default()), Ok(Some(u32::MAX)));
    assert!(s.mark_used(u32::MAX));
    assert_eq!(s.next_free(host, &FreeQuery::default()), Ok(None));
    assert_eq!(s.utilization(all).unwrap().used, 1);
    // The /24 at the top: broadcast 255.255.255.255 is in the /32 and used; .254 is free.
    let q = FreeQuery {
        start: Start::At(v4("255.255.255.250")),
        ..FreeQuery::default()
    };
    assert_eq!(
        s.next_free_n(top, &q, 10).unwrap(),
        vec![
            v4("255.255.255.250"),
            v4("255.255.255.251"),
            v4("255.255.255.252"),
            v4("255.255.255.253"),
            v4("255.255.255.254")
        ]
    );
    let blocks = s
        .next_free_blocks(all, BlockSize::Prefix(8), None, 300)
        .unwrap();
    assert_eq!(blocks.len(), 254, "every /8 but 10/8 and 255/8");
    assert_eq!(
        blocks.last(),
        Some(&(v4("254.0.0.0"), v4("254.255.255.255")))
    );
    assert_eq!(s.remove(all, RemoveMode::Reparent), Ok(1));
    s.validate().unwrap();
    assert_eq!(s.count_used(0, u32::MAX), Ok(1));
}

#[test]
fn whole_v6_space_and_the_2_pow_128_boundary() {
    let mut s = Space::<u128>::new();
    let all = s.insert(0, u128::MAX).unwrap();
    let u = s.utilization(all).unwrap();
    assert_eq!(u.size, AddrCount::ALL_V6);
    assert_eq!(
        u.size.to_string(),
        "340282366920938463463374607431768211456"
    );
    assert_eq!(u.free(), AddrCount::ALL_V6);
    let low = s.insert(0, u128::from(u64::MAX)).unwrap();
    assert_eq!(s.utilization(low).unwrap().size.get(), Some(1 << 64));
    assert_eq!(s.get(low).unwrap().prefix_len, Some(64));
    let last = s.insert(u128::MAX, u128::MAX).unwrap();
    assert_eq!(s.get(last).unwrap().prefix_len, Some(128));
    assert!(s.mark_used(u128::MAX));
    assert_eq!(s.next_free(last, &FreeQuery::default()), Ok(None));
    // Network/broadcast skipping applies to IPv4 only.
    assert_eq!(s.next_free(low, &FreeQuery::default()), Ok(Some(0)));
    // The whole space as a block, then the /1 blocks around the used top address.
    let err = s
        .next_free_blocks(low, BlockSize::Prefix(63), None, 1)
        .unwrap_err();
    assert!(matches!(err, IndexError::BlockDoesNotFit { .. }), "{err}");
    let halves = s
        .next_free_blocks(all, BlockSize::Prefix(1), None, 4)
        .unwrap();
    assert!(
        halves.is_empty(),
        "both halves hold a child range: {halves:?}"
    );
    let blocks = s
        .next_free_blocks(all, BlockSize::Prefix(2), None, 4)
        .unwrap();
    assert_eq!(
        blocks,
        vec![(1 << 126, (1 << 127) - 1), (1 << 127, (3 << 126) - 1)]
    );
    assert_eq!(s.count_used(0, u128::MAX), Ok(1));
    let r = s
        .next_free_n(
            all,
            &FreeQuery {
                start: Start::Random(7),
                ..FreeQuery::default()
            },
            3,
        )
        .unwrap();
    assert_eq!(r.len(), 3);
    s.validate().unwrap();
    let back = Space::<u128>::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(back.utilization(all).unwrap().used, 1);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut s = Space::<u32>::new();
    let p = s.insert(v4("10.0.0.0"), v4("10.0.0.255")).unwrap();
    s.mark_used(v4("10.0.0.7"));
    let before = s.to_snapshot();
    let e = s.insert(v4("10.0.0.9"), v4("10.0.0.1")).unwrap_err();
    assert!(matches!(e, IndexError::Reversed { .. }));
    let e = s.insert(v4("10.0.0.128"), v4("10.0.1.127")).unwrap_err();
    assert_eq!(e.to_string(), "range 10.0.0.128-10.0.1.127 partially overlaps the existing range 10.0.0.0/24: ranges in one address space must nest or be disjoint");
    let e = s.insert(v4("9.255.255.0"), v4("10.0.0.5")).unwrap_err();
    assert!(matches!(e, IndexError::PartialOverlap { .. }), "{e}");
    let e = s.insert(v4("10.0.0.0"), v4("10.0.0.255")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "range 10.0.0.0/24 already exists in this address space"
    );
    let q = FreeQuery {
        start: Start::At(v4("10.0.1.0")),
        ..FreeQuery::default()
    };
    assert!(matches!(
        s.next_free(p, &q),
        Err(IndexError::OutsideRange { .. })
    ));
    let q = FreeQuery {
        exclude: &[(5, 1)],
        ..FreeQuery::default()
    };
    assert!(matches!(
        s.next_free(p, &q),
        Err(IndexError::Reversed { .. })
    ));
    assert!(matches!(
        s.next_free_blocks(p, BlockSize::Prefix(33), None, 1),
        Err(IndexError::PrefixLength { len: 33, .. })
    ));
    assert!(matches!(
        s.next_free_blocks(p, BlockSize::Prefix(23), None, 1),
        Err(IndexError::BlockDoesNotFit { .. })
    ));
    assert!(matches!(
        s.next_free_blocks(p, BlockSize::Count(0), None, 1),
        Err(IndexError::BlockDoesNotFit { .. })
    ));
    assert!(matches!(
        s.next_free_blocks(p, BlockSize::Count(257), None, 1),
        Err(IndexError::BlockDoesNotFit { .. })
    ));
    assert!(matches!(
        s.mark_used_sorted(&[5, 4]),
        Err(IndexError::NotSorted { .. })
    ));
    assert_eq!(
        s.to_snapshot(),
        before,
        "refused calls left the index unchanged"
    );
    let child = s.insert(v4("10.0.0.0"), v4("10.0.0.15")).unwrap();
    let e = s.remove(p, RemoveMode::LeafOnly).unwrap_err();
    assert!(
        matches!(e, IndexError::HasChildren { children: 1, .. }),
        "{e}"
    );
    assert_eq!(s.remove(child, RemoveMode::LeafOnly), Ok(1));
    assert!(matches!(
        s.remove(child, RemoveMode::LeafOnly),
        Err(IndexError::UnknownRange(_))
    ));
    assert!(matches!(
        s.utilization(child),
        Err(IndexError::UnknownRange(_))
    ));

    let mut d = AddressSpace::new();
    let e = d.insert(ip("10.0.0.0"), ip("::1")).unwrap_err();
    assert!(matches!(e, IndexError::FamilyMismatch { .. }), "{e}");
    assert!(matches!(
        d.insert_prefix(ip("10.0.0.0"), 33),
        Err(IndexError::PrefixLength { .. })
    ));
    assert!(matches!(
        d.insert_prefix(ip("2001:db8::"), 129),
        Err(IndexError::PrefixLength { .. })
    ));
    assert!(matches!(
        d.count_used(ip("10.0.0.0"), ip("::")),
        Err(IndexError::FamilyMismatch { .. })
    ));
    assert!(d.is_empty());
    let a = d.insert_prefix(ip("10.1.2.3"), 24).unwrap();
    let b = d.insert_prefix(ip("2001:db8::1"), 32).unwrap();
    assert!(matches!(a, AnyRangeId::V4(_)) && matches!(b, AnyRangeId::V6(_)));
    assert_eq!(d.deepest(ip("10.1.2.200")), Some(a));
    assert_eq!(d.deepest(ip("2001:db8:ffff::")), Some(b));
    assert!(d.mark_used(ip("2001:db8::5")));
    assert_eq!(d.count_used(ip("2001:db8::"), ip("2001:db8::ffff")), Ok(1));
    assert!(d.mark_free(ip("2001:db8::5")));
}

#[test]
fn network_and_broadcast_of_enclosing_subnets_are_skipped() {
    let mut s = Space::<u32>::new();
    let net = s.insert(v4("192.168.1.0"), v4("192.168.1.255")).unwrap();
    // A plain range (not a subnet) starting at the network address.
    s.insert(v4("192.168.1.0"), v4("192.168.1.9")).unwrap();
    let q = FreeQuery::default();
    assert_eq!(s.next_free(net, &q), Ok(Some(v4("192.168.1.1"))));
    let q = FreeQuery {
        skip_children: true,
        ..FreeQuery::default()
    };
    assert_eq!(s.next_free(net, &q), Ok(Some(v4("192.168.1.10"))));
    let q = FreeQuery {
        skip_network_broadcast: false,
        ..FreeQuery::default()
    };
    assert_eq!(s.next_free(net, &q), Ok(Some(v4("192.168.1.0"))));
    // /31 and /32 have no network or broadcast address.
    let p31 = s.insert(v4("192.168.2.0"), v4("192.168.2.1")).unwrap();
    assert_eq!(
        s.next_free_n(p31, &FreeQuery::default(), 5).unwrap().len(),
        2
    );
    let p30 = s.insert(v4("192.168.3.0"), v4("192.168.3.3")).unwrap();
    assert_eq!(
        s.next_free_n(p30, &FreeQuery::default(), 5).unwrap(),
        vec![v4("192.168.3.1"), v4("192.168.3.2")]
    );
}

#[test]
fn children_paging_and_subtree_order() {
    let mut s = Space::<u32>::new();
    let top = s.insert(v4("10.0.0.0"), v4("10.0.255.255")).unwrap();
    for i in (0..100u32).rev() {
        s.insert(v4("10.0.0.0") + i * 256, v4("10.0.0.0") + i * 256 + 255)
            .unwrap();
    }
    let page1 = s.children(Some(top), None, 40).unwrap();
    assert_eq!(page1.len(), 40);
    let next_start = s.get(*page1.last().unwrap()).unwrap().to + 1;
    let page2 = s.children(Some(top), Some(next_start), 40).unwrap();
    let page3 = s
        .children(
            Some(top),
            Some(s.get(*page2.last().unwrap()).unwrap().to + 1),
            40,
        )
        .unwrap();
    assert_eq!((page2.len(), page3.len()), (40, 20));
    let all: Vec<u32> = page1
        .iter()
        .chain(&page2)
        .chain(&page3)
        .map(|&id| s.get(id).unwrap().from)
        .collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    let sub: Vec<u32> = s
        .subtree(top)
        .unwrap()
        .map(|id| s.get(id).unwrap().from)
        .collect();
    assert_eq!(sub.len(), 101);
    assert_eq!(sub[0], v4("10.0.0.0"));
    let deepest = s.deepest(v4("10.0.5.9")).unwrap();
    assert_eq!(s.ancestors(deepest).unwrap(), vec![top]);
    assert_eq!(s.children(None, None, 10).unwrap(), vec![top]);
}

#[test]
fn used_addresses_survive_insert_and_remove_of_ranges() {
    let mut s = Space::<u32>::new();
    let net = s.insert(v4("10.0.0.0"), v4("10.0.255.255")).unwrap();
    let addrs: Vec<u32> = (0..5000).map(|i| v4("10.0.0.0") + i * 13).collect();
    assert_eq!(s.mark_used_sorted(&addrs), Ok(5000));
    assert_eq!(s.mark_used_sorted(&addrs), Ok(0));
    let sub = s.insert(v4("10.0.16.0"), v4("10.0.31.255")).unwrap();
    s.validate().unwrap();
    let in_sub = addrs
        .iter()
        .filter(|&&a| (v4("10.0.16.0")..=v4("10.0.31.255")).contains(&a))
        .count() as u64;
    assert_eq!(s.utilization(sub).unwrap().used, in_sub);
    assert_eq!(s.utilization(net).unwrap().used, 5000);
    assert_eq!(s.utilization(net).unwrap().own_used, 5000 - in_sub);
    assert_eq!(s.remove(sub, RemoveMode::LeafOnly), Ok(1));
    assert_eq!(s.utilization(net).unwrap().own_used, 5000);
    let u = s.utilization(net).unwrap();
    assert!((u.used_percent() - 5000.0 * 100.0 / 65536.0).abs() < 1e-9);
    assert_eq!(s.mark_free_sorted(&addrs), Ok(5000));
    assert_eq!(s.count_used(0, u32::MAX), Ok(0));
    s.validate().unwrap();
}

#[test]
fn deep_nesting_does_not_recurse() {
    // Ranges need not be prefixes, so nesting depth is unbounded: [i, MAX] for 20k values of i
    // (recursion would need megabytes of stack).
    let depth = 20_000u32;
    let chain: Vec<(u32, u32)> = (0..depth).map(|i| (i, u32::MAX)).collect();
    let (mut s, ids) = Space::from_ranges(&chain).unwrap();
    let addrs: Vec<u32> = (0..depth).collect();
    assert_eq!(s.mark_used_sorted(&addrs), Ok(u64::from(depth)));
    let q = FreeQuery {
        skip_network_broadcast: false,
        ..FreeQuery::default()
    };
    // Run on a small stack, like a runtime's worker thread would have.
    let s = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            assert_eq!(s.next_free(ids[0], &q), Ok(Some(depth)));
            assert_eq!(
                s.next_free_n(ids[0], &q, 2).unwrap(),
                vec![depth, depth + 1]
            );
            assert_eq!(s.count_used(1, u32::MAX - 1), Ok(u64::from(depth) - 1));
            assert_eq!(s.used_in(5, u32::MAX, 3).unwrap(), vec![5, 6, 7]);
            assert_eq!(s.deepest(depth + 7), Some(ids[depth as usize - 1]));
            s.validate().unwrap();
            s
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(s.len(), depth as usize);
}
