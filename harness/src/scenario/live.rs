//! The live paths of a `[[send]]` scenario: programs loaded and attached in the scenario's
//! topology, its groups run through the engine's [`crate::engine::LiveSession`], its maps and
//! ring buffers checked, capture files written for a failing run.

use super::Scenario;
use super::map_checks::{Events, check_before_lab, check_maps, map_baselines, setup_maps};
use super::plan::{
    Checked, RunOptions, build_frames, group_plans, link_of, peer_name, resolve, topology_spec,
};
use crate::engine::RunError;
use crate::engine::error::interrupted;
use crate::engine::{LiveSession, SessionOptions, UnderTest};
use crate::{
    kernel::link::XdpLink,
    kernel::pin::Bpffs,
    kernel::program::{Attachment, LoadOptions, Program, XdpMode},
    kernel::veth::VethEnd,
    report::ScenarioReport,
    scenario::loader::{MapOwners, fill_tail_calls, load_attachment, load_program},
    topology::{EndName, Topology, TopologySpec},
    verdict::Verdict,
};
use std::path::{Path, PathBuf};

/// Frames kept per interface for `--capture` pcaps.
const CAPTURE_KEEP: usize = 100_000;

/// Programs the run attached, kept alive until the end (dropped in reverse order).
pub(super) struct Attached {
    programs: Vec<(Program, Attachment)>,
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear run: setup, traffic, evaluation; split further it reads worse"
)]
pub(super) fn execute_live(
    scenario: &Scenario,
    mode: XdpMode,
    options: &RunOptions,
    checked: Option<Checked>,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    let spec = topology_spec(scenario);
    // The lab builds while the objects load and the frames are laid out.
    let building = Topology::build_in_background(spec.clone())?;
    let bpffs = run_bpffs(scenario)?;
    let (mut program, extra) = load_objects(scenario, &spec, bpffs.as_ref(), checked)?;
    let templates = build_frames(scenario, &spec)?;
    let attach_name = resolve(&spec, &scenario.program.attach)?;
    let attach_peer = peer_name(&spec, &attach_name).expect("every end has a peer");
    check_native_mtu(scenario, &spec, mode, &attach_name)?;

    let topology = building.wait()?;
    let end = |name: &EndName| -> &VethEnd {
        topology
            .interface(&name.netns, Some(&name.interface))
            .expect("resolved names exist")
            .1
    };
    let (setup_result, baselines) = {
        let owners = MapOwners::with(
            scenario,
            &program,
            extra.iter().map(|(n, p, _)| (n.clone(), p)),
        );
        (
            setup_maps(scenario, &owners, Some((&spec, &topology))),
            map_baselines(scenario, &owners),
        )
    };
    setup_result?;
    let baselines = baselines?;
    let mut events = Events::open(scenario, &mut program)?;

    let mut attached = Attached {
        programs: Vec::new(),
    };
    let mut taken: Vec<EndName> = vec![attach_name.clone()];
    let mut owner_names = Vec::new();
    for (at, mut program, mode) in extra {
        let attachment = program.attach(end(&at), mode)?;
        taken.push(at.clone());
        owner_names.push(at);
        attached.programs.push((program, attachment));
    }
    // Frames that leave by XDP_TX or XDP_REDIRECT in driver mode are xdp_frames, which a
    // veth drops unless the receiving end runs NAPI; an XDP program on it turns NAPI on.
    if mode == XdpMode::Native {
        let mut landing: Vec<(EndName, &str)> = Vec::new();
        for group in &scenario.sends {
            match group.expect {
                Verdict::Tx => landing.push((attach_peer.clone(), "XDP_TX")),
                Verdict::Redirect => {
                    if let Some(target) = &group.redirect_to {
                        let target = resolve(&spec, target)?;
                        landing.push((
                            peer_name(&spec, &target).expect("every end has a peer"),
                            "XDP_REDIRECT",
                        ));
                    }
                }
                _ => {}
            }
        }
        for (at, why) in landing {
            if taken.contains(&at) {
                continue;
            }
            // Above veth's cap for programs without xdp.frags, a frags program that passes
            // everything (xdp_frags_limit with no limit set) does the same job.
            let jumbo = link_of(&spec, &at)
                .is_some_and(|(i, _)| spec.links[i].mtu > crate::scenario::LabSpec::MAX_NATIVE_MTU);
            let (helper, attachment) = crate::engine::enable_napi(&topology, &at, jumbo)?;
            let entry = helper.entry().to_owned();
            report.notes.push(format!(
                "attached {entry} (native) to {at} so that frames sent by {why} can arrive (a veth drops them unless its receiving end runs NAPI)"
            ));
            taken.push(at);
            attached.programs.push((helper, attachment));
        }
    }
    let attachment = program.attach(end(&attach_name), mode)?;
    let attachment = match &bpffs {
        Some(bpffs) => {
            let link = XdpLink::pin(attachment, &bpffs.pin_path("links").join("program"))?;
            let mut pins = Vec::new();
            for dir in ["progs", "maps", "links"] {
                for entry in std::fs::read_dir(bpffs.pin_path(dir))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    pins.push(format!("{dir}/{}", entry.file_name().to_string_lossy()));
                }
            }
            pins.sort();
            report.notes.push(format!(
                "pinned in a private bpffs at {}: {}",
                bpffs.path().display(),
                pins.join(", ")
            ));
            Held::Pinned(link)
        }
        None => Held::Attached(attachment),
    };
    let plans = group_plans(scenario, &spec, templates)?;
    let session_options = SessionOptions {
        run_id: options.run_id,
        keep_frames: if options.capture_dir.is_some() {
            CAPTURE_KEEP
        } else {
            0
        },
    };
    let under_test = UnderTest {
        program: &program,
        attach: &attach_name,
        mode,
    };
    let mut session = LiveSession::open(&topology, under_test, &session_options)?;
    for plan in &plans {
        let outcome = session.send(plan, &mut || events.poll())?;
        report.notes.extend(outcome.notes);
        report
            .failures
            .extend(outcome.failures.iter().map(ToString::to_string));
        report.groups.push(outcome.report);
    }
    super::flows::run(scenario, &spec, &topology, (&attach_name, mode), report)?;
    interrupted()?;
    // Detaching from a veth waits for the kernel's RCU grace period, and so does closing the
    // session's packet sockets: both at once.
    let (closed, detached) = std::thread::scope(|scope| {
        let detaching = scope.spawn(move || match attachment {
            Held::Attached(attachment) => attachment.detach().map_err(RunError::from),
            // Unpinning and closing the link detaches the program.
            Held::Pinned(link) => link
                .unpin()
                .map_err(|e| RunError::environment(e.to_string())),
        });
        let closed = session.close();
        let detached = detaching
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (closed, detached)
    });
    detached?;
    report.notes.extend(closed.notes);
    report.unattributed_by_interface = closed.unattributed_by_interface;
    report.unattributed = report.unattributed_by_interface.values().sum();
    report
        .failures
        .extend(closed.failures.iter().map(ToString::to_string));
    report.counters = closed.counters;
    let kept_frames = closed.frames;
    events.check(scenario, &mut report.failures);
    let owners = MapOwners::with(
        scenario,
        &program,
        owner_names
            .iter()
            .cloned()
            .zip(attached.programs.iter().map(|(p, _)| p)),
    );
    check_maps(scenario, &owners, &baselines, report)?;
    if !report.failures.is_empty()
        && let Some(dir) = &options.capture_dir
    {
        report.captures = write_captures(
            dir,
            options.capture_format,
            scenario,
            &report.mode,
            &kept_frames,
        )?;
    }
    drop(attached);
    drop(topology);
    if let Some(bpffs) = bpffs {
        drop(program);
        bpffs
            .unmount()
            .map_err(|e| RunError::environment(e.to_string()))?;
    }
    Ok(())
}

/// How the program under test is held on its interface.
pub(super) enum Held {
    /// By its bpf_link's descriptor.
    Attached(Attachment),
    /// By the link's pin in the run's bpffs (`pin = true`).
    Pinned(XdpLink),
}

/// Windows of the program and of its baseline a `[throughput]` check measures, each.
const THROUGHPUT_ROUNDS: usize = 3;

/// Measures the scenario's program and the `[throughput]` baseline in interleaved rounds in the
/// same run, and fails the scenario if the median round's ratio is below the floor.
pub(super) fn check_throughput(
    scenario: &Scenario,
    spec: &crate::scenario::ThroughputSpec,
    mode: XdpMode,
    report: &mut ScenarioReport,
) -> Result<(), RunError> {
    use crate::bench::{BenchConfig, BenchProgram, measure};
    let config = |program: BenchProgram| BenchConfig {
        injector: spec.injector,
        mode,
        program,
        size: spec.size,
        duration: spec.duration,
        threads: spec.threads,
        flows: 1,
    };
    let error = |e: crate::bench::BenchError| {
        use crate::exit::Classify as _;
        // A baseline = "object:PATH" that is missing or unusable is the scenario's fault.
        if e.class() == crate::exit::ErrorClass::BadInput {
            RunError::input(e.to_string())
        } else {
            RunError::environment(e.to_string())
        }
    };
    let under_test = config(BenchProgram::Object {
        source: scenario.program.object.clone(),
        entry: scenario.program.entry.clone(),
    });
    let against = config(spec.baseline.clone());
    // Rounds interleaved A B, B A, A B and the median round's ratio: one window each was
    // decided by whatever else the machine ran in one of them (CI runs tests side by side).
    let mut rounds = Vec::with_capacity(THROUGHPUT_ROUNDS);
    for round in 0..THROUGHPUT_ROUNDS {
        let (program, baseline) = if round % 2 == 0 {
            let program = measure(&under_test).map_err(error)?;
            (program, measure(&against).map_err(error)?)
        } else {
            let baseline = measure(&against).map_err(error)?;
            (measure(&under_test).map_err(error)?, baseline)
        };
        let ratio = if baseline.rx_pps > 0.0 {
            program.rx_pps / baseline.rx_pps
        } else {
            0.0
        };
        rounds.push((ratio, program, baseline));
    }
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let spread: Vec<String> = rounds.iter().map(|r| format!("{:.2}", r.0)).collect();
    let (ratio, program, baseline) = rounds.swap_remove(THROUGHPUT_ROUNDS / 2);
    let ok = ratio >= spec.min_ratio;
    if !ok {
        report.failures.push(format!(
            "{}:{}: throughput {:.3} Mpps is {ratio:.2} x {} ({:.3} Mpps; the median of {THROUGHPUT_ROUNDS} interleaved rounds: {}), below the floor of {} (both {}, {} B, {} injector, {:?})",
            scenario.path.display(),
            spec.line,
            program.rx_pps / 1e6,
            baseline.program,
            baseline.rx_pps / 1e6,
            spread.join(", "),
            spec.min_ratio,
            mode,
            spec.size,
            spec.injector,
            spec.duration
        ));
    }
    report.throughput = Some(crate::report::ThroughputCheck {
        program,
        baseline,
        ratio,
        min_ratio: spec.min_ratio,
        ok,
    });
    Ok(())
}

/// Writes one pcap per interface; returns the files.
pub(super) fn write_captures(
    dir: &Path,
    format: crate::frame::pcap::CaptureFormat,
    scenario: &Scenario,
    path: &str,
    captured: &[(EndName, Vec<crate::engine::plan::KeptFrame>)],
) -> Result<Vec<PathBuf>, RunError> {
    let io = |e: crate::frame::pcap::PcapError| RunError::environment(e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| {
        RunError::environment(format!(
            "failed to create capture directory {}: {e}",
            dir.display()
        ))
    })?;
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut files = Vec::new();
    for (name, frames) in captured {
        let file = dir.join(format!(
            "{}.{}.{}-{}.{}",
            safe(&scenario.name),
            safe(path),
            safe(&name.netns),
            safe(&name.interface),
            format.extension()
        ));
        let interface = format!("{}:{}", name.netns, name.interface);
        let mut writer =
            crate::frame::pcap::PcapWriter::create_as(&file, format, &interface).map_err(io)?;
        for (time, frame) in frames {
            writer.write(frame, *time).map_err(io)?;
        }
        writer.finish().map_err(io)?;
        files.push(file);
    }
    Ok(files)
}

/// `pin = true`: the run's own bpffs, with the layout of lifecycle steps.
fn run_bpffs(scenario: &Scenario) -> Result<Option<Bpffs>, RunError> {
    Ok(if scenario.program.pin {
        let bpffs = Bpffs::mount()?;
        for dir in ["progs", "maps", "links"] {
            std::fs::create_dir(bpffs.pin_path(dir)).map_err(|e| {
                RunError::environment(format!("failed to create {dir} in the run's bpffs: {e}"))
            })?;
        }
        Some(bpffs)
    } else {
        None
    })
}

/// The program under test and every `[[attach]]` program with where it goes, loaded (or taken
/// from the checks), tail calls filled, maps checked against the scenario.
#[expect(
    clippy::type_complexity,
    reason = "the loaded programs, used once by execute_live"
)]
fn load_objects(
    scenario: &Scenario,
    spec: &TopologySpec,
    bpffs: Option<&Bpffs>,
    checked: Option<Checked>,
) -> Result<(Program, Vec<(EndName, Program, XdpMode)>), RunError> {
    let mut preloaded = None;
    let mut program = match bpffs {
        None if let Some(checked) = checked => {
            preloaded = Some(checked.attachments.into_iter());
            checked.program
        }
        Some(bpffs) => {
            let p = &scenario.program;
            let options = LoadOptions {
                map_pin_dir: Some(bpffs.pin_path("maps")),
                ..LoadOptions::default()
            };
            let mut program = load_program(scenario, options)?;
            program.pin(&bpffs.pin_path("progs").join(&p.entry))?;
            program
        }
        None => load_program(scenario, LoadOptions::default())?,
    };
    let mut extra = Vec::new();
    for a in &scenario.attachments {
        // Maps pinned by name are shared with the program under test, as under one pin root.
        let pin_root = bpffs
            .as_ref()
            .map(|b| b.pin_path("maps"))
            .or_else(|| program.pin_root().map(Path::to_owned));
        let program = match preloaded.as_mut().and_then(Iterator::next) {
            Some(program) => program,
            None => load_attachment(scenario, a, pin_root.as_deref())?,
        };
        extra.push((resolve(spec, &a.at)?, program, a.mode));
    }
    {
        let mut targets: Vec<(EndName, &mut Program)> =
            extra.iter_mut().map(|(n, p, _)| (n.clone(), p)).collect();
        fill_tail_calls(scenario, &mut program, &mut targets)?;
    }
    check_before_lab(
        scenario,
        &MapOwners::with(
            scenario,
            &program,
            extra.iter().map(|(n, p, _)| (n.clone(), p)),
        ),
    )?;
    Ok((program, extra))
}

/// Native XDP on veth caps the MTU of programs without `xdp.frags`.
fn check_native_mtu(
    scenario: &Scenario,
    spec: &TopologySpec,
    mode: XdpMode,
    attach_name: &EndName,
) -> Result<(), RunError> {
    if mode == XdpMode::Native
        && let Some(link) = spec
            .links
            .iter()
            .find(|l| &l.a == attach_name || &l.b == attach_name)
        && link.mtu > crate::scenario::LabSpec::MAX_NATIVE_MTU
        // An xdp.frags program takes frames in several buffers: veth allows any MTU.
        && crate::kernel::program::entry_has_frags(
            &scenario.program.object,
            &scenario.program.entry,
            scenario.program.loader.program_type,
        ) != Some(true)
    {
        return Err(RunError::input(format!(
            "{}: native XDP on {attach_name} needs an mtu of at most {} (the link has {}); \
             use the generic path",
            scenario.path.display(),
            crate::scenario::LabSpec::MAX_NATIVE_MTU,
            link.mtu
        )));
    }
    Ok(())
}
