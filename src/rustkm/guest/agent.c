// SPDX-License-Identifier: GPL-2.0
/*
 * rustkm-agent: runs the host's commands in the guest and sends back exactly what they did.
 * Built static with the toolchain's gcc; the host side is rustkm/agent.py.
 *
 * Frames, both ways (integers big-endian):
 *
 *     "RKM1"  type:1  nonce:8  length:4  payload:length  crc32:4 (of type..payload)
 *
 * Host to guest:
 *     'R' run    payload = timeout-seconds:4 script        (sh -c script, in its own session)
 *     'P' put    payload = offset:8 mode:4 pathlen:2 path data   (offset 0 creates/truncates)
 *     'G' get    payload = path
 *     'S' seed   payload = host-realtime-ns:8 entropy   (a restored snapshot becomes its own:
 *                the entropy is credited to the kernel's pool, the CRNG reseeded, the clock set)
 * Guest to host, each carrying the request's nonce:
 *     'O' / 'E'  a piece of stdout / stderr, as it comes
 *     'X' done   payload = status:4 flags:4 stdout-bytes:8 stderr-bytes:8 note
 *                flags: 1 timed out (everything the command started was killed),
 *                       2 stuck (some of it is in D state and survived SIGKILL; note names it)
 *     'F' failed payload = message: the agent could not run or watch the request. Never a
 *                command's result; the host raises.
 *     'Y' ready  payload = "rustkm-agent 1", nonce = this agent's random boot nonce
 *
 * Why it cannot lie: the port is opened O_CLOEXEC and no command inherits it, so nothing a
 * command or a job it left behind writes reaches the host; every reply carries the request's
 * nonce, a length and a CRC; output goes through pipes, not files a command could fill or
 * delete. Each command runs under a keeper process, a child subreaper in a new session:
 * whatever the command starts, setsid escapes included, stays below the keeper, so a timeout
 * can freeze and kill all of it (there are no cgroups in the guest kernels).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "RKM1"
#define HEADER 17		/* magic, type, nonce, length */
#define MAX_REQUEST (256u << 20)
#define CHUNK 65536
#define FLAG_TIMEOUT 1u
#define FLAG_STUCK 2u
#define MAX_PIDS 4096

static int port = -1;
static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static void write_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(port, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);	/* the port is gone: init restarts us and the host sees it */
		p += n;
		len -= (size_t)n;
	}
}

static void send_frame(char type, const unsigned char *nonce, const void *a, size_t alen,
		       const void *b, size_t blen)
{
	unsigned char head[HEADER], tail[4];
	uint32_t crc;

	memcpy(head, MAGIC, 4);
	head[4] = (unsigned char)type;
	memcpy(head + 5, nonce, 8);
	put_be(head + 13, alen + blen, 4);
	crc = crc32_update(0, head + 4, HEADER - 4);
	crc = crc32_update(crc, a, alen);
	crc = crc32_update(crc, b, blen);
	put_be(tail, crc, 4);
	write_all(head, HEADER);
	if (alen)
		write_all(a, alen);
	if (blen)
		write_all(b, blen);
	write_all(tail, 4);
}

static void send_failure(const unsigned char *nonce, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	send_frame('F', nonce, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, NULL, 0);
}

static void send_done(const unsigned char *nonce, int status, uint32_t flags, uint64_t out,
		      uint64_t err, const char *note)
{
	unsigned char p[24];

	put_be(p, (uint32_t)status, 4);
	put_be(p + 4, flags, 4);
	put_be(p + 8, out, 8);
	put_be(p + 16, err, 8);
	send_frame('X', nonce, p, sizeof(p), note, strlen(note));
}

static int read_exact(void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(port, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Drop input until the line has been quiet for a moment: the rest of a damaged request. */
static void discard_input(void)
{
	struct pollfd p = { .fd = port, .events = POLLIN };
	char buf[4096];

	while (poll(&p, 1, 200) > 0 && read(port, buf, sizeof(buf)) > 0)
		;
}

/* -- processes ----------------------------------------------------------------------------- */

static int proc_stat(pid_t pid, pid_t *ppid, char *state)
{
	char path[64], buf[512], *close_paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	close_paren = strrchr(buf, ')');	/* comm may hold spaces and parentheses */
	if (!close_paren || sscanf(close_paren + 2, "%c %d", state, ppid) != 2)
		return -1;
	return 0;
}

/* Every process below `root` (not root itself); returns how many went into pids. */
static int descendants(pid_t root, pid_t *pids, int max)
{
	static pid_t all[MAX_PIDS], parent[MAX_PIDS];
	int count = 0, found = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir)
		return 0;
	while ((d = readdir(dir)) && count < MAX_PIDS) {
		pid_t pid = (pid_t)atoi(d->d_name);
		char state;

		if (pid > 0 && proc_stat(pid, &parent[count], &state) == 0)
			all[count++] = pid;
	}
	closedir(dir);
	/* Grow the set from root until nothing new joins (the table is small). */
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < count; i++) {
			int known = 0, under = parent[i] == root;

			for (int j = 0; j < found && !(known && under); j++) {
				known |= pids[j] == all[i];
				under |= pids[j] == parent[i];
			}
			if (under && !known && found < max) {
				pids[found++] = all[i];
				changed = 1;
			}
		}
	}
	return found;
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

/*
 * End everything below the keeper: stop each process first so that none can fork while we
 * look, then kill them all. With `note`, wait for the keeper to reap them and write the ones
 * that survive SIGKILL (D state) into it; returns how many.
 */
static int kill_below(pid_t keeper, char *note, size_t size)
{
	static pid_t pids[MAX_PIDS];
	int n = 0, stuck = 0;
	size_t used = 0;

	for (int round = 0; round < 20; round++) {
		int before = n;

		n = descendants(keeper, pids, MAX_PIDS);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGSTOP);
		if (n == before && round > 0)
			break;
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	if (!note)
		return 0;
	for (int wait = 0; wait < 40; wait++) {	/* the keeper reaps them */
		n = descendants(keeper, pids, MAX_PIDS);
		if (!n)
			return 0;
		sleep_ms(50);
	}
	for (int i = 0; i < n; i++) {
		pid_t ppid;
		char state;

		if (proc_stat(pids[i], &ppid, &state) == 0 && state == 'D') {
			int w = snprintf(note + used, size - used, "%spid %d in D state",
					 stuck ? ", " : "", pids[i]);

			if (w > 0 && (size_t)w < size - used)
				used += (size_t)w;
			stuck++;
		}
	}
	return stuck;
}

/* What a keeper writes on the status pipe besides a status: a failure and its errno. */
#define STATUS_NO_FORK 0xffffff00u
#define STATUS_NO_EXEC 0xfffffe00u

static void write_word(int fd, uint32_t word)
{
	unsigned char buf[4];

	put_be(buf, word, 4);
	(void)!write(fd, buf, 4);
}

/*
 * The keeper: a new session and a child subreaper, so every process the command starts stays
 * below it. Sends the command's status (as a shell reports it) once the shell exits, then reaps
 * what the command left behind until nothing is left.
 */
static void keeper(const char *script, int out, int err, int status_pipe)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t child;
	int ws;

	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	child = fork();
	if (child == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
			write_word(status_pipe, STATUS_NO_EXEC | (errno & 0xff));
			_exit(126);
		}
		if (chdir("/root"))
			(void)!chdir("/");
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		write_word(status_pipe, STATUS_NO_EXEC | (errno & 0xff));
		_exit(127);
	}
	close(out);
	close(err);
	if (devnull >= 0)
		close(devnull);
	if (child < 0) {
		write_word(status_pipe, STATUS_NO_FORK | (errno & 0xff));
		_exit(1);
	}
	for (;;) {
		pid_t pid = wait(&ws);

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		if (pid == child) {
			write_word(status_pipe, WIFEXITED(ws) ? (uint32_t)WEXITSTATUS(ws)
							   : 128u + (uint32_t)WTERMSIG(ws));
			close(status_pipe);
		}
	}
	_exit(0);
}

/* Pipes whose command has ended but whose background jobs still hold them: drained, dropped. */
static int leftover[256];
static int leftovers;

static void keep_draining(int fd)
{
	if (leftovers < (int)(sizeof(leftover) / sizeof(leftover[0])))
		leftover[leftovers++] = fd;
	else
		close(fd);
}

static void drain_leftovers(void)
{
	char buf[4096];

	for (int i = 0; i < leftovers; i++) {
		ssize_t n = read(leftover[i], buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			close(leftover[i]);
			leftover[i--] = leftover[--leftovers];
		}
	}
}

/*
 * Between requests: drain the pipes jobs still write to (so that a job logging to its stdout
 * never stalls on a full pipe) until the host sends something.
 */
static void wait_for_request(void)
{
	for (;;) {
		struct pollfd p[1 + 256];
		int n = 1;

		p[0] = (struct pollfd){ .fd = port, .events = POLLIN };
		for (int i = 0; i < leftovers; i++)
			p[n++] = (struct pollfd){ .fd = leftover[i], .events = POLLIN };
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
			return;
		if (n > 1)
			drain_leftovers();
		if (p[0].revents)
			return;
	}
}

/* Keepers still reaping the jobs their command left running. */
static pid_t keepers[256];
static int nkeepers;

static void reap_orphans(void)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		for (int i = 0; i < nkeepers; i++)
			if (keepers[i] == pid)
				keepers[i--] = keepers[--nkeepers];
}

/*
 * A keeper was killed: its command's processes are now our children. End them, so that the
 * next command starts from a clean guest.
 */
static void kill_orphans(void)
{
	static pid_t children[MAX_PIDS];
	int n;

	reap_orphans();
	n = descendants(getpid(), children, MAX_PIDS);
	for (int i = 0; i < n; i++) {
		pid_t ppid;
		char state;
		int keeper = 0;

		for (int k = 0; k < nkeepers; k++)
			keeper |= keepers[k] == children[i];
		if (keeper || proc_stat(children[i], &ppid, &state) || ppid != getpid())
			continue;
		/* Stopped, it cannot reap what dies below it: kill it too, and reap them all. */
		kill(children[i], SIGSTOP);
		kill_below(children[i], NULL, 0);
		kill(children[i], SIGKILL);
	}
	for (int wait = 0; wait < 10; wait++) {
		sleep_ms(20);
		reap_orphans();
	}
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Forward what is in `fd` as one frame of `type`. Returns 1 when it sent something, 0 at end
 * of file, -1 when nothing is there yet, -2 on a read error (errno set).
 */
static int forward(int fd, char type, const unsigned char *nonce, uint64_t *total)
{
	static char buf[CHUNK];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -1 : -2;
	if (n > 0) {
		send_frame(type, nonce, buf, (size_t)n, NULL, 0);
		*total += (uint64_t)n;
	}
	return n > 0;
}

/* Forward all that is in a pipe now; 0 once it reached end of file. */
static int forward_ready(int fd, char type, const unsigned char *nonce, uint64_t *total)
{
	int r;

	while ((r = forward(fd, type, nonce, total)) > 0)
		;
	return r == -1;
}

static void run_command(const unsigned char *nonce, uint32_t timeout, char *script)
{
	int out[2], err[2], st[2];
	uint64_t out_bytes = 0, err_bytes = 0;
	unsigned char word[4];
	size_t got = 0;
	int open_out = 1, open_err = 1, keeper_lost = 0;
	uint32_t flags = 0, status = 0;
	char note[512] = "";
	double deadline = now() + timeout;
	pid_t keeper_pid;

	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(st, O_CLOEXEC)) {
		send_failure(nonce, "the agent could not make pipes: %s", strerror(errno));
		return;
	}
	keeper_pid = fork();
	if (keeper_pid == 0) {
		close(out[0]);
		close(err[0]);
		close(st[0]);
		close(port);
		for (int i = 0; i < leftovers; i++)
			close(leftover[i]);
		keeper(script, out[1], err[1], st[1]);
	}
	close(out[1]);
	close(err[1]);
	close(st[1]);
	if (keeper_pid < 0) {
		send_failure(nonce, "the agent could not fork: %s", strerror(errno));
		close(out[0]);
		close(err[0]);
		close(st[0]);
		return;
	}
	if (nkeepers < (int)(sizeof(keepers) / sizeof(keepers[0])))
		keepers[nkeepers++] = keeper_pid;
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	while (got < 4) {
		struct pollfd p[3] = {
			{ .fd = open_out ? out[0] : -1, .events = POLLIN },
			{ .fd = open_err ? err[0] : -1, .events = POLLIN },
			{ .fd = st[0], .events = POLLIN },
		};
		double left = deadline - now();
		ssize_t n;

		if (left <= 0) {
			if (flags & FLAG_TIMEOUT) {
				snprintf(note, sizeof(note), "the shell did not exit after SIGKILL");
				flags |= FLAG_STUCK;
				break;
			}
			flags |= FLAG_TIMEOUT;
			if (kill_below(keeper_pid, note, sizeof(note))) {
				flags |= FLAG_STUCK;
				break;	/* the shell itself may never exit */
			}
			deadline = now() + 5;
			continue;
		}
		drain_leftovers();
		reap_orphans();
		if (poll(p, 3, left > 0.2 ? 200 : (int)(left * 1000) + 1) < 0 && errno != EINTR) {
			send_failure(nonce, "the agent's poll failed: %s", strerror(errno));
			break;
		}
		if (p[0].revents && forward(out[0], 'O', nonce, &out_bytes) == 0)
			open_out = 0;
		if (p[1].revents && forward(err[0], 'E', nonce, &err_bytes) == 0)
			open_err = 0;
		if (!p[2].revents)
			continue;
		n = read(st[0], word + got, 4 - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0) {
			keeper_lost = 1;
			break;
		}
	}
	close(st[0]);
	status = (uint32_t)get_be(word, 4);
	/* The shell has exited: all it wrote is in the pipes now. */
	if (open_out)
		open_out = forward_ready(out[0], 'O', nonce, &out_bytes);
	if (open_err)
		open_err = forward_ready(err[0], 'E', nonce, &err_bytes);
	/* Background jobs may still hold the pipes: keep them drained, never wait for them. */
	if (open_out)
		keep_draining(out[0]);
	else
		close(out[0]);
	if (open_err)
		keep_draining(err[0]);
	else
		close(err[0]);
	if (keeper_lost) {
		/*
		 * The keeper closed the pipe on its way out, before the kernel handed its children
		 * to us: reap it first, then they are ours to end.
		 */
		waitpid(keeper_pid, NULL, 0);
		kill_orphans();
		send_failure(nonce, "the command's keeper (pid %d, the parent of its shell) was "
			     "killed before the command finished, so its status is unknown; what it "
			     "started was killed", keeper_pid);
	} else if (flags & FLAG_STUCK) {
		send_done(nonce, -1, flags, out_bytes, err_bytes, note);
	} else if (got < 4) {
		return;	/* a failure was sent */
	} else if ((status & 0xffffff00u) == STATUS_NO_FORK) {
		send_failure(nonce, "the agent could not fork the command: %s",
			     strerror((int)(status & 0xff)));
	} else if ((status & 0xffffff00u) == STATUS_NO_EXEC) {
		send_failure(nonce, "the agent could not start /bin/sh for the command: %s",
			     strerror((int)(status & 0xff)));
	} else {
		send_done(nonce, (int)status, flags, out_bytes, err_bytes, note);
	}
}

/* -- files --------------------------------------------------------------------------------- */

/* A file request that failed: the reason as stderr, status 1 (as cat or tee would). */
static void send_file_error(const unsigned char *nonce, const char *path, int err, uint64_t out)
{
	char msg[4400];
	int n = snprintf(msg, sizeof(msg), "%s: %s\n", path, strerror(err));

	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	send_frame('E', nonce, msg, (size_t)n, NULL, 0);
	send_done(nonce, 1, 0, out, (uint64_t)n, "");
}

/* mkdir -p of the folder holding `path` (as the initramfs would have it). */
static void make_parents(const char *path)
{
	char copy[4097];

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *slash = strchr(copy + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		mkdir(copy, 0755);
		*slash = '/';
	}
}

static void put_file(const unsigned char *nonce, unsigned char *p, uint32_t len)
{
	uint64_t offset;
	uint32_t mode;
	size_t pathlen;
	char path[4097];
	int fd;

	if (len < 14 || (pathlen = get_be(p + 12, 2)) == 0 || pathlen > 4096 || 14 + pathlen > len) {
		send_failure(nonce, "a malformed put request");
		return;
	}
	offset = get_be(p, 8);
	mode = (uint32_t)get_be(p + 8, 4);
	memcpy(path, p + 14, pathlen);
	path[pathlen] = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (offset ? 0 : O_TRUNC), mode & 07777);
	if (fd < 0 && errno == ENOENT) {
		make_parents(path);
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (offset ? 0 : O_TRUNC), mode & 07777);
	}
	if (fd >= 0 && offset == 0)
		fchmod(fd, mode & 07777);
	for (size_t done = 14 + pathlen; fd >= 0 && done < len;) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)(offset + done - 14 - pathlen));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;

			close(fd);
			fd = -1;
			errno = e;
			break;
		}
		done += (size_t)n;
	}
	if (fd < 0 || close(fd)) {
		send_file_error(nonce, path, errno, 0);
		return;
	}
	send_done(nonce, 0, 0, 0, 0, "");
}

static void get_file(const unsigned char *nonce, const char *path)
{
	uint64_t out = 0;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		fd = -1;
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;	/* a device may never end */
	}
	if (fd >= 0) {
		int r;

		while ((r = forward(fd, 'O', nonce, &out)) > 0)
			;
		if (r < 0) {
			int e = errno;

			close(fd);
			fd = -1;
			errno = e;
		}
	}
	if (fd < 0) {
		send_file_error(nonce, path, errno, out);
		return;
	}
	close(fd);
	send_done(nonce, 0, 0, out, 0, "");
}

/* -- a restored guest becomes its own ------------------------------------------------------- */

static void seed(const unsigned char *nonce, const unsigned char *p, uint32_t len)
{
	struct {
		struct rand_pool_info info;
		unsigned char bytes[512];
	} pool;
	struct timespec at;
	uint64_t ns;
	int fd;

	if (len < 8 + 16 || len - 8 > sizeof(pool.bytes)) {
		send_failure(nonce, "a malformed seed request (%u bytes)", len);
		return;
	}
	ns = get_be(p, 8);
	pool.info.entropy_count = (int)(len - 8) * 8;
	pool.info.buf_size = (int)(len - 8);
	memcpy(pool.bytes, p + 8, len - 8);
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &pool.info) || ioctl(fd, RNDRESEEDCRNG)) {
		send_failure(nonce, "the agent could not reseed the kernel's RNG: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	at.tv_sec = (time_t)(ns / 1000000000u);
	at.tv_nsec = (long)(ns % 1000000000u);
	if (clock_settime(CLOCK_REALTIME, &at)) {
		send_failure(nonce, "the agent could not set the clock: %s", strerror(errno));
		return;
	}
	send_done(nonce, 0, 0, 0, 0, "");
}

/* -- requests ------------------------------------------------------------------------------ */

static void serve(void)
{
	unsigned char head[HEADER], tail[4], *nonce = head + 5;
	unsigned char *payload;
	uint32_t len, crc;

	for (;;) {
		wait_for_request();
		if (read_exact(head, 4))
			return;
		while (memcmp(head, MAGIC, 4)) {	/* resynchronise on the magic */
			memmove(head, head + 1, 3);
			if (read_exact(head + 3, 1))
				return;
		}
		if (read_exact(head + 4, HEADER - 4))
			return;
		len = (uint32_t)get_be(head + 13, 4);
		if (len > MAX_REQUEST) {
			send_failure(nonce, "a request of %u bytes (at most %u)", len, MAX_REQUEST);
			discard_input();
			continue;
		}
		payload = malloc(len + 1);
		if (!payload) {
			send_failure(nonce, "the agent could not allocate %u bytes for a request", len);
			discard_input();
			continue;
		}
		if (read_exact(payload, len) || read_exact(tail, 4))
			return;
		payload[len] = 0;
		crc = crc32_update(crc32_update(0, head + 4, HEADER - 4), payload, len);
		if (crc != (uint32_t)get_be(tail, 4)) {
			send_failure(nonce, "a request arrived damaged (CRC mismatch, %u bytes)", len);
		} else if (head[4] == 'R' && len >= 4 && !memchr(payload + 4, 0, len - 4)) {
			run_command(nonce, (uint32_t)get_be(payload, 4), (char *)payload + 4);
		} else if (head[4] == 'P') {
			put_file(nonce, payload, len);
		} else if (head[4] == 'S') {
			seed(nonce, payload, len);
		} else if (head[4] == 'G' && len > 0 && !memchr(payload, 0, len)) {
			get_file(nonce, (char *)payload);
		} else {
			send_failure(nonce, "an unknown or malformed request (type %d, %u bytes)",
				     head[4], len);
		}
		free(payload);
		reap_orphans();
	}
}

int main(int argc, char **argv)
{
	unsigned char boot_nonce[8] = { 0 };
	const char *hello = "rustkm-agent 1";
	struct termios t;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	crc_init();
	port = open(argv[1], O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (port < 0) {
		fprintf(stderr, "rustkm-agent: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (tcgetattr(port, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(port, TCSANOW, &t);
	}
	/* Orphans of a killed keeper come to us, and are reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (getrandom(boot_nonce, sizeof(boot_nonce), GRND_NONBLOCK) < 0)
		put_be(boot_nonce, (uint64_t)getpid() << 32 | (uint64_t)time(NULL), 8);
	send_frame('Y', boot_nonce, hello, strlen(hello), NULL, 0);
	serve();
	return 1;
}
