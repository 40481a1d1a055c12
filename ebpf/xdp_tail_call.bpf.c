// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_tail_call.bpf.c - a dispatcher that hands IPv4 UDP and TCP frames to other programs of
 * the same object through a BPF_MAP_TYPE_PROG_ARRAY, as libbpf-based loaders set it up:
 *
 *   xdp_dispatch    SEC("xdp"): UDP -> tail call jmp_table[0], TCP -> jmp_table[1]; anything
 *                   else, and a tail call into an empty slot, passes (XDP_PASS)
 *   xdp_stage_udp   SEC("xdp/udp"): counts stage_hits[0], drops (XDP_DROP)
 *   xdp_stage_tcp   SEC("xdp/tcp"): counts stage_hits[1], passes (XDP_PASS)
 *
 * Both stages count through hit(), a function of its own (a BPF-to-BPF call).
 *
 *   jmp_table   BPF_MAP_TYPE_PROG_ARRAY, 4 slots, filled by the loader
 *   stage_hits  BPF_MAP_TYPE_ARRAY, __u32 -> __u64, max_entries 0 in the object: the loader
 *               sets its size (libbpf's bpf_map__set_max_entries; `max-entries` in a scenario)
 *
 * With the slots empty, UDP frames pass instead of being dropped: a test that fills the table
 * can tell that it did.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jmp_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 0);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

/* A BPF-to-BPF call (a function of its own in .text), as libbpf programs often have. */
static __noinline int hit(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&stage_hits, &slot);

	if (!value)
		return 0;
	__sync_fetch_and_add(value, 1);
	return 1;
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol == IPPROTO_UDP)
		bpf_tail_call(ctx, &jmp_table, 0);
	else if (ip->protocol == IPPROTO_TCP)
		bpf_tail_call(ctx, &jmp_table, 1);
	/* Reached only when the slot is empty (or for other protocols). */
	return XDP_PASS;
}

SEC("xdp/udp")
int xdp_stage_udp(struct xdp_md *ctx)
{
	hit(0);
	return XDP_DROP;
}

SEC("xdp/tcp")
int xdp_stage_tcp(struct xdp_md *ctx)
{
	hit(1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
