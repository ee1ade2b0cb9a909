// SPDX-License-Identifier: GPL-2.0
/*
 * userspace_ioctl: LKMPG's other/userspace_ioctl.c for the chardev2 tests.
 *
 *   userspace_ioctl              the original's run: set a message, read it back byte by
 *                                byte (IOCTL_GET_NTH_BYTE), then whole (IOCTL_GET_MSG)
 *   userspace_ioctl set TEXT     IOCTL_SET_MSG; prints "ok"
 *   userspace_ioctl get          IOCTL_GET_MSG; prints the message
 *   userspace_ioctl nth N        IOCTL_GET_NTH_BYTE N; prints the value returned
 *   userspace_ioctl set-bad|get-bad|read-bad|write-bad
 *                                IOCTL_SET_MSG, IOCTL_GET_MSG, read(), write() on an unmapped
 *                                buffer
 *   userspace_ioctl raw NR       ioctl number NR (decimal or 0x...), argument 0
 *   userspace_ioctl read         three read()s of up to 99 bytes
 *   userspace_ioctl race N       two processes, each N times: set its own message, get it
 *
 * A failing call prints "<call>: <errno name>" to stdout and exits 1.
 * The ioctl numbers are chardev.h's (this is a one-file program).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAJOR_NUM 100
#define IOCTL_SET_MSG _IOW(MAJOR_NUM, 0, char *)
#define IOCTL_GET_MSG _IOR(MAJOR_NUM, 1, char *)
#define IOCTL_GET_NTH_BYTE _IOWR(MAJOR_NUM, 2, int)
#define DEVICE_PATH "/dev/char_dev"

static int failed(const char *what)
{
	printf("%s: %s\n", what, strerrorname_np(errno));
	return 1;
}

static void *unmapped(void)
{
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return page == MAP_FAILED ? (void *)8 : page;
}

/* The original program's run, with errno names on failure. */
static int original(int fd)
{
	char *msg = "Message passed by ioctl\n";
	char message[100] = { 0 };
	int i = 0, c;

	if (ioctl(fd, IOCTL_SET_MSG, msg) < 0)
		return failed("ioctl_set_msg");
	printf("get_nth_byte message:");
	do {
		c = ioctl(fd, IOCTL_GET_NTH_BYTE, i++);
		if (c < 0) {
			printf("\n");
			return failed("ioctl_get_nth_byte");
		}
		putchar(c);
	} while (c != 0);
	if (ioctl(fd, IOCTL_GET_MSG, message) < 0)
		return failed("ioctl_get_msg");
	printf("get_msg message:%s", message);
	return 0;
}

/* Two processes set and get their own messages; each get must be one of the two, whole. */
static int race(int fd, int times)
{
	static const char *const texts[2] = { "the first racer's message", "SECOND RACER" };
	int status, worst = 0, start[2];
	char token;

	if (pipe(start))
		return failed("pipe");
	for (int who = 0; who < 2; who++) {
		if (fork() == 0) {
			int ok = 0, busy = 0, torn = 0, other = 0;

			/* Both start together: when the parent closes the pipe. */
			close(start[1]);
			if (read(start[0], &token, 1) < 0)
				_exit(failed("start"));

			for (int n = 0; n < times; n++) {
				char got[100] = { 0 };

				if (ioctl(fd, IOCTL_SET_MSG, texts[who]) < 0) {
					if (errno != EBUSY)
						_exit(failed("set"));
					busy++;
				}
				if (ioctl(fd, IOCTL_GET_MSG, got) < 0) {
					if (errno != EBUSY)
						_exit(failed("get"));
					busy++;
					continue;
				}
				if (strcmp(got, texts[0]) && strcmp(got, texts[1]))
					torn++;
				else
					ok++;
				if (!strcmp(got, texts[1 - who]))
					other++;
			}
			printf("racer %d: ok=%d busy=%d torn=%d other=%d\n", who, ok, busy, torn,
			       other);
			_exit(0);
		}
	}
	close(start[0]);
	close(start[1]);
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			worst = 1;
	return worst;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	char message[100] = { 0 };
	int fd = open(DEVICE_PATH, O_RDWR);
	long ret;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (fd < 0)
		return failed("open");
	if (!*cmd)
		return original(fd);
	if (!strcmp(cmd, "set") && argc > 2) {
		if (ioctl(fd, IOCTL_SET_MSG, argv[2]) < 0)
			return failed("set");
		printf("ok\n");
	} else if (!strcmp(cmd, "get")) {
		memset(message, 'X', sizeof(message) - 1);
		if (ioctl(fd, IOCTL_GET_MSG, message) < 0)
			return failed("get");
		printf("%s", message);
	} else if (!strcmp(cmd, "nth") && argc > 2) {
		ret = ioctl(fd, IOCTL_GET_NTH_BYTE, strtol(argv[2], NULL, 0));
		if (ret < 0)
			return failed("nth");
		printf("%ld\n", ret);
	} else if (!strcmp(cmd, "set-bad")) {
		if (ioctl(fd, IOCTL_SET_MSG, unmapped()) < 0)
			return failed("set");
		printf("ok\n");
	} else if (!strcmp(cmd, "get-bad")) {
		if (ioctl(fd, IOCTL_GET_MSG, unmapped()) < 0)
			return failed("get");
		printf("ok\n");
	} else if (!strcmp(cmd, "read-bad")) {
		if (read(fd, unmapped(), 10) < 0)
			return failed("read");
		printf("ok\n");
	} else if (!strcmp(cmd, "write-bad")) {
		if (write(fd, unmapped(), 10) < 0)
			return failed("write");
		printf("ok\n");
	} else if (!strcmp(cmd, "raw") && argc > 2) {
		if (ioctl(fd, (unsigned long)strtoul(argv[2], NULL, 0), 0) < 0)
			return failed("raw");
		printf("ok\n");
	} else if (!strcmp(cmd, "read")) {
		/* The message, the end (0), then the message again: EOF rewinds, as in the original. */
		for (int i = 0; i < 3; i++) {
			ssize_t got = read(fd, message, sizeof(message) - 1);

			if (got < 0)
				return failed("read");
			printf("read %zd: %.*s\n", got, (int)got, message);
		}
	} else if (!strcmp(cmd, "race") && argc > 2) {
		return race(fd, atoi(argv[2]));
	} else {
		fprintf(stderr, "usage: see the source\n");
		return 2;
	}
	return 0;
}
