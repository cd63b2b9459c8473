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
 *   takeput jq HOST PORT WINDOW
 *	the same with up to WINDOW jobs taken at once: WINDOW TAKE wait=0
 *	first, then for every JOB its PUT and a new TAKE wait=0 in one write,
 *	without waiting for the PUT's OK; the replies come in request order.
 *	A TAKE answered "NOJOB timeout" (nothing free now: the others are
 *	ours) is not sent again until every reply is in; then a plain TAKE,
 *	which waits (a TAKE that waits holds back the requests behind it, so
 *	only one such is ever in flight).  WINDOW 1 is the mode above but for
 *	the wait=0.
 *
 *   takeput beanstalk HOST PORT N SIZE
 *	put N jobs of SIZE bytes, then reserve + delete all N (two round trips
 *	per job).  Prints "<put-seconds> <take-seconds>".
 *
 *   takeput bsput HOST PORT N SIZE
 *	put N jobs of SIZE bytes, one at a time.  Prints "<jobs> <seconds>".
 *
 *   takeput add HOST PORT N SIZE WINDOW
 *	HELLO (jq-serve --no-auth), then ADD N jobs of SIZE bytes named a1,
 *	a2, ..., at most WINDOW unanswered at a time (1: strictly one at a
 *	time, like bsput), then SHUTDOWN.  Prints "<jobs> <seconds>" (seconds
 *	from the first ADD to the last OK).
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

/* Print a message and exit 1. */
static void die(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
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

/* Monotonic seconds. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Connect to host:port with TCP_NODELAY and a 60 s read timeout. */
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

/* Read more bytes into the buffer; die on EOF, error or timeout. */
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

/* Write all n bytes. */
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

/* CRC-32C (Castagnoli, reflected), a bit at a time: the payload is fixed. */
static unsigned
crc32c(const char *p, size_t n)
{
	unsigned c = 0xffffffffU;
	int k;

	while (n--) {
		c ^= (unsigned char)*p++;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78U : c >> 1;
	}
	return ~c;
}

/* Read the greeting and say HELLO 2 (the server runs with --no-auth). */
static void
jq_hello(struct rd *r)
{
	char *l = line(r);

	if (strncmp(l, "JQ ", 3) != 0)
		die("bad greeting: %s", l);
	send_all(r->fd, "HELLO 2 name=takeput\n", 21);
	l = line(r);
	if (strncmp(l, "OK", 2) != 0)
		die("HELLO refused: %s", l);
}

/* Take every job and put its payload back as the result, one round trip each. */
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
	jq_hello(r);
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

/* Read a job's payload (after its JOB line) into data; its END line
 * (LF included) into end.  Returns its size. */
static size_t
jq_job_data(struct rd *r, char *data, char *end, size_t endsz)
{
	unsigned long long n, total;
	size_t have = 0;
	char *l;

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
			snprintf(end, endsz, "%s\n", l);
			return have;
		} else
			die("bad frame line: %s", l);
	}
}

/* Keep up to window jobs taken; PUT each one's payload back, pipelined. */
static int
run_jq_window(const char *host, const char *port, long window)
{
	struct rd *r = calloc(1, sizeof *r);
	char *out = malloc(MAXJOB + 4096), *data = malloc(MAXJOB);
	char *kind, id[64], token[33], end[128], *l, *t;
	static const char take[] = "TAKE hold=conn wait=0\n";
	unsigned long long jobs = 0;
	long head = 0, tail = 0, cap, i;
	size_t have, o;
	int finished = 0;
	double t0;

	if (r == NULL || out == NULL || data == NULL || window < 1 ||
	    window > 1024)
		die("bad window");
	cap = 2 * window + 2;		/* requests in flight: T or P */
	if ((kind = malloc(cap)) == NULL)
		die("out of memory");
	r->fd = dial(host, port);
	jq_hello(r);
	t0 = now();
	o = 0;
	for (i = 0; i < window; i++) {
		memcpy(out + o, take, sizeof take - 1);
		o += sizeof take - 1;
		kind[tail++ % cap] = 'T';
	}
	send_all(r->fd, out, o);
	for (;;) {
		if (head == tail) {
			if (finished)
				break;
			send_all(r->fd, "TAKE hold=conn\n", 15);
			kind[tail++ % cap] = 'T';
		}
		l = line(r);
		if (kind[head++ % cap] == 'P') {
			if (strncmp(l, "OK", 2) != 0)
				die("PUT refused: %s", l);
			jobs++;
			continue;
		}
		if (strncmp(l, "NOJOB finished", 14) == 0) {
			finished = 1;
			continue;
		}
		if (strncmp(l, "NOJOB", 5) == 0)
			continue;
		if (sscanf(l, "JOB %63s", id) != 1)
			die("unexpected reply to TAKE: %s", l);
		if ((t = strstr(l, " token=")) == NULL ||
		    sscanf(t, " token=%32[0-9a-f]", token) != 1)
			die("no token= in JOB line: %s", l);
		have = jq_job_data(r, data, end, sizeof end);
		o = snprintf(out, 4096, "PUT %s token=%s\n", id, token);
		if (have > 0) {
			o += snprintf(out + o, 64, "DATA %zu\n", have);
			memcpy(out + o, data, have);
			o += have;
		}
		o += snprintf(out + o, 256, "%s", end);
		kind[tail++ % cap] = 'P';
		if (!finished) {
			memcpy(out + o, take, sizeof take - 1);
			o += sizeof take - 1;
			kind[tail++ % cap] = 'T';
		}
		send_all(r->fd, out, o);
	}
	printf("%llu %.6f\n", jobs, now() - t0);
	return 0;
}

/* put njobs jobs, then reserve + delete them all. */
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

/* ADD njobs jobs of size bytes, window unanswered at a time; SHUTDOWN. */
static int
run_add(const char *host, const char *port, long njobs, long size, long window)
{
	struct rd *r = calloc(1, sizeof *r);
	char *data, *req, *l;
	long sent = 0, done = 0;
	size_t o;
	unsigned crc;
	double t0;

	if (r == NULL || size < 0 || size > MAXJOB || njobs < 1 || window < 1)
		die("bad arguments");
	data = malloc(size + 1);
	req = malloc(size + 256);
	if (data == NULL || req == NULL)
		die("out of memory");
	memset(data, 'x', size);
	crc = crc32c(data, size);
	r->fd = dial(host, port);
	jq_hello(r);
	t0 = now();
	while (done < njobs) {
		while (sent < njobs && sent - done < window) {
			o = snprintf(req, 256, "ADD name=a%ld size=%ld\n", sent + 1, size);
			if (size > 0) {
				o += snprintf(req + o, 64, "DATA %ld\n", size);
				memcpy(req + o, data, size);
				o += size;
			}
			o += snprintf(req + o, 64, "END %ld %08x\n", size, crc);
			send_all(r->fd, req, o);
			sent++;
		}
		l = line(r);
		if (strncmp(l, "OK ", 3) != 0)
			die("ADD a%ld refused: %s", done + 1, l);
		done++;
	}
	t0 = now() - t0;
	send_all(r->fd, "SHUTDOWN\n", 9);
	l = line(r);
	if (strncmp(l, "OK", 2) != 0)
		die("SHUTDOWN refused: %s", l);
	printf("%ld %.6f\n", done, t0);
	return 0;
}

/* put njobs jobs of size bytes into beanstalkd, one round trip each. */
static int
run_bsput(const char *host, const char *port, long njobs, long size)
{
	struct rd *r = calloc(1, sizeof *r);
	char *payload, *l;
	long i;
	size_t o;
	double t0;

	if (r == NULL || size < 0 || size > MAXJOB || njobs < 1)
		die("bad arguments");
	if ((payload = malloc(size + 256)) == NULL)
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
	printf("%ld %.6f\n", njobs, now() - t0);
	return 0;
}

/* Dispatch on the mode word. */
int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "jq") == 0)
		return run_jq(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "jq") == 0)
		return run_jq_window(argv[2], argv[3], atol(argv[4]));
	if (argc == 6 && strcmp(argv[1], "beanstalk") == 0)
		return run_beanstalk(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (argc == 6 && strcmp(argv[1], "bsput") == 0)
		return run_bsput(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (argc == 7 && strcmp(argv[1], "add") == 0)
		return run_add(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6]));
	fprintf(stderr, "usage: takeput jq HOST PORT [WINDOW]\n"
	    "       takeput beanstalk HOST PORT NJOBS SIZE\n"
	    "       takeput bsput HOST PORT NJOBS SIZE\n"
	    "       takeput add HOST PORT NJOBS SIZE WINDOW\n");
	return 2;
}
