package record

import (
	"encoding/binary"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/imp2/imp2/imp2"
	"github.com/imp2/imp2/pcapnl"
)

// BenchmarkTraceWrite is the receive loop's own work per frame, with the
// socket taken away: the accounting and encoding of full batches of 48-byte
// events from the peer into a queued writer, as imp2-record sets it up. It
// reports the CPU time of the loop's thread per frame (compressing and
// writing run on the writer's goroutine, as in the recorder), the figure
// that adds to the kernel's recvmmsg cost in cmd/record's BenchmarkVsSink.
func BenchmarkTraceWrite(b *testing.B) {
	o := DefaultOptions("bench.pcapng.zst")
	o.Peer, o.Output = 1234, io.Discard
	tf, err := openTraceFiles(&o, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	// Uncompressed: the queue's goroutine keeps up, so the loop never
	// waits for it, as in a recording that keeps up.
	if err := tf.begin(pcapnl.WriterOptions{Compression: pcapnl.None, Queue: int(o.Buffer),
		SnapLen: o.SnapLen + pcapnl.PseudoHeaderLen}); err != nil {
		b.Fatal(err)
	}
	tw := newTraceWriter(tf, &o, func() uint64 { return 0 })
	msgs := newBatch(o.Batch, o.SnapLen)
	for i := range msgs {
		e := imp2.Event{Src: netip.AddrFrom4([4]byte{198, 18, 0, 1}), Dest: netip.AddrFrom4([4]byte{198, 18, 0, 2}),
			Extended: true, TimeNs: uint64(i) * 1000, ICMPType: 8}
		m := &msgs[i]
		m.N, m.PortID = len(imp2.AppendEventMessage(m.Buf[:0], uint32(i+1), e)), o.Peer
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	seq, frames := uint32(0), 0
	c0 := threadCPU()
	for b.Loop() {
		for i := range msgs { // the numbering goes on
			seq++
			binary.NativeEndian.PutUint32(msgs[i].Buf[8:], seq)
		}
		if err := tw.write(batch{msgs: msgs, keep: len(msgs), t: int64(seq), dir: pcapnl.ToUser}); err != nil {
			b.Fatal(err)
		}
		frames += len(msgs)
	}
	cpu := threadCPU() - c0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(frames), "cpu-ns/frame")
	if err := tw.files.w.Close(); err != nil {
		b.Fatal(err)
	}
}
