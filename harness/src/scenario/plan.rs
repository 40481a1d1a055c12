//! A scenario resolved for the engine: its topology, the interfaces its references name,
//! its frames laid out once, its groups as the engine plans them, and the options of a run.

use super::{FrameSource, IfaceRef, Scenario};
use crate::engine::GroupPlan;
use crate::engine::RunError;
use crate::{
    frame::{FrameError, FrameSpec, FrameTemplate, HexBytes},
    kernel::program::{Program, ProgramError},
    topology::{EndName, LinkDef, TopologySpec, link_endpoints},
};
use std::path::PathBuf;

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Write a capture file per interface of a failing scenario here.
    pub capture_dir: Option<PathBuf>,
    /// The format of those files (default: classic pcap).
    pub capture_format: crate::frame::pcap::CaptureFormat,
    /// The id tagged into every frame (default: the lab's random one). [`run_paths`](super::run::run_paths) gives
    /// all paths the same id, so the frames, and so their outputs, are byte for byte equal.
    pub run_id: Option<u32>,
    /// Leave `[throughput]` floors unmeasured (`xdplab run --no-throughput`): frames, maps and
    /// flows are judged as ever, and the report notes the floor it did not check. For runs
    /// that share the machine with other labs (tests side by side, two CI jobs on a runner),
    /// where a rate says more about the neighbours than about the program.
    pub no_throughput: bool,
}

/// The programs [`check_and_keep`](super::run::check_and_keep) loaded, kept for the run that follows so that each object
/// is loaded into the kernel once: [`run_paths_checked`](super::run::run_paths_checked) hands them to its first path.
#[derive(Debug)]
pub struct Checked {
    pub(super) program: Program,
    pub(super) attachments: Vec<Program>,
}

/// Where a problem with a scenario item is: `file:line: ...`.
pub(super) fn at(scenario: &Scenario, line: usize, what: &str) -> String {
    format!("{}:{line}: {what}", scenario.path.display())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenario's topology, resolved before anything is built

/// The scenario's links as a topology to build.
pub(super) fn topology_spec(scenario: &Scenario) -> TopologySpec {
    let mut spec = links_spec(scenario);
    spec.state = super::kernel_state::states(&scenario.netns, &spec);
    spec
}

/// The scenario's links, without the kernel state of `[[netns]]`.
pub(super) fn links_spec(scenario: &Scenario) -> TopologySpec {
    if scenario.links.is_empty() {
        return crate::topology::lab::Lab::spec(&crate::topology::lab::LabConfig {
            mtu: scenario.lab.mtu,
            ipv6: scenario.lab.ipv6,
        });
    }
    TopologySpec {
        links: scenario
            .links
            .iter()
            .map(|l| LinkDef {
                a: EndName {
                    netns: l.a.netns.clone(),
                    interface: l.a.interface.clone(),
                },
                b: EndName {
                    netns: l.b.netns.clone(),
                    interface: l.b.interface.clone(),
                },
                mtu: l.mtu.unwrap_or(scenario.lab.mtu),
            })
            .collect(),
        ipv6: scenario.lab.ipv6,
        state: Vec::new(),
    }
}

/// The interface a reference names (the only one of its namespace without `:if`).
pub(super) fn resolve(spec: &TopologySpec, r: &IfaceRef) -> Result<EndName, RunError> {
    spec.resolve(&r.netns, r.interface.as_deref())
        .map_err(|e| RunError::input(e.to_string()))
}

/// The link index of `end` and whether it is the link's `a` end.
pub(super) fn link_of(spec: &TopologySpec, end: &EndName) -> Option<(usize, bool)> {
    spec.link_of(end)
}

pub(super) fn peer_name(spec: &TopologySpec, end: &EndName) -> Option<EndName> {
    spec.peer(end).cloned()
}

/// The frames of each group, laid out once.
pub(super) fn build_frames(
    scenario: &Scenario,
    spec: &TopologySpec,
) -> Result<Vec<Vec<FrameTemplate>>, RunError> {
    scenario
        .sends
        .iter()
        .map(|group| {
            let from = resolve(spec, &group.from)?;
            let (index, is_a) = link_of(spec, &from).expect("resolved ends are in a link");
            let endpoints = link_endpoints(index, is_a);
            let mtu = spec.links[index].mtu;
            let error = |e: FrameError| {
                RunError::input(at(
                    scenario,
                    group.line,
                    &format!("send {:?}: {e}", group.name),
                ))
            };
            match &group.frames {
                FrameSource::Spec(frame) => {
                    let lab = crate::scenario::LabSpec {
                        mtu,
                        ..scenario.lab.clone()
                    };
                    let max_len = lab.max_frame_len(frame);
                    Ok(vec![
                        FrameTemplate::build(frame, &endpoints, max_len).map_err(error)?,
                    ])
                }
                FrameSource::Pcap { frames, .. } => frames
                    .iter()
                    .map(|bytes| {
                        let frame = FrameSpec {
                            raw: Some(HexBytes(bytes.clone())),
                            ..FrameSpec::default()
                        };
                        let lab = crate::scenario::LabSpec {
                            mtu,
                            ..scenario.lab.clone()
                        };
                        FrameTemplate::build(&frame, &endpoints, lab.max_frame_len(&frame))
                            .map_err(error)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Each send group as the engine runs it: interfaces resolved, frames laid out.
pub(super) fn group_plans(
    scenario: &Scenario,
    spec: &TopologySpec,
    templates: Vec<Vec<FrameTemplate>>,
) -> Result<Vec<GroupPlan>, RunError> {
    scenario
        .sends
        .iter()
        .zip(templates)
        .map(|(group, frames)| {
            Ok(GroupPlan {
                name: group.name.clone(),
                from: resolve(spec, &group.from)?,
                frames,
                count: group.count,
                expect: group.expect,
                redirect_to: group
                    .redirect_to
                    .as_ref()
                    .map(|r| resolve(spec, r))
                    .transpose()?,
                output: group.output.clone(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checks that need the program but no lab

/// A load error located at the object's line (the file or its ELF is at fault) or the
/// entry's (the program is), without the raw errno of a missing or unreadable file.
pub(super) fn load_error(
    scenario: &Scenario,
    object_line: usize,
    entry_line: usize,
    e: &ProgramError,
) -> RunError {
    let (line, message) = match e {
        ProgramError::Read { path, source } => {
            let why = match source.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_owned(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                std::io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
                _ => source.to_string(),
            };
            (
                object_line,
                format!("failed to read object {}: {why}", path.display()),
            )
        }
        ProgramError::UnknownBundled { .. }
        | ProgramError::Object { .. }
        | ProgramError::Elf { .. } => (object_line, e.to_string()),
        _ => (entry_line, e.to_string()),
    };
    let message = at(scenario, line, &message);
    if e.is_environment() {
        RunError::environment(message)
    } else {
        RunError::input(message)
    }
}

/// The frames of a scenario's send groups, each group's frames once in file order, as they
/// leave the sending interface in the default lab: what `xdplab bench --traffic FILE.toml`
/// sends.
pub fn send_frames(scenario: &Scenario) -> Result<Vec<Vec<u8>>, RunError> {
    let spec = links_spec(scenario);
    Ok(build_frames(scenario, &spec)?
        .into_iter()
        .flatten()
        .map(|t| t.bytes().to_vec())
        .collect())
}
