// SPDX-License-Identifier: GPL-2.0
/*
 * nlsink: a minimal imp2 consumer in C that only counts, the reference the
 * Go receive paths (imp2-record) are measured against.
 *
 * It registers with IMP2_U_PID at port -s of family -f (USERSOCK by
 * default), then drains with recvmmsg in batches of -b until -n messages
 * arrived or nothing came for -i ms.  -r sets SO_RCVBUFFORCE.
 *
 * Prints one line: "nlsink received N enobufs E seconds S rate R", timed
 * from the first message to the last.
 *
 * usage: nlsink -s SENDER_PORT -n COUNT [-f FAMILY] [-b BATCH] [-r RCVBUF] [-i IDLE_MS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IMP2_U_PID	0
#define MAX_BATCH	1024
#define BUF_LEN		256

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static unsigned char bufs[MAX_BATCH][BUF_LEN];
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iov[MAX_BATCH];
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl sender = { .nl_family = AF_NETLINK };
	struct nlmsghdr reg = { .nlmsg_len = NLMSG_HDRLEN, .nlmsg_type = IMP2_U_PID };
	long family = NETLINK_USERSOCK, batch = 64, rcvbuf = 0, idle_ms = 2000;
	unsigned long long count = 0, got = 0, enobufs = 0;
	uint64_t first = 0, last = 0;
	struct timeval tv;
	int opt, fd, i;

	while ((opt = getopt(argc, argv, "s:n:f:b:r:i:")) != -1) {
		switch (opt) {
		case 's': sender.nl_pid = strtoul(optarg, NULL, 0); break;
		case 'n': count = strtoull(optarg, NULL, 0); break;
		case 'f': family = strtol(optarg, NULL, 0); break;
		case 'b': batch = strtol(optarg, NULL, 0); break;
		case 'r': rcvbuf = strtol(optarg, NULL, 0); break;
		case 'i': idle_ms = strtol(optarg, NULL, 0); break;
		default: goto usage;
		}
	}
	if (!count || batch < 1 || batch > MAX_BATCH)
		goto usage;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, family);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local))) {
		perror("nlsink: socket/bind");
		return 1;
	}
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
				     sizeof(rcvbuf))) {
		perror("nlsink: SO_RCVBUFFORCE");
		return 1;
	}
	tv.tv_sec = idle_ms / 1000;
	tv.tv_usec = (idle_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (i = 0; i < batch; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = BUF_LEN;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	if (sendto(fd, &reg, reg.nlmsg_len, 0, (struct sockaddr *)&sender,
		   sizeof(sender)) < 0) {
		perror("nlsink: register");
		return 1;
	}

	while (got < count) {
		int n = recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);

		if (n < 0) {
			if (errno == ENOBUFS) {
				enobufs++;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break; /* idle */
			perror("nlsink: recvmmsg");
			return 1;
		}
		last = now_ns();
		if (!first)
			first = last;
		got += n;
	}
	printf("nlsink received %llu enobufs %llu seconds %.6f rate %.0f\n",
	       got, enobufs, (last - first) / 1e9,
	       last > first ? got / ((last - first) / 1e9) : 0.0);
	return got == count ? 0 : 3;
usage:
	fprintf(stderr, "usage: nlsink -s SENDER_PORT -n COUNT [-f FAMILY] [-b BATCH] [-r RCVBUF] [-i IDLE_MS]\n");
	return 2;
}
