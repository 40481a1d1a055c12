// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_vlan.bpf.c - a VLAN tag rewriter: pops and pushes 802.1Q tags.
 *
 * Two programs; both pass every frame (XDP_PASS), changed or not:
 *
 *   xdp_vlan_pop   frame with an outer 802.1Q (0x8100) or 802.1ad (0x88a8)
 *                  tag: the tag is removed (bpf_xdp_adjust_head, +4) and
 *                  the frame is 4 bytes shorter; vlan_cnt[0] += 1.
 *                  Any other frame: unchanged.
 *   xdp_vlan_push  frame without an outer tag: an 802.1Q tag with the id
 *                  in vlan_push_id[0] (low 12 bits; PCP and DEI 0) is put
 *                  after the MAC addresses (bpf_xdp_adjust_head, -4);
 *                  vlan_cnt[1] += 1. Tagged frames and frames shorter than
 *                  14 bytes: unchanged.
 *
 * Maps:
 *   vlan_cnt      BPF_MAP_TYPE_ARRAY, 2 entries, __u32 key -> __u64
 *                 (0: tags popped, 1: tags pushed; atomic add)
 *   vlan_push_id  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u32 VLAN id
 *                 to push (default 0: a priority tag)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_tag {
	__be16 tci;
	__be16 inner_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} vlan_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} vlan_push_id SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *value = bpf_map_lookup_elem(&vlan_cnt, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline int is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

SEC("xdp")
int xdp_vlan_pop(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct vlan_tag *tag;
	struct ethhdr outer;

	if ((void *)(eth + 1) > data_end || !is_vlan(eth->h_proto))
		return XDP_PASS;
	tag = (void *)(eth + 1);
	if ((void *)(tag + 1) > data_end)
		return XDP_PASS;

	/* The new header: the same addresses, the EtherType from inside the tag. */
	__builtin_memcpy(outer.h_dest, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(outer.h_source, eth->h_source, ETH_ALEN);
	outer.h_proto = tag->inner_proto;

	if (bpf_xdp_adjust_head(ctx, (int)sizeof(*tag)))
		return XDP_ABORTED;
	data_end = (void *)(long)ctx->data_end;
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, &outer, sizeof(outer));
	count(0);
	return XDP_PASS;
}

SEC("xdp")
int xdp_vlan_push(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct vlan_tag *tag;
	struct ethhdr old;
	__u32 key = 0;
	__u32 *id;
	__u16 vid = 0;

	if ((void *)(eth + 1) > data_end || is_vlan(eth->h_proto))
		return XDP_PASS;
	__builtin_memcpy(&old, eth, sizeof(old));
	id = bpf_map_lookup_elem(&vlan_push_id, &key);
	if (id)
		vid = *id & 0x0fff;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*tag)))
		return XDP_ABORTED;
	data_end = (void *)(long)ctx->data_end;
	eth = (void *)(long)ctx->data;
	tag = (void *)(eth + 1);
	if ((void *)(tag + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, old.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_source, old.h_source, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_8021Q);
	tag->tci = bpf_htons(vid);
	tag->inner_proto = old.h_proto;
	count(1);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
