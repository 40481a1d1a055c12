
#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::flow::{Flow, FlowExpect, FlowKind};

    const HEAD: &str = "schema-version = 1\nname = \"t\"\n";
    const BODY: &str = "[program]\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n\n[[send]]\nname = \"one\"\ncount = 1\nipv4 = {}\nexpect = \"pass\"\n";

    fn parse(text: &str) -> Result<crate::scenario::Scenario, String> {
        crate::scenario::parse(text, Path::new("scenarios/t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_flow_takes_the_defaults_of_its_kind_and_goes_to_the_peer() {
        let s = parse(&format!(
            "{HEAD}{BODY}\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\n"
        ))
        .expect("parses");
        let f = &s.flows[0];
        assert_eq!(f.flow, Flow::new("p", FlowKind::Ping));
        assert_eq!((f.from.to_string(), f.to.to_string()), ("sender".into(), "receiver".into()));
        assert_eq!(f.line, 15);
        assert!(!f.ipv6);
    }

    #[test]
    fn a_flow_in_a_topology_defaults_to_the_first_link() {
        let links = "[[link]]\na = \"client:eth0\"\nb = \"dut:in\"\n\n[[link]]\na = \"dut:out\"\nb = \"server:eth0\"\n\n";
        let s = parse(&format!(
            "{HEAD}{links}{BODY}\n[[flow]]\nname = \"s\"\nkind = \"tcp-stream\"\nbytes = 1000\nduration = \"1s\"\nexpect = \"blocked\"\n\n[[flow]]\nname = \"far\"\nkind = \"udp-rr\"\nto = \"server\"\ncount = 7\nmax-loss = 50\nexpect = \"complete\"\n"
        ))
        .expect("parses");
        let (s0, s1) = (&s.flows[0], &s.flows[1]);
        assert_eq!((s0.from.to_string(), s0.to.to_string()), ("client:eth0".into(), "dut:in".into()));
        assert_eq!(s0.flow.bytes, 1000);
        assert_eq!(s0.flow.duration, Some(std::time::Duration::from_secs(1)));
        assert_eq!(s0.flow.expect, FlowExpect::Blocked);
        assert_eq!(s1.to.to_string(), "server");
        assert_eq!((s1.flow.count, s1.flow.max_loss), (7, Some(50.0)));
    }

    #[test]
    fn flows_are_refused_beside_steps() {
        let e = parse(&format!(
            "{HEAD}[[step]]\nload = \"v1\"\nobject = \"xdp_pass\"\nentry = \"xdp_pass\"\n\n[[flow]]\nname = \"p\"\nkind = \"ping\"\nexpect = \"complete\"\n"
        ))
        .expect_err("refused");
        assert!(e.contains("move [[flow]] into"), "{e}");
    }
}
