//! `xdplab clean`: removes (or lists) what killed xdplab processes left behind.

use crate::{exit::Exit, host::clean, host::privileges};

/// Removes the leftovers of dead xdplab processes, or with `dry_run` only lists them.
pub(super) fn clean(dry_run: bool) -> Exit {
    if !dry_run && let Err(reason) = privileges::check() {
        eprintln!("xdplab: cannot remove leftovers: {reason}");
        return Exit::Environment;
    }
    let sweep = clean::sweep(dry_run);
    let verb = if dry_run { "would remove" } else { "removed" };
    for leftover in &sweep.removed {
        println!("{verb} {leftover}");
    }
    for (leftover, error) in &sweep.failed {
        eprintln!("xdplab: failed to remove {leftover}: {error}");
    }
    if sweep.removed.is_empty() && sweep.failed.is_empty() {
        println!("nothing to clean");
    }
    if sweep.failed.is_empty() {
        Exit::Pass
    } else {
        Exit::Environment
    }
}
