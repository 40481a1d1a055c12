#!/usr/bin/env bash
# Runs the privileged tests and the bundled scenarios on several Linux kernels, one VM each
# (virtme-ng over QEMU), and writes the kernels x capabilities table.
#
#   ci/kernel-matrix.sh [OPTIONS] [KERNEL...]
#
# KERNEL is one of (default: all four, oldest first):
#   5.10   bullseye's kernel (linux-image-amd64 from bullseye-security, else bullseye)
#   6.1    bookworm's kernel (linux-image-amd64 from bookworm-security, else bookworm)
#   6.12   bookworm's 6.12 (linux-image-6.12-amd64 from bookworm-security)
#   sid    the newest Debian kernel (linux-image-amd64 from sid)
#
# Options:
#   --quick          in each VM run only `xdplab doctor`, `xdplab run` on the bundled
#                    scenarios and one privileged test binary (privileged_lab), instead of
#                    every test binary: under QEMU's TCG the full suite takes long
#   --prepare-only   install the tools, fetch and unpack the kernels, build; boot nothing
#   --kvm auto|on|off  use KVM (auto: only if /dev/kvm boots the first kernel; default)
#   --vm-timeout S   seconds a VM may run before it is killed (default: 3600, --quick 1200)
#   --watchdog-action debug|reset
#                    what QEMU does when the guest's watchdog fires (default debug: print
#                    "watchdog: timer fired" and go on; reset: QEMU's default, which ends the
#                    VM at once under virtme-ng's -no-reboot; see "The VM's watchdog" below)
#   --vm-memory SIZE the guest's memory, e.g. 2G (default 2G); --vm-cpus N its CPUs (default 2)
#   --repeat N       boot each kernel N times (a fresh VM each, in run-1 ... run-N of the run's
#                    directory) and write kernel-flakes.md there: every step's pass count per
#                    kernel, the rounds a step failed in, and each VM that died (its last step,
#                    its exit, what its kernel and QEMU said last), counted apart from failures
#   --report FILE    also write the table there (it is always written to kernels.md in the
#                    run's directory under target/kernel-matrix/: a local run leaves the
#                    committed tables alone)
#   --update-results merge the kernels this run booted into the committed table
#                    (results/kernels.md for --quick, results/kernels-full.md for a full run):
#                    their columns are replaced, every other kernel's column is kept with the
#                    run it came from; with --repeat N > 1, also their sections of
#                    results/kernel-flakes.md
#   --no-report      write no table
#   --resume DIR     continue the run in DIR (target/kernel-matrix/<UTC time>), stopped before
#                    its end (its host process ended with the machine's session, say): its
#                    kernels, rounds and VM settings are the run's own (DIR/run.txt; giving
#                    them again is a usage error), the checkout must be at the commit the run
#                    began on with no uncommitted change, the VMs that finished are kept, and a
#                    VM stopped midway is moved to DIR/interrupted/ (listed in kernel-flakes.md,
#                    not counted) and booted again
#
# Each VM's directory (target/kernel-matrix/<UTC time>[/run-<i>]/<kernel>/) keeps console.log
# (the script's step lines, the guest's serial console: its kernel's messages from boot at
# loglevel 5, a panic included; QEMU's messages), qemu.log (QEMU's CPU resets: a triple fault),
# qemu-exit (how QEMU ended), kernel.log (the guest kernel's whole log), health.tsv (guest
# memory, kernel slab and per-CPU memory, processes, network namespaces, bpffs mounts, BPF
# programs and maps: after each step and every 30 s), host.tsv (the host's load and memory,
# QEMU's resident memory, every 30 s), vm.txt (the VM's CPUs and memory, the host's load at boot
# and at the end), vm-exit, steps.tsv, each step's .log and .err, and verdict. A VM that dies is
# reported with the step it died in, vng's exit (255: QEMU ended before the guest's script did)
# and what its kernel said last.
#
# A checkout under /tmp, /var/tmp or /var/cache (hidden in the guest) runs from a copy in
# XDPLAB_MATRIX_CHECKOUT (default /var/lib/xdplab/kernel-matrix/checkout), built there.
#
# Environment: XDPLAB_KERNEL_CACHE (default target/kernel-cache) holds the virtme-ng venv, a
# private apt state, the downloaded packages and the unpacked kernels. It must not be under
# /var/cache or /tmp: virtme-ng mounts tmpfs over those in the guest, which would hide the
# kernel's modules (veth is a module) from modprobe. Each
# run's output goes to target/kernel-matrix/<UTC time>/<kernel>/.
#
# Exit codes: 0 every kernel passed, or was skipped for a stated reason (its package is not in
#             the mirror); 1 a kernel failed (a step in its VM failed, or the VM did not finish
#             in time), or the build failed; 2 usage error; 3 environment (not root, tools or
#             kernel packages could not be installed or fetched).
#
# Nothing is installed into /boot or /lib/modules: kernel packages are unpacked with dpkg -x
# into the cache. Packages come from the Debian mirror already named in this machine's apt
# sources (derived at run time), through a private apt configuration for the suites the
# machine does not list. The VM shares the host's root file system read-only; each run's
# output directory is its only writable host directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# virtme-ng mounts tmpfs over /tmp, /var/tmp and /var/cache in the guest, which would hide a
# checkout there (its binaries, scenarios and fixtures) from the VM. Such a checkout (a CI
# clone in /tmp, say) is copied, without target/, to a place the guest sees and the script
# runs from there; the table goes where the caller asked, relative to the original checkout.
hidden() { case $1 in /tmp/* | /var/tmp/* | /var/cache/*) return 0 ;; *) return 1 ;; esac; }
if [[ ${1:-} != --in-vm ]] && hidden "$root/"; then
	visible=${XDPLAB_MATRIX_CHECKOUT:-/var/lib/xdplab/kernel-matrix/checkout}
	hidden "$visible/" && {
		echo "error: XDPLAB_MATRIX_CHECKOUT=$visible is hidden in the guest too" >&2
		exit 2
	}
	echo "[kernel-matrix] $root is hidden in the guest (tmpfs there): running from a copy in $visible" >&2
	mkdir -p "$visible"
	# A fresh copy of the sources; the copy's own target/ (its builds) is kept between runs.
	find "$visible" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
	tar -C "$root" --exclude=./target --exclude=./examples/my-xdp-tests/target -cf - . |
		tar -C "$visible" -xf - || exit 3
	args=()
	while (($#)); do
		args+=("$1")
		# The report path is the caller's, relative to where the script was called from.
		[[ $1 == --report && -n ${2:-} ]] && args+=("$(realpath -m "$2")") && shift
		shift
	done
	# --update-results writes the original checkout's committed table, not the copy's.
	XDPLAB_MATRIX_RESULTS=$root/results exec "$visible/ci/kernel-matrix.sh" "${args[@]}"
fi

# Bash reads a script while it runs it, and each VM runs this script again: a run (an hour and
# more under TCG) runs a copy of it, so editing the checkout meanwhile changes neither the
# host's loop nor the steps of the VMs still to boot. The copy lives under target/ (the guest
# sees it) and is removed when the run ends. A checkout the script cannot write to (the
# read-only root a VM shares, where the tests call it) is not edited under it either: the
# script then runs in place, and a run that needs target/ fails at its build.
if [[ ${1:-} != --in-vm && -z ${XDPLAB_MATRIX_ROOT:-} ]]; then
	snapshot=$root/target/kernel-matrix/.script-$$
	if mkdir -p "$snapshot" 2>/dev/null && cp "$self" "$root/ci/kernel-matrix-report.py" "$snapshot/"; then
		XDPLAB_MATRIX_ROOT=$root exec bash "$snapshot/kernel-matrix.sh" "$@"
	fi
	rm -rf "$snapshot" 2>/dev/null || true
	XDPLAB_MATRIX_ROOT=$root
fi
if [[ ${1:-} == --in-vm ]]; then
	# The checkout, as the host's run named it (the script itself may be a copy elsewhere).
	root=${4:-$root}
else
	root=$XDPLAB_MATRIX_ROOT
	report_py=$(dirname "$self")/kernel-matrix-report.py
	# The copy made above, removed at the end of the run (not the checkout's own script).
	[[ $self == "$root/target/kernel-matrix/.script-"* ]] && trap 'rm -rf "$(dirname "$self")"' EXIT
fi

cache=${XDPLAB_KERNEL_CACHE:-$root/target/kernel-cache}
if hidden "$cache/"; then
	echo "error: XDPLAB_KERNEL_CACHE=$cache is hidden in the guest (virtme-ng mounts tmpfs there)" >&2
	exit 2
fi
default_kernels=(5.10 6.1 6.12 sid)
virtme_ng_version=1.42

usage() {
	sed -n '2,/^set -euo/p' "$self" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

log() { printf '[kernel-matrix %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die_env() {
	log "error: $*"
	exit 3
}

# ---------------------------------------------------------------------------------------------
# Inside the VM: ci/kernel-matrix.sh --in-vm OUT MODE ROOT. Writes OUT/steps.tsv (step, exit code,
# seconds), each step's stdout (OUT/STEP.log) and stderr (OUT/STEP.err), and OUT/done at the
# end. Runs as root in the guest, with the host's root read-only.
# ---------------------------------------------------------------------------------------------
in_vm() {
	local out=$1 mode=$2
	# Only in a virtme-ng guest: the mounts below would hide the host's own /tmp.
	grep -q virtme /proc/cmdline || {
		echo "error: --in-vm is for the VMs this script boots" >&2
		exit 2
	}
	# The guest's own /tmp, so tests can write temporary files on a read-only root.
	mount -t tmpfs tmpfs /tmp
	export TMPDIR=/tmp XDPLAB_REQUIRE_PRIVILEGES=1 RUST_BACKTRACE=1
	cd "$root"
	uname -r >"$out/release"
	: >"$out/steps.tsv"
	# The guest kernel's own messages, apart from the console's step lines: what the kernel
	# said last is what explains a VM that dies (an oops, the OOM killer, a hung task).
	dmesg --follow --time-format iso >"$out/kernel.log" 2>&1 </dev/null &
	local dmesg_pid=$!
	printf 'uptime_s\twhen\tmem_available_kib\tmem_free_kib\tslab_unreclaim_kib\tpercpu_kib\tprocesses\tnet_namespaces\tbpffs_mounts\tbpf_progs\tbpf_maps\n' >"$out/health.tsv"
	health "$out" boot
	# The guest's watchdogs (virtme-ng's i6300esb, Q35's iTCO): a time left that falls between
	# two reads is a watchdog running from boot, pinged by the guest kernel.
	for w in /sys/class/watchdog/watchdog*; do
		[[ -e $w ]] || continue
		printf '%s	%s	%s	' "${w##*/}" "$(cat "$w/identity")" "$(cat "$w/timeout" 2>/dev/null || echo -)"
		printf '%s
' "$(cat "$w/timeleft" 2>/dev/null || echo -)"
	done >"$out/watchdogs.tsv"
	# A line every 30 s during a step too: a step that leaks until the guest runs out of
	# memory shows its slope, not only the state before it.
	(
		while sleep 30; do
			health "$out" "during $(cat "$out/current" 2>/dev/null || echo -)"
		done
	) </dev/null &
	local sampler_pid=$!
	# step NAME SECONDS CMD...: runs CMD bounded in time, output to OUT/NAME.log; OUT/current
	# names the step running, so a VM that dies mid-step is known to have died in it.
	step() {
		local name=$1 limit=$2 start rc=0
		shift 2
		start=$(date +%s)
		echo "$name" >"$out/current"
		echo "== $name: $*" >&2
		timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>"$out/$name.err" </dev/null || rc=$?
		printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" >>"$out/steps.tsv"
		echo "== $name: exit $rc" >&2
		health "$out" "after $name"
	}
	local xdplab=$root/$([[ $mode == full ]] && echo target/matrix/xdplab || echo target/release/xdplab)
	step info-doctor 300 "$xdplab" doctor --format json
	step scenarios 1800 "$xdplab" run --format json scenarios
	local name bin
	while IFS=$'\t' read -r name bin; do
		if [[ $mode == quick && $name != test-privileged_lab ]]; then
			continue
		fi
		step "$name" 1800 "$bin"
	done <"$out/tests.txt"
	date -u +%FT%TZ >"$out/done"
	rm -f "$out/current"
	kill "$dmesg_pid" "$sampler_pid" 2>/dev/null || true
	echo "in-vm done" >&2
}

# health OUT WHEN: one line of OUT/health.tsv: the guest's uptime, its available and free
# memory, the kernel's unreclaimable slab and per-CPU memory (where leaked kernel objects such
# as namespaces, maps and sockets show), the processes, the network namespaces alive (distinct
# ones any process holds), bpffs mounts, and BPF programs and maps the kernel holds (bpftool,
# when the shared root has it).
health() {
	local out=$1 when=$2 mem netns mounts procs progs=- maps=-
	mem=$(awk '/^(MemAvailable|MemFree|SUnreclaim|Percpu):/ {v[$1] = $2} END {printf "%s\t%s\t%s\t%s", v["MemAvailable:"], v["MemFree:"], v["SUnreclaim:"], v["Percpu:"]}' /proc/meminfo)
	procs=$(find /proc -maxdepth 1 -name '[0-9]*' | grep -c . || true)
	netns=$(find /proc/[0-9]*/ns/net /proc/[0-9]*/task/*/ns/net -maxdepth 0 -printf '%l\n' 2>/dev/null | sort -u | grep -c . || true)
	mounts=$(awk '$3 == "bpf"' /proc/mounts | grep -c . || true)
	if command -v bpftool >/dev/null; then
		progs=$(bpftool prog show 2>/dev/null | grep -cE '^[0-9]+:' || true)
		maps=$(bpftool map show 2>/dev/null | grep -cE '^[0-9]+:' || true)
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(cut -d' ' -f1 /proc/uptime)" "$when" "$mem" "$procs" "$netns" "$mounts" "$progs" "$maps" >>"$out/health.tsv"
}

if [[ ${1:-} == --in-vm ]]; then
	in_vm "$2" "$3"
	exit 0
fi

# ---------------------------------------------------------------------------------------------
# On the host.
# ---------------------------------------------------------------------------------------------
quick=0 prepare_only=0 kvm=auto vm_timeout='' report='' no_report=0 update=0 repeat=1 watchdog=debug
vm_cpus=2 vm_memory=2G resume=''
kernels=()
# The options that define a run: --resume takes them from the run it continues.
defining=()
while (($#)); do
	case $1 in
	--quick | --repeat | --vm-memory | --vm-cpus | --watchdog-action | 5.10 | 6.1 | 6.12 | sid)
		defining+=("$1")
		;;&
	--quick) quick=1 ;;
	--resume)
		[[ -n ${2:-} ]] || usage
		resume=$(realpath -m "$2")
		shift
		;;
	--prepare-only) prepare_only=1 ;;
	--kvm)
		[[ ${2:-} =~ ^(auto|on|off)$ ]] || usage
		kvm=$2
		shift
		;;
	--vm-timeout)
		[[ ${2:-} =~ ^[0-9]+$ ]] || usage
		vm_timeout=$2
		shift
		;;
	--report)
		[[ -n ${2:-} ]] || usage
		report=$(realpath -m "$2")
		shift
		;;
	--update-results) update=1 ;;
	--repeat)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage
		repeat=$2
		shift
		;;
	--vm-memory)
		[[ ${2:-} =~ ^[1-9][0-9]*[MG]$ ]] || usage
		vm_memory=$2
		shift
		;;
	--watchdog-action)
		[[ ${2:-} =~ ^(debug|reset)$ ]] || usage
		watchdog=$2
		shift
		;;
	--vm-cpus)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage
		vm_cpus=$2
		shift
		;;
	--no-report) no_report=1 ;;
	-h | --help) usage ;;
	-*) usage ;;
	5.10 | 6.1 | 6.12 | sid) kernels+=("$1") ;;
	*)
		echo "error: unknown kernel '$1' (5.10, 6.1, 6.12 or sid)" >&2
		exit 2
		;;
	esac
	shift
done
# run_commit: the commit the checkout is at, "+dirty" appended when a tracked file differs from
# it (the rounds of a resumed run must test the same code), "unknown" outside git.
run_commit() {
	local head
	head=$(git -C "$root" rev-parse HEAD 2>/dev/null) || {
		echo unknown
		return
	}
	if [[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		echo "$head+dirty"
	else
		echo "$head"
	fi
}
if [[ -n $resume ]]; then
	if ((${#defining[@]})); then
		echo "error: --resume continues a run with its own kernels, rounds and VM settings ($resume/run.txt): drop ${defining[*]}" >&2
		exit 2
	fi
	[[ -f $resume/run.txt ]] || {
		echo "error: $resume/run.txt does not exist: not a run this script began, or one from before --resume" >&2
		exit 2
	}
	declare -A was=()
	while read -r key value; do was[$key]=$value; done <"$resume/run.txt"
	now=$(run_commit)
	if [[ ${was[commit]:-unknown} == unknown || ${was[commit]} == *+dirty ]]; then
		echo "error: the run in $resume began on ${was[commit]:-an unknown commit}: its code cannot be checked out again, start a new run" >&2
		exit 2
	elif [[ $now != "${was[commit]}" ]]; then
		echo "error: the run in $resume began on ${was[commit]}, the checkout is at $now: check out that commit (with no uncommitted change) to continue it, or start a new run" >&2
		exit 2
	fi
	read -r -a kernels <<<"${was[kernels]}"
	repeat=${was[repeat]} vm_cpus=${was[vm_cpus]} vm_memory=${was[vm_memory]} watchdog=${was[watchdog]}
	[[ ${was[mode]} == quick ]] && quick=1
	# The same accelerator as the rounds before it.
	[[ ${was[accel]} == kvm ]] && kvm=on || kvm=off
fi
((${#kernels[@]})) || kernels=("${default_kernels[@]}")
# --update-results merges into the committed tables in results/ (the original checkout's, when
# this runs from a copy).
results=${XDPLAB_MATRIX_RESULTS:-$root/results}
[[ -n $vm_timeout ]] || vm_timeout=$((quick ? 1200 : 3600))
mode=$([[ $quick == 1 ]] && echo quick || echo full)
((EUID == 0)) || die_env "run as root (apt-get, and the VMs run the privileged tests)"

mkdir -p "$cache"/{apt/lists/partial,apt/archives/partial,apt/parts,debs,kernels}

# The Debian mirrors this machine's apt already uses: the one serving its main suite and the
# one serving its -security suite, as apt itself resolved them.
mirror='' security=''
while IFS='|' read -r uri release origin; do
	[[ $origin == Debian ]] || continue
	case $release in
	*-security) [[ -n $security ]] || security=${uri%/} ;;
	*-*) ;;
	*) [[ -n $mirror ]] || mirror=${uri%/} ;;
	esac
done < <(apt-get indextargets --format '$(REPO_URI)|$(RELEASE)|$(ORIGIN)' 'Created-By: Packages' 2>/dev/null | sort -u)
if [[ -z $mirror ]]; then
	log "no Debian mirror in apt's lists yet: apt-get update"
	timeout 600 apt-get update -qq || die_env "apt-get update failed"
	while IFS='|' read -r uri release origin; do
		[[ $origin == Debian && $release != *-* ]] && mirror=${uri%/} && break
	done < <(apt-get indextargets --format '$(REPO_URI)|$(RELEASE)|$(ORIGIN)' 'Created-By: Packages' | sort -u)
fi
[[ -n $mirror ]] || die_env "no Debian mirror found in this machine's apt sources"
# A machine listing no security suite: the archive's usual layout, beside the main one.
[[ -n $security ]] || security=${mirror%/debian}/debian-security
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# A private apt configuration: its own sources, lists and downloads, the machine's dpkg
# status (so installs from it are ordinary installs).
sources=$cache/apt/sources.list
{
	for suite in bullseye bookworm bookworm-backports sid; do
		echo "deb [signed-by=$keyring] $mirror $suite main"
	done
	for suite in bullseye-security bookworm-security; do
		echo "deb [signed-by=$keyring] $security $suite main"
	done
} >"$sources.new"
apt_opts=(
	-o "Dir::Etc::SourceList=$sources" -o "Dir::Etc::SourceParts=$cache/apt/parts"
	-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache::Archives=$cache/apt/archives"
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
	-o Acquire::Retries=3 -o Acquire::http::Timeout=60
)
fresh=$(find "$cache/apt/lists" -maxdepth 1 -name '*sid*Packages*' -mmin -720 | head -1)
if ! cmp -s "$sources.new" "$sources" || [[ -z $fresh ]]; then
	mv "$sources.new" "$sources"
	log "apt update (private lists: bullseye, bookworm, bookworm-backports, sid, security) from $mirror"
	timeout 600 apt-get "${apt_opts[@]}" update -qq || die_env "apt-get update of the private lists failed"
else
	rm -f "$sources.new"
fi
papt() { apt-get "${apt_opts[@]}" "$@"; }
pcache() { apt-cache "${apt_opts[@]}" "$@"; }

# --- tools -----------------------------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v depmod >/dev/null || need+=(kmod)
command -v udevadm >/dev/null || need+=(udev)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
command -v file >/dev/null || need+=(file)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
if ((${#need[@]})); then
	log "installing ${need[*]} (qemu-system-x86 from bookworm-backports, which matches the machine's qemu-utils)"
	# Only bookworm's suites: sid and bullseye are in the private sources for kernels, never
	# for installs.
	printf 'Package: *\nPin: release n=%s\nPin-Priority: -1\n\n' sid bullseye bullseye-security \
		>"$cache/apt/install.pref"
	DEBIAN_FRONTEND=noninteractive timeout 900 \
		apt-get "${apt_opts[@]}" \
		-o "Dir::Etc::Preferences=$cache/apt/install.pref" \
		install -y -qq --no-install-recommends -t bookworm-backports "${need[@]}" \
		</dev/null >/dev/null || die_env "apt-get install ${need[*]} failed"
fi
venv=$cache/venv
if [[ ! -x $venv/bin/vng ]] || ! "$venv/bin/vng" --version 2>/dev/null | grep -qF "$virtme_ng_version"; then
	log "installing virtme-ng $virtme_ng_version from PyPI into $venv"
	python3 -m venv "$venv" || die_env "python3 -m venv failed (apt-get install python3-venv)"
	timeout 600 "$venv/bin/pip" install -q "virtme-ng==$virtme_ng_version" ||
		die_env "pip install virtme-ng failed"
fi
vng=$venv/bin/vng
# vng runs virtme-run (and the guest's helpers) by name.
export PATH=$venv/bin:$PATH

# --- kernels ---------------------------------------------------------------------------------
# kernel_source KERNEL: "METAPACKAGE SUITE..." (the first suite that has it wins).
kernel_source() {
	case $1 in
	5.10) echo "linux-image-amd64 bullseye-security bullseye" ;;
	6.1) echo "linux-image-amd64 bookworm-security bookworm" ;;
	6.12) echo "linux-image-6.12-amd64 bookworm-security bookworm-backports" ;;
	sid) echo "linux-image-amd64 sid" ;;
	esac
}

# depends PACKAGE=VERSION ERE: the "name=version" of each exact dependency matching ERE.
depends() {
	pcache show "$1" 2>/dev/null | sed -n 's/^Depends: //p' | head -1 | tr ',' '\n' |
		sed 's/^ *//' | { grep -E "^($2) [(]= " || true; } | sed -E 's/^([^ ]+) [(]= ([^)]*)[)].*/\1=\2/'
}

declare -A skip_reason=() kimg=()
# prepare_kernel KERNEL: fetches and unpacks it into $cache/kernels/KERNEL/root; sets
# kimg[KERNEL], or skip_reason[KERNEL] when the mirror does not have it.
prepare_kernel() {
	local k=$1 meta suites suite version='' image pkgs dir
	read -r meta suites <<<"$(kernel_source "$k")"
	for suite in $suites; do
		version=$(pcache madison "$meta" | awk -F'|' -v s="$suite" '$3 ~ " " s "/main " {gsub(/ /, "", $2); print $2; exit}')
		[[ -n $version ]] && break
	done
	if [[ -z $version ]]; then
		skip_reason[$k]="$meta is in none of $suites on the mirror"
		return
	fi
	image=$(depends "$meta=$version" 'linux-image-[0-9][^ ]*')
	[[ -n $image ]] || die_env "$meta=$version depends on no linux-image-<version> package"
	# Since 7.x the image is a metapackage of linux-binary-* (vmlinuz) and linux-modules-*.
	pkgs=("$image" $(depends "$image" 'linux-(binary|modules)-[0-9][^ ]*'))
	dir=$cache/kernels/$k
	if [[ -f $dir/packages && $(cat "$dir/packages") == "${pkgs[*]}" && -f $dir/vmlinuz-path ]]; then
		kimg[$k]=$(cat "$dir/vmlinuz-path")
		log "$k: cached ${pkgs[*]}"
		return
	fi
	log "$k: fetching ${pkgs[*]} ($suite)"
	(cd "$cache/debs" && timeout 900 apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root download -qq "${pkgs[@]}") ||
		die_env "$k: apt-get download ${pkgs[*]} failed"
	rm -rf "$dir"
	mkdir -p "$dir/root"
	local p deb
	for p in "${pkgs[@]}"; do
		deb=$(ls "$cache/debs/${p%%=*}_"*"$(echo "${p#*=}" | sed 's/:/%3a/')"_amd64.deb 2>/dev/null | head -1)
		[[ -n $deb ]] || die_env "$k: downloaded package for $p not found in $cache/debs"
		dpkg -x "$deb" "$dir/root"
	done
	local vmlinuz
	vmlinuz=$(find "$dir/root" \( -path '*/boot/vmlinuz-*' -o -path '*/lib/modules/*/vmlinuz' \) -type f | head -1)
	[[ -n $vmlinuz ]] || die_env "$k: no vmlinuz in ${pkgs[*]}"
	# The packages' postinst would run depmod; so do we, inside the unpacked tree.
	local moddir release
	for moddir in "$dir"/root/lib/modules/* "$dir"/root/usr/lib/modules/* ''; do
		[[ -d $moddir ]] && break
	done
	[[ -n $moddir ]] || die_env "$k: no lib/modules/<release> in ${pkgs[*]}"
	release=$(basename "$moddir")
	# 7.x keeps its modules under usr/lib only; depmod -b and virtme-ng look in lib/.
	if [[ $moddir == */usr/lib/modules/* && ! -e $dir/root/lib ]]; then
		ln -s usr/lib "$dir/root/lib"
	fi
	# virtme-ng copies the modules it boots with (virtio, 9p) into its initramfs, where busybox
	# insmod loads them: it unpacks .zst itself, but not the .xz of Debian's 6.x packages.
	find "$dir/root/" -name '*.ko.xz' -print0 | xargs -0 -r -n 200 xz -d ||
		die_env "$k: failed to decompress its modules"
	depmod -b "$dir/root" "$release" || die_env "$k: depmod failed for $release"
	echo "$vmlinuz" >"$dir/vmlinuz-path"
	echo "${pkgs[*]}" >"$dir/packages"
	kimg[$k]=$vmlinuz
	log "$k: unpacked $release ($(du -sh "$dir/root" | cut -f1))"
}

for k in "${kernels[@]}"; do
	prepare_kernel "$k"
done

# --- build once ------------------------------------------------------------------------------
cd "$root"
build_log=$cache/build.log
# A full run builds with the `matrix` profile (Cargo.toml): under TCG, unoptimised code made
# the user-space half of the suite (frame parsing, the injectors' loops, the million-frame
# accounting) several times slower than the kernel it tests; debug assertions and overflow
# checks stay on. --quick keeps the debug and release builds CI has already made.
if [[ $mode == full ]]; then
	log "building the test binaries and xdplab (profile matrix: optimised, with debug assertions)"
	build=(cargo test --workspace --no-run --profile matrix --message-format=json)
	bin_build=(cargo build --profile matrix --bin xdplab)
else
	log "building the test binaries and the release binary"
	build=(cargo test --workspace --no-run --message-format=json)
	bin_build=(cargo build --release --bin xdplab)
fi
if ! { timeout 3600 "${build[@]}" >"$cache/build.json" 2>"$build_log" &&
	timeout 3600 "${bin_build[@]}" 2>>"$build_log"; }; then
	tail -30 "$build_log" >&2
	log "error: the build failed"
	exit 1
fi
tests=$(python3 -c '
import json, sys
seen = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        t = m["target"]
        row = "%s-%s\t%s" % (t["kind"][0] if t["kind"][0] == "test" else "unit-" + t["kind"][0], t["name"], m["executable"])
        if row not in seen:
            seen.append(row)
print("\n".join(seen))
' "$cache/build.json")
[[ -n $tests ]] || {
	log "error: the build produced no test binary"
	exit 1
}

if ((prepare_only)); then
	log "prepared: ${kernels[*]} (--prepare-only: no VM booted)"
	exit 0
fi

# --- VMs -------------------------------------------------------------------------------------
# Under target/, not the cache: virtme-ng lays tmpfs and overlays over /tmp and /var in the
# guest, which could hide a shared directory there.
if [[ -n $resume ]]; then
	run_dir=$resume
	hidden "$run_dir/" && die_env "$run_dir is hidden in the guest (virtme-ng mounts tmpfs there)"
else
	run_id=$(date -u +%Y%m%dT%H%M%SZ)
	run_dir=$root/target/kernel-matrix/$run_id
	mkdir -p "$run_dir"
fi
# The copies of this script that runs stopped midway (their host process killed) left behind.
for d in "$root"/target/kernel-matrix/.script-*; do
	[[ -d $d && $d != "$(dirname "$self")" ]] || continue
	kill -0 "${d##*-}" 2>/dev/null || rm -rf "$d"
done
# vng reports 255 for any end of QEMU before the guest's script, QEMU's own clean exit (the
# guest reset or powered off under -no-reboot) and a SIGKILL from outside alike. The VMs run
# QEMU through this wrapper, which writes how QEMU ended to OUT/qemu-exit ("exit N" or
# "signal N"; "running" if the wrapper was killed with it).
qemu_wrapper=$run_dir/.qemu-system-x86_64
cat >"$qemu_wrapper" <<WRAPPER
#!/usr/bin/env bash
# Written by ci/kernel-matrix.sh: QEMU for one VM, its end recorded in \$XDPLAB_QEMU_EXIT.
[[ -n \${XDPLAB_QEMU_EXIT:-} && " \$* " == *" -kernel "* ]] || exec $(printf '%q' "$(command -v qemu-system-x86_64)") "\$@"
echo running >"\$XDPLAB_QEMU_EXIT"
$(printf '%q' "$(command -v qemu-system-x86_64)") "\$@"
rc=\$?
if ((rc > 128)); then echo "signal \$((rc - 128))"; else echo "exit \$rc"; fi >"\$XDPLAB_QEMU_EXIT"
exit \$rc
WRAPPER
chmod +x "$qemu_wrapper"
kvm_flag=(--disable-kvm)
first=''
for k in "${kernels[@]}"; do [[ -n ${kimg[$k]:-} ]] && first=$k && break; done
if [[ $kvm == on ]]; then
	kvm_flag=()
elif [[ $kvm == auto && -n $first && -w /dev/kvm ]]; then
	# /dev/kvm can exist and still fail on stock kernels (emulation failures, then a hang):
	# use it only if it boots the first kernel and runs a command.
	log "probing KVM with $first"
	if timeout --kill-after=10 120 "$vng" -r "${kimg[$first]}" --memory 1G --exec true </dev/null 2>&1 |
		cat >"$run_dir/kvm-probe.log"; then
		kvm_flag=()
	fi
fi
accel=$([[ ${#kvm_flag[@]} == 0 ]] && echo kvm || echo "tcg (QEMU software emulation)")
# What --resume needs to continue this run on the same code with the same VMs.
if [[ -z $resume ]]; then
	printf 'commit %s\nmode %s\nrepeat %s\nkernels %s\nvm_cpus %s\nvm_memory %s\nwatchdog %s\naccel %s\n' \
		"$(run_commit)" "$mode" "$repeat" "${kernels[*]}" "$vm_cpus" "$vm_memory" "$watchdog" \
		"$([[ ${#kvm_flag[@]} == 0 ]] && echo kvm || echo tcg)" >"$run_dir/run.txt"
fi
log "VMs use $accel, $vm_cpus CPUs, $vm_memory memory, $mode mode, ${vm_timeout}s each, $repeat time(s); output in $run_dir (host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"

# host_sample OUT: every 30 s, a line of OUT/host.tsv: the host's load averages, its available
# memory and the resident memory of this VM's QEMU (found by its --rwdir, which names OUT):
# a guest starved by host contention or a QEMU the host ran short of memory for shows here.
host_sample() {
	local out=$1 qemu_rss
	printf 'time\tloadavg_1m\tloadavg_5m\tloadavg_15m\thost_mem_available_kib\tqemu_rss_kib\n' >"$out/host.tsv"
	while :; do
		qemu_rss=$(ps -eo rss=,args= | awk -v o="$out" '$2 ~ /qemu-system/ && index($0, o) {s += $1} END {print s + 0}')
		printf '%s\t%s\t%s\n' "$(date -u +%T)" "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' '\t')" \
			"$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)	$qemu_rss" >>"$out/host.tsv"
		sleep 30
	done
}

# The VM's watchdog. QEMU's Q35 machine has the ICH9 TCO watchdog, and QEMU (10 here) no
# longer straps it "no reboot"; the guest's iTCO_wdt driver finds it running at boot and the
# guest kernel pings it (timeout 30 s; watchdogs.tsv in each VM's directory shows it counting).
# A guest that misses its pings, as one starved of host CPU under TCG can, is reset by QEMU,
# and with virtme-ng's -no-reboot QEMU then exits at once, without a word from the guest or
# QEMU: vng reports 255, "the VM stopped", which is how a full run died in the middle of
# privileged_verdicts. The matrix runs QEMU with the watchdog's action "debug" instead: a
# firing is printed ("watchdog: timer fired") and recorded with the step it came in
# (watchdog.tsv), and the VM goes on; a guest that really hangs still meets --vm-timeout, and
# the tests' own verdicts are untouched. --watchdog-action reset restores QEMU's default.
# Reproduced on 5.10 under TCG: a guest that opens /dev/watchdog1 (iTCO_wdt, 30 s) and stops
# pinging it was gone 30 s later with reset (vng exit 255, console.log empty, the last line its
# script wrote at uptime 237 s for an open at 209 s); with debug, QEMU printed "watchdog: timer
# fired" twice and the guest ran its script to the end.

# console OUT: copies the VM's console to OUT/console.log, and each firing of the watchdog to
# OUT/watchdog.tsv with the time and the step running.
console() {
	local out=$1 line
	while IFS= read -r line || [[ -n $line ]]; do
		printf '%s\n' "$line"
		if [[ $line == *"watchdog: timer fired"* ]]; then
			printf '%s\t%s\n' "$(date -u +%T)" "$(cat "$out/current" 2>/dev/null || echo -)" >>"$out/watchdog.tsv"
		fi
	done >"$out/console.log"
}

# run_vm KERNEL OUT: boots KERNEL, runs the steps in it, and writes OUT/verdict ("pass" or
# "fail: ..."), OUT/vm-exit (vng's status: the script's own, 124/137 when --vm-timeout killed
# it, 255 when QEMU stopped before the script ended: a guest kernel panic, a reboot, or QEMU
# itself ending) and OUT/seconds. Returns 1 when the kernel failed.
run_vm() {
	local k=$1 out=$2 start rc=0 bad='' sampler
	mkdir -p "$out"
	cp "$cache/kernels/$k/packages" "$out/packages"
	echo "$tests" >"$out/tests.txt"
	echo "$accel" >"$out/accel"
	printf 'cpus %s\nmemory %s\naccel %s\nwatchdog_action %s\nhost_cpus %s\nhost_loadavg_at_boot %s\n' \
		"$vm_cpus" "$vm_memory" "$accel" "$watchdog" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$out/vm.txt"
	log "$k: booting $(basename "$(dirname "${kimg[$k]}")")/$(basename "${kimg[$k]}") -> $out"
	host_sample "$out" &
	sampler=$!
	start=$(date +%s)
	# QEMU reopens its descriptors: through cat, the console log is written by one writer.
	# With pipefail, rc is vng's (timeout's) status. loglevel=5: the guest kernel's errors and
	# warnings (an oops, the OOM killer, a panic) also reach the console, which outlives a
	# guest whose kernel.log (written by a guest process) stops short of its end.
	# --verbose: without it virtme-ng sends the guest's serial console, where its kernel prints
	# a panic, to /dev/null; with its panic=-1 and -no-reboot, a panicking guest then ends QEMU
	# at once and the VM dies with vng's 255 and not a word anywhere. QEMU's -d cpu_reset logs
	# a triple fault (another silent end under -no-reboot) to OUT/qemu.log.
	# -action watchdog=debug: see "The VM's watchdog" below.
	XDPLAB_QEMU_EXIT=$out/qemu-exit timeout --kill-after=30 "$vm_timeout" "$vng" --verbose \
		--qemu "$qemu_wrapper" -r "${kimg[$k]}" "${kvm_flag[@]}" \
		--cpus "$vm_cpus" --memory "$vm_memory" --rwdir "$out" --cwd "$root" --append loglevel=5 \
		--qemu-opts="-action watchdog=$watchdog -d cpu_reset,guest_errors -D $(printf '%q' "$out/qemu.log")" \
		--exec "$self --in-vm $out $mode $root" </dev/null 2>&1 | console "$out" || rc=$?
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	echo "$(($(date +%s) - start))" >"$out/seconds"
	echo "$rc" >"$out/vm-exit"
	echo "host_loadavg_at_end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/vm.txt"
	if [[ $rc == 124 || $rc == 137 ]]; then
		bad="the VM did not finish within ${vm_timeout}s (killed by --vm-timeout in step $(cat "$out/current" 2>/dev/null || echo "?"))"
	elif [[ ! -s $out/steps.tsv && ! -e $out/current ]]; then
		bad="the VM exited $rc without running any step (see $out/console.log)"
	else
		# info-* steps (xdplab doctor) are the capability table, not checks.
		bad=$(awk -F'\t' '$2 != 0 && $1 !~ /^info-/ {printf "%s%s exited %s", sep, $1, $2; sep="; "}' "$out/steps.tsv")
		if [[ ! -e $out/done ]]; then
			# The step it died in, and what its kernel said last.
			local step last_kernel
			step=$(cat "$out/current" 2>/dev/null || echo "?")
			last_kernel=$(grep -v '^\s*$' "$out/kernel.log" 2>/dev/null | tail -n 3 | tr '\n' ' ' | cut -c1-300)
			bad="${bad:+$bad; }the VM died (exit $rc) after $(grep -c . "$out/steps.tsv") steps, in step $step; its kernel said last: ${last_kernel:-nothing (kernel.log is empty)} (see kernel.log, console.log, health.tsv, host.tsv)"
		fi
	fi
	if [[ -n $bad ]]; then
		echo "fail: $bad" >"$out/verdict"
	else
		echo pass >"$out/verdict"
	fi
	log "$k: $(cat "$out/verdict") ($(cat "$out/seconds")s)"
	[[ -z $bad ]]
}

# One round: each kernel once. With --repeat N, N rounds, each VM fresh, in run-1 ... run-N.
declare -A verdict=()
failed=0
rounds=()
for ((round = 1; round <= repeat; round++)); do
	round_dir=$run_dir
	((repeat == 1)) || round_dir=$run_dir/run-$round
	rounds+=("$round_dir")
	for k in "${kernels[@]}"; do
		out=$round_dir/$k
		if [[ -n $resume && -e $out/verdict ]]; then
			# Finished before the run stopped: kept as it is.
			log "$k: round $round kept from the run: $(cat "$out/verdict")"
			[[ $(cat "$out/verdict") != fail* ]] || failed=1
		else
			if [[ -n $resume && -e $out ]]; then
				# Stopped midway with the run's host process: not a verdict on the kernel. Its
				# output is kept apart, out of the rounds' counts, and the VM boots again.
				mkdir -p "$run_dir/interrupted"
				mv "$out" "$run_dir/interrupted/run-$round-$k-$(date -u +%Y%m%dT%H%M%SZ)"
				log "$k: round $round was stopped midway, in step $(cat "$run_dir"/interrupted/run-"$round-$k"-*/current 2>/dev/null | tail -n 1): moved to $run_dir/interrupted/, booting it again"
			fi
			mkdir -p "$out"
		fi
		if [[ -e $out/verdict ]]; then
			:
		elif [[ -n ${skip_reason[$k]:-} ]]; then
			echo "skip: ${skip_reason[$k]}" >"$out/verdict"
			log "$k: SKIP ${skip_reason[$k]}"
		else
			run_vm "$k" "$out" || failed=1
		fi
		v=$(cat "$out/verdict")
		((repeat == 1)) || v="run-$round: $v"
		verdict[$k]="${verdict[$k]:+${verdict[$k]}
      }$v"
	done
done

# The table of the last round, with a column for every default kernel (saying why one did not
# run), in the run's directory; the committed one only with --update-results, merged.
last=${rounds[-1]}
for k in "${default_kernels[@]}"; do
	if [[ " ${kernels[*]} " != *" $k "* ]]; then
		mkdir -p "$last/$k"
		echo "not run: not among the kernels this run was asked for (${kernels[*]})" >"$last/$k/verdict"
	fi
done
if ((!no_report || update)); then
	python3 "$report_py" "$last" "$mode" "${default_kernels[@]}" >"$last/kernels.md"
	log "wrote $last/kernels.md"
	if [[ -n $report ]]; then
		cp "$last/kernels.md" "$report"
		log "wrote $report"
	fi
	# Every step's pass count over the rounds, and every VM that died.
	python3 "$report_py" --flakes "$mode" "${#rounds[@]}" "${rounds[@]}" "${kernels[@]}" >"$run_dir/kernel-flakes.md"
	log "wrote $run_dir/kernel-flakes.md"
fi
if ((update)); then
	# Only the columns (and flake sections) of the kernels this run booted change; the others
	# keep their own run, named in the table.
	ran=()
	for k in "${kernels[@]}"; do [[ -n ${skip_reason[$k]:-} ]] || ran+=("$k"); done
	table=$results/$([[ $mode == quick ]] && echo kernels.md || echo kernels-full.md)
	merged=$(python3 "$report_py" --merge "$table" "$last/kernels.md" "${ran[@]}")
	printf '%s\n' "$merged" >"$table"
	log "merged ${ran[*]} into $table"
	if ((repeat > 1)); then
		merged=$(python3 "$report_py" --merge-flakes "$results/kernel-flakes.md" "$run_dir/kernel-flakes.md")
		printf '%s\n' "$merged" >"$results/kernel-flakes.md"
		log "merged the flake counts of ${ran[*]} into $results/kernel-flakes.md"
	fi
fi
for k in "${kernels[@]}"; do printf '%-5s %s\n' "$k" "${verdict[$k]}"; done
exit $failed
