//! Whether this process may build labs, and the gate that privileged tests share.
//!
//! A lab needs CAP_SYS_ADMIN (new network namespaces), CAP_NET_ADMIN (veth, addresses,
//! XDP attach) and CAP_BPF or CAP_SYS_ADMIN (loading programs, creating maps). Tests that need
//! them call [`gate`]: without the capabilities they print a `SKIP:` line and return `false`,
//! unless `XDPLAB_REQUIRE_PRIVILEGES=1` is set (as CI does), in which case they fail.

/// The environment variable that turns a privileged test's skip into a failure.
pub const REQUIRE_ENV: &str = "XDPLAB_REQUIRE_PRIVILEGES";

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Checks the effective capabilities a lab needs; the error says which are missing and the fix.
pub fn check() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status to check capabilities: {e}"))?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or("cannot find CapEff in /proc/self/status")?;
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_SYS_ADMIN) {
        missing.push("CAP_SYS_ADMIN (network namespaces)");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN (veth pairs, XDP attach)");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF (loading programs)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing capabilities {}; run as root (sudo -E)",
            missing.join(", ")
        ))
    }
}

/// Whether privileged tests must fail instead of skipping.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Prints `SKIP: <reason>` on stderr (not captured by the test harness), or panics when
/// [`REQUIRE_ENV`] is set.
pub fn skip_or_fail(reason: &str) {
    assert!(
        !required(),
        "{REQUIRE_ENV}=1 but a privileged test cannot run: {reason}"
    );
    // Straight to the descriptor: libtest captures print!/eprint! of passing tests, and a skip
    // must be seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
}

/// The shared gate for privileged tests: `true` if the test may run.
///
/// ```no_run
/// if !xdplab::privileges::gate("seed_dropper_counts_exactly") {
///     return;
/// }
/// ```
pub fn gate(test: &str) -> bool {
    match check() {
        Ok(()) => true,
        Err(reason) => {
            skip_or_fail(&format!("{test}: {reason}"));
            false
        }
    }
}
