package pcapnl

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/imp2/imp2/imp2"
)

// benchFrames returns 4096 frames of 40 captured bytes (pseudo-header plus
// a legacy 24-byte IMP2_K_MSG) or 64 (extended event), with a drop count on
// one frame in 512.
func benchFrames(extended bool) []Frame {
	src, dst := netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("192.168.1.1")
	fr := make([]Frame, 4096)
	for i := range fr {
		e := imp2.Event{Src: src, Dest: dst}
		if extended {
			e.Extended, e.TimeNs, e.ICMPType, e.ICMPSeq, e.Flags, e.IPLen = true, uint64(i)*10_000, 8, uint16(i), 1, 84
		}
		fr[i] = Frame{Time: 1_700_000_000e9 + int64(i)*10_000, Direction: ToUser, Family: 31,
			Data: imp2.AppendEventMessage(nil, uint32(i+1), e)}
		if i%512 == 511 {
			fr[i].DropCount = 3
		}
	}
	return fr
}

// BenchmarkWrite measures WriteFrame per frame. Sub-benchmarks:
// zstd (the default writer), zstd-queue (the same with WriterOptions.Queue:
// the time until Flush returns, compression on a second goroutine),
// zstd-frame-per-flush, gzip (the default level), none (plain pcapng; the
// cost of block encoding alone), pcap (classic pcap, plain) and pcapgo (gopacket's NgWriter with the
// same epb_flags and drop counts, to io.Discard, given pre-built packets
// with the pseudo-header already in place). Compare within one run: the
// machine is shared.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []struct {
		name string
		ext  bool
	}{{"40B", false}, {"64B", true}} {
		frames := benchFrames(size.ext)
		for _, mode := range []string{"zstd", "zstd-queue", "zstd-frame-per-flush", "gzip", "none", "pcap"} {
			b.Run(mode+"/"+size.name, func(b *testing.B) {
				opts := WriterOptions{}
				switch mode {
				case "none":
					opts.Compression = None
				case "gzip":
					opts.Compression = Gzip
				case "pcap":
					opts.Format, opts.Compression = Pcap, None
				case "zstd-frame-per-flush":
					opts.FramePerFlush = true
				case "zstd-queue":
					opts.Queue = 8 << 20
				}
				w, err := NewWriter(io.Discard, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(frames[0].Data) + PseudoHeaderLen))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := w.WriteFrame(&frames[i&4095]); err != nil {
						b.Fatal(err)
					}
				}
				w.Flush()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
				w.Close()
			})
		}
		b.Run("pcapgo/"+size.name, func(b *testing.B) {
			pkts := make([][]byte, len(frames))
			for i, f := range frames {
				p := make([]byte, PseudoHeaderLen, PseudoHeaderLen+len(f.Data))
				binary.BigEndian.PutUint16(p[2:], ARPHRDNetlink)
				binary.BigEndian.PutUint16(p[14:], f.Family)
				pkts[i] = append(p, f.Data...)
			}
			w, err := pcapgo.NewNgWriterInterface(io.Discard, pcapgo.NgInterface{
				Name: "imp2", LinkType: layers.LinkType(LinkTypeNetlink), SnapLength: DefaultSnapLen,
				TimestampResolution: 9,
			}, pcapgo.NgWriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			flags := &pcapgo.NgEpbFlags{Direction: pcapgo.NgEpbFlagDirectionInbound}
			b.ReportAllocs()
			b.SetBytes(int64(len(pkts[0])))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := &frames[i&4095]
				p := pkts[i&4095]
				opts := pcapgo.NgPacketOptions{Flags: flags}
				if f.DropCount != 0 {
					opts.DropCount = &f.DropCount
				}
				ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, f.Time), CaptureLength: len(p), Length: len(p)}
				if err := w.WritePacketWithOptions(ci, p, opts); err != nil {
					b.Fatal(err)
				}
			}
			w.Flush()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkRead measures Next per frame over a 1M-frame trace of 64-byte
// frames held in memory (zstd and plain).
func BenchmarkRead(b *testing.B) {
	frames := benchFrames(true)
	for _, mode := range []string{"zstd", "none"} {
		b.Run(mode, func(b *testing.B) {
			opts := WriterOptions{}
			if mode == "none" {
				opts.Compression = None
			}
			var buf bytes.Buffer
			w, _ := NewWriter(&buf, opts)
			const n = 1 << 20
			for i := range n {
				w.WriteFrame(&frames[i&4095])
			}
			w.Close()
			data := buf.Bytes()
			b.ReportAllocs()
			b.ResetTimer()
			total := 0
			for total < b.N {
				r, err := NewReader(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				for total < b.N {
					f, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if len(f.Data) != 48 {
						b.Fatal("bad frame")
					}
					total++
				}
				r.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// TestSizeVsZstdCLI compares our compressed trace with `zstd -3` applied
// to the same trace written uncompressed. The ratio is deterministic for
// a given input (fixed seed, flushes by bytes only), so it is asserted.
func TestSizeVsZstdCLI(t *testing.T) {
	zstdCLI := needTool(t, "zstd")
	const n = 20000
	frames := floodTrace(n, 11)
	dir := t.TempDir()
	plain := writeTrace(t, frames, WriterOptions{Compression: None, FlushInterval: -1})
	// The ISB holds the time of Close: write the compressed variants from
	// the same bytes' frames, the ISB differs by a few bytes only.
	in := filepath.Join(dir, "plain.pcapng")
	os.WriteFile(in, plain, 0o644)
	out, err := exec.Command(zstdCLI, "-3", "-q", "-c", in).Output()
	if err != nil {
		t.Fatal(err)
	}
	ref := len(out)
	for _, tc := range []struct {
		name string
		opts WriterOptions
		max  float64
	}{
		{"default(64KiB flush)", WriterOptions{FlushInterval: -1}, 1.05},
		{"frame-per-flush(64KiB)", WriterOptions{FlushInterval: -1, FramePerFlush: true}, 1.10},
		{"flush-every-1000-frames", WriterOptions{FlushInterval: -1, FlushBytes: 1000 * 76}, 1.10},
		{"frame-per-1000-frames", WriterOptions{FlushInterval: -1, FlushBytes: 1000 * 76, FramePerFlush: true}, 1.15},
		{"no-flush", WriterOptions{FlushInterval: -1, FlushBytes: -1}, 1.05},
	} {
		got := len(writeTrace(t, frames, tc.opts))
		ratio := float64(got) / float64(ref)
		t.Logf("%-24s %7d bytes, %.2f bytes/frame, %.3f× zstd -3 (%d bytes, %.2f bytes/frame; uncompressed %.1f bytes/frame)",
			tc.name, got, float64(got)/n, ratio, ref, float64(ref)/n, float64(len(plain))/n)
		if ratio > tc.max {
			t.Errorf("%s: %.3f× zstd -3, want ≤ %.2f", tc.name, ratio, tc.max)
		}
	}
}
