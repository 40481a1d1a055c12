//! What a user's criterion bench of their own program looks like: two builds of one program
//! (here the bundled seed dropper and its deliberately slower variant, standing in for your
//! version 1 and version 2), each timed by the kernel's own run-time statistics through
//! [`KernelTimer`], so criterion reports the program's nanoseconds per frame and compares
//! them with the previous `cargo bench` run.
//!
//! ```text
//! cargo bench -p xdplab-benches --bench my_program        # as root, about 10 s
//! ```

use criterion::{Criterion, Throughput};
use xdplab::bench::ab::{BenchObject, KernelTimer, Traffic};

fn my_program(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf/obj");
    let traffic = Traffic::udp(64).expect("a 64-byte UDP frame");
    let mut group = c.benchmark_group("my_program");
    group.throughput(Throughput::Elements(1));
    for file in ["xdp_drop.bpf.o", "xdp_drop_slow.bpf.o"] {
        let object = BenchObject::from_file(format!("{dir}/{file}").as_ref(), None).expect(file);
        let timer = KernelTimer::new(&object, &traffic).expect("load");
        group.bench_function(&object.name, |b| {
            b.iter_custom(|iters| timer.time(iters).expect("test run"))
        });
    }
    group.finish();
}

fn main() {
    if !xdplab_benches::gate("my_program benchmark") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    if xdplab_benches::smoke() {
        c = c
            .sample_size(10)
            .warm_up_time(std::time::Duration::from_millis(50))
            .measurement_time(std::time::Duration::from_millis(200));
    }
    my_program(&mut c);
    c.final_summary();
}
