//! This process's figures from Linux's /proc, for the runtime status page
//! and `process_*` metrics. A figure that cannot be read is `None`.

/// A snapshot of the process's resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// OS threads (tokio workers, blocking pool, storage maintenance...).
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
}

impl ProcessStats {
    /// Reads the current figures; does a few small file reads.
    pub fn read() -> ProcessStats {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        ProcessStats {
            threads: status_field(&status, "Threads:"),
            rss_bytes: status_field(&status, "VmRSS:").map(|kb| kb * 1024),
            open_fds: std::fs::read_dir("/proc/self/fd")
                // The listing includes the descriptor reading it.
                .map(|d| (d.count() as u64).saturating_sub(1))
                .ok(),
            max_fds: max_open_files(&limits),
        }
    }
}

/// The first number after `key` at the start of a line of /proc/self/status.
fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The soft limit of the "Max open files" line of /proc/self/limits
/// (`None` when unlimited).
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_limits() {
        let status = "Name:\tkoban\nVmRSS:\t   12345 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "VmRSS:"), Some(12345));
        assert_eq!(status_field(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read();
        assert!(s.threads.unwrap() >= 1);
        assert!(s.open_fds.unwrap() >= 3, "{s:?}");
        assert!(s.rss_bytes.unwrap() > 0);
    }
}
