package pcapnl

import (
	"fmt"
	"strings"
)

// Format is the capture format a Writer writes.
type Format int

const (
	// Pcapng is the default: every field of Frame and the interface
	// statistics survive.
	Pcapng Format = iota
	// Pcap is the classic libpcap format (nanosecond magic a1b23c4d,
	// LINKTYPE_NETLINK), which tcpdump -r and every older tool read. It
	// loses what pcapng has and it has not: see Format.Loses.
	Pcap
)

func (f Format) String() string {
	if f == Pcap {
		return "pcap"
	}
	return "pcapng"
}

// Loses says, in one line for a warning, what a trace in this format does
// not keep of what Writer is given; "" for pcapng, which keeps everything.
//
// Classic pcap has one fixed file header and a 16-byte header per record:
// no per-frame options (epb_dropcount: which frames the recorder lost
// just before this one; epb_flags: the direction), no interface
// statistics block (received/dropped at close), no comments, application
// or interface names. The direction survives in the pseudo-header as
// nlmon's own packet types (PACKET_USER 6, PACKET_KERNEL 7), which Reader
// takes back; the drop counts do not survive anywhere in the file (the
// recorder's summary still has them, and imp2 sequence gaps still show
// where events are missing).
func (f Format) Loses() string {
	if f != Pcap {
		return ""
	}
	return "classic pcap keeps no per-frame drop counts, no interface statistics (received/dropped) and no comments; name the file .pcapng to keep them"
}

// FormatFor is the one rule every imp2 tool applies to the name of a
// trace it writes:
//
//   - a name ending in .zst is zstd-compressed, one ending in .gz
//     gzip-compressed, any other name (and "-", standard output, as
//     tcpdump -w -) is not compressed;
//   - what is left once that suffix is taken off decides the format:
//     .pcap is classic pcap, anything else (.pcapng, no extension) pcapng.
//
// So x.pcap.zst and x.pcap.gz are compressed classic pcap (zstd -dc or
// zcat them into tcpdump -r -; Wireshark opens them directly), and
// x.pcapng.zst is what imp2-record has always written. Suffixes match
// without regard to case. Reading never uses the name: Reader detects the
// compression and the format by their magic numbers, so a renamed file
// still reads.
func FormatFor(name string) (Format, Compression) {
	base := strings.ToLower(name)
	c := None
	switch {
	case strings.HasSuffix(base, ".zst"):
		c, base = Zstd, strings.TrimSuffix(base, ".zst")
	case strings.HasSuffix(base, ".gz"):
		c, base = Gzip, strings.TrimSuffix(base, ".gz")
	}
	if strings.HasSuffix(base, ".pcap") {
		return Pcap, c
	}
	return Pcapng, c
}

// ParseCompression maps a -compress flag value onto a compression: "auto"
// is the one FormatFor gives name, the others name one ("zstd", "gzip",
// "none").
func ParseCompression(value, name string) (Compression, error) {
	switch value {
	case "auto":
		_, c := FormatFor(name)
		return c, nil
	case "zstd":
		return Zstd, nil
	case "gzip":
		return Gzip, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("compression %q: want auto (by the file name), zstd, gzip or none", value)
}

func (c Compression) String() string {
	switch c {
	case Zstd:
		return "zstd"
	case Gzip:
		return "gzip"
	case None:
		return "none"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}
