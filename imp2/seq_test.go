package imp2

import "testing"

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name     string
		fromOne  bool
		seqs     []uint32
		gaps     []uint64 // per Observe
		missing  uint64
		restarts uint64
		unnumb   uint64
	}{
		{"in order", true, []uint32{1, 2, 3}, []uint64{0, 0, 0}, 0, 0, 0},
		{"first lost from one", true, []uint32{3, 4}, []uint64{2, 0}, 2, 0, 0},
		{"first sets base", false, []uint32{1000, 1001, 1005}, []uint64{0, 0, 3}, 3, 0, 0},
		{"wraps", false, []uint32{0xfffffffe, 0xffffffff, 2}, []uint64{0, 0, 2}, 2, 0, 0},
		{"restart is not a gap", false, []uint32{5, 6, 1, 2}, []uint64{0, 0, 0, 0}, 0, 1, 0},
		{"duplicate is a restart", false, []uint32{5, 5}, []uint64{0, 0}, 0, 1, 0},
		{"unnumbered ignored", true, []uint32{0, 1, 0, 2}, []uint64{0, 0, 0, 0}, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := SeqTracker{FromOne: tt.fromOne}
			for i, s := range tt.seqs {
				if g := tr.Observe(s); g != tt.gaps[i] {
					t.Errorf("Observe(%d) #%d = %d, want %d", s, i, g, tt.gaps[i])
				}
			}
			if tr.Missing() != tt.missing || tr.Restarts() != tt.restarts || tr.Unnumbered() != tt.unnumb {
				t.Errorf("missing %d restarts %d unnumbered %d, want %d %d %d",
					tr.Missing(), tr.Restarts(), tr.Unnumbered(), tt.missing, tt.restarts, tt.unnumb)
			}
		})
	}
}

func TestSeqTrackerObserveLast(t *testing.T) {
	var tr SeqTracker
	tr.Observe(10)
	tr.Observe(12)
	if got := tr.ObserveLast(15); got != 3 {
		t.Errorf("ObserveLast(15) after 12 = %d, want 3", got)
	}
	if got := tr.ObserveLast(14); got != 0 {
		t.Errorf("ObserveLast(14) after 15 = %d, want 0", got)
	}
	if tr.Missing() != 4 {
		t.Errorf("Missing = %d, want 4 (1 gap + 3 at the tail)", tr.Missing())
	}
	if _, last, _ := tr.Span(); last != 15 {
		t.Errorf("last = %d, want 15", last)
	}

	empty := SeqTracker{FromOne: true}
	if got := empty.ObserveLast(7); got != 7 {
		t.Errorf("nothing received, producer sent 7: ObserveLast = %d, want 7", got)
	}
	var relayed SeqTracker
	if got := relayed.ObserveLast(7); got != 0 {
		t.Errorf("nothing received from a stream of unknown start: ObserveLast = %d, want 0", got)
	}
}
