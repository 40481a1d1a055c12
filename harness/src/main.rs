//! The `xdplab` command: parses the arguments, hands them to [`xdplab::cli`] and ends with the
//! exit status it returns (the codes are in [`xdplab::exit`]).

use std::process::ExitCode;

use clap::Parser as _;
use xdplab::{
    cli::{self, Cli},
    exit::{Classify as _, Exit},
};

fn main() -> ExitCode {
    // Behave like other Unix tools under `| head`: end quietly on a closed pipe instead of
    // panicking in println!.
    // SAFETY: resetting a signal disposition to its default before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let exit = cli::dispatch(Cli::parse()).unwrap_or_else(|error| {
        eprintln!("xdplab: {error}");
        Exit::from(error.class())
    });
    ExitCode::from(exit.code())
}
