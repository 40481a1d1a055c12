// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_pass.bpf.c - the baseline.
 *
 * Passes every frame to the stack and counts it in pass_cnt[0]. Used to
 * measure the cost of an attached program that makes no decision.
 *
 * Maps:
 *   pass_cnt  BPF_MAP_TYPE_PERCPU_ARRAY, 1 entry, __u32 key 0 -> __u64 per CPU
 *             (user space sums the per-CPU values)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pass_cnt SEC(".maps");

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&pass_cnt, &key);

	/* Per-CPU slot: no other CPU writes it, so no atomic is needed. */
	if (value)
		*value += 1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
