//! Parsing an account number or a premises number allocates nothing: they sit on hot paths
//! (every registration, every activation) and their types are `Copy`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use resident_auth::{AccountNumber, Premises};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn account_number_parsing_allocates_nothing() {
    let inputs = [
        "7800000000001",
        "78 0000 0000 001",
        "78000000000x1",
        "",
        "1234",
    ];
    let count = allocations_during(|| {
        for input in inputs {
            std::hint::black_box(input.parse::<AccountNumber>().ok());
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn premises_parsing_allocates_nothing() {
    let inputs = [
        "12",
        "123/456 п",
        "2H",
        "12А",
        "0",
        "/5",
        "12/",
        "12ПП",
        "1234567",
    ];
    let count = allocations_during(|| {
        for input in inputs {
            std::hint::black_box(input.parse::<Premises>().ok());
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn the_counter_sees_allocations() {
    let count = allocations_during(|| {
        std::hint::black_box(String::from("allocates"));
    });
    assert!(count >= 1);
}
