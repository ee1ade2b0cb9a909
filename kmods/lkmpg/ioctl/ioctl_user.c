// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl_user: drives /dev/ioctltest (LKMPG's ioctl example) for its tests. Its arguments are a
 * script of steps on numbered open files (0-9); each step prints one line: its result, or the
 * errno name when it fails (the script goes on).
 *
 *   open F          open /dev/ioctltest as file F          -> ok
 *   close F                                                 -> ok
 *   set F V         IOCTL_VALSET with val = V               -> ok
 *   get F           IOCTL_VALGET                            -> val=0x..
 *   setnum F V      IOCTL_VALSET_NUM, argument V            -> ok
 *   getnum F        IOCTL_VALGET_NUM                        -> num=..
 *   read F N        one read() of N bytes                   -> read COUNT all 0x.. | mixed
 *   raw F NR        ioctl number NR, argument 0             -> ok
 *   bad F WHAT      set, get, getnum or read on an unmapped buffer -> ok
 *
 * The ioctl numbers and struct are ioctl.c's (this is a one-file program).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct ioctl_arg {
	unsigned int val;
};

#define IOC_MAGIC '\x66'
#define IOCTL_VALSET _IOW(IOC_MAGIC, 0, struct ioctl_arg)
#define IOCTL_VALGET _IOR(IOC_MAGIC, 1, struct ioctl_arg)
#define IOCTL_VALGET_NUM _IOR(IOC_MAGIC, 2, int)
#define IOCTL_VALSET_NUM _IO(IOC_MAGIC, 3)

static int files[10] = { -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 };

static void result(long ret, const char *fmt, long value)
{
	if (ret < 0)
		printf("%s\n", strerrorname_np(errno));
	else
		printf(fmt, value);
}

static void do_read(int fd, size_t count)
{
	unsigned char *buf = malloc(count ? count : 1);
	ssize_t got = read(fd, buf, count);

	if (got < 0) {
		printf("%s\n", strerrorname_np(errno));
	} else {
		ssize_t i = 1;

		while (i < got && buf[i] == buf[0])
			i++;
		if (i < got)
			printf("read %zd mixed\n", got);
		else
			printf("read %zd all 0x%02x\n", got, got ? buf[0] : 0);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	void *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ioctl_arg arg;
	int num;

	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i + 1 < argc; i++) {
		const char *op = argv[i];
		int f = atoi(argv[++i]) % 10, fd = files[f];
		const char *extra = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(op, "open")) {
			files[f] = open("/dev/ioctltest", O_RDWR);
			result(files[f], "ok\n", 0);
		} else if (!strcmp(op, "close")) {
			result(close(fd), "ok\n", 0);
			files[f] = -1;
		} else if (!strcmp(op, "set")) {
			arg.val = (unsigned int)strtoul(extra, NULL, 0);
			i++;
			result(ioctl(fd, IOCTL_VALSET, &arg), "ok\n", 0);
		} else if (!strcmp(op, "get")) {
			long ret;

			arg.val = 0x12345678;
			ret = ioctl(fd, IOCTL_VALGET, &arg);
			result(ret, "val=0x%lx\n", arg.val);
		} else if (!strcmp(op, "setnum")) {
			i++;
			result(ioctl(fd, IOCTL_VALSET_NUM, strtoul(extra, NULL, 0)), "ok\n", 0);
		} else if (!strcmp(op, "getnum")) {
			long ret;

			num = 0x12345678;
			ret = ioctl(fd, IOCTL_VALGET_NUM, &num);
			result(ret, "num=%ld\n", num);
		} else if (!strcmp(op, "read")) {
			i++;
			do_read(fd, strtoul(extra, NULL, 0));
		} else if (!strcmp(op, "raw")) {
			i++;
			result(ioctl(fd, strtoul(extra, NULL, 0), 0), "ok\n", 0);
		} else if (!strcmp(op, "bad")) {
			unsigned long nr = !strcmp(extra, "set")    ? IOCTL_VALSET :
					   !strcmp(extra, "get")    ? IOCTL_VALGET :
					   !strcmp(extra, "getnum") ? IOCTL_VALGET_NUM : 0;
			i++;
			if (nr)
				result(ioctl(fd, nr, unmapped), "ok\n", 0);
			else
				result(read(fd, unmapped, 16), "ok\n", 0);
		} else {
			fprintf(stderr, "ioctl_user: unknown step %s\n", op);
			return 2;
		}
	}
	return 0;
}
