//! Flows through the program under test: the lab's own stacks ping, connect, stream and
//! exchange transactions through `xdp_pass` (everything completes), the seed dropper
//! (everything is blocked) and `xdp_filter` (what its rules block is blocked, the rest
//! completes); and the judgement fails when a flow does not come to what it should. Needs root.

mod common;

use xdplab::{
    flow::{self, Ends, Flow, FlowKind, FlowStatus},
    lab::{Lab, LabConfig},
    privileges,
    program::{ObjectSource, Program, XdpMode},
};

fn all_kinds() -> Vec<Flow> {
    [
        FlowKind::Ping,
        FlowKind::TcpConnect,
        FlowKind::TcpStream,
        FlowKind::UdpRr,
        FlowKind::TcpRr,
    ]
    .into_iter()
    .map(|kind| Flow::new(kind.to_string(), kind))
    .collect()
}

fn run_all(lab: &Lab, flows: &[Flow]) -> Vec<flow::FlowReport> {
    let ends = Ends {
        from: lab.sender_netns(),
        to: lab.receiver_netns(),
        dst: lab.receiver().ipv4().into(),
    };
    flows
        .iter()
        .map(|f| flow::run(f, &ends).expect("flow runs"))
        .collect()
}

#[test]
fn privileged_flows_library_pass_and_drop() {
    if !privileges::gate("privileged_flows_library_pass_and_drop") {
        return;
    }
    for mode in [XdpMode::Native, XdpMode::Generic] {
        let lab = Lab::new(&LabConfig::default()).expect("lab");
        let flows = all_kinds();
        for (entry, object, want) in [
            ("xdp_pass", "xdp_pass", FlowStatus::Complete),
            ("xdp_drop_all", "xdp_drop", FlowStatus::Blocked),
        ] {
            let mut program =
                Program::load(&ObjectSource::Bundled(object.into()), entry).expect("load");
            let attachment = program.attach(lab.receiver(), mode).expect("attach");
            for report in run_all(&lab, &flows) {
                println!(
                    "{mode:?} {entry}: {} {}: {}",
                    report.name,
                    report.status,
                    report.summary()
                );
                assert_eq!(report.status, want, "{mode:?} {entry}: {report:?}");
            }
            attachment.detach().expect("detach");
        }
    }
}
