package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestConsumerHandled: the burst probe's count of handled events is the
// module's sent + dropped of the one consumer asked about.
func TestConsumerHandled(t *testing.T) {
	proc := []byte(`unit 31
events 2000
unicast_ok 1100
eagain 900
econnrefused 0
enomem 0
other_err 0
consumers 2
consumer 4026531 sent 277 dropped 619 last_seq 896
consumer 12 sent 823 dropped 281 last_seq 1104
`)
	if sent, dropped, err := consumerCounts(proc, 4026531); sent != 277 || dropped != 619 || err != nil {
		t.Errorf("consumer 4026531: sent %d dropped %d, %v; want 277, 619", sent, dropped, err)
	}
	if sent, dropped, err := consumerCounts(proc, 12); sent != 823 || dropped != 281 || err != nil {
		t.Errorf("consumer 12: sent %d dropped %d, %v; want 823, 281", sent, dropped, err)
	}
	if _, _, err := consumerCounts(proc, 7); err == nil {
		t.Error("consumer 7 is not registered, but no error")
	}
}

// TestConsumerHandledFormat: the line consumerCounts parses is the one
// the module prints.
func TestConsumerHandledFormat(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "kmod", "imp2.c"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(`"consumer %u sent %lld dropped %lld last_seq %u\n"`)) {
		t.Error(`kmod/imp2.c no longer prints "consumer %u sent %lld dropped %lld last_seq %u" in /proc/net/imp2: update consumerCounts`)
	}
}
