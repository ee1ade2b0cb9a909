// SPDX-License-Identifier: GPL-2.0
/*
 * pktloop IFNAME [COUNT [SIZE]]: sends COUNT (default 1) raw Ethernet frames of SIZE bytes
 * (default 64) (broadcast, ethertype
 * 0x88b5, a numbered payload) on an AF_PACKET socket bound to IFNAME and expects each to come
 * back on the same socket, received (not the outgoing copy; other senders' frames, told apart
 * by their source address, are skipped). Prints "looped N" on success,
 * or the failing call and its errno name (e.g. "send: ENETDOWN") and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROTO 0x88b5

static int fail(const char *what)
{
	const char *name;

	switch (errno) {
	case ENETDOWN: name = "ENETDOWN"; break;
	case ENODEV: name = "ENODEV"; break;
	case ENXIO: name = "ENXIO"; break;
	case EAGAIN: name = "EAGAIN"; break;
	case EINVAL: name = "EINVAL"; break;
	case EMSGSIZE: name = "EMSGSIZE"; break;
	default: name = strerror(errno); break;
	}
	printf("%s: %s\n", what, name);
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_ll addr = { 0 };
	struct timeval tv = { .tv_sec = 20 };
	unsigned char frame[4096], buf[8192];
	int count = argc > 2 ? atoi(argv[2]) : 1;
	size_t size = argc > 3 ? strtoul(argv[3], NULL, 0) : 64;
	struct ifreq ifr;
	unsigned int index;
	int fd, i;
	uint32_t pid = getpid();

	if (argc < 2) {
		fprintf(stderr, "usage: pktloop IFNAME [COUNT [SIZE]]\n");
		return 2;
	}
	if (size > sizeof(frame)) {
		fprintf(stderr, "SIZE above %zu\n", sizeof(frame));
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(PROTO));
	if (fd < 0)
		return fail("socket");
	/* Not if_nametoindex(): glibc's uses an AF_INET socket, and the guest has no INET. */
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFINDEX, &ifr))
		return fail("SIOCGIFINDEX");
	index = ifr.ifr_ifindex;
	addr.sll_family = AF_PACKET;
	addr.sll_protocol = htons(PROTO);
	addr.sll_ifindex = index;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return fail("bind");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return fail("setsockopt");

	for (i = 0; i < count; i++) {
		struct sockaddr_ll from;
		socklen_t fromlen = sizeof(from);
		ssize_t n;

		memset(frame, 0, size);
		memset(frame, 0xff, 6);                  /* broadcast destination */
		frame[6] = 0x02;                         /* locally administered source, */
		memcpy(frame + 8, &pid, 4);              /* unique per sender */
		frame[12] = PROTO >> 8;
		frame[13] = PROTO & 0xff;
		snprintf((char *)frame + 14, size > 14 ? size - 14 : 0, "rustkm vnetloop %d", i);
		if (send(fd, frame, size, 0) != (ssize_t)size)
			return fail("send");
		for (;;) {
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
			if (n < 0)
				return fail("recv");
			/* Not the outgoing copy, nor another sender's frame. */
			if (from.sll_pkttype == PACKET_OUTGOING || n < 14 || memcmp(buf + 6, frame + 6, 6))
				continue;
			break;
		}
		if (n != (ssize_t)size || memcmp(buf, frame, size)) {
			printf("frame %d differs (%zd bytes)\n", i, n);
			return 1;
		}
	}
	printf("looped %d\n", count);
	return 0;
}
