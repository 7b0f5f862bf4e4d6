package replayvm

import (
	"io"
	"strings"
	"time"
)

// Config is what -vm takes from imp2-replay's command line.
type Config struct {
	Inputs          []string // the -i files ("-": Stdin), copied into the share
	Stdin           io.Reader
	Args            []string // the command line, as given; GuestArgs picks the guest's
	Consumer        string   // -vm-consumer: "PROG ARGS", run in the destination namespace
	ConsumerOut     string   // -vm-consumer-out
	MinConsumersSet bool     // -min-consumers was given (else 1 with a consumer)
	Timeout         time.Duration
	Stdout, Stderr  io.Writer
	Log             func(format string, args ...any)
}

// GuestArgs drops the flags the host handles: -i (the inputs are passed
// from the share) and the -vm ones.
func GuestArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "vm":
			if !hasValue && i+1 < len(args) && (args[i+1] == "true" || args[i+1] == "false") {
				i++ // never: a bool flag takes no separate value, but be safe
			}
		case "i", "vm-consumer", "vm-consumer-out", "vm-timeout":
			if !hasValue {
				i++
			}
		default:
			out = append(out, args[i])
		}
	}
	return out
}
