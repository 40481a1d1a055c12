// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_version.bpf.c - a versioned dropper for lifecycle tests.
 *
 * The same object is loaded once per version, with the read-only global
 * `version` set at load time (1, 2, ...), and the versions are swapped on a
 * live bpf_link. Every frame is counted in the maps all versions share
 * (pinned by name), so counters continue across a replacement, and every
 * tagged frame leaves a trace of which version handled it: the per-frame
 * proof that a replacement under load lost nothing.
 *
 * Globals (set by the loader; .rodata):
 *   version  __u32, the version number written into traces and version_cnt
 *   action   __u32, the XDP action every frame gets (default XDP_DROP)
 *
 * Maps:
 *   pkt_cnt      BPF_MAP_TYPE_ARRAY, 1 entry, __u32 0 -> __u64 frames seen,
 *                all versions together (atomic add)
 *   version_cnt  BPF_MAP_TYPE_ARRAY, 16 entries, __u32 version & 15 ->
 *                __u64 frames this version handled (atomic add)
 *   trace        BPF_MAP_TYPE_ARRAY, 2^21 entries, BPF_F_MMAPABLE,
 *                __u32 seq -> __u64 (run_id << 32 | group << 16 | version)
 *                for each tagged frame with seq < 2^21: the last version
 *                that handled frame `seq` of that run's send group
 *   untraced_cnt BPF_MAP_TYPE_ARRAY, 1 entry, __u32 0 -> __u64 frames with
 *                no xdplab tag where it is looked for, or seq >= 2^21
 *
 * The tag (16 bytes: "XLAB", run_id, group, 0, seq, big endian; see
 * harness/src/frame.rs) is looked for right after a UDP header, in IPv4
 * (any IHL) or IPv6 (no extension headers) frames without VLAN tags: where
 * xdplab puts it in a UDP frame with no payload of its own. Other frames
 * get the verdict and the counters, but no trace.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TRACE_SLOTS (1u << 21)
#define TAG_LEN 16

const volatile __u32 version = 0;
const volatile __u32 action = XDP_DROP;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pkt_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} version_cnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} untraced_cnt SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* Offset of the byte after the UDP header, or 0 if the frame is not plain UDP. */
static __always_inline __u32 udp_payload(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
			return 0;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			return 0;
		return sizeof(*eth) + ihl + sizeof(struct udphdr);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP)
			return 0;
		return sizeof(*eth) + sizeof(*ip6) + sizeof(struct udphdr);
	}
	return 0;
}

SEC("xdp")
int xdp_version(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 at = udp_payload(data, data_end);
	__u8 *tag;
	__u32 seq;
	__u64 trace_value;

	bump(&pkt_cnt, 0);
	bump(&version_cnt, version & 15);

	/* IHL is at most 15 words: bounding the offset lets the verifier track it. */
	if (at == 0 || at > sizeof(struct ethhdr) + 60 + sizeof(struct udphdr))
		goto untraced;
	tag = data + at;
	if ((void *)(tag + TAG_LEN) > data_end)
		goto untraced;
	if (tag[0] != 'X' || tag[1] != 'L' || tag[2] != 'A' || tag[3] != 'B')
		goto untraced;
	seq = ((__u32)tag[12] << 24) | ((__u32)tag[13] << 16) | ((__u32)tag[14] << 8) | tag[15];
	if (seq >= TRACE_SLOTS)
		goto untraced;
	trace_value = ((__u64)(((__u32)tag[4] << 24) | ((__u32)tag[5] << 16) |
			       ((__u32)tag[6] << 8) | tag[7]) << 32) |
		      ((__u64)(((__u32)tag[8] << 8) | tag[9]) << 16) | (version & 0xffff);
	bpf_map_update_elem(&trace, &seq, &trace_value, BPF_ANY);
	return action;

untraced:
	bump(&untraced_cnt, 0);
	return action;
}

char _license[] SEC("license") = "GPL";
