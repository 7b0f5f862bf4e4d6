#!/usr/bin/env bash
# Installs what building, testing and benchmarking imp2 need on Debian 12,
# as root. Idempotent: with everything present it only checks (well under a
# second) and fetches nothing.
set -euo pipefail

# Kernel image and headers come as Debian's metapackages, which pin the same
# ABI version, so the module builds against the kernel the VM boots.
pkgs=(
	linux-image-amd64 linux-headers-amd64 # the kernel the VM boots, and its headers
	qemu-system-x86 busybox-static cpio   # the VM harness (cpio checks our initramfs writer)
	make gcc libc6-dev                    # the module build
	dwarves                               # pahole: module BTF on headers that ship vmlinux (6.12 on)
	mmdebstrap xz-utils debian-archive-keyring # kernel matrix: trixie build root, .ko.xz, suites' keys
	tshark zstd tcpdump                   # trace format checks (tcpdump -r reads .pcap)
	iproute2 nftables hping3 iputils-ping # topology, NFLOG peer, load peers
	clang llvm libbpf-dev                 # only TestObjectIsRebuilt (Debian 12: clang 14): the BPF object is committed, building needs none
	ca-certificates git
)

missing=()
for p in "${pkgs[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# The host boots its own kernel; the VM needs no initrd from Debian.
	export INITRD=No
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=$PATH:/usr/local/go/bin
	else
		echo "deps: Go 1.26 is needed (https://go.dev/dl); Debian 12's golang is too old" >&2
		exit 1
	fi
fi
cd "$(dirname "$0")/.."
go mod download # also go.mod's tools: benchstat (go tool benchstat), which the results tests run
