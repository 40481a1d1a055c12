// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_count.bpf.c - passes every frame and counts it by EtherType and by IP protocol.
 *
 * A traffic census for scenarios (and the bundled example of hash-map expectations):
 *
 *   by_ethertype  BPF_MAP_TYPE_LRU_HASH, 16384 entries, __u16 EtherType (host order, after
 *                 at most one 802.1Q/802.1ad tag) -> __u64 frames
 *   by_proto      BPF_MAP_TYPE_PERCPU_HASH, 64 entries, __u32 IP protocol (IPv4 protocol or
 *                 IPv6 next header, no extension headers walked) -> __u64 frames per CPU
 *   pass_cnt      BPF_MAP_TYPE_ARRAY, 1 entry, __u32 0 -> __u64 frames passed
 *
 * Frames shorter than an Ethernet header are counted in pass_cnt only.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * An LRU hash hands its free entries to CPUs in batches of 128 (LOCAL_FREE_TARGET) and evicts
 * when a CPU finds none left in its own batch, full map or not: with 64 entries and frames
 * handled on two CPUs, 5.10 evicted the IPv6 and ARP keys after a few frames. 16384 entries
 * leave a batch for each of 128 CPUs before anything can be evicted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u16);
	__type(value, __u64);
} by_ethertype SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pass_cnt SEC(".maps");

/* One VLAN tag: TPID already read, then TCI and the inner EtherType. */
struct vlan_tag {
	__be16 tci;
	__be16 ethertype;
};

static __always_inline void count_ethertype(__u16 ethertype)
{
	__u64 one = 1, *value = bpf_map_lookup_elem(&by_ethertype, &ethertype);

	if (!value && bpf_map_update_elem(&by_ethertype, &ethertype, &one, BPF_NOEXIST) == 0)
		return;
	/* Either the key existed, or another CPU inserted it between our lookup and update. */
	if (!value)
		value = bpf_map_lookup_elem(&by_ethertype, &ethertype);
	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline void count_proto(__u32 proto)
{
	__u64 one = 1, *value = bpf_map_lookup_elem(&by_proto, &proto);

	if (!value && bpf_map_update_elem(&by_proto, &proto, &one, BPF_NOEXIST) == 0)
		return;
	if (!value)
		value = bpf_map_lookup_elem(&by_proto, &proto);
	if (value)
		*value += 1; /* this CPU's slot: no other CPU writes it */
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = eth + 1;
	__u32 key = 0;
	__u64 *passed = bpf_map_lookup_elem(&pass_cnt, &key);
	__u16 ethertype;

	if (passed)
		__sync_fetch_and_add(passed, 1);
	if (l3 > data_end)
		return XDP_PASS;
	ethertype = bpf_ntohs(eth->h_proto);
	if (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) {
		struct vlan_tag *tag = l3;

		if ((void *)(tag + 1) > data_end)
			return XDP_PASS;
		ethertype = bpf_ntohs(tag->ethertype);
		l3 = tag + 1;
	}
	count_ethertype(ethertype);
	if (ethertype == ETH_P_IP) {
		struct iphdr *ip = l3;

		if ((void *)(ip + 1) <= data_end)
			count_proto(ip->protocol);
	} else if (ethertype == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;

		if ((void *)(ip6 + 1) <= data_end)
			count_proto(ip6->nexthdr);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
