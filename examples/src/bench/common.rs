//! What every scenario measures, and how: wall time per phase, peak RSS
//! (getrusage `ru_maxrss`), the process's thread count, CPU time and
//! voluntary context switches.

use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

/// Which worker a scenario supervises (see `BENCHMARKS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A worker backed by its own thread that blocks until killed.
    Thread,
    /// A worker built on the `Tomb` with no thread (kill completes it).
    Passive,
    /// A tokio task awaiting its dying signal, on a multi-threaded runtime
    /// with 2 worker threads.
    Task,
}

impl Variant {
    /// Parses `thread`, `passive` or `task`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "thread" => Ok(Variant::Thread),
            "passive" => Ok(Variant::Passive),
            "task" => Ok(Variant::Task),
            other => Err(format!(
                "unknown variant {other:?}: expected thread, passive or task"
            )),
        }
    }

    /// The name used in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Thread => "thread",
            Variant::Passive => "passive",
            Variant::Task => "task",
        }
    }
}

/// The result of one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Phase name (without the `_ns` suffix) and its wall time, in order.
    pub phases: Vec<(String, u128)>,
    /// Extra numeric results printed at the top level (e.g.
    /// `restarts_per_sec`).
    pub extra: Vec<(String, f64)>,
    /// Peak resident set of the process, KiB.
    pub peak_rss_kib: u64,
    /// Threads in the process after the last phase.
    pub threads_after: usize,
}

impl Measurement {
    /// Records a phase's wall time.
    pub fn phase(&mut self, name: &str, d: Duration) {
        self.phases.push((name.to_owned(), d.as_nanos()));
    }

    /// Records a raw phase value (for phases that are not wall times, like
    /// `idle_nvcsw`).
    pub fn phase_value(&mut self, name: &str, v: u128) {
        self.phases.push((name.to_owned(), v));
    }

    /// Fills in peak RSS and the thread count; call after the last phase.
    pub fn finish(mut self) -> Self {
        self.peak_rss_kib = peak_rss_kib();
        self.threads_after = thread_count();
        self
    }

    /// The one JSON line `bench` prints.
    pub fn to_json(&self, scenario: &str, n: usize, variant: Variant) -> String {
        let mut phases = serde_json::Map::new();
        for (name, v) in &self.phases {
            let key = if name.ends_with("_ns") || name.starts_with("idle_") {
                name.clone()
            } else {
                format!("{name}_ns")
            };
            phases.insert(key, serde_json::json!(*v as u64));
        }
        let mut obj = serde_json::Map::new();
        obj.insert("scenario".into(), scenario.into());
        obj.insert("n".into(), n.into());
        obj.insert("variant".into(), variant.name().into());
        obj.insert("phases".into(), phases.into());
        for (k, v) in &self.extra {
            obj.insert(k.clone(), serde_json::json!(v));
        }
        obj.insert("peak_rss_kib".into(), self.peak_rss_kib.into());
        obj.insert("threads_after".into(), self.threads_after.into());
        serde_json::Value::Object(obj).to_string()
    }
}

/// Times `f`.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// The process's peak resident set in KiB (`ru_maxrss`).
pub fn peak_rss_kib() -> u64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system) the process has used so far.
pub fn cpu_time() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000)
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// Voluntary context switches of the process so far (`ru_nvcsw`).
pub fn voluntary_switches() -> u64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.voluntary_context_switches() as u64)
        .unwrap_or(0)
}

/// The number of threads in this process that are not exiting.
///
/// A thread joined a moment ago can still be listed by the kernel: `join`
/// returns when the thread's id is released, a little before the kernel
/// takes the thread off the process's list. Such a thread has its
/// `PF_EXITING` flag set (field 9 of `/proc/self/task/<tid>/stat`), so it
/// is not counted; counting `Threads:` of `/proc/self/status` instead made
/// a loaded machine see a thread "left behind" that had been joined.
pub fn thread_count() -> usize {
    /// `PF_EXITING` of the kernel's task flags.
    const PF_EXITING: u64 = 0x4;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // After "pid (comm) ", the fields from `state` (3) on; `comm`
            // may hold spaces and parentheses, so cut at the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(6)?.parse::<u64>().ok()
        })
        .filter(|flags| flags & PF_EXITING == 0)
        .count()
}
