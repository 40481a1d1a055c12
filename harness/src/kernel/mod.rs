//! The kernel objects a lab is made of, one module per concept: network namespaces
//! ([`netns`]) and their state ([`netstate`]: sysctls, addresses, neighbours, routes), veth
//! pairs ([`veth`]), XDP programs ([`program`], with [`elf`] for the objects libbpf users write
//! and [`btf`] for the C types of their maps), their maps ([`maps`]), bpf_links ([`link`]) and
//! pins in a private bpffs ([`pin`]), the kernel's run-time statistics of programs
//! ([`stats`]), and what to raise when the kernel refuses one of them ([`refusal`]).

pub mod btf;
pub mod elf;
pub mod link;
pub mod maps;
pub mod netns;
pub mod netstate;
pub mod pin;
pub mod program;
pub mod refusal;
pub mod stats;
pub mod veth;
