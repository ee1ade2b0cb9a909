// SPDX-License-Identifier: GPL-2.0
/*
 * rawio: exact system calls for tests of kernel modules, where shell tools are too coarse.
 *
 *   rawio write PATH OFFSET [append|trunc]   one write() of all of stdin (OFFSET - : no seek)
 *   rawio read PATH OFFSET COUNT [OFFSET COUNT]...
 *                                            pread()s on one open file; the bytes go to stdout
 *   rawio seek PATH WHENCE OFFSET            lseek(); prints the new offset
 *                                            (WHENCE: set, cur, end, data, hole)
 *
 * Prints "rawio: <errno name>: <message>" and exits 1 when the call fails, so that tests can
 * check the exact error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what)
{
	int err = errno;

	fprintf(stderr, "rawio: %s: %s: %s\n", what, strerrorname_np(err), strerror(err));
	return 1;
}

static char *slurp(size_t *len)
{
	size_t cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t got;

	*len = 0;
	while (buf && (got = read(0, buf + *len, cap - *len)) > 0) {
		*len += (size_t)got;
		if (*len == cap)
			buf = realloc(buf, cap *= 2);
	}
	return buf;
}

static int do_write(int argc, char **argv)
{
	int flags = O_WRONLY;
	size_t len;
	char *buf;
	ssize_t done;
	int fd;

	if (argc > 4 && !strcmp(argv[4], "append"))
		flags |= O_APPEND;
	if (argc > 4 && !strcmp(argv[4], "trunc"))
		flags |= O_TRUNC;
	buf = slurp(&len);
	if (!buf)
		return fail("read stdin");
	fd = open(argv[2], flags);
	if (fd < 0)
		return fail("open");
	if (!strcmp(argv[3], "-"))
		done = write(fd, buf, len);
	else
		done = pwrite(fd, buf, len, strtoll(argv[3], NULL, 0));
	if (done < 0)
		return fail("write");
	printf("%zd\n", done);
	return close(fd) ? fail("close") : 0;
}

/* One pread() per OFFSET COUNT pair, all on one open file. */
static int do_read(int argc, char **argv)
{
	int fd = open(argv[2], O_RDONLY);

	if (fd < 0)
		return fail("open");
	for (int i = 3; i + 1 < argc; i += 2) {
		size_t count = strtoull(argv[i + 1], NULL, 0);
		char *buf = malloc(count ? count : 1);
		ssize_t got;

		if (!buf)
			return fail("malloc");
		got = pread(fd, buf, count, strtoll(argv[i], NULL, 0));
		if (got < 0)
			return fail("read");
		fwrite(buf, 1, (size_t)got, stdout);
		free(buf);
	}
	return 0;
}

static int do_seek(char **argv)
{
	static const struct { const char *name; int whence; } names[] = {
		{ "set", SEEK_SET }, { "cur", SEEK_CUR }, { "end", SEEK_END },
		{ "data", SEEK_DATA }, { "hole", SEEK_HOLE },
	};
	int fd = open(argv[2], O_RDONLY);
	off_t at;

	if (fd < 0)
		return fail("open");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(argv[3], names[i].name))
			continue;
		at = lseek(fd, strtoll(argv[4], NULL, 0), names[i].whence);
		if (at < 0)
			return fail("lseek");
		printf("%lld\n", (long long)at);
		return 0;
	}
	fprintf(stderr, "rawio: unknown whence %s\n", argv[3]);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "write"))
		return do_write(argc, argv);
	if (argc >= 5 && !strcmp(argv[1], "read"))
		return do_read(argc, argv);
	if (argc >= 5 && !strcmp(argv[1], "seek"))
		return do_seek(argv);
	fprintf(stderr, "usage: rawio write PATH OFFSET [append|trunc] | read PATH OFFSET COUNT..."
			" | seek PATH WHENCE OFFSET\n");
	return 2;
}
