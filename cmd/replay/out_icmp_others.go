//go:build !linux

package main

import (
	"errors"
	"io"
	"sync/atomic"
	"time"
)

type icmpConfig struct {
	netnsDst     string
	family       int
	minConsumers int
	wait         time.Duration
	verify       bool
	verifyRcvBuf int
	verifyWait   time.Duration
	tolerate     int64
	topspeed     bool
	batch        int
}

func newICMPOut(icmpConfig, *atomic.Bool, func(string, ...any)) (output, error) {
	return nil, errors.New("-to icmp needs Linux (network namespaces, veth, packet sockets)")
}

func runVM(c *config, stdin io.Reader, stdout, stderr io.Writer, logf func(string, ...any)) int {
	logf("-vm needs Linux")
	return exitError
}
