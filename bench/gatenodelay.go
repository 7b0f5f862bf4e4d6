//go:build !imp2_test_consumer_delay

package bench

// consumerTestDelay is the gate consumer's test delay; none outside the
// test variant (gatedelay.go).
func consumerTestDelay() {}
