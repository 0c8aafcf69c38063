//! Memory figures: the server's heap (a counting global allocator) and
//! the process RSS.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counting what the server holds.
pub(crate) struct ServerHeap;

thread_local! {
    /// True on the clients' thread: the one thread whose memory is not the
    /// server's. Every other thread counts: the server's own, its
    /// simulation and replication workers (which allocate what the server
    /// thread later frees), and the link conditioner (whose datagrams come
    /// and go on its thread, so it adds only what it has queued).
    pub(crate) static ON_CLIENTS: Cell<bool> = const { Cell::new(false) };
}

/// Bytes allocated minus bytes freed by every thread but the clients'.
pub(crate) static SERVER_HEAP_BYTES: AtomicI64 = AtomicI64::new(0);

pub(crate) fn count_server(delta: i64) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    if !ON_CLIENTS.try_with(Cell::get).unwrap_or(false) {
        SERVER_HEAP_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call goes straight to `System`; the counting touches no memory it returns.
unsafe impl GlobalAlloc for ServerHeap {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_server(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        count_server(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_server(layout.size() as i64);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_server(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
pub(crate) static ALLOCATOR: ServerHeap = ServerHeap;

pub(crate) fn server_heap_mb() -> f64 {
    SERVER_HEAP_BYTES.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

pub(crate) fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
