//! The agent's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::observer;

/// What the agent was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// How long to run before shutting down (Ctrl-C or SIGTERM stops it
    /// earlier).
    pub duration: Duration,
    /// Inject faults: failures, panics, a worker that hangs on kill.
    pub chaos: bool,
    /// Seed of the fault injection, to repeat a run.
    pub seed: u64,
    /// Print the engine report this often while running.
    pub report_every: Option<Duration>,
    /// Write the live graph as Graphviz DOT to this file.
    pub dot: Option<PathBuf>,
    /// Write the final engine report as JSON to this file.
    pub report_json: Option<PathBuf>,
    /// Serve the live observer on this (loopback) address.
    pub observe: Option<SocketAddr>,
}

/// The usage text.
pub const USAGE: &str = "\
usage: agent [--duration D] [--chaos] [--seed N] [--report-every D] [--dot FILE] [--report-json FILE]
             [--observe ADDR]

Runs a small machine agent on the worker-rs dependency engine, then shuts
it down in order. D is a number of seconds, or a number with ms or s.

  --duration D        how long to run (default 10s); Ctrl-C or SIGTERM stops earlier
  --chaos             inject faults: failures, panics, a worker that hangs on kill
  --seed N            seed of the fault injection (default: from the clock)
  --report-every D    print the engine report this often
  --dot FILE          write the live dependency graph (Graphviz DOT) to FILE
  --report-json FILE  write the final engine report (JSON) to FILE
  --observe ADDR      serve a live page of the supervision tree and graph, the
                      report, DOT and Prometheus metrics on ADDR, a loopback
                      IP:PORT (port 0 takes a free one; the address is printed)
  --help              show this text";

impl Options {
    /// Parses the arguments (without the program name). `Err` holds what
    /// to tell the user; `Ok(None)` means help was asked for.
    pub fn parse<I, S>(args: I) -> Result<Option<Options>, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut options = Options {
            duration: Duration::from_secs(10),
            chaos: false,
            seed: seed_from_clock(),
            report_every: None,
            dot: None,
            report_json: None,
            observe: None,
        };
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
            match arg.as_str() {
                "--help" | "-h" => return Ok(None),
                "--chaos" => options.chaos = true,
                "--duration" => options.duration = parse_duration(&value("--duration")?)?,
                "--report-every" => {
                    options.report_every = Some(parse_duration(&value("--report-every")?)?)
                }
                "--seed" => {
                    let v = value("--seed")?;
                    options.seed = v
                        .parse()
                        .map_err(|_| format!("bad --seed {v:?}: not a number"))?;
                }
                "--dot" => options.dot = Some(value("--dot")?.into()),
                "--report-json" => options.report_json = Some(value("--report-json")?.into()),
                "--observe" => {
                    let v = value("--observe")?;
                    let address =
                        observer::parse_address(&v).map_err(|e| format!("bad --observe: {e}"))?;
                    options.observe = Some(address);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(options))
    }
}

/// `2`, `2.5`, `2s`, `500ms`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64(v * unit))
        .ok_or_else(|| format!("bad duration {s:?}: expected e.g. 10, 2.5s or 500ms"))
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().copied())
    }

    #[test]
    fn defaults_and_every_flag() {
        let o = parse(&[]).unwrap().unwrap();
        assert_eq!(o.duration, Duration::from_secs(10));
        assert!(!o.chaos && o.report_every.is_none() && o.dot.is_none());
        let o = parse(&[
            "--duration",
            "500ms",
            "--chaos",
            "--seed",
            "9",
            "--report-every",
            "2.5",
            "--dot",
            "g.dot",
            "--report-json",
            "r.json",
            "--observe",
            "127.0.0.1:0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.duration, Duration::from_millis(500));
        assert!(o.chaos);
        assert_eq!(o.seed, 9);
        assert_eq!(o.report_every, Some(Duration::from_millis(2500)));
        assert_eq!(o.dot.unwrap().to_str(), Some("g.dot"));
        assert_eq!(o.report_json.unwrap().to_str(), Some("r.json"));
        assert_eq!(o.observe, Some("127.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        assert_eq!(parse(&["--help"]), Ok(None));
        assert_eq!(
            parse(&["--bogus"]).unwrap_err(),
            "unknown argument \"--bogus\""
        );
        assert_eq!(
            parse(&["--duration"]).unwrap_err(),
            "--duration needs a value"
        );
        assert!(
            parse(&["--duration", "-1"])
                .unwrap_err()
                .starts_with("bad duration \"-1\"")
        );
        assert!(
            parse(&["--seed", "x"])
                .unwrap_err()
                .starts_with("bad --seed")
        );
        let not_loopback = parse(&["--observe", "0.0.0.0:8080"]).unwrap_err();
        assert!(
            not_loopback.starts_with("bad --observe: 0.0.0.0:8080 is not a loopback address"),
            "{not_loopback}"
        );
        let not_an_address = parse(&["--observe", "somewhere"]).unwrap_err();
        assert!(
            not_an_address.starts_with("bad --observe: \"somewhere\" is not an address"),
            "{not_an_address}"
        );
    }
}
