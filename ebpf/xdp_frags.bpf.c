// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_frags.bpf.c - a multi-buffer (xdp.frags) length limit.
 *
 * Loaded with BPF_F_XDP_HAS_FRAGS, so frames larger than a page reach it
 * whole, as a linear part and fragments, and a veth lets it run natively
 * under a jumbo MTU. It measures each frame with bpf_xdp_get_buff_len(),
 * which counts the fragments too (ctx->data_end - ctx->data covers only the
 * linear part), and drops frames longer than the limit in len_limit[0]:
 *
 *   len_limit[0]               frame length L     verdict  counters
 *   0 (never written)          any                PASS     pass_cnt, pass_bytes
 *   N > 0                      L <= N             PASS     pass_cnt, pass_bytes
 *   N > 0                      L > N              DROP     drop_cnt, drop_bytes
 *
 * multi_cnt counts the frames that arrived in more than one buffer (linear
 * part shorter than the frame): how the kernel split the frame depends on
 * the path (native veth, generic, BPF_PROG_TEST_RUN), the verdict does not.
 *
 * Maps (all BPF_MAP_TYPE_ARRAY, __u32 key 0 -> __u64; the limit is a map
 * rather than a .rodata global so that user space can set it on any loader):
 *   len_limit   the limit in bytes (frame without FCS), 0 = none
 *   pass_cnt    frames passed          drop_cnt    frames dropped
 *   pass_bytes  bytes of those         drop_bytes  bytes of those
 *   multi_cnt   frames in more than one buffer
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define COUNTER(name)                           \
	struct {                                    \
		__uint(type, BPF_MAP_TYPE_ARRAY);       \
		__uint(max_entries, 1);                 \
		__type(key, __u32);                     \
		__type(value, __u64);                   \
	} name SEC(".maps")

COUNTER(len_limit);
COUNTER(pass_cnt);
COUNTER(drop_cnt);
COUNTER(pass_bytes);
COUNTER(drop_bytes);
COUNTER(multi_cnt);

static __always_inline void add(void *map, __u64 n)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, n);
}

SEC("xdp.frags")
int xdp_frags_limit(struct xdp_md *ctx)
{
	__u64 len = bpf_xdp_get_buff_len(ctx);
	__u64 linear = (__u64)(ctx->data_end - ctx->data);
	__u32 key = 0;
	__u64 *limit = bpf_map_lookup_elem(&len_limit, &key);

	if (linear < len)
		add(&multi_cnt, 1);
	if (limit && *limit && len > *limit) {
		add(&drop_cnt, 1);
		add(&drop_bytes, len);
		return XDP_DROP;
	}
	add(&pass_cnt, 1);
	add(&pass_bytes, len);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
