// SPDX-License-Identifier: GPL-2.0
/*
 * ttyrun: runs a command with a new pseudo-terminal as its controlling tty and prints,
 * unchanged, what arrives on the terminal's master side: what the command (or a kernel
 * module it loads) writes to its tty.
 *
 *   ttyrun CMD [ARG...]          the child: setsid(), the pty's slave made its controlling
 *                                tty (TIOCSCTTY) and its standard input; standard output and
 *                                error stay those of ttyrun
 *   ttyrun --hangup CMD [ARG...] the master is closed (the tty hung up) before CMD runs
 *
 * Exits with the command's status. Needs devpts on /dev/pts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "ttyrun: %s: %s\n", what, strerrorname_np(errno));
	return 125;
}

int main(int argc, char **argv)
{
	int hangup = argc > 1 && !strcmp(argv[1], "--hangup");
	char **cmd = argv + 1 + hangup;
	int master, go[2], status;
	char buf[4096], token, *slave_path;
	ssize_t got;
	pid_t child;

	if (!*cmd) {
		fprintf(stderr, "usage: ttyrun [--hangup] CMD [ARG...]\n");
		return 2;
	}
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0)
		return fail("posix_openpt");
	if (grantpt(master) || unlockpt(master))
		return fail("unlockpt");
	slave_path = ptsname(master);
	if (!slave_path)
		return fail("ptsname");
	if (pipe(go))
		return fail("pipe");
	child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0) {
		int slave;

		/* A hangup sends SIGHUP to the session leader: live on without the tty. Ignored
		 * before the tty is ours, since the parent hangs up as soon as it sees that. */
		signal(SIGHUP, SIG_IGN);
		close(master);
		close(go[1]);
		if (setsid() < 0)
			_exit(fail("setsid"));
		slave = open(slave_path, O_RDWR | O_NOCTTY);
		if (slave < 0)
			_exit(fail("open slave"));
		if (ioctl(slave, TIOCSCTTY, 0))
			_exit(fail("TIOCSCTTY"));
		if (dup2(slave, 0) < 0)
			_exit(fail("dup2"));
		if (slave > 0)
			close(slave);
		if (read(go[0], &token, 1) != 1)
			_exit(fail("wait for the parent"));
		close(go[0]);
		execvp(cmd[0], cmd);
		_exit(fail("exec"));
	}
	close(go[0]);
	if (hangup) {
		/* Wait until the child owns the tty, then hang it up by closing the master. */
		for (int tries = 0; tries < 1000 && tcgetsid(master) != child; tries++)
			usleep(10000);
		if (tcgetsid(master) != child)
			return fail("the child never got the tty");
		close(master);
		master = -1;
	}
	if (write(go[1], "", 1) != 1)
		return fail("start the child");
	close(go[1]);
	/* Until the slave side is closed by everyone: then the master reads EIO. */
	while (master >= 0 && ((got = read(master, buf, sizeof(buf))) > 0 ||
			       (got < 0 && errno == EINTR)))
		if (got > 0 && fwrite(buf, 1, (size_t)got, stdout) != (size_t)got)
			return fail("stdout");
	fflush(stdout);
	if (waitpid(child, &status, 0) != child)
		return fail("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
