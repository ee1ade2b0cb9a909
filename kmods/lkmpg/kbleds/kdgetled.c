// SPDX-License-Identifier: GPL-2.0
/* kdgetled TTY COUNT MS: COUNT readings of the VT's LED state (KDGETLED), MS apart. */
#include <fcntl.h>
#include <linux/kd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct timespec pause;
	long count, ms;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: kdgetled TTY COUNT MS\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_NOCTTY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	count = strtol(argv[2], NULL, 0);
	ms = strtol(argv[3], NULL, 0);
	pause.tv_sec = ms / 1000;
	pause.tv_nsec = (ms % 1000) * 1000000;
	for (long i = 0; i < count; i++) {
		char leds = 0;

		if (ioctl(fd, KDGETLED, &leds)) {
			perror("KDGETLED");
			return 1;
		}
		printf("%d\n", leds);
		nanosleep(&pause, NULL);
	}
	return 0;
}
