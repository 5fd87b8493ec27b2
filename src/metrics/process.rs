//! [`ProcessStats`]: the standard `process_*` metrics, read from
//! `/proc/self` at each scrape (Linux only; elsewhere they are absent).

use std::path::Path;

/// Clock ticks per second in `/proc` times: Linux's `USER_HZ`, which the
/// kernel ABI fixes at 100 on every architecture the engine targets.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// What the kernel says about this process. A field it could not read is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`None` when unlimited).
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self`.
    pub fn read() -> Self {
        Self::read_from(Path::new("/proc"))
    }

    fn read_from(proc: &Path) -> Self {
        let read = |path: &str| std::fs::read_to_string(proc.join(path)).ok();
        let stat = read("self/stat").and_then(|text| parse_stat(&text));
        let status = read("self/status").unwrap_or_default();
        let boot_time = read("stat").and_then(|text| parse_boot_time(&text));
        Self {
            cpu_seconds: stat
                .map(|stat| (stat.user_ticks + stat.system_ticks) as f64 / CLOCK_TICKS_PER_SECOND),
            resident_memory_bytes: status_kib(&status, "VmRSS:").map(|kib| kib * 1024),
            virtual_memory_bytes: status_kib(&status, "VmSize:").map(|kib| kib * 1024),
            open_fds: std::fs::read_dir(proc.join("self/fd"))
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: read("self/limits").and_then(|text| parse_max_open_files(&text)),
            start_time_seconds: stat.zip(boot_time).map(|(stat, boot_time)| {
                boot_time as f64 + stat.start_ticks as f64 / CLOCK_TICKS_PER_SECOND
            }),
        }
    }
}

/// The fields of `/proc/self/stat` the metrics use, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stat {
    user_ticks: u64,
    system_ticks: u64,
    start_ticks: u64,
}

/// `/proc/self/stat`: the command name is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Fields from the third (state) on; utime is the 14th, stime the 15th,
    // starttime the 22nd.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(Stat {
        user_ticks: field(14)?,
        system_ticks: field(15)?,
        start_ticks: field(22)?,
    })
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// A `Key:   1234 kB` line of `/proc/self/status`, in KiB.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// The soft limit of the `Max open files` line of `/proc/self/limits`.
fn parse_max_open_files(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (wasm (engine) x) S 1 4242 4242 0 -1 4194560 300 0 0 0 250 75 0 0 20 0 7 0 123456 10000000 500 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                user_ticks: 250,
                system_ticks: 75,
                start_ticks: 123456
            })
        );
        assert_eq!(parse_stat("no name"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_limits_and_boot_time_are_read_from_their_lines() {
        let status = "Name:\twasm_engine\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(status, "VmSize:"), Some(123456));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(
            parse_max_open_files("Max open files unlimited unlimited files"),
            None
        );
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1764356400\nprocesses 9\n"),
            Some(1_764_356_400)
        );
    }

    #[test]
    fn this_process_is_readable_on_linux() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        let stats = ProcessStats::read();
        assert!(stats.resident_memory_bytes.unwrap() > 0);
        assert!(stats.virtual_memory_bytes.unwrap() >= stats.resident_memory_bytes.unwrap());
        assert!(stats.open_fds.unwrap() >= 3);
        assert!(stats.cpu_seconds.is_some());
        let started = stats.start_time_seconds.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(started > 1e9 && started <= now + 1.0, "{started} vs {now}");
    }
}
