//! Snapshot images: round trips keep ids and data; corrupt or truncated bytes are refused.

use ipam_index::{FreeQuery, RangeId, SnapshotError, Space};

fn sample() -> (Space<u32>, Vec<RangeId>) {
    let mut ranges = vec![(0x0a00_0000u32, 0x0aff_ffffu32)];
    for i in 0..2000u32 {
        ranges.push((0x0a00_0000 + i * 256, 0x0a00_0000 + i * 256 + 255));
    }
    ranges.push((0x0b00_0000, 0x0b0f_ffff)); // a /12: sparse set
    let (mut s, ids) = Space::from_ranges(&ranges).unwrap();
    for i in 0..2000u32 {
        s.mark_used(0x0a00_0000 + i * 256 + (i % 200));
    }
    for i in 0..100u32 {
        s.mark_used(0x0b00_0000 + i * 4099);
    }
    s.remove(ids[7], ipam_index::RemoveMode::LeafOnly).unwrap();
    (s, ids)
}

#[test]
fn round_trip_keeps_ids_counts_and_answers() {
    let (s, ids) = sample();
    let bytes = s.to_snapshot();
    let back = Space::<u32>::from_snapshot(&bytes).unwrap();
    back.validate().unwrap();
    assert_eq!(back.len(), s.len());
    for &id in ids.iter().filter(|&&id| s.get(id).is_some()) {
        assert_eq!(back.get(id), s.get(id));
        assert_eq!(back.utilization(id).unwrap(), s.utilization(id).unwrap());
        assert_eq!(
            back.next_free(id, &FreeQuery::default()),
            s.next_free(id, &FreeQuery::default())
        );
    }
    assert!(back.get(ids[7]).is_none());
    assert_eq!(
        back.to_snapshot(),
        bytes,
        "a loaded image archives to the same bytes"
    );
    // Unaligned input is copied and still loads.
    let mut shifted = vec![0u8];
    shifted.extend_from_slice(&bytes);
    assert_eq!(
        Space::<u32>::from_snapshot(&shifted[1..]).unwrap().len(),
        s.len()
    );
    // The other family is refused by name.
    assert!(matches!(
        Space::<u128>::from_snapshot(&bytes),
        Err(SnapshotError::WrongFamily { .. })
    ));
}

#[test]
fn truncated_or_corrupt_snapshots_are_refused_never_trusted() {
    let (s, _) = sample();
    let bytes = s.to_snapshot();
    for cut in [0, 1, 16, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            Space::<u32>::from_snapshot(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    // Flip bytes throughout: every result is an error or a space that passes validate().
    let mut refused = 0;
    for pos in (0..bytes.len()).step_by(bytes.len() / 997 + 1) {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x5a;
        match Space::<u32>::from_snapshot(&bad) {
            Ok(space) => space.validate().unwrap(),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "no corruption was detected at all");
}
