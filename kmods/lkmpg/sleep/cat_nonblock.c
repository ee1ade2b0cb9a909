// SPDX-License-Identifier: GPL-2.0
/*
 * LKMPG's other/cat_nonblock.c for the guest: print a file, opened with O_NONBLOCK, but exit
 * rather than wait. Exit status 1 with "Open would block" when the open gets EAGAIN.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
	char buffer[4096];
	ssize_t bytes;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_NONBLOCK);
	if (fd == -1) {
		puts(errno == EAGAIN ? "Open would block" : "Open failed");
		fprintf(stderr, "%s\n", strerror(errno));
		return 1;
	}
	do {
		bytes = read(fd, buffer, sizeof(buffer));
		if (bytes == -1) {
			puts(errno == EAGAIN ? "Normally I'd block, but you told me not to"
					     : "Another read error");
			return 1;
		}
		fwrite(buffer, 1, bytes, stdout);
	} while (bytes > 0);
	close(fd);
	return 0;
}
