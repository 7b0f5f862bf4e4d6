// SPDX-License-Identifier: GPL-2.0
/*
 * nlsend: a minimal top-speed imp2 producer in C, the reference peer that
 * imp2-record, imp2-replay and imp2.Server are measured against.
 *
 * It binds a NETLINK_USERSOCK (or -f FAMILY) socket to port -p, waits for
 * one IMP2_U_PID, then sends -n extended imp2 events (48 bytes, nlmsg_seq
 * 1, 2, ...) to the registering port with sendmmsg in batches of -b.
 * Blocking sends by default, so the receiver sets the pace and nothing is
 * dropped; -d uses MSG_DONTWAIT like the module and counts EAGAIN.
 * -r RATE paces to RATE messages/s against absolute deadlines.
 *
 * Prints one line: "nlsend sent N eagain E seconds S rate R".
 *
 * usage: nlsend -p PORT -n COUNT [-f FAMILY] [-b BATCH] [-d] [-r RATE] [-w WAIT_S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IMP2_U_PID	0
#define IMP2_K_MSG	1
#define EVENT_LEN	32
#define MSG_LEN		(NLMSG_HDRLEN + EVENT_LEN)
#define MAX_BATCH	1024

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: nlsend -p PORT -n COUNT [-f FAMILY] [-b BATCH] [-d] [-r RATE] [-w WAIT_S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static unsigned char bufs[MAX_BATCH][MSG_LEN];
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iov[MAX_BATCH];
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl peer;
	socklen_t peerlen = sizeof(peer);
	long family = NETLINK_USERSOCK, batch = 64, rate = 0, wait_s = 10;
	unsigned long long count = 0, sent = 0, eagain = 0;
	int flags = 0, opt, fd, i;
	struct nlmsghdr req;
	uint64_t start, el;
	struct pollfd pfd;

	while ((opt = getopt(argc, argv, "p:n:f:b:dr:w:")) != -1) {
		switch (opt) {
		case 'p': local.nl_pid = strtoul(optarg, NULL, 0); break;
		case 'n': count = strtoull(optarg, NULL, 0); break;
		case 'f': family = strtol(optarg, NULL, 0); break;
		case 'b': batch = strtol(optarg, NULL, 0); break;
		case 'd': flags = MSG_DONTWAIT; break;
		case 'r': rate = strtol(optarg, NULL, 0); break;
		case 'w': wait_s = strtol(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!local.nl_pid || !count || batch < 1 || batch > MAX_BATCH)
		usage();

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, family);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local))) {
		perror("nlsend: socket/bind");
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, wait_s * 1000) != 1) {
			fprintf(stderr, "nlsend: no IMP2_U_PID within %ld s\n", wait_s);
			return 1;
		}
		if (recvfrom(fd, &req, sizeof(req), 0, (struct sockaddr *)&peer,
			     &peerlen) >= (ssize_t)NLMSG_HDRLEN &&
		    req.nlmsg_type == IMP2_U_PID)
			break;
	}

	for (i = 0; i < batch; i++) {
		struct nlmsghdr *h = (struct nlmsghdr *)bufs[i];

		h->nlmsg_len = MSG_LEN;
		h->nlmsg_type = IMP2_K_MSG;
		/* src 198.18.0.1, dest 198.18.0.2, echo request */
		memcpy(bufs[i] + NLMSG_HDRLEN, "\xc6\x12\x00\x01\xc6\x12\x00\x02", 8);
		bufs[i][NLMSG_HDRLEN + 20] = 8;
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = MSG_LEN;
		msgs[i].msg_hdr.msg_name = &peer;
		msgs[i].msg_hdr.msg_namelen = sizeof(peer);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	start = now_ns();
	while (sent + eagain < count) {
		unsigned long long due = count;
		int n, r;

		if (rate > 0) {
			due = (now_ns() - start) * (unsigned long long)rate / 1000000000ull;
			if (due > count)
				due = count;
			if (due <= sent + eagain)
				continue; /* spin: the pacer is a busy reference */
		}
		n = due - sent - eagain < (unsigned long long)batch ?
			(int)(due - sent - eagain) : (int)batch;
		for (i = 0; i < n; i++) {
			struct nlmsghdr *h = (struct nlmsghdr *)bufs[i];
			uint64_t t = now_ns();

			h->nlmsg_seq = (uint32_t)(sent + eagain + i + 1);
			memcpy(bufs[i] + NLMSG_HDRLEN + 8, &t, 8);
		}
		r = sendmmsg(fd, msgs, n, flags);
		if (r < 0) {
			if (errno == EAGAIN) {
				eagain++; /* the first of the batch was refused */
				continue;
			}
			if (errno == EINTR)
				continue;
			perror("nlsend: sendmmsg");
			return 1;
		}
		sent += r;
	}
	el = now_ns() - start;
	printf("nlsend sent %llu eagain %llu seconds %.6f rate %.0f\n", sent,
	       eagain, el / 1e9, sent / (el / 1e9));
	return 0;
}
