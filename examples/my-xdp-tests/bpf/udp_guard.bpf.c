// SPDX-License-Identifier: GPL-2.0
/* A user's XDP program, written as libbpf users write them: a free section name, a stats map
 * pinned by name, and its configuration in .rodata, set by the loader before load.
 *
 * Drops IPv4 UDP to `blocked_port` (host order; 0: none) and passes everything else, counting
 * both in `guard_stats` (per-CPU struct, key 0 passed, key 1 dropped). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct verdict_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct verdict_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_stats SEC(".maps");

const volatile __u16 blocked_port = 0;

static __always_inline int blocked(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	return blocked_port && udp->dest == bpf_htons(blocked_port);
}

SEC("xdp_udp_guard")
int udp_guard(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = blocked(data, data_end);
	struct verdict_stats *stats = bpf_map_lookup_elem(&guard_stats, &key);

	if (stats) {
		stats->packets++;
		stats->bytes += data_end - data;
	}
	return key ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
