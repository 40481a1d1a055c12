//! `xdplab doctor`: every check of [`crate::host::doctor`], as a table or JSON.

use super::{CliError, Format};
use crate::{exit::Exit, host::doctor};

/// Prints every check; exits 3 when something required is missing.
pub(super) fn doctor(format: Format) -> Result<Exit, CliError> {
    let report = doctor::all();
    match format {
        Format::Human => print!("{}", report.table()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(report.exit())
}
