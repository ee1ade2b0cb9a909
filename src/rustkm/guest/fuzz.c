// SPDX-License-Identifier: GPL-2.0
/*
 * rustkm-fuzz: hammers the files a kernel module created, from several threads at once.
 *
 *   rustkm-fuzz run SEED SECONDS THREADS MODULE.ko|- FILE...
 *       each thread draws operations from its own generator (seeded by SEED and its number)
 *       and runs them until SECONDS have passed; once a second the operation counts go to
 *       /dev/kmsg ("rustkm-fuzz: ops 0=N 1=M"), so that they are on the console when the
 *       kernel dies. With MODULE.ko, insmod/rmmod cycles of it race with the file operations.
 *       Prints "rustkm-fuzz: done ops 0=N ..." and per-operation counts at the end.
 *   rustkm-fuzz plan SEED THREAD COUNT MODULE.ko|- FILE...
 *       prints the first COUNT operations thread THREAD of `run` draws, one per line
 *   rustkm-fuzz exec MODULE.ko|- FILE... < OPS
 *       runs operations (lines as `plan` prints them) one after another, in one thread
 *
 * An operation is "NAME FILE SLOT A B": FILE indexes the file list, SLOT one of eight open
 * descriptors a thread keeps (shared by all threads: one may close a descriptor another is
 * using), A and B its numbers.
 *
 * Coverage guidance: where KCOV traces the module, an operation that reaches module code no
 * thread had reached is kept in its thread's corpus ("rustkm-fuzz: kept THREAD INDEX" on
 * /dev/kmsg), and a quarter of that thread's later operations are kept ones, replayed or
 * mutated. A thread's operations follow from the seed, its number and the indices it kept
 * alone, so `plan` repeats them exactly when given those indices (RUSTKM_FUZZ_KEPT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8
#define MAX_THREADS 16

enum op { OPEN, CLOSE, READ, WRITE, PREAD, PWRITE, SEEK, IOCTL, POLL, MMAP, CYCLE, NOPS };
static const char *const names[NOPS] = { "open", "close", "read", "write", "pread", "pwrite",
					  "seek", "ioctl", "poll", "mmap", "cycle" };
/* Relative weights of the operations. */
static const int weights[NOPS] = { 12, 6, 16, 16, 8, 8, 8, 10, 4, 3, 1 };

struct action {
	int op, file, slot;
	long long a, b;
};

static char **files;
static int nfiles;
static const char *module; /* NULL: no insmod/rmmod cycles */
static int fds[SLOTS] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static volatile long long counts[MAX_THREADS];
static volatile long long per_op[NOPS];
static volatile int stop;
static int finished; /* threads that have returned */
/*
 * Coverage: where the kernel has KCOV (the debug lane, which instruments the modules rustkm
 * builds and nothing else), each thread traces the module code its calls run, and the distinct
 * program counters seen by all threads are counted.
 */
#define KCOV_INIT_TRACE _IOR('c', 1, unsigned long)
#define KCOV_ENABLE _IO('c', 100)
#define KCOV_TRACE_PC 0
#define COVER_WORDS (64 << 10)
#define SEEN_SLOTS (1 << 17)
#define MAX_KEPT 128
static uint64_t seen[SEEN_SLOTS];
static volatile long long covered;
static volatile int coverage_on;

static unsigned long *kcov_start(void)
{
	int fd = open("/sys/kernel/debug/kcov", O_RDWR | O_CLOEXEC);
	unsigned long *area = MAP_FAILED;

	if (fd < 0)
		return NULL;
	if (ioctl(fd, KCOV_INIT_TRACE, (unsigned long)COVER_WORDS) == 0)
		area = mmap(NULL, COVER_WORDS * sizeof(unsigned long), PROT_READ | PROT_WRITE,
			    MAP_SHARED, fd, 0);
	if (area == MAP_FAILED || ioctl(fd, KCOV_ENABLE, KCOV_TRACE_PC)) {
		close(fd);
		return NULL;
	}
	coverage_on = 1;
	return area; /* the descriptor stays open while the thread traces */
}

/* How many of the PCs in `area` no thread had reached before. */
static long cover(const unsigned long *area)
{
	unsigned long n = __atomic_load_n(&area[0], __ATOMIC_RELAXED);
	long fresh = 0;

	if (n > COVER_WORDS - 1)
		n = COVER_WORDS - 1;
	for (unsigned long i = 0; i < n; i++) {
		uint64_t pc = area[i + 1], h = (pc * 0x9E3779B97F4A7C15ULL) >> 47;

		for (int probe = 0; probe < 64; probe++, h = (h + 1) & (SEEN_SLOTS - 1)) {
			uint64_t cur = __atomic_load_n(&seen[h], __ATOMIC_RELAXED);

			if (cur == pc)
				break;
			if (cur == 0 && __atomic_compare_exchange_n(&seen[h], &cur, pc, 0,
								    __ATOMIC_RELAXED,
								    __ATOMIC_RELAXED)) {
				__atomic_add_fetch(&covered, 1, __ATOMIC_RELAXED);
				fresh++;
				break;
			}
			if (cur == pc)
				break;
		}
	}
	return fresh;
}

/* A mapping touched past its end (SIGBUS) or without access (SIGSEGV) is the module's answer,
 * not the fuzzer's death: the touch is undone. */
static __thread sigjmp_buf touched;
static __thread volatile int touching;

static void on_fault(int sig)
{
	if (touching)
		siglongjmp(touched, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint64_t next(uint64_t *s)
{
	/* xorshift64*: small, and the same on every machine. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static const long long sizes[] = { 0, 1, 2, 7, 16, 64, 255, 4095, 4096, 4097, 65536, 1 << 20 };
static const long long offsets[] = { 0, 1, 2, 63, 4095, 4096, 65535, 65536, 1LL << 31,
				     1LL << 40, LLONG_MAX - 1, LLONG_MAX, -1, -4096, LLONG_MIN };

/* The module's own ioctl commands (RUSTKM_FUZZ_IOCTLS, comma-separated), tried half the time. */
#define MAX_KNOWN 512
static uint32_t known[MAX_KNOWN];
static int nknown;

static void take_known(void)
{
	const char *list = getenv("RUSTKM_FUZZ_IOCTLS");
	char *end;

	while (list && *list && nknown < MAX_KNOWN) {
		unsigned long cmd = strtoul(list, &end, 0);

		if (end == list)
			break;
		known[nknown++] = (uint32_t)cmd;
		list = *end == ',' ? end + 1 : end;
	}
}

static long long pick(uint64_t *s, const long long *from, size_t n)
{
	return from[next(s) % n];
}

static void draw_numbers(uint64_t *s, struct action *act);

static struct action draw(uint64_t *s)
{
	struct action act = { 0 };
	int total = 0, roll;

	for (int i = 0; i < NOPS; i++)
		total += weights[i];
	roll = (int)(next(s) % (uint64_t)total);
	for (act.op = 0; act.op < NOPS - 1 && roll >= weights[act.op]; act.op++)
		roll -= weights[act.op];
	act.file = (int)(next(s) % (uint64_t)nfiles);
	act.slot = (int)(next(s) % SLOTS);
	draw_numbers(s, &act);
	return act;
}

/* A and B for the operation act->op. */
static void draw_numbers(uint64_t *s, struct action *act)
{
	switch (act->op) {
	case OPEN: /* access mode and flags */
		act->a = (long long)(next(s) % 3) | ((next(s) & 1) ? O_NONBLOCK : 0) |
			((next(s) % 4 == 0) ? O_APPEND : 0) | ((next(s) % 6 == 0) ? O_TRUNC : 0);
		break;
	case READ:
	case WRITE:
		act->a = pick(s, sizes, sizeof(sizes) / sizeof(sizes[0]));
		act->b = (long long)(next(s) % 6); /* what a write carries */
		break;
	case PREAD:
	case PWRITE:
		act->a = pick(s, sizes, sizeof(sizes) / sizeof(sizes[0]));
		act->b = pick(s, offsets, sizeof(offsets) / sizeof(offsets[0]));
		break;
	case SEEK:
		act->a = pick(s, offsets, sizeof(offsets) / sizeof(offsets[0]));
		act->b = (long long)(next(s) % 6); /* SET CUR END DATA HOLE, and 5: invalid */
		break;
	case IOCTL: /* the module's own commands, one near the common ones, or at random */
		if (nknown && next(s) % 2)
			act->a = (long long)known[next(s) % (uint64_t)nknown];
		else
			act->a = (next(s) & 1) ? (long long)(uint32_t)next(s) :
				(long long)_IOC(next(s) % 4, next(s) % 256, next(s) % 16,
						next(s) % 256);
		act->b = (long long)(next(s) % 4); /* NULL, a bad pointer, a buffer, a number */
		break;
	case POLL:
	case MMAP:
		act->a = (long long)(next(s) % 3);
		break;
	default:
		break;
	}
}

struct corpus {
	struct action kept[MAX_KEPT];
	int n;
};

/* The next operation: a fresh one, or (a quarter of the time, once the thread has kept some)
 * a kept one as it was, on another descriptor, on another file, or with other numbers. */
static struct action next_action(uint64_t *s, const struct corpus *c)
{
	struct action act;

	if (!c->n || next(s) % 4)
		return draw(s);
	act = c->kept[next(s) % (uint64_t)c->n];
	switch (next(s) % 4) {
	case 1:
		act.slot = (int)(next(s) % SLOTS);
		break;
	case 2:
		act.file = (int)(next(s) % (uint64_t)nfiles);
		break;
	case 3:
		draw_numbers(s, &act);
		break;
	default:
		break;
	}
	return act;
}

static int keep(struct corpus *c, const struct action *act)
{
	if (c->n >= MAX_KEPT)
		return 0;
	c->kept[c->n++] = *act;
	return 1;
}

static void fill(char *buf, long long len, long long kind, uint64_t *s)
{
	static const char *const words[] = { "1\n", "0", "-1\n", "y", "hello world\n" };

	for (long long i = 0; i < len; i++) {
		switch (kind) {
		case 0: /* random bytes */
			buf[i] = (char)next(s);
			break;
		case 1: /* digits and signs */
			buf[i] = "0123456789-+ \n"[next(s) % 14];
			break;
		case 5: /* NUL bytes */
			buf[i] = 0;
			break;
		default: /* a short word, repeated */
			buf[i] = words[kind - 2][i % strlen(words[kind - 2])];
		}
	}
}

static void cycle(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* RUSTKM_FUZZ_PARAMS: the module's [fuzz] params, split into words by sh. */
		execl("/bin/sh", "sh", "-c",
		      "rmmod \"$1\" 2>/dev/null; insmod \"$0\" $RUSTKM_FUZZ_PARAMS 2>/dev/null",
		      module, strrchr(module, '/') ? strrchr(module, '/') + 1 : module, NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void perform(const struct action *act, char *buf)
{
	/* What a write carries follows from the action alone, so that a plan replays exactly. */
	uint64_t data = (uint64_t)act->a * 0x9E3779B97F4A7C15ULL ^ (uint64_t)act->b << 17 ^
			(uint64_t)(act->file + 1) << 7 ^ 0x5555;
	uint64_t *s = &data;

	static const int whences[] = { SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE, 77 };
	int fd = fds[act->slot];
	long long len = act->a > (1 << 20) ? (1 << 20) : act->a;

	__atomic_add_fetch(&per_op[act->op], 1, __ATOMIC_RELAXED);
	if (act->op == OPEN) {
		int opened = open(files[act->file], (int)act->a | O_CLOEXEC | O_NOCTTY);
		int old = __atomic_exchange_n(&fds[act->slot], opened, __ATOMIC_SEQ_CST);

		if (old >= 0)
			close(old);
		return;
	}
	if (act->op == CYCLE) {
		if (module)
			cycle();
		return;
	}
	if (fd < 0)
		return;
	switch (act->op) {
	case CLOSE:
		fd = __atomic_exchange_n(&fds[act->slot], -1, __ATOMIC_SEQ_CST);
		if (fd >= 0)
			close(fd);
		break;
	case READ:
		if (read(fd, buf, (size_t)len) < 0)
			break;
		break;
	case WRITE:
		fill(buf, len, act->b, s);
		if (write(fd, buf, (size_t)len) < 0)
			break;
		break;
	case PREAD:
		if (pread(fd, buf, (size_t)len, (off_t)act->b) < 0)
			break;
		break;
	case PWRITE:
		fill(buf, len, 1, s);
		if (pwrite(fd, buf, (size_t)len, (off_t)act->b) < 0)
			break;
		break;
	case SEEK:
		lseek(fd, (off_t)act->a, whences[act->b % 6]);
		break;
	case IOCTL: {
		void *arg[] = { NULL, (void *)16, buf, (void *)(uintptr_t)act->a };

		/* The argument buffer holds random bytes or zeros, chosen by the action. */
		fill(buf, 4096, (act->b / 4) % 2 ? 0 : 5, s);
		ioctl(fd, (unsigned long)(uint32_t)act->a, arg[act->b % 4]);
		break;
	}
	case POLL: {
		struct pollfd p = { fd, act->a == 0 ? POLLIN : act->a == 1 ? POLLOUT : POLLIN | POLLPRI,
				    0 };

		poll(&p, 1, 0);
		break;
	}
	case MMAP: {
		int prot = act->a == 0 ? PROT_READ : act->a == 1 ? PROT_WRITE : PROT_READ | PROT_WRITE;
		volatile char *map = mmap(NULL, 4096, prot, MAP_SHARED, fd, 0);

		if (map != MAP_FAILED) {
			if ((prot & PROT_READ) && !sigsetjmp(touched, 1)) {
				touching = 1;
				(void)map[0];
			}
			touching = 0;
			munmap((void *)map, 4096);
		}
		break;
	}
	default:
		break;
	}
}

static void print_action(FILE *out, const struct action *act)
{
	fprintf(out, "%s %d %d %lld %lld\n", names[act->op], act->file, act->slot, act->a, act->b);
}

static uint64_t seed_of(unsigned long long seed, int thread)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)thread * 0xBF58476D1CE4E5B9ULL + 1;

	return s ? s : 1;
}

static void say_kept(int thread, long long index)
{
	char line[64];
	int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (kmsg < 0)
		return;
	snprintf(line, sizeof(line), "rustkm-fuzz: kept %d %lld\n", thread, index);
	if (write(kmsg, line, strlen(line)) < 0)
		perror("rustkm-fuzz: /dev/kmsg");
	close(kmsg);
}

struct worker {
	int number;
	unsigned long long seed;
};

static void *work(void *arg)
{
	const struct worker *w = arg;
	uint64_t s = seed_of(w->seed, w->number);
	char *buf = malloc((1 << 20) + 1);
	unsigned long *area = kcov_start();
	static struct corpus corpora[MAX_THREADS];
	struct corpus *c = &corpora[w->number];

	if (!buf)
		return NULL;
	while (!stop) {
		struct action act = next_action(&s, c);

		if (area)
			__atomic_store_n(&area[0], 0, __ATOMIC_RELAXED);
		perform(&act, buf);
		if (area && cover(area) > 0 && keep(c, &act))
			say_kept(w->number, counts[w->number]);
		counts[w->number]++;
	}
	free(buf);
	__atomic_add_fetch(&finished, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void report(const char *what, int threads, FILE *out)
{
	char line[512];
	int len = snprintf(line, sizeof(line), "rustkm-fuzz: %s", what);

	for (int i = 0; i < threads && len < (int)sizeof(line) - 32; i++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %d=%lld", i, counts[i]);
	if (coverage_on)
		len += snprintf(line + len, sizeof(line) - (size_t)len, " cov=%lld", covered);
	snprintf(line + len, sizeof(line) - (size_t)len, "\n");
	if (out) {
		fputs(line, out);
		return;
	}
	int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (kmsg >= 0) {
		if (write(kmsg, line, strlen(line)) < 0)
			perror("rustkm-fuzz: /dev/kmsg");
		close(kmsg);
	}
}

static int usage(void)
{
	fputs("usage: rustkm-fuzz run SEED SECONDS THREADS MODULE.ko|- FILE...\n"
	      "       rustkm-fuzz plan SEED THREAD COUNT MODULE.ko|- FILE...\n"
	      "       rustkm-fuzz exec MODULE.ko|- FILE... < OPS\n", stderr);
	return 2;
}

static void take_files(int argc, char **argv, int first)
{
	module = strcmp(argv[first], "-") ? argv[first] : NULL;
	files = argv + first + 1;
	nfiles = argc - first - 1;
}

static int run(int argc, char **argv)
{
	unsigned long long seed = strtoull(argv[2], NULL, 0);
	int seconds = atoi(argv[3]), threads = atoi(argv[4]);
	pthread_t id;
	static struct worker workers[MAX_THREADS];

	if (threads < 1 || threads > MAX_THREADS || seconds < 1)
		return usage();
	take_files(argc, argv, 5);
	for (int i = 0; i < threads; i++) {
		workers[i] = (struct worker){ i, seed };
		if (pthread_create(&id, NULL, work, &workers[i]))
			return 1;
		pthread_detach(id);
	}
	for (int t = 0; t < seconds; t++) {
		sleep(1);
		report("ops", threads, NULL);
	}
	stop = 1;
	/* A thread blocked in a call that never returns is left behind (exit ends it). */
	for (int waited = 0; waited < 50 && __atomic_load_n(&finished, __ATOMIC_SEQ_CST) < threads;
	     waited++)
		usleep(100000);
	report("done ops", threads, stdout);
	for (int i = 0; i < NOPS; i++)
		printf("rustkm-fuzz: %s %lld\n", names[i], per_op[i]);
	if (coverage_on)
		printf("rustkm-fuzz: coverage %lld\n", covered);
	else
		printf("rustkm-fuzz: coverage off (no /sys/kernel/debug/kcov)\n");
	printf("rustkm-fuzz: blocked threads %d\n",
	       threads - __atomic_load_n(&finished, __ATOMIC_SEQ_CST));
	fflush(stdout);
	_exit(0);
}

static int plan(int argc, char **argv)
{
	uint64_t s = seed_of(strtoull(argv[2], NULL, 0), atoi(argv[3]));
	long long count = atoll(argv[4]), kept = -1;
	const char *list = getenv("RUSTKM_FUZZ_KEPT"); /* the thread's kept indices, ascending */
	static struct corpus c;
	char *end;

	take_files(argc, argv, 5);
	for (long long i = 0; i < count; i++) {
		struct action act = next_action(&s, &c);

		print_action(stdout, &act);
		while (kept < i && list && *list) {
			kept = strtoll(list, &end, 10);
			list = end == list ? NULL : *end == ',' ? end + 1 : end;
		}
		if (kept == i)
			keep(&c, &act);
	}
	return 0;
}

static int exec_ops(int argc, char **argv)
{
	char name[16], *buf = malloc((1 << 20) + 1);
	struct action act;
	long long done = 0;

	if (!buf)
		return 1;
	take_files(argc, argv, 2);
	while (scanf("%15s %d %d %lld %lld", name, &act.file, &act.slot, &act.a, &act.b) == 5) {
		for (act.op = 0; act.op < NOPS && strcmp(name, names[act.op]); act.op++)
			;
		if (act.op == NOPS || act.file < 0 || act.file >= nfiles || act.slot < 0 ||
		    act.slot >= SLOTS) {
			fprintf(stderr, "rustkm-fuzz: bad operation line %lld\n", done + 1);
			return 2;
		}
		perform(&act, buf);
		done++;
	}
	printf("rustkm-fuzz: executed %lld\n", done);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction fault = { .sa_handler = on_fault };

	sigaction(SIGBUS, &fault, NULL);
	sigaction(SIGSEGV, &fault, NULL);
	signal(SIGPIPE, SIG_IGN);
	take_known();
	if (argc >= 7 && !strcmp(argv[1], "run"))
		return run(argc, argv);
	if (argc >= 7 && !strcmp(argv[1], "plan"))
		return plan(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "exec"))
		return exec_ops(argc, argv);
	return usage();
}
