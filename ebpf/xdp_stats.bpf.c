// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_stats.bpf.c - counts packets and bytes per XDP action in a per-CPU map of structs, the
 * way the XDP tutorials and xdp-bench keep their statistics, and drops UDP to port 9.
 *
 * The bundled example of map values of any shape:
 *
 *   xdp_stats_map  BPF_MAP_TYPE_PERCPU_ARRAY, 5 entries (one per action), __u32 action ->
 *                  struct datarec { __u64 rx_packets; __u64 rx_bytes; } per CPU
 *   port_stats     BPF_MAP_TYPE_HASH, 64 entries, struct port_key (destination port, IP
 *                  protocol, action) -> struct port_rec (a datarec and a histogram of
 *                  frame lengths), for IPv4 UDP and TCP frames only
 *
 * Verdict: XDP_DROP for IPv4 UDP to port 9 (discard), XDP_PASS for everything else.
 * Bytes are data_end - data: the frame as the program sees it, without FCS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DISCARD_PORT 9

struct datarec {
	__u64 rx_packets;
	__u64 rx_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, struct datarec);
} xdp_stats_map SEC(".maps");

struct port_key {
	__be16 dport;
	__u8 proto;
	__u8 action;
};

/* Frame lengths: [0] under 128 bytes, [1] under 256, [2] under 512, [3] the rest. */
#define LEN_BUCKETS 4

struct port_rec {
	struct datarec counts;
	__u64 len_hist[LEN_BUCKETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct port_key);
	__type(value, struct port_rec);
} port_stats SEC(".maps");

static __always_inline __u32 len_bucket(__u64 len)
{
	if (len < 128)
		return 0;
	if (len < 256)
		return 1;
	if (len < 512)
		return 2;
	return 3;
}

static __always_inline void count_port(struct port_key *key, __u64 len)
{
	struct port_rec fresh = {}, *rec = bpf_map_lookup_elem(&port_stats, key);
	__u32 bucket = len_bucket(len);

	if (!rec) {
		fresh.counts.rx_packets = 1;
		fresh.counts.rx_bytes = len;
		fresh.len_hist[bucket] = 1;
		if (bpf_map_update_elem(&port_stats, key, &fresh, BPF_NOEXIST) == 0)
			return;
		/* Another CPU inserted the key between our lookup and update. */
		rec = bpf_map_lookup_elem(&port_stats, key);
		if (!rec)
			return;
	}
	/* Shared between CPUs: atomic adds. */
	__sync_fetch_and_add(&rec->counts.rx_packets, 1);
	__sync_fetch_and_add(&rec->counts.rx_bytes, len);
	__sync_fetch_and_add(&rec->len_hist[bucket], 1);
}

SEC("xdp")
int xdp_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct ethhdr *eth = data;
	struct port_key key = {};
	__u32 action = XDP_PASS;
	struct datarec *rec;

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= data_end &&
		    (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP)) {
			/* UDP and TCP both start with the source and destination ports. */
			struct udphdr *l4 = (void *)ip + ip->ihl * 4;

			if ((void *)(l4 + 1) <= data_end) {
				if (ip->protocol == IPPROTO_UDP && l4->dest == bpf_htons(DISCARD_PORT))
					action = XDP_DROP;
				key.dport = l4->dest;
				key.proto = ip->protocol;
				key.action = action;
				count_port(&key, len);
			}
		}
	}
	/* This CPU's slot: no other CPU writes it, so plain adds. */
	rec = bpf_map_lookup_elem(&xdp_stats_map, &action);
	if (rec) {
		rec->rx_packets += 1;
		rec->rx_bytes += len;
	}
	return action;
}

char _license[] SEC("license") = "GPL";
