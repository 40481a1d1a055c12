#!/usr/bin/env bash
# Fails if anything xdplab creates is visible from the host after a run: lab links in the root
# namespace, named namespaces, XDP programs on host interfaces, or bpffs mounts under
# /run/xdplab (run once no xdplab process is running). Lab namespaces are anonymous
# (held by file descriptors), so once every xdplab process has exited they cannot survive.
set -euo pipefail
status=0
if ip -o link show | awk -F': ' '{print $2}' | grep -E '^xl-' ; then
	echo "error: lab links found in the root namespace" >&2
	status=1
fi
if ip -o link show | grep -E ' xdp(generic|drv|offload)? ' ; then
	echo "error: an XDP program is attached to a host interface" >&2
	status=1
fi
if ls /run/netns 2>/dev/null | grep -E '^xl' ; then
	echo "error: named xdplab namespaces found in /run/netns" >&2
	status=1
fi
if grep -E ' /run/xdplab/[0-9]+-[0-9]+ ' /proc/self/mountinfo ; then
	echo "error: xdplab bpffs mounts left under /run/xdplab" >&2
	status=1
fi
[[ $status == 0 ]] && echo "nothing left behind"
exit $status
