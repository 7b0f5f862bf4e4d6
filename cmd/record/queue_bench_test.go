package main

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queueWatch samples, every queueEvery, the deepest receive queue of the
// NETLINK_USERSOCK sockets (/proc/net/netlink's Rmem), which during a
// round is the consumer's: its depth says which regime the consumer ran
// in, a shallow queue still in the cache or a full one that is not, and
// the kernel's cost per frame follows it. Reading the file costs the
// same to every consumer it watches.
type queueWatch struct {
	stop    chan struct{}
	samples chan []int
}

const queueEvery = 10 * time.Millisecond

func watchQueue() *queueWatch {
	q := &queueWatch{stop: make(chan struct{}), samples: make(chan []int, 1)}
	go func() {
		var s []int
		t := time.NewTicker(queueEvery)
		defer t.Stop()
		for {
			select {
			case <-q.stop:
				q.samples <- s
				return
			case <-t.C:
				if d, ok := deepestUsersockQueue(); ok && (d > 0 || len(s) > 0) {
					s = append(s, d) // from the first queued frame on
				}
			}
		}
	}()
	return q
}

// median stops the watch and returns the median depth in bytes, -1 if
// nothing was ever queued.
func (q *queueWatch) median() int {
	close(q.stop)
	s := <-q.samples
	if len(s) == 0 {
		return -1
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// deepestUsersockQueue is the largest Rmem of /proc/net/netlink's
// protocol 2 (NETLINK_USERSOCK) sockets.
func deepestUsersockQueue() (int, bool) {
	f, err := os.Open("/proc/net/netlink")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header: sk Eth Pid Groups Rmem Wmem ...
	deepest := 0
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[1] != "2" {
			continue
		}
		if n, err := strconv.Atoi(fs[4]); err == nil {
			deepest = max(deepest, n)
		}
	}
	return deepest, sc.Err() == nil
}
