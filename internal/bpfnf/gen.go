package bpfnf

// The committed imp2_bpfel.o is what this produces with Debian 12's clang
// 14 (scripts/deps.sh installs it for the test that rebuilds and compares,
// TestObjectIsRebuilt); building the Go code needs no clang.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -tags linux imp2 imp2.bpf.c -- -O2 -g -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu
