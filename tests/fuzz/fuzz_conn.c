/*
 * fuzz_conn.c: libFuzzer harness for jq-serve's connection state machine
 * (src/conn.c) and, through it, the request and frame parsers.
 *
 * An input is the byte stream a client sends on one connection.  The
 * harness runs the real server code in this process: the global server
 * with a small queue of real job files in a temporary directory, its
 * libevent loop and its commit thread.  Each input is played twice over a
 * fresh socketpair adopted with conn_new():
 *   1. all at once, so requests arrive pipelined, and
 *   2. one line at a time, the loop running until the server is quiet
 *      after each line, as an interactive client would.
 * Then the client half-closes, and the loop runs until the server has
 * freed the connection and every result being stored has been settled.
 * The queue is rebuilt before each play, so an input always starts from
 * the same state and a crash replays with the input alone.
 *
 * Besides the sanitizers, two checks: every line the server sends (outside
 * job data) is a known reply no longer than JQ_LINE_MAX, and the queue's
 * counts and waiting list agree with the jobs' states afterwards.
 *
 * Authentication is off (server.cfg.key NULL, as with jq-serve --no-auth).
 * Built with -DFUZZ_AUTH it is on, with a token the fuzzer cannot know and
 * UNIX sockets held to the token (--unix-auth token): that build fuzzes
 * what an unauthenticated peer can reach.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

/* The job at 0-based index i of queue q (its id is i + 1). */
#define JOBAT(q, i)	(*queue_get((q), (uint64_t)(i) + 1))

int	 server_init_loop(char **);		/* src/server.c */
int	 LLVMFuzzerInitialize(int *, char ***);
int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_BIG_JOB	(300U << 10)	/* over JQ_CHUNK: streamed in rounds */
#define FUZZ_QUIET	2		/* loop rounds without activity = quiet */

/* The job list: input name, data (NULL: file missing), result place. */
static const struct fuzz_job {
	const char	*name;
	const char	*data;		/* NULL: no such file; "": empty */
	int		 big;		/* data is FUZZ_BIG_JOB bytes instead */
	int		 no_result_dir;	/* result directory does not exist */
} fuzz_jobs[] = {
	{ "a.wav",	"hello world\n",	0, 0 },
	{ "b c.txt",	"",			0, 0 },
	{ "gone.wav",	NULL,			0, 0 },
	{ "e.wav",	"abc",			0, 1 },
	{ "f%.wav",	"x\ny\n",		0, 0 },
	{ "d.bin",	"",			1, 0 },	/* last: costly */
};
#define FUZZ_NJOBS	(sizeof fuzz_jobs / sizeof fuzz_jobs[0])

static char	*fuzz_dir;
static char	*fuzz_paths[FUZZ_NJOBS], *fuzz_results[FUZZ_NJOBS];
static struct stat fuzz_outdir;		/* as jq-serve checks it at start */
static int	 fuzz_verbose;		/* $FUZZ_VERBOSE: log, and print reply lines */

/* The client side of one conversation. */
struct fuzz_client {
	int		 fd;
	struct event	*ev;
	uint64_t	 received;	/* bytes read from the server */
	int		 eof;		/* the server closed */
	/* the server's stream, checked as it arrives */
	char		 line[JQ_LINE_MAX + 1];
	size_t		 linelen;
	uint64_t	 skip;		/* job data bytes still to come */
};

/* Report a broken expectation and abort, so libFuzzer keeps the input. */
JQ_PRINTF(1, 2) JQ_NORETURN
static void
fuzz_die(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "fuzz_conn: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* Write a file whole, or die. */
static void
fuzz_write_file(const char *path, const char *data, size_t len)
{
	int	 fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    < 0 || util_write_all(fd, data, len) != 0 || close(fd) != 0)
		fuzz_die("%s: %s", path, strerror(errno));
}

/* Remove the temporary directory at exit. */
static void
fuzz_cleanup(void)
{
	char	*cmd;

	if (fuzz_dir == NULL)
		return;
	cmd = xprintf("rm -rf '%s'", fuzz_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_conn: cannot remove %s\n", fuzz_dir);
	free(cmd);
}

/* Make the job files and the result directory. */
static void
fuzz_make_files(void)
{
	const char	*tmp = getenv("TMPDIR");
	char		*in, *out, *big;
	size_t		 i;

	fuzz_dir = xprintf("%s/jq-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL)
		fuzz_die("mkdtemp %s: %s", fuzz_dir, strerror(errno));
	atexit(fuzz_cleanup);
	in = xprintf("%s/in", fuzz_dir);
	out = xprintf("%s/out", fuzz_dir);
	if (mkdir(in, 0700) != 0 || mkdir(out, 0700) != 0 ||
	    stat(out, &fuzz_outdir) != 0)
		fuzz_die("mkdir: %s", strerror(errno));
	big = xmalloc(FUZZ_BIG_JOB);
	for (i = 0; i < FUZZ_BIG_JOB; i++)
		big[i] = (char)(i * 7 + i / 251);
	for (i = 0; i < FUZZ_NJOBS; i++) {
		fuzz_paths[i] = xprintf("%s/%s", in, fuzz_jobs[i].name);
		fuzz_results[i] = fuzz_jobs[i].no_result_dir ?
		    xprintf("%s/nodir/%s.result", fuzz_dir, fuzz_jobs[i].name) :
		    xprintf("%s/%s.result", out, fuzz_jobs[i].name);
		if (fuzz_jobs[i].big)
			fuzz_write_file(fuzz_paths[i], big, FUZZ_BIG_JOB);
		else if (fuzz_jobs[i].data != NULL)
			fuzz_write_file(fuzz_paths[i], fuzz_jobs[i].data,
			    strlen(fuzz_jobs[i].data));
	}
	free(big);
	free(in);
	free(out);
}

/* Start every input from the same queue: all jobs waiting, none leased. */
static void
fuzz_reset_queue(void)
{
	struct queue	*q = &server.queue;
	struct job	*j;
	char		*cause = NULL;
	size_t		 i;

	for (i = 0; i < q->njobs; i++)
		if (JOBAT(q, i).run != NULL && JOBAT(q, i).run->lease_ev != NULL)
			event_free(JOBAT(q, i).run->lease_ev);
	queue_free(q);
	for (i = 0; i < FUZZ_NJOBS; i++) {
		j = queue_add(q, xstrdup(fuzz_paths[i]), xstrdup(fuzz_results[i]));
		/* a missing input stays unpinned: handing it out fails it */
		if (input_pin(j, &cause) != INPUT_OK) {
			free(cause);
			cause = NULL;
		}
		if (!fuzz_jobs[i].no_result_dir) {
			j->rdir_dev = fuzz_outdir.st_dev;
			j->rdir_ino = fuzz_outdir.st_ino;
		}
	}
	server.finishing = 0;
	server.closing = 0;
	drain_free();		/* DRAIN outlives a queue: forget it too */
}

/* Check that the queue's counts and waiting list match its jobs. */
static void
fuzz_check_queue(void)
{
	struct queue	*q = &server.queue;
	struct job	*j;
	size_t		 i, n, k, count[JOB_NSTATES] = { 0 }, nwaiting = 0;

	for (i = 0; i < q->njobs; i++) {
		if (JOBAT(q, i).state >= JOB_NSTATES)
			fuzz_die("job %zu: state %d", i + 1, JOBAT(q, i).state);
		count[JOBAT(q, i).state]++;
		if (JOBAT(q, i).committing)
			fuzz_die("job %zu still committing", i + 1);
	}
	/* every named queue's list of every priority */
	for (n = 0; n < q->nnamed; n++)
		for (k = 0; k < q->named[n]->nlevels; k++)
			TAILQ_FOREACH(j, &q->named[n]->level[k]->jobs,
			    wait_entry) {
				if (j->state != JOB_WAITING)
					fuzz_die("job %llu in a waiting list in "
					    "state %d", (unsigned long long)j->id,
					    j->state);
				if (j->queue_ix != n)
					fuzz_die("job %llu in queue %zu's list",
					    (unsigned long long)j->id, n);
				if (++nwaiting > q->njobs)
					fuzz_die("waiting list loops");
			}
	for (i = 0; i < JOB_NSTATES; i++)
		if (count[i] != q->count[i])
			fuzz_die("state %zu: %zu jobs, count says %zu", i,
			    count[i], q->count[i]);
	if (nwaiting != count[JOB_WAITING])
		fuzz_die("%zu jobs in the waiting list, %zu waiting", nwaiting,
		    count[JOB_WAITING]);
}

/* Whether a result is being made durable (commit.c holds a job). */
static int
fuzz_committing(void)
{
	size_t	 i;

	for (i = 0; i < server.queue.njobs; i++)
		if (JOBAT(&server.queue, i).committing)
			return 1;
	return 0;
}

/* Check one line from the server: a known reply, not too long. */
static void
fuzz_check_line(struct fuzz_client *cl)
{
	static const char *const replies[] = {
		"JQ ", "OK", "ERR ", "JOB ", "DATA ", "END", "ABORT", "NOJOB ",
		"STAT ", "WORKER ", "FAILED ", "QUEUE ", "JOBINFO ", "WAITING ",
		"RESULT ",
	};
	struct proto_frame	 f;
	size_t			 i;

	cl->line[cl->linelen] = '\0';
	if (fuzz_verbose)
		fprintf(stderr, "S: %s\n", cl->line);
	for (i = 0; i < sizeof replies / sizeof replies[0]; i++)
		if (strncmp(cl->line, replies[i], strlen(replies[i])) == 0)
			break;
	if (i == sizeof replies / sizeof replies[0])
		fuzz_die("unknown reply from the server: \"%.80s\"", cl->line);
	if (strncmp(cl->line, "DATA ", 5) == 0) {
		if (proto_parse_frame(cl->line, &f) != 0)
			fuzz_die("bad DATA line: \"%.80s\"", cl->line);
		cl->skip = f.len;
	}
}

/* Follow the server's stream: lines, and the job data after DATA lines. */
static void
fuzz_scan(struct fuzz_client *cl, const char *buf, size_t len)
{
	size_t	 n;

	while (len > 0) {
		if (cl->skip > 0) {
			n = len < cl->skip ? len : (size_t)cl->skip;
			cl->skip -= n;
			buf += n;
			len -= n;
			continue;
		}
		if (*buf == '\n') {
			fuzz_check_line(cl);
			cl->linelen = 0;
		} else if (cl->linelen == JQ_LINE_MAX - 1)
			fuzz_die("reply line longer than %d bytes: \"%.80s\"",
			    JQ_LINE_MAX, cl->line);
		else
			cl->line[cl->linelen++] = *buf;
		buf++;
		len--;
	}
}

/* The client reads (and checks) whatever the server sent. */
static void
fuzz_client_read(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_client	*cl = arg;
	char			 buf[65536];
	ssize_t			 n;

	(void)what;
	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n > 0) {
			cl->received += (uint64_t)n;
			fuzz_scan(cl, buf, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			cl->eof = 1;
			event_del(cl->ev);
		}
		if (n < 0 && errno == EINTR)
			continue;
		return;
	}
}

/* Whether bytes are in flight between the client and the server. */
static int
fuzz_in_flight(const struct fuzz_client *cl)
{
	int	 unread = 0, unsent = 0;

	if (cl->eof)
		return 0;
	if (ioctl(cl->fd, FIONREAD, &unread) != 0)
		unread = 0;
	if (ioctl(cl->fd, SIOCOUTQ, &unsent) != 0)
		unsent = 0;
	return unread > 0 || unsent > 0;
}

/*
 * Run the loop until the server has nothing left to do: no result being
 * stored, nothing in flight on the socket, no event active, the end of a
 * run (if it came) played out, and nothing received, for FUZZ_QUIET rounds
 * in a row.
 */
static void
fuzz_settle(struct fuzz_client *cl)
{
	uint64_t	 before;
	int		 quiet = 0;

	while (quiet < FUZZ_QUIET) {
		if (fuzz_committing()) {
			/* the commit thread wakes the loop through its pipe */
			event_base_loop(server.base, EVLOOP_ONCE);
			quiet = 0;
			continue;
		}
		before = cl->received;
		event_base_loop(server.base, EVLOOP_NONBLOCK);
		if (cl->received == before && !fuzz_in_flight(cl) &&
		    !fuzz_committing() && (!server.finishing || server.closing) &&
		    event_base_get_num_events(server.base,
		    EVENT_BASE_COUNT_ACTIVE) == 0)
			quiet++;
		else
			quiet = 0;
	}
}

/* Send data[0..len) to the server, running the loop while it is full. */
static void
fuzz_send(struct fuzz_client *cl, const uint8_t *data, size_t len)
{
	ssize_t	 n;

	while (len > 0 && !cl->eof) {
		n = send(cl->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			event_base_loop(server.base, EVLOOP_ONCE);
		else
			return;		/* the server closed: the rest is lost */
	}
}

/* Play one conversation: all at once, or line by line. */
static void
fuzz_play(const uint8_t *data, size_t size, int by_line)
{
	static struct fuzz_client client;	/* big: not cleared each time */
	struct fuzz_client	*cl = &client;
	const uint8_t		*lf;
	size_t			 off = 0, len;
	int			 sv[2];

	fuzz_reset_queue();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) != 0)
		fuzz_die("socketpair: %s", strerror(errno));
	if (conn_new(sv[0]) == NULL)
		fuzz_die("conn_new failed");
	cl->received = 0;
	cl->eof = 0;
	cl->linelen = 0;
	cl->skip = 0;
	cl->fd = sv[1];
	cl->ev = event_new(server.base, sv[1], EV_READ | EV_PERSIST,
	    fuzz_client_read, cl);
	event_add(cl->ev, NULL);
	fuzz_settle(cl);		/* the greeting */
	while (off < size && !cl->eof) {
		len = size - off;
		if (by_line && (lf = memchr(data + off, '\n', len)) != NULL)
			len = (size_t)(lf - (data + off)) + 1;
		fuzz_send(cl, data + off, len);
		off += len;
		if (by_line || off == size)
			fuzz_settle(cl);
	}
	shutdown(sv[1], SHUT_WR);
	/* until the connection is gone and the end of a run has played out */
	while (server.nconns > 0 || fuzz_committing() ||
	    (server.finishing && !server.closing))
		event_base_loop(server.base, EVLOOP_ONCE);
	event_free(cl->ev);
	close(sv[1]);
	fuzz_check_queue();
	/* every descriptor reserved for a file was given back */
	if (server.fds_free != server.fds_total)
		fuzz_die("descriptor budget: %u of %u free with no connection",
		    server.fds_free, server.fds_total);
}

/* Once per process: job files, configuration, the loop. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	*cause;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
	log_init("fuzz_conn", fuzz_verbose ? 2 : -1);
	fuzz_make_files();
	store_sync = 0;				/* --no-sync */
	server.cfg.max_result = 1U << 20;	/* small: TOOBIG is in reach */
	server.cfg.max_conns = 16;
	server.cfg.linger_ms = 0;		/* the end plays out at once */
	server.cfg.lease_ms = JQ_LEASE_DEFAULT_MS;
	server.cfg.retries = 1;			/* a FAIL may requeue */
#ifdef FUZZ_AUTH
	{
		static struct auth_key	 key;

		if (auth_init() != 0)
			fuzz_die("auth_init failed");
		memset(key.key, 0x5a, AUTH_KEY_MIN);
		key.len = AUTH_KEY_MIN;
		server.cfg.key = &key;
		server.cfg.unix_token = 1;
	}
#endif
	queue_init(&server.queue);
	if (server_init_loop(&cause) != 0)
		fuzz_die("%s", cause);
	/* a descriptor budget of two: a PUT sent while a job goes out waits
	 * for it (conn.c's fd waiters are in reach) */
	server.fds_total = server.fds_free = 2;
	return 0;
}

/* One input: one conversation played twice. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_play(data, size, 0);
	fuzz_play(data, size, 1);
	return 0;
}
