package main

import (
	"errors"
	"fmt"
	"slices"
)

// checkICMP checks the -to icmp flags.
func (c *config) checkICMP() error {
	icmpOnly := []string{"netns-dst", "verify", "verify-rcvbuf", "verify-wait", "verify-tolerate", "vm", "vm-consumer", "vm-consumer-out", "vm-timeout"}
	if c.to != "icmp" {
		for _, f := range icmpOnly {
			if c.flagsSet[f] {
				return fmt.Errorf("-%s is for -to icmp", f)
			}
		}
		return nil
	}
	for _, f := range []string{"netns", "bind", "dest", "linger", "o", "compress"} {
		if c.flagsSet[f] {
			return fmt.Errorf("-%s is not for -to icmp", f)
		}
	}
	verifyOnly := []string{"verify-rcvbuf", "verify-wait", "verify-tolerate"}
	for _, f := range verifyOnly {
		if c.flagsSet[f] && !c.verify {
			return fmt.Errorf("-%s needs -verify", f)
		}
	}
	switch {
	case c.verifyRcvBuf < 0:
		return errors.New("-verify-rcvbuf cannot be negative")
	case c.verifyWait <= 0:
		return errors.New("-verify-wait must be positive")
	case c.tolerate < 0:
		return errors.New("-verify-tolerate cannot be negative")
	case (c.flagsSet["vm-consumer"] || c.flagsSet["vm-consumer-out"] || c.flagsSet["vm-timeout"]) && !c.vm:
		return errors.New("-vm-consumer, -vm-consumer-out and -vm-timeout need -vm")
	case c.vmConsumerOut != "" && c.vmConsumer == "":
		return errors.New("-vm-consumer-out needs -vm-consumer")
	case c.vm && c.netnsDst != "":
		return errors.New("-vm makes its own destination namespace: no -netns-dst")
	case c.vm && slices.Contains(c.in, "-") && len(c.in) > 1:
		return errors.New("-i - cannot be merged with other inputs")
	case c.vmTimeout <= 0:
		return errors.New("-vm-timeout must be positive")
	}
	return nil
}
