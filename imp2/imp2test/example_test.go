package imp2test_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/imp2/imp2test"
)

// consume stands for the consumer under test: it reads events until none
// has come for 100 ms and counts them and the events missing from their
// numbering.
func consume(c *imp2.Conn) (events int, missing uint64) {
	var seq imp2.SeqTracker
	for {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		b, err := c.Receive()
		if err != nil {
			return events, seq.Missing()
		}
		for m, err := range imp2.Messages(b) {
			if err == nil && m.Header.Type == imp2.TypeEvent {
				events++
				seq.Observe(m.Header.Seq)
			}
		}
	}
}

// A test replays a trace into its own consumer: a synthetic one here, in
// which the 50th of 100 events was lost when it was recorded; a trace
// imp2-record wrote (an os.File) replays the same way.
func Example_replay() {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Close()
	var trace bytes.Buffer
	imp2test.WriteTrace(&trace, slices.Delete(imp2test.Events(1, 100), 49, 50))

	c, err := imp2.Dial(k.ConsumerConfig()) // in place of imp2.Dial(imp2.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	k.Replay(&trace)
	fmt.Println(consume(c))
	// Output: 99 1
}

// The fake kernel numbers each consumer's events from 1, as the module
// does, and tells it what the test scripts in its statistics.
func ExampleKernel_ScriptStats() {
	k, err := imp2test.New(imp2test.Config{AllowUnprivileged: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Close()
	k.ScriptStats(func(port uint32, st imp2.Stats) imp2.Stats {
		st.SelfDropped = 7 // as if the module had dropped 7 events to it
		return st
	})
	c, err := imp2.Dial(k.ConsumerConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	k.SendEvents(imp2test.Event(1), imp2test.Event(2))
	n, missing := consume(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Stats(ctx)
	fmt.Println(n, missing, st.SelfSent, st.SelfDropped, st.SelfLastSeq, err)
	// Output: 2 0 2 7 2 <nil>
}
