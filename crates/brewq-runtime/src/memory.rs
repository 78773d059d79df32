//! Memory a service freed, given back to the system: glibc's allocator keeps the pages of a
//! burst in its arenas after the burst's data is freed, so a controller that took three
//! peak runs stayed at 33 MB resident with 8 MB in use; asked every few seconds, it gives
//! them back (BENCHMARKS.md, "RSS").

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Gives freed memory back every `every` until shutdown.
pub async fn give_back_every(every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                give_back();
            }
        }
    }
}

/// Asks the allocator to return the whole free pages of every arena to the system; whether
/// it gave any back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own free
    // lists, under the allocator's own locks; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere the allocator returns memory by itself, or offers no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

#[cfg(test)]
mod tests {
    /// Memory freed in the middle of the heap, below blocks still in use, comes back.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_pages_below_live_blocks_come_back() {
        let resident = || {
            let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
            let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line").to_owned();
            line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("VmRSS in kB")
        };
        // 40 MB in blocks of 1 KB (under the allocator's mmap threshold), each touched,
        // then every block freed but one in 64: no free space at the heap's top to trim.
        let mut blocks: Vec<Vec<u8>> = (0..40_000).map(|n| vec![(n % 251) as u8; 1024]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter().step_by(64).cloned().collect();
        blocks.iter_mut().enumerate().filter(|(n, _)| n % 64 == 0).for_each(|(_, block)| *block = Vec::new());
        let before = resident();
        drop(blocks);
        let kept_after_free = resident();
        assert!(super::give_back(), "the allocator gave nothing back");
        let after = resident();
        assert!(
            after + 20_000 < kept_after_free,
            "RSS {before} kB with the blocks, {kept_after_free} kB after freeing them, {after} kB after giving back"
        );
        assert_eq!(kept.len(), 625);
    }
}
