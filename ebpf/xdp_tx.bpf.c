// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_tx.bpf.c - the reflector.
 *
 * Swaps the Ethernet destination and source MAC addresses of every frame
 * and sends it back out of the interface it arrived on (XDP_TX). Nothing
 * after the MAC addresses is read or changed.
 *
 *   frame                          verdict   counters
 *   at least 14 bytes              TX        tx_cnt, MACs swapped
 *   shorter than 14 bytes          DROP      none
 *
 * Maps:
 *   tx_cnt  BPF_MAP_TYPE_ARRAY, 1 entry, __u32 key 0 -> __u64 frames returned
 *           with XDP_TX (atomic add)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tx_cnt SEC(".maps");

SEC("xdp")
int xdp_tx(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	__u8 mac[ETH_ALEN];
	__u32 key = 0;
	__u64 *value;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;

	/* Byte arrays: clang copies them bytewise, no alignment assumed. */
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	value = bpf_map_lookup_elem(&tx_cnt, &key);
	if (value)
		__sync_fetch_and_add(value, 1);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
