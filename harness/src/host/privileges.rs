//! Whether this process may build labs, and the gate that privileged tests share.
//!
//! A lab needs CAP_SYS_ADMIN (new network namespaces), CAP_NET_ADMIN (veth, addresses,
//! XDP attach) and CAP_BPF or CAP_SYS_ADMIN (loading programs, creating maps). Tests that need
//! them call [`gate`]: without the capabilities they print a `SKIP:` line and return `false`,
//! unless `XDPLAB_REQUIRE_PRIVILEGES=1` is set (as CI does), in which case they fail.

/// The environment variable that turns a privileged test's skip into a failure.
pub const REQUIRE_ENV: &str = "XDPLAB_REQUIRE_PRIVILEGES";

/// Checks the effective capabilities a lab needs; the error says which are missing and the
/// fix, in the words of [`crate::host::doctor::privileges`].
pub fn check() -> Result<(), String> {
    let missing: Vec<String> = crate::host::doctor::privileges()
        .iter()
        .filter(|c| c.status == crate::host::doctor::Status::Missing)
        .map(crate::host::doctor::Check::explain)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
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
    print_skip(reason);
}

/// Prints `SKIP: <reason>` on stderr, past libtest's capture.
pub fn print_skip(reason: &str) {
    // Straight to the descriptor: libtest captures print!/eprint! of passing tests, and a skip
    // must be seen.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
}

/// The shared gate for privileged tests: `true` if the test may run.
///
/// ```no_run
/// if !xdplab::host::privileges::gate("seed_dropper_counts_exactly") {
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
