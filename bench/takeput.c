/*
 * takeput.c: benchmark clients that speak a queue protocol directly, with
 * strictly sequential round trips, so the client is never the bottleneck.
 * Built by bench/run into a temp dir; not part of the installed tools.
 *
 *   takeput jq HOST PORT
 *	HELLO, then TAKE hold=conn; for every job send back its own payload as
 *	the result, pipelined with the next TAKE (PUT id token=T + payload +
 *	TAKE in one write: one round trip per job), until NOJOB.
 *	Prints "<jobs> <seconds>" (seconds from the first TAKE to NOJOB).
 *
 *   takeput beanstalk HOST PORT N SIZE
 *	put N jobs of SIZE bytes, then reserve + delete all N (two round trips
 *	per job).  Prints "<put-seconds> <take-seconds>".
 *
 * Every socket read times out after 60 s, so a stuck server fails the run
 * instead of hanging it.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct rd {
	int	 fd;
	char	 buf[1 << 16];
	size_t	 off, len;
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("takeput: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	struct timeval tv = { .tv_sec = 60 };
	int fd, one = 1, e;

	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		die("%s:%s: %s", host, port, gai_strerror(e));
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, res->ai_addr, res->ai_addrlen) == -1)
		die("connect %s:%s: %s", host, port, strerror(errno));
	freeaddrinfo(res);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void
fill(struct rd *r)
{
	ssize_t n;

	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len == sizeof r->buf)
		die("line too long");
	n = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
	if (n == 0)
		die("connection closed by server");
	if (n < 0)
		die("read: %s", errno == EAGAIN ? "timed out" : strerror(errno));
	r->len += n;
}

/* Next line without its LF (and CR); valid until the next call. */
static char *
line(struct rd *r)
{
	char *p, *s;

	for (;;) {
		p = memchr(r->buf + r->off, '\n', r->len - r->off);
		if (p != NULL)
			break;
		fill(r);
	}
	s = r->buf + r->off;
	r->off = p + 1 - r->buf;
	*p = '\0';
	if (p > s && p[-1] == '\r')
		p[-1] = '\0';
	return s;
}

/* Copy exactly n raw bytes into dst. */
static void
bytes(struct rd *r, char *dst, size_t n)
{
	size_t k;

	while (n > 0) {
		if (r->off == r->len)
			fill(r);
		k = r->len - r->off;
		if (k > n)
			k = n;
		memcpy(dst, r->buf + r->off, k);
		r->off += k;
		dst += k;
		n -= k;
	}
}

static void
send_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += w;
		n -= w;
	}
}

#define MAXJOB	(1 << 20)

static int
run_jq(const char *host, const char *port)
{
	struct rd *r = calloc(1, sizeof *r);
	char *out = malloc(MAXJOB + 4096), *data = malloc(MAXJOB);
	char id[64], token[33], end[128], *l, *t;
	unsigned long long jobs = 0, n, total;
	size_t have, o;
	double t0;

	if (r == NULL || out == NULL || data == NULL)
		die("out of memory");
	r->fd = dial(host, port);
	l = line(r);
	if (strncmp(l, "JQ ", 3) != 0)
		die("bad greeting: %s", l);
	send_all(r->fd, "HELLO 2 name=takeput\n", 21);
	l = line(r);
	if (strncmp(l, "OK", 2) != 0)
		die("HELLO refused: %s", l);
	t0 = now();
	send_all(r->fd, "TAKE hold=conn\n", 15);
	for (;;) {
		l = line(r);
		if (strncmp(l, "NOJOB", 5) == 0)
			break;
		if (sscanf(l, "JOB %63s", id) != 1)
			die("unexpected reply to TAKE: %s", l);
		/* protocol 2: every PUT carries the attempt token of its JOB */
		if ((t = strstr(l, " token=")) == NULL ||
		    sscanf(t, " token=%32[0-9a-f]", token) != 1)
			die("no token= in JOB line: %s", l);
		have = 0;
		for (;;) {
			l = line(r);
			if (sscanf(l, "DATA %llu", &n) == 1) {
				if (have + n > MAXJOB)
					die("job larger than %d bytes", MAXJOB);
				bytes(r, data + have, n);
				have += n;
			} else if (sscanf(l, "END %llu", &total) == 1) {
				if (total != have)
					die("END %llu after %zu bytes", total, have);
				snprintf(end, sizeof end, "%s\n", l);
				break;
			} else
				die("bad frame line: %s", l);
		}
		/* The result is the job's own payload, so its END line fits. */
		o = snprintf(out, 4096, "PUT %s token=%s\n", id, token);
		if (have > 0) {
			o += snprintf(out + o, 64, "DATA %zu\n", have);
			memcpy(out + o, data, have);
			o += have;
		}
		o += snprintf(out + o, 256, "%sTAKE hold=conn\n", end);
		send_all(r->fd, out, o);
		l = line(r);
		if (strncmp(l, "OK", 2) != 0)
			die("PUT %s refused: %s", id, l);
		jobs++;
	}
	printf("%llu %.6f\n", jobs, now() - t0);
	return 0;
}

static int
run_beanstalk(const char *host, const char *port, long njobs, long size)
{
	struct rd *r = calloc(1, sizeof *r);
	char *payload, *buf, *l, cmd[128];
	unsigned long long id;
	long i, sz;
	double t0, tput, ttake;
	size_t o;

	if (r == NULL || size < 0 || size > MAXJOB)
		die("bad size");
	payload = malloc(size + 256);
	buf = malloc(size + 2);
	if (payload == NULL || buf == NULL)
		die("out of memory");
	r->fd = dial(host, port);
	o = snprintf(payload, 128, "put 0 0 120 %ld\r\n", size);
	memset(payload + o, 'x', size);
	o += size;
	memcpy(payload + o, "\r\n", 2);
	o += 2;

	t0 = now();
	for (i = 0; i < njobs; i++) {
		send_all(r->fd, payload, o);
		l = line(r);
		if (strncmp(l, "INSERTED ", 9) != 0)
			die("put: %s", l);
	}
	tput = now() - t0;

	t0 = now();
	for (i = 0; i < njobs; i++) {
		send_all(r->fd, "reserve-with-timeout 10\r\n", 25);
		l = line(r);
		if (sscanf(l, "RESERVED %llu %ld", &id, &sz) != 2 || sz != size)
			die("reserve: %s", l);
		bytes(r, buf, sz + 2);
		snprintf(cmd, sizeof cmd, "delete %llu\r\n", id);
		send_all(r->fd, cmd, strlen(cmd));
		l = line(r);
		if (strcmp(l, "DELETED") != 0)
			die("delete: %s", l);
	}
	ttake = now() - t0;
	printf("%.6f %.6f\n", tput, ttake);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "jq") == 0)
		return run_jq(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "beanstalk") == 0)
		return run_beanstalk(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	fprintf(stderr, "usage: takeput jq HOST PORT\n"
	    "       takeput beanstalk HOST PORT NJOBS SIZE\n");
	return 2;
}
