//! `memory::give_back` against the process's own resident memory, alone in its test process so
//! that no other test's allocations move the figure.

/// Memory freed between blocks still in use comes back: the case glibc does not handle by
/// itself, where no free space is at the top of the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[cfg_attr(miri, ignore)]
#[test]
fn freed_pages_between_live_blocks_come_back() {
    let resident = || brewq_runtime::memory::resident().expect("Linux says how much is resident").0 / 1024;
    // 40 MB in blocks of 1 KB (under the allocator's mmap threshold), each written; then every
    // block freed but one in 64, which stays where it is, one in each 64 KB.
    let mut blocks: Vec<Vec<u8>> = (0..40_000).map(|n| vec![(n % 251) as u8; 1024]).collect();
    let kept: Vec<Vec<u8>> = blocks.iter_mut().step_by(64).map(std::mem::take).collect();
    let (with_blocks, peak) = brewq_runtime::memory::resident().map(|(now, peak)| (now / 1024, peak / 1024)).expect("Linux says");
    assert!(peak >= with_blocks && with_blocks > 40_000, "{with_blocks} kB resident, {peak} kB at the highest");
    drop(blocks);
    let freed = resident();
    assert!(brewq_runtime::memory::give_back(), "the allocator gave nothing back");
    let given_back = resident();
    assert!(given_back + 20_000 < freed, "RSS {with_blocks} kB with the blocks, {freed} kB once freed, {given_back} kB once given back");
    assert!(kept.iter().all(|block| block.len() == 1024));
}
