//! The Rust runtime pieces a `no_std` static library needs when it is linked into C firmware:
//! a panic handler and a global allocator. Feature `c-runtime`, only without `std`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::mem::{align_of, size_of};

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    fn abort() -> !;
}

/// A panic is a bug; without unwinding there is nothing better to do than stop, as C `assert`
/// would (the ESP-IDF panic handler then reboots into the confirmed slot).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: `abort` has no preconditions.
    unsafe { abort() }
}

/// C `malloc`/`free`. `malloc` only promises the platform's fundamental alignment (as little as
/// 4 bytes on some ESP32 heaps), so larger alignments are served by over-allocating and keeping
/// the original pointer just before the aligned block.
struct CAllocator;

/// Alignment every `malloc` result has on every supported target.
const MALLOC_ALIGN: usize = align_of::<usize>();

// SAFETY: `alloc` returns NULL or a block of at least `layout.size()` bytes aligned to
// `layout.align()`; `dealloc` frees exactly what `alloc` returned, the way it was allocated.
unsafe impl GlobalAlloc for CAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: plain C allocation.
            return unsafe { malloc(layout.size().max(1)) }.cast();
        }
        let header = size_of::<*mut c_void>();
        let Some(total) = layout.size().checked_add(layout.align() + header) else {
            return core::ptr::null_mut();
        };
        // SAFETY: plain C allocation.
        let raw = unsafe { malloc(total) }.cast::<u8>();
        if raw.is_null() {
            return raw;
        }
        let start = raw as usize + header;
        let aligned = (start + layout.align() - 1) & !(layout.align() - 1);
        let offset = aligned - raw as usize;
        // SAFETY: `offset + layout.size() <= total`, so the block and the header word before it
        // lie inside the allocation; the header word is aligned because `aligned` is a multiple
        // of an alignment larger than a pointer's.
        unsafe {
            let block = raw.add(offset);
            block.cast::<*mut u8>().sub(1).write(raw);
            block
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= MALLOC_ALIGN {
            // SAFETY: `ptr` came from `malloc` above.
            return unsafe { free(ptr.cast()) };
        }
        // SAFETY: `alloc` stored the original pointer in the word before the block.
        unsafe { free(ptr.cast::<*mut u8>().sub(1).read().cast()) }
    }
}

#[global_allocator]
static ALLOCATOR: CAllocator = CAllocator;
