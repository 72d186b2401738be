//! The C image verifier never touches the heap: not at `init`, not per chunk, not at `finish`
//! (the boundary guard and the last-error slot included).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fwledger_c::fwl_status::*;
use fwledger_c::*;
use fwledger_proto::sha2::{Digest, Sha256};

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
fn image_verifier_does_not_allocate() {
    let image = vec![0xa5u8; 1 << 20];
    let digest: [u8; 32] = Sha256::digest(&image).into();
    let mut state = fwl_image_verifier::default();
    let mut received = 0u64;
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    // SAFETY: valid verifier, slices and out pointer.
    let (init, updates, extra, finish) = unsafe {
        let init = fwl_image_verifier_init_raw(&mut state, image.len() as u64, digest.as_ptr(), 32);
        let mut updates = FWL_OK;
        for chunk in image.chunks(4096) {
            let s = fwl_image_verifier_update(&mut state, chunk.as_ptr(), chunk.len());
            if s != FWL_OK {
                updates = s;
            }
            fwl_image_verifier_received(&state, &mut received);
        }
        let finish = fwl_image_verifier_finish(&mut state);
        // Failures (with their messages) do not allocate either.
        let extra = fwl_image_verifier_update(&mut state, image.as_ptr(), 1);
        (init, updates, extra, finish)
    };
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!((init, updates, finish), (FWL_OK, FWL_OK, FWL_OK));
    assert_eq!(extra, FWL_ERR_INVALID_ARGUMENT);
    assert_eq!(received, image.len() as u64);
    assert_eq!(after - before, 0, "heap allocations while verifying");
}
