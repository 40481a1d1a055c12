// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_drop.bpf.c - the seed dropper.
 *
 * Drops every frame and counts it in drop_cnt[0]. It is the smallest
 * program that proves a lab's attach path works: if frames stop arriving
 * and drop_cnt climbs, the program is attached where the harness thinks.
 *
 * Maps:
 *   drop_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames dropped
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drop_cnt SEC(".maps");

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&drop_cnt, &key);

	/* An array lookup of key 0 cannot fail, but the verifier insists. */
	if (value)
		__sync_fetch_and_add(value, 1);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
