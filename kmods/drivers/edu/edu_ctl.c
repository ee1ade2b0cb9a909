// SPDX-License-Identifier: GPL-2.0
/*
 * edu_ctl: the ioctls of /dev/eduN from the shell.
 *
 *   edu_ctl DEV id | live VALUE | fact N [COUNT] | raw CMD ARG
 *
 * DEV is a path, or fd:N for a descriptor the shell holds open. Prints each result in hex
 * (id, live) or decimal (fact; COUNT times the same ioctl, one line each); on failure prints
 * "error: ENAME" and exits 1. `raw` passes any command number and argument (a pointer or a
 * value, unchecked) to probe the driver's handling of bad requests. SIGUSR1 interrupts a
 * waiting request (a handler without SA_RESTART), which then fails with EINTR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define EDU_IOC_ID _IOR('E', 1, uint32_t)
#define EDU_IOC_LIVENESS _IOWR('E', 2, uint32_t)
#define EDU_IOC_FACTORIAL _IOWR('E', 3, uint32_t)

static void interrupted(int sig)
{
	(void)sig;
}

static int failed(void)
{
	const char *name = strerrorname_np(errno);

	printf("error: %s\n", name ? name : "unknown");
	return 1;
}

int main(int argc, char **argv)
{
	struct sigaction action = { .sa_handler = interrupted };
	uint32_t value = 0;
	int fd;

	sigaction(SIGUSR1, &action, NULL);

	if (argc < 3) {
		fprintf(stderr, "usage: edu_ctl DEV id | live VALUE | fact N [COUNT] | raw CMD ARG\n");
		return 2;
	}
	if (!strncmp(argv[1], "fd:", 3))
		fd = atoi(argv[1] + 3);
	else
		fd = open(argv[1], O_RDWR);
	if (fd < 0)
		return failed();
	if (!strcmp(argv[2], "id")) {
		if (ioctl(fd, EDU_IOC_ID, &value))
			return failed();
		printf("%#010x\n", value);
	} else if (!strcmp(argv[2], "live") && argc > 3) {
		value = strtoul(argv[3], NULL, 0);
		if (ioctl(fd, EDU_IOC_LIVENESS, &value))
			return failed();
		printf("%#010x\n", value);
	} else if (!strcmp(argv[2], "fact") && argc > 3) {
		long count = argc > 4 ? strtol(argv[4], NULL, 0) : 1;

		for (long i = 0; i < count; i++) {
			value = strtoul(argv[3], NULL, 0);
			if (ioctl(fd, EDU_IOC_FACTORIAL, &value))
				return failed();
			printf("%u\n", value);
			fflush(stdout);
		}
	} else if (!strcmp(argv[2], "raw") && argc > 4) {
		unsigned long cmd = strtoul(argv[3], NULL, 0);
		unsigned long arg = strtoul(argv[4], NULL, 0);

		if (ioctl(fd, cmd, arg))
			return failed();
		printf("ok\n");
	} else {
		fprintf(stderr, "edu_ctl: unknown request %s\n", argv[2]);
		return 2;
	}
	return 0;
}
