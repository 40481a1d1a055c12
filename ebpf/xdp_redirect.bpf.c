// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_redirect.bpf.c - the forwarder.
 *
 * Redirects every frame to the interface stored in tx_port[0], with
 * bpf_redirect_map(&tx_port, 0, 0). User space writes the target ifindex
 * into key 0 before traffic flows.
 *
 *   tx_port[0]                     verdict    counters
 *   holds an ifindex               REDIRECT   redirect_cnt
 *   empty (never written/deleted)  ABORTED    none
 *
 * The ABORTED row is the helper's rule, not ours: on a missing entry
 * bpf_redirect_map() returns the low two bits of its flags argument as the
 * fallback verdict, and the flags are 0 = XDP_ABORTED. The kernel then drops
 * the frame and fires the xdp:xdp_exception tracepoint (see
 * xdp_exception.bpf.c). XDP_REDIRECT only says the program asked for the
 * redirect: a target that is down or cannot transmit XDP frames fails it
 * later (xdp:xdp_redirect_err, xdp:xdp_devmap_xmit), and redirect_cnt does
 * not see that.
 *
 * Maps:
 *   tx_port       BPF_MAP_TYPE_DEVMAP, 1 entry, __u32 key 0 -> __u32 target
 *                 ifindex (resolved in the network namespace of the process
 *                 that writes the entry)
 *   redirect_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames
 *                 for which the program returned XDP_REDIRECT (atomic add)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} redirect_cnt SEC(".maps");

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	__u32 key = 0;
	long verdict = bpf_redirect_map(&tx_port, 0, 0);

	if (verdict == XDP_REDIRECT) {
		__u64 *value = bpf_map_lookup_elem(&redirect_cnt, &key);

		if (value)
			__sync_fetch_and_add(value, 1);
	}
	return verdict;
}

char _license[] SEC("license") = "GPL";
