// SPDX-License-Identifier: GPL-2.0
/*
 * A consumer written the way the original imp2 user program was: it binds
 * to its pid, registers with IMP2_U_PID naming that pid in nlmsg_pid, reads
 * sizeof(struct nlmsghdr) + 8 bytes per recvfrom() and prints
 * "src: A, dest: B".  On SIGINT or SIGTERM it sends IMP2_CLOSE and exits.
 * It knows nothing of the extension: the module must keep working for it.
 *
 * usage: legacy_consumer [count]   (stop after count events; 0 = forever)
 */
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_IMP2 31
#define IMP2_U_PID 0
#define IMP2_CLOSE 2

struct packet_info {
	unsigned int src;
	unsigned int dest;
};

struct u_packet_info {
	struct nlmsghdr hdr;
	struct packet_info icmp_info;
};

static int skfd;

static void send_control(int type)
{
	struct sockaddr_nl kpeer = { .nl_family = AF_NETLINK };
	struct nlmsghdr msg = {
		.nlmsg_len = NLMSG_LENGTH(0),
		.nlmsg_type = type,
		.nlmsg_pid = getpid(),
	};

	sendto(skfd, &msg, msg.nlmsg_len, 0, (struct sockaddr *)&kpeer,
	       sizeof(kpeer));
}

static void sig_int(int signo)
{
	(void)signo;
	send_control(IMP2_CLOSE);
	close(skfd);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl kpeer;
	struct u_packet_info info;
	long count = argc > 1 ? atol(argv[1]) : 0;
	socklen_t kpeerlen;
	struct in_addr a;
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
	long seen = 0;

	skfd = socket(PF_NETLINK, SOCK_RAW, NL_IMP2);
	if (skfd < 0) {
		perror("can not create a netlink socket");
		return 1;
	}
	local.nl_pid = getpid();
	if (bind(skfd, (struct sockaddr *)&local, sizeof(local)) != 0) {
		perror("bind");
		return 1;
	}
	signal(SIGINT, sig_int);
	signal(SIGTERM, sig_int);
	send_control(IMP2_U_PID);
	printf("registered\n");
	fflush(stdout);

	while (count == 0 || seen < count) {
		kpeerlen = sizeof(kpeer);
		if (recvfrom(skfd, &info, sizeof(info), 0,
			     (struct sockaddr *)&kpeer, &kpeerlen) < 0) {
			perror("recvfrom");
			return 1;
		}
		a.s_addr = info.icmp_info.src;
		inet_ntop(AF_INET, &a, src, sizeof(src));
		a.s_addr = info.icmp_info.dest;
		inet_ntop(AF_INET, &a, dst, sizeof(dst));
		printf("src: %s, dest: %s\n", src, dst);
		fflush(stdout);
		seen++;
	}
	send_control(IMP2_CLOSE);
	close(skfd);
	return 0;
}
