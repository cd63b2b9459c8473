/*
 * spawnfloor.c: the floor for running one command per job, with nothing
 * else: posix_spawn `cat` with a pipe on its stdin and one on its stdout, so
 * many at a time, write a small payload in, read its output to the end, reap
 * it.  No queue, no files, no shell.  Built by make bench; not installed.
 *
 *   spawnfloor N J FILE
 *	run N cats, J at a time, each fed the contents of FILE (at most
 *	64 KiB, so one write fills the pipe); print "<jobs> <seconds>".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAXJ	64
#define MAXIN	65536

struct slot {
	pid_t	 pid;
	int	 out;		/* read end of the command's stdout; -1 idle */
	size_t	 got;
};

static char	 input[MAXIN];
static size_t	 inlen;

/* Print a message and exit 1. */
static void
die(const char *what, int e)
{
	fprintf(stderr, "spawnfloor: %s: %s\n", what, strerror(e));
	exit(1);
}

/* Monotonic seconds. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Start one cat in s: pipes both ways, payload written, stdin closed. */
static void
slot_start(struct slot *s)
{
	static char cat[] = "cat";
	char *argv[] = { cat, NULL };
	posix_spawn_file_actions_t fa;
	int in[2], out[2], e;
	ssize_t w;
	size_t off = 0;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		die("pipe2", errno);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if ((e = posix_spawnp(&s->pid, cat, &fa, NULL, argv, environ)) != 0)
		die("posix_spawnp cat", e);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	while (off < inlen) {
		w = write(in[1], input + off, inlen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			die("write to cat", errno);
		off += w;
	}
	close(in[1]);
	s->out = out[0];
	s->got = 0;
}

/* Read what cat wrote; at EOF reap it and mark the slot idle.  1 when done. */
static int
slot_read(struct slot *s)
{
	char buf[MAXIN];
	ssize_t n;
	int st;

	n = read(s->out, buf, sizeof buf);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n < 0)
		die("read from cat", errno);
	if (n > 0) {
		s->got += n;
		return 0;
	}
	close(s->out);
	s->out = -1;
	while (waitpid(s->pid, &st, 0) == -1)
		if (errno != EINTR)
			die("waitpid", errno);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || s->got != inlen) {
		fprintf(stderr, "spawnfloor: cat failed or lost bytes\n");
		exit(1);
	}
	return 1;
}

/* Run N cats, J at a time. */
int
main(int argc, char **argv)
{
	struct slot slots[MAXJ];
	struct pollfd pfd[MAXJ];
	long n, started = 0, done = 0;
	int j, i, k, fd;
	ssize_t r;
	double t0;

	if (argc != 4 || (n = atol(argv[1])) < 1 || (j = atoi(argv[2])) < 1 || j > MAXJ) {
		fprintf(stderr, "usage: spawnfloor N J FILE (1 <= J <= %d)\n", MAXJ);
		return 2;
	}
	if ((fd = open(argv[3], O_RDONLY | O_CLOEXEC)) == -1)
		die(argv[3], errno);
	while ((r = read(fd, input + inlen, sizeof input - inlen)) > 0)
		inlen += r;
	if (r < 0)
		die(argv[3], errno);
	close(fd);
	signal(SIGPIPE, SIG_IGN);
	t0 = now();
	for (i = 0; i < j; i++) {
		slots[i].out = -1;
		if (started < n) {
			slot_start(&slots[i]);
			started++;
		}
	}
	while (done < n) {
		for (i = k = 0; i < j; i++)
			if (slots[i].out != -1) {
				pfd[k].fd = slots[i].out;
				pfd[k].events = POLLIN;
				k++;
			}
		if (poll(pfd, k, 60000) <= 0)
			die("poll", errno ? errno : ETIMEDOUT);
		for (i = k = 0; i < j; i++) {
			if (slots[i].out == -1)
				continue;
			if (pfd[k++].revents == 0)
				continue;
			if (slot_read(&slots[i])) {
				done++;
				if (started < n) {
					slot_start(&slots[i]);
					started++;
				}
			}
		}
	}
	printf("%ld %.6f\n", done, now() - t0);
	return 0;
}
