// SPDX-License-Identifier: GPL-2.0
/*
 * evread DEVICE COUNT: reads an evdev node until COUNT key events (press or release) have
 * come, printing "name=NAME" once it is open and then "CODE VALUE" for each of them. Repeats
 * of a held key (value 2, the input core's autorepeat) are counted apart: "repeats=N" at the
 * end. Gives up after 120 s.
 */
#include <fcntl.h>
#include <linux/input.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct input_event ev;
	char name[64] = "";
	int fd, want, seen = 0, repeats = 0;

	if (argc != 3)
		return 2;
	want = atoi(argv[2]);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0) {
		perror("EVIOCGNAME");
		return 1;
	}
	printf("name=%s\n", name);
	fflush(stdout);
	alarm(120);
	while (seen < want) {
		ssize_t n = read(fd, &ev, sizeof(ev));

		if (n != sizeof(ev)) {
			perror("read");
			return 1;
		}
		if (ev.type != EV_KEY)
			continue;
		if (ev.value == 2) {
			repeats++;
			continue;
		}
		printf("%u %d\n", ev.code, ev.value);
		seen++;
	}
	printf("repeats=%d\n", repeats);
	return 0;
}
