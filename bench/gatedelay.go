//go:build imp2_test_consumer_delay

package bench

import (
	"strconv"
	"time"
)

// consumerTestDelayNS is the test variant's per-event delay of the gate's
// consumer, set at build time (gateBuildConsumer: -ldflags -X); this file
// is compiled only with the build tag imp2_test_consumer_delay, for the
// gate's tests and calibration.
var consumerTestDelayNS string

var consumerTestDelayD = func() time.Duration {
	ns, err := strconv.Atoi(consumerTestDelayNS)
	if err != nil || ns <= 0 {
		panic("imp2_test_consumer_delay build without a delay (-X ...consumerTestDelayNS=<ns>): " + consumerTestDelayNS)
	}
	return time.Duration(ns)
}()

// consumerTestDelay busy-waits the variant's delay: CPU time per event,
// as a slower consumer would spend it.
func consumerTestDelay() {
	for start := time.Now(); time.Since(start) < consumerTestDelayD; {
	}
}
