//! [`crate::lab!`]: a lab for a test, or a skip when the machine cannot build one.

/// What the privilege gate decided for a test (used by [`crate::lab!`]).
#[doc(hidden)]
#[derive(Debug)]
pub enum Gate {
    /// The test may build labs.
    Run,
    /// The test skips (a `SKIP:` line was printed).
    Skip,
    /// The test must fail: privileges are missing and `XDPLAB_REQUIRE_PRIVILEGES=1`.
    Fail(super::Error),
}

/// The privilege gate of [`crate::lab!`], for the test `test`.
#[doc(hidden)]
pub fn gate(test: &str) -> Gate {
    match crate::host::privileges::check() {
        Ok(()) => Gate::Run,
        Err(reason) if crate::host::privileges::required() => {
            Gate::Fail(super::Error::Privileges {
                test: test.to_owned(),
                reason: format!(
                    "{reason} ({}=1 forbids skipping)",
                    crate::host::privileges::REQUIRE_ENV
                ),
            })
        }
        Err(reason) => {
            crate::host::privileges::print_skip(&format!("{test}: {reason}"));
            Gate::Skip
        }
    }
}

/// The name of the function a macro is expanded in, for SKIP lines.
#[doc(hidden)]
pub fn function_name(marker: &'static str) -> &'static str {
    marker.strip_suffix("::__xdplab_marker").unwrap_or(marker)
}

/// A lab for the test it is written in, or a skip.
///
/// `lab!()` builds the default lab (`sender` and `receiver` joined by a veth pair);
/// `lab!(builder)` builds a [`LabBuilder`](crate::LabBuilder)'s. It evaluates to
/// `xdplab::Result<Lab>`, so it ends in `?`. Without the privileges a lab needs, it prints
/// `SKIP: <test>: <what is missing>` on stderr and **returns `Ok(())` from the test**, which
/// must therefore return a `Result<(), _>`; with `XDPLAB_REQUIRE_PRIVILEGES=1` (as in CI) it
/// is an [`Error::Privileges`](crate::Error::Privileges) instead, so a machine that cannot run
/// the tests fails them rather than passing them unseen.
///
/// ```rust,no_run,test_harness
/// use xdplab::{Frame, Verdict, XdpMode};
///
/// #[test]
/// fn passes_everything() -> xdplab::Result<()> {
///     let lab = xdplab::lab!()?;
///     let _prog = lab.load_bundled("xdp_pass")?.attach("xdp_pass", XdpMode::Generic)?;
///     lab.send(Frame::ipv4().udp(), 10)?.expect(Verdict::Pass)?;
///     Ok(())
/// }
///
/// #[test]
/// fn two_links() -> xdplab::Result<()> {
///     let lab = xdplab::lab!(xdplab::Lab::builder()
///         .link("sender:eth0", "dut:in")
///         .link("dut:out", "sink:eth0"))?;
///     # let _ = lab;
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! lab {
    () => {
        $crate::lab!($crate::Lab::builder())
    };
    ($builder:expr) => {{
        fn __xdplab_marker() {}
        match $crate::api::gate($crate::api::function_name(::core::any::type_name_of_val(
            &__xdplab_marker,
        ))) {
            $crate::api::Gate::Run => $crate::LabBuilder::build($builder),
            $crate::api::Gate::Skip => return ::core::result::Result::Ok(()),
            $crate::api::Gate::Fail(error) => ::core::result::Result::Err(error),
        }
    }};
}
