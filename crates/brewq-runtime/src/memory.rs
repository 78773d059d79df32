//! Memory a service freed, given back to the system: glibc's allocator keeps the pages of a
//! burst in its arenas after the burst's data is freed, so a controller that took three
//! peak runs stayed at 33 MB resident with 8 MB in use; asked regularly (every 15 s in each
//! service), it gives them back (BENCHMARKS.md, "RSS"). And the process's resident memory, as
//! its `/metrics` show it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Gives freed memory back every `every` until shutdown, on a thread for blocking work: the
/// allocator locks each arena in turn while it looks.
pub async fn give_back_every(every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let _ = tokio::task::spawn_blocking(give_back).await;
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

/// The process's resident memory, now and at its highest, in bytes (Linux's `VmRSS` and
/// `VmHWM`); `None` where the system does not say.
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kilobytes = |field: &str| {
        let line = status.lines().find(|line| line.starts_with(field))?;
        line[field.len()..].split_whitespace().next()?.parse::<u64>().ok()
    };
    Some((kilobytes("VmRSS:")? * 1024, kilobytes("VmHWM:")? * 1024))
}
