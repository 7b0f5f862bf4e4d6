package icmp

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEchoLoopbackGetsReply sends an AppendEcho request to 127.0.0.1 from
// a raw socket and waits for the kernel's reply with the same id and
// sequence: the kernel answers only a request whose checksum is right.
func TestEchoLoopbackGetsReply(t *testing.T) {
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		t.Fatalf("raw socket (needs root): %v", err)
	}
	defer unix.Close(rx)
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	id := uint16(os.Getpid())
	to := &unix.SockaddrInet4{Addr: netip.MustParseAddr("127.0.0.1").As4()}
	if err := unix.Sendto(rx, AppendEcho(nil, id, 77, []byte("imp2")), 0, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(rx, buf, 0)
		if err != nil {
			t.Fatalf("no echo reply with id %d: %v", id, err)
		}
		ihl := int(buf[0]&0x0f) * 4
		typ, gotID, seq, err := ParseEcho(buf[ihl:n])
		if err == nil && typ == TypeEchoReply && gotID == id && seq == 77 {
			return
		}
	}
}
