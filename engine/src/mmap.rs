//! The one `unsafe` operation of the engine: mapping a snapshot file into memory.

use std::fs::File;

/// Maps a whole file read-only.
///
/// Snapshot files are written to a temporary name, synced and renamed into place, and never
/// modified afterwards; the engine only deletes old ones (which keeps existing mappings valid
/// on Unix). Every byte read from the map is still verified (checksum, archive validation,
/// index invariants), so a file changed behind our back is refused, not trusted.
#[allow(unsafe_code)]
pub(crate) fn map(f: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: memmap2 requires that the file is not modified while mapped. Snapshot files are
    // immutable after their atomic rename (see above); the mapping is read-only and private to
    // this process, and it is dropped as soon as the state has been copied out of it.
    unsafe { memmap2::Mmap::map(f) }
}
