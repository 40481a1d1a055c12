// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_drop_slow.bpf.c - the seed dropper with deliberate extra work.
 *
 * Does what xdp_drop_all does (drop every frame, count it in drop_cnt[0]),
 * after SLOW_LOOKUPS lookups in a small hash map whose result it folds into
 * a value the verifier cannot prove unused. It exists to be the "version 2
 * that got slower" of the A/B benchmark tests: several times the kernel's
 * run time per frame of xdp_drop_all, with the same verdict and counters.
 *
 * Maps:
 *   drop_cnt   BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames dropped
 *   slow_table BPF_MAP_TYPE_HASH, 64 entries, __u32 -> __u64 (empty unless
 *              user space fills it; a miss costs a hash walk all the same)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SLOW_LOOKUPS 32

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drop_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} slow_table SEC(".maps");

SEC("xdp")
int xdp_drop_all(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 found = 0;
	__u64 *value;

	/* A bounded loop (verified since Linux 5.3): each turn hashes a new key. */
	for (__u32 i = 0; i < SLOW_LOOKUPS; i++) {
		__u32 slot = i * 2654435761u;
		__u64 *hit = bpf_map_lookup_elem(&slow_table, &slot);

		if (hit)
			found += *hit;
	}
	value = bpf_map_lookup_elem(&drop_cnt, &key);
	/* An array lookup of key 0 cannot fail, but the verifier insists. */
	if (value)
		__sync_fetch_and_add(value, 1 + (found & 0));
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
