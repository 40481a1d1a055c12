//! Scenario files (TOML, `schema-version = 1`): finding them, reading them and
//! checking them before any lab is built, so a typo costs a located error
//! message rather than a half-run.
//!
//! The format is documented key by key in `docs/scenario-format.md`.
//! [`discover`] turns command-line paths into files, [`load`] reads one, and
//! the types in [`schema`] are what the runner works from.

use std::io;
use std::path::{Path, PathBuf};

pub mod flows;
mod iface;
pub mod kernel_state;
mod live;
mod loader;
mod map_checks;
mod parse;
pub mod plan;
pub mod run;
pub mod schema;
mod steps;
mod test_run;
mod values;

pub use kernel_state::{AddressSpec, NeighSpec, NetnsSpec, RouteSpec};
pub use loader::LoaderSpec;
pub use parse::caps;
// The output checks own their spec; scenario files are where it is written.
pub use crate::verdict::output::OutputSpec;
pub use schema::{
    AttachSpec, Endpoint, EventExpect, FieldKind, FieldValue, FilterRule, FrameSource, IfaceRef,
    IfaceRefError, LabSpec, LinkEnd, LinkExpect, LinkSpec, MAX_NAME_LEN, MapBytes, MapExpect,
    MapSetup, NamedField, ProgramSpec, SCHEMA_VERSION, Scenario, SendGroup, Side, Step, StepAction,
    StepExpect, StructField, ThroughputSpec, TraceExpect, format_duration, parse_duration,
};

/// Everything that can be wrong with scenario paths and files. Every message
/// starts with the file (and line, when there is one).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file exists but cannot be read (permissions, not UTF-8, ...).
    #[error("{}: cannot read scenario file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A directory given on the command line cannot be listed.
    #[error("{}: cannot list scenario directory: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A path given on the command line does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// A directory given on the command line holds no scenario files.
    #[error("{}: directory holds no *.toml scenario files", path.display())]
    NoScenarios {
        /// The directory.
        path: PathBuf,
    },
    /// The file is not valid TOML, or a key or value does not fit the schema.
    #[error("{}:{line}:{col}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// The file parses but says something impossible (conflicting layers,
    /// a duplicate send group name, an unsupported schema version, ...).
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the table or key at fault.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads and checks one scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text =
        crate::input::read_text(path, crate::input::InputKind::Scenario).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ScenarioError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                ScenarioError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    parse(&text, path)
}

/// Checks the text of a scenario file; `path` locates errors and anchors
/// relative object paths.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    parse::parse(text, path)
}

/// The scenario files named by `paths`, in order: a file is itself (whatever
/// its extension), a directory yields its `*.toml` files sorted by name
/// (not recursive). A missing path or a directory without scenarios is an
/// error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                ScenarioError::NotFound { path: path.clone() }
            } else {
                ScenarioError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        if !metadata.is_dir() {
            files.push(path.clone());
            continue;
        }
        let read_dir_error = |source| ScenarioError::ReadDir {
            path: path.clone(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(read_dir_error)? {
            let entry = entry.map_err(read_dir_error)?;
            let file = entry.path();
            // Follows symlinks, so a linked scenario counts and a dangling
            // link is skipped.
            if file.extension().is_some_and(|e| e == "toml") && file.is_file() {
                found.push(file);
            }
        }
        if found.is_empty() {
            return Err(ScenarioError::NoScenarios { path: path.clone() });
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

#[cfg(test)]
mod tests;
