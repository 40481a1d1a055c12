// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_exception.bpf.c - the exception observer.
 *
 * Not an XDP program: a BTF-enabled raw tracepoint on xdp:xdp_exception,
 * which the kernel fires when an XDP program returns XDP_ABORTED, or a
 * verdict the driver (or generic XDP, a devmap or cpumap program) does not
 * support, e.g. an out-of-range value. It counts each firing per
 * (program id, action).
 *
 * The kernel passes the raw tracepoint arguments
 *     (const struct net_device *dev, const struct bpf_prog *xdp, u32 act)
 * and the program id is xdp->aux->id, the id `bpftool prog show` prints and
 * BPF_PROG_GET_FD_BY_ID takes. It is read with CO-RE: the loader relocates
 * the field offsets below against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux), so no vmlinux.h is needed and no offset is
 * hard-coded.
 *
 * It observes every XDP program on the machine, not only the lab's; filter
 * by prog_id in user space. Attaching it needs the kernel's BTF, hence
 * CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN), and a GPL licence.
 *
 * Maps:
 *   exceptions  BPF_MAP_TYPE_HASH, 1024 entries,
 *               struct xdp_exception_key { __u32 prog_id; __u32 act; } (8 bytes)
 *               -> __u64 times the tracepoint fired with that pair. An entry
 *               appears on the pair's first firing (created with BPF_NOEXIST,
 *               then an atomic add). When the map is full, new pairs are not
 *               counted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EXCEPTION_ENTRIES	1024

/*
 * Just the fields we read, for CO-RE: preserve_access_index makes clang
 * record each access as a relocation by type and field name, which the
 * loader resolves against the kernel's own struct layout.
 */
struct net_device;

struct bpf_prog_aux {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_prog {
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct xdp_exception_key {
	__u32 prog_id;
	__u32 act;
};

_Static_assert(sizeof(struct xdp_exception_key) == 8, "xdp_exception_key is 8 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXCEPTION_ENTRIES);
	__type(key, struct xdp_exception_key);
	__type(value, __u64);
} exceptions SEC(".maps");

SEC("tp_btf/xdp_exception")
int BPF_PROG(xdp_exception, const struct net_device *dev, const struct bpf_prog *xdp,
	     __u32 act)
{
	struct xdp_exception_key key = {
		/*
		 * Direct reads of BTF pointers: tp_btf arguments are typed by
		 * the kernel's BTF, and the verifier turns these loads into
		 * fault-safe ones.
		 */
		.prog_id = xdp->aux->id,
		.act = act,
	};
	__u64 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&exceptions, &key);

	if (!value) {
		/* BPF_NOEXIST: two CPUs racing on a first firing do not reset each other. */
		bpf_map_update_elem(&exceptions, &key, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&exceptions, &key);
	}
	if (value)
		__sync_fetch_and_add(value, 1);
	return 0;
}

char _license[] SEC("license") = "GPL";
