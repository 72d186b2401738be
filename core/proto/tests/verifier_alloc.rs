//! The streaming image verifier's memory bounds: fixed state size, no heap use per chunk.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fwledger_proto::ImageVerifier;
use sha2::{Digest, Sha256};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn state_is_small_and_chunks_do_not_allocate() {
    const {
        assert!(
            ImageVerifier::STATE_SIZE <= 512,
            "ImageVerifier state exceeds 512 bytes"
        )
    };
    let image = vec![0xa5u8; 1 << 20];
    let digest: [u8; 32] = Sha256::digest(&image).into();
    let mut verifier = ImageVerifier::new(image.len() as u64, digest);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for chunk in image.chunks(4096) {
        verifier.update(chunk).unwrap();
    }
    let result = verifier.finish();
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    result.unwrap();
    assert_eq!(after - before, 0, "heap allocations while verifying");
    println!("ImageVerifier state: {} bytes", ImageVerifier::STATE_SIZE);
}
