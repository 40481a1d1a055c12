//! Loader-side settings of a scenario's programs: what a libbpf loader sets before load
//! (`[program] type`, `globals`, `max-entries`), and how PROG_ARRAY slots, the maps of
//! `[[attach]]` programs and maps pinned by name are handled at run time.
//!
//! Kept apart from the runner so the loader's knobs stay in one place: the runner asks
//! [`LoaderSpec::options`] for the [`LoadOptions`] of one load, and nothing loads an object
//! twice to apply a setting.

use std::path::Path;

use crate::{
    kernel::elf::ProgramType,
    kernel::program::{GlobalValue, LoadOptions, Program, ProgramError},
    topology::{EndName, TopologySpec},
};

use super::{
    plan::{at, load_error, resolve, topology_spec},
    schema::{AttachSpec, IfaceRef, MapBytes, MapSetup, Scenario},
};
use crate::engine::RunError;

/// What the loader sets before a program's object is loaded (`[program]`'s `type`, `globals`
/// and `max-entries`; `[[attach]]`'s `type`). The default loads the object as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoaderSpec {
    /// `type`: read every program section of the object as this type, as
    /// `bpftool prog load OBJ PIN type xdp` does; default: as libbpf reads each section name.
    pub program_type: Option<ProgramType>,
    /// `globals = { name = value }`: variables in `.rodata`, `.data` or `.bss` set before
    /// load; an integer is written in the variable's size, `true`/`false` as 1/0, a string is
    /// hex bytes (exactly the variable's size).
    pub globals: Vec<(String, GlobalValue)>,
    /// `max-entries = { map = N }`: map sizes set before the maps are created.
    pub max_entries: Vec<(String, u32)>,
    /// Line of `globals`, for errors about a global (0: none given).
    pub globals_line: usize,
    /// Line of `max-entries`, for errors about a map size (0: none given).
    pub max_entries_line: usize,
}

impl LoaderSpec {
    /// The load options for this program; `also_load` names the other programs of the object
    /// the scenario needs loaded (tail-call targets of `[[setup.map]] program`).
    pub fn options(&self, also_load: Vec<String>) -> LoadOptions {
        LoadOptions {
            global_values: self.globals.clone(),
            max_entries: self.max_entries.clone(),
            program_type: self.program_type,
            also_load,
            ..LoadOptions::default()
        }
    }
}

/// The programs `[[setup.map]] program = NAME` puts in PROG_ARRAY slots of the program under
/// test (setups with no `at`), which must be loaded with it.
pub fn tail_call_programs(setups: &[MapSetup]) -> Vec<String> {
    let mut names: Vec<String> = setups
        .iter()
        .filter(|s| s.at.is_none())
        .filter_map(|s| s.program.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The programs of `[[setup.map]] program = NAME` for the `[[attach]]` program at `at`.
pub fn attach_tail_calls(scenario: &Scenario, spec: &TopologySpec, at: &IfaceRef) -> Vec<String> {
    let me = resolve(spec, at).ok();
    let mut names: Vec<String> = scenario
        .map_setup
        .iter()
        .filter(|s| {
            s.at.as_ref()
                .is_some_and(|a| me.is_some() && resolve(spec, a).ok() == me)
        })
        .filter_map(|s| s.program.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Loads the program under test with the scenario's loader settings; errors name the line of
/// the key at fault.
pub(super) fn load_program(scenario: &Scenario, extra: LoadOptions) -> Result<Program, RunError> {
    let p = &scenario.program;
    let options = LoadOptions {
        map_pin_dir: extra.map_pin_dir,
        pin_root: extra.pin_root,
        ..p.loader.options(tail_call_programs(&scenario.map_setup))
    };
    Program::load_with(&p.object, &p.entry, &options)
        .map_err(|e| loader_error(scenario, &p.loader, p.object_line, p.entry_line, &e))
}

/// Loads an `[[attach]]` program, its maps pinned by name in `pin_root` (the program under
/// test's, so objects of one run share them as libbpf's pin root does); errors name the line
/// of its table.
pub(super) fn load_attachment(
    scenario: &Scenario,
    a: &AttachSpec,
    pin_root: Option<&Path>,
) -> Result<Program, RunError> {
    let spec = topology_spec(scenario);
    let options = LoadOptions {
        pin_root: pin_root.map(Path::to_owned),
        ..a.loader.options(attach_tail_calls(scenario, &spec, &a.at))
    };
    Program::load_with(&a.object, &a.entry, &options)
        .map_err(|e| loader_error(scenario, &a.loader, a.line, a.line, &e))
}

/// A load error located at the loader key at fault (`globals`, `max-entries`), else as
/// [`load_error`] locates it.
fn loader_error(
    scenario: &Scenario,
    loader: &LoaderSpec,
    object_line: usize,
    entry_line: usize,
    e: &ProgramError,
) -> RunError {
    let line = match e {
        ProgramError::GlobalValue { .. } | ProgramError::Global { .. }
            if loader.globals_line > 0 =>
        {
            loader.globals_line
        }
        ProgramError::NoMap { .. } | ProgramError::MapTooLarge { .. }
            if loader.max_entries_line > 0 =>
        {
            loader.max_entries_line
        }
        // A tail-call target the object lacks: the [[setup.map]] that names it is at fault.
        ProgramError::NoProgram { entry, .. } | ProgramError::NotXdp { entry, .. }
            if scenario
                .map_setup
                .iter()
                .any(|s| s.program.as_deref() == Some(entry.as_str())) =>
        {
            scenario
                .map_setup
                .iter()
                .find(|s| s.program.as_deref() == Some(entry.as_str()))
                .map_or(entry_line, |s| s.line)
        }
        ProgramError::ZeroEntries { .. } | ProgramError::MapTooLarge { .. } => object_line,
        _ => return load_error(scenario, object_line, entry_line, e),
    };
    let message = at(scenario, line, &e.to_string());
    if e.is_environment() {
        RunError::environment(message)
    } else {
        RunError::input(message)
    }
}

/// The loaded programs whose maps `[[setup.map]]` and `[[expect.map]]` can name: the program
/// under test, and `[[attach]]` programs by their interface.
pub(super) struct MapOwners<'a> {
    pub(super) main: &'a Program,
    pub(super) attached: Vec<(EndName, &'a Program)>,
    spec: TopologySpec,
}

impl<'a> MapOwners<'a> {
    /// The program under test only (the test-run path loads no `[[attach]]` program).
    pub(super) fn main(scenario: &Scenario, main: &'a Program) -> Self {
        Self {
            main,
            attached: Vec::new(),
            spec: topology_spec(scenario),
        }
    }

    /// With the `[[attach]]` programs, each at the interface its table names.
    pub(super) fn with(
        scenario: &Scenario,
        main: &'a Program,
        attached: impl IntoIterator<Item = (EndName, &'a Program)>,
    ) -> Self {
        Self {
            main,
            attached: attached.into_iter().collect(),
            spec: topology_spec(scenario),
        }
    }

    /// The program owning a table's map: `None` when it is an `[[attach]]` program this path
    /// did not load.
    pub(super) fn get(&self, at: Option<&IfaceRef>) -> Result<Option<&'a Program>, RunError> {
        let Some(at) = at else {
            return Ok(Some(self.main));
        };
        let end = resolve(&self.spec, at)?;
        Ok(self
            .attached
            .iter()
            .find(|(name, _)| *name == end)
            .map(|(_, p)| *p))
    }
}

/// Fills the PROG_ARRAY slots `[[setup.map]] program = NAME` names, in the program under test
/// (`main`) or the `[[attach]]` program at the table's `at` (`attached`).
pub(super) fn fill_tail_calls(
    scenario: &Scenario,
    main: &mut Program,
    attached: &mut [(EndName, &mut Program)],
) -> Result<(), RunError> {
    let spec = topology_spec(scenario);
    for setup in &scenario.map_setup {
        let Some(name) = &setup.program else {
            continue;
        };
        let program: &mut Program = match &setup.at {
            None => main,
            Some(at) => {
                let end = resolve(&spec, at)?;
                match attached.iter_mut().find(|(n, _)| *n == end) {
                    Some((_, p)) => p,
                    None => continue,
                }
            }
        };
        let index = match &setup.key {
            MapBytes::Int(n) => u32::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            RunError::input(at(
                scenario,
                setup.line,
                &format!(
                    "key of map {:?}: a PROG_ARRAY slot is an integer index",
                    setup.map
                ),
            ))
        })?;
        program
            .set_tail_call(&setup.map, index, name)
            .map_err(|e| RunError::input(at(scenario, setup.line, &e.to_string())))?;
    }
    Ok(())
}
