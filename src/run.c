/*
 * run.c: jq-run's worker.
 *
 * The parent forks one slot process per -j; it does nothing else than relay
 * signals and reap slots.  Each slot runs jobs one after the other on its own
 * blocking connection (TAKE hold=conn, so the server takes back the jobs of a
 * slot that dies).  A job costs one round trip: the result (PUT or FAIL,
 * payload and all) and the next TAKE leave in one write, and the replies to
 * both are read together.
 *
 * One job:
 *
 *   T = mkdtemp(TMPDIR/jq-run.XXXXXX), with T/in and T/out
 *   <in>:  the payload is received into T/in/BASENAME first;
 *          otherwise it is streamed into the command's stdin while it runs
 *   <out>: after exit 0, T/out/STEM[.EXT] is sent as the result;
 *          otherwise stdout is streamed back as the result while it runs
 *          (PUT on the first byte; ABORT then FAIL if the command fails)
 *   stderr: copied to our stderr as "NAME: line", its tail kept for FAIL
 *   T is removed afterwards, whatever happened (unless --keep-tmp)
 *
 * The poll loop of a job never holds more than one read of the socket (at
 * most the client's input buffer) and one read of stdout in memory, so jobs
 * of any size stream through.  A job is finished once the command has
 * exited, its stdout and stderr reached EOF and its payload has been read to
 * the end (a command that ignores stdin gets EPIPE on its pipe, which we take
 * as "discard the rest").
 *
 * Signals: the parent catches SIGINT and SIGTERM (and SIGHUP, which a
 * closed terminal sends).  The first becomes SIGUSR1 to every slot (take no
 * new job, finish and deliver the running one), the second SIGUSR2 (kill the
 * running command's process group, hand the job back, remove T, exit).
 * Slots ignore SIGINT, SIGTERM and SIGHUP, so a Ctrl-C in a terminal reaches
 * them only through the parent; on Linux a parent killed outright sends its
 * slots SIGUSR2 (PR_SET_PDEATHSIG).  Handlers only set flags and write a
 * byte to a self-pipe that the poll loops watch.
 *
 * Leases: while a job runs, a slot that has sent nothing for a third of the
 * job's lease (from the JOB line; 500 ms if it gave none) sends TOUCH (whose
 * reply tells the lease too), or "DATA 0" inside a result being streamed.
 *
 * A lost server (kill -9, restart): a slot reconnects with exponential
 * backoff (100 ms doubling to 5 s, with jitter) for at most --reconnect,
 * then takes jobs again.  A command running when the connection dropped
 * runs on if its data had been read in full and no part of its result had
 * been sent yet; its stdout then goes to a spool file in T, and its result
 * is sent after reconnecting (the server keeps the first result it gets; a
 * refusal is logged).  A failure seen while away is not reported: the
 * restarted server runs the job again, so a late failure can never cancel
 * another worker's result.  Otherwise the command is killed and the job,
 * which the restarted server has waiting again, runs again.
 *
 * --max-jobs N is exact across slots: a counter in a shared anonymous
 * mapping, incremented atomically by a slot before each TAKE.
 */
#include <sys/mman.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define RUN_BUF		(64U << 10)	/* one read of the command's stdout */
#define RUN_LINE_MAX	4096		/* longer stderr lines are split */
#define RUN_TAIL	JQ_MSG_KEEP	/* stderr bytes kept for FAIL */
#define RUN_GRACE_MS	5000		/* SIGTERM to SIGKILL on timeout */
#define RUN_LABEL_MAX	200		/* bytes of a job name in messages */
#define RUN_KEEPALIVE_MS 500		/* when the JOB line tells no lease */
#define RUN_BACKOFF_MIN_MS 100		/* first reconnection delay */
#define RUN_BACKOFF_MAX_MS 5000		/* longest reconnection delay */
#define RUN_ID_MAX	64		/* bytes of a job id we accept */
#ifndef POLLRDHUP
#define POLLRDHUP	0		/* then only POLLHUP tells */
#endif

/* This process's signal state; the handler touches nothing else. */
static volatile sig_atomic_t	run_signals;	/* parent: SIGINT/TERM/HUP seen */
static volatile sig_atomic_t	run_stop;	/* slot: 1 SIGUSR1, 2 SIGUSR2 */
static volatile sig_atomic_t	run_child;	/* SIGCHLD seen */
static int			run_wake[2] = { -1, -1 };	/* slot: self-pipe */

/* A stream copied to one of our descriptors line by line, with a prefix. */
struct run_lines {
	int	 fd;
	char	*buf;			/* prefix, then the pending line */
	size_t	 prefix;
	size_t	 len;			/* bytes used, prefix included */
};

/* The last RUN_TAIL bytes of a stream. */
struct run_tail {
	char	 buf[RUN_TAIL];
	size_t	 len;			/* bytes held, at most RUN_TAIL */
	size_t	 head;			/* where the next byte goes */
};

/* A reply the server owes us; they come in the order the requests went. */
enum run_owed_kind {
	OWED_TOUCH, OWED_ABORTED, OWED_RESULT, OWED_FAILURE, OWED_RELEASE
};
struct run_owed {
	enum run_owed_kind	 kind;
	char			*id;		/* NULL for OWED_TOUCH */
	char			*label;
};

/* One slot: a connection and the job it runs. */
struct run_slot {
	const struct run_config	*cfg;
	struct client		*c;
	char			*worker;
	char			*take;		/* the TAKE request line */
	uint64_t		*counter;	/* shared --max-jobs counter or NULL */
	int			 status;	/* exit status once fatal */
	int			 failed;	/* some job failed */
	struct run_owed		*owed;		/* ring of replies owed, oldest first */
	size_t			 owed_cap, owed_head, nowed;
	int			 prefetched;	/* a TAKE wait=0 went with the result */
	size_t			 before_take;	/* owed replies that precede its reply */
	int			 counted;	/* the next TAKE is counted (--max-jobs) */
	int			 lost;		/* c is NULL: reconnect before use */
	char			*hold;		/* RUN_BUF: stdout held before the PUT */
	size_t			 held;
	uint64_t		 keepalive_ms;	/* a third of the lease */
	char			*buf;		/* RUN_BUF bytes for stdout and stderr */
	char			*inbuf;		/* payload bytes waiting for stdin */
	size_t			 insize;
};

/* The state of the job a slot runs. */
struct run_job {
	struct client_job	*cj;
	char			*label;		/* the name, printable, for messages */
	char			*dir;		/* T */
	char			*in;		/* T/in/BASENAME or NULL */
	char			*out;		/* T/out/STEM[.EXT] or NULL */
	struct spawn		 sp;
	int			 started;	/* sp holds a process */
	struct client_rx	 rx;
	int			 rx_done;	/* payload read to its END */
	size_t			 inlen, inoff;	/* bytes of slot->inbuf for stdin */
	struct client_tx	 tx;
	int			 put_started;	/* PUT line sent, payload open */
	int			 offline;	/* lost the server while running */
	char			*spool;		/* offline: stdout kept here, or NULL */
	int			 spool_fd;
	uint64_t		 start;		/* ms, monotonic */
	uint64_t		 deadline;	/* --timeout, 0: none */
	uint64_t		 kill_at;	/* SIGKILL after the grace, 0: none */
	uint64_t		 last_sent;	/* ms: when the server last heard us */
	int			 timed_out;
	int			 stop_noted;	/* SIGUSR1 logged */
	struct run_lines	 out_lines;	/* stdout when it is not the result */
	struct run_lines	 err_lines;
	struct run_tail		 tail;
};

/* Note a signal and wake the poll loop; nothing else. */
static void
run_on_signal(int sig)
{
	int	 saved = errno;
	ssize_t	 n;

	if (sig == SIGCHLD)
		run_child = 1;
	else if (sig == SIGUSR1) {
		if (run_stop == 0)
			run_stop = 1;
	} else if (sig == SIGUSR2)
		run_stop = 2;
	else
		run_signals = run_signals + 1;
	if (run_wake[1] != -1)
		n = write(run_wake[1], "", 1);	/* full pipe: already awake */
	(void)n;
	errno = saved;
}

/* Install handler (or SIG_IGN/SIG_DFL) for sig, restarting system calls. */
static void
run_sigaction(int sig, void (*handler)(int))
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, NULL) == -1)
		err(JQ_EXIT_IO, "sigaction");
}

/* Empty the self-pipe. */
static void
run_drain_wake(void)
{
	char	 buf[64];

	while (read(run_wake[0], buf, sizeof buf) > 0)
		;
}

/* A printable copy of a job name for messages: control bytes become '?'. */
static char *
run_label(const char *name)
{
	char	*s = xstrndup(name, RUN_LABEL_MAX), *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	return s;
}

/*
 * Is id usable in a command line, a file name and a message: 1 to RUN_ID_MAX
 * ASCII letters, digits, '_' or '-', not beginning with '-'?  Otherwise a
 * hostile server could slip an option ("-rf") or a path ("../x") into {id},
 * or terminal escapes into our messages.
 */
static int
run_id_ok(const char *id)
{
	size_t	 i, len = strlen(id);
	char	 c;

	if (len == 0 || len > RUN_ID_MAX || id[0] == '-')
		return 0;
	for (i = 0; i < len; i++) {
		c = id[i];
		if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
		    !(c >= 'A' && c <= 'Z') && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* Start copying a stream to fd, each line prefixed by "label: ". */
static void
run_lines_init(struct run_lines *l, int fd, const char *label)
{
	l->fd = fd;
	l->prefix = strlen(label) + 2;
	l->buf = xmalloc(l->prefix + RUN_LINE_MAX + 1);
	memcpy(l->buf, label, l->prefix - 2);
	memcpy(l->buf + l->prefix - 2, ": ", 2);
	l->len = l->prefix;
}

/* Write out the pending line, adding its LF; one write per line. */
static void
run_lines_emit(struct run_lines *l)
{
	l->buf[l->len++] = '\n';
	(void)util_write_all(l->fd, l->buf, l->len);
	l->len = l->prefix;
}

/* Copy n bytes of a stream; complete lines go out at once. */
static void
run_lines_add(struct run_lines *l, const char *p, size_t n)
{
	while (n > 0) {
		size_t	 room = l->prefix + RUN_LINE_MAX - l->len, k;
		const char *nl = memchr(p, '\n', n < room ? n : room);

		k = nl != NULL ? (size_t)(nl - p) : (n < room ? n : room);
		memcpy(l->buf + l->len, p, k);
		l->len += k;
		p += k;
		n -= k;
		if (nl != NULL) {
			p++;
			n--;
			run_lines_emit(l);
		} else if (l->len == l->prefix + RUN_LINE_MAX)
			run_lines_emit(l);
	}
}

/* The stream ended: write out an unfinished last line, free the buffer. */
static void
run_lines_end(struct run_lines *l)
{
	if (l->buf == NULL)
		return;
	if (l->len > l->prefix)
		run_lines_emit(l);
	free(l->buf);
	l->buf = NULL;
}

/* Keep the last RUN_TAIL bytes of a stream. */
static void
run_tail_add(struct run_tail *t, const char *p, size_t n)
{
	if (n >= RUN_TAIL) {
		memcpy(t->buf, p + n - RUN_TAIL, RUN_TAIL);
		t->len = RUN_TAIL;
		t->head = 0;
		return;
	}
	while (n > 0) {
		size_t k = RUN_TAIL - t->head < n ? RUN_TAIL - t->head : n;

		memcpy(t->buf + t->head, p, k);
		t->head = (t->head + k) % RUN_TAIL;
		t->len = t->len + k > RUN_TAIL ? RUN_TAIL : t->len + k;
		p += k;
		n -= k;
	}
}

/* Copy the tail, oldest byte first, into out (RUN_TAIL bytes); its length. */
static size_t
run_tail_get(const struct run_tail *t, char *out)
{
	size_t	 start = (t->head + RUN_TAIL - t->len) % RUN_TAIL, first;

	first = RUN_TAIL - start < t->len ? RUN_TAIL - start : t->len;
	memcpy(out, t->buf + start, first);
	memcpy(out + first, t->buf, t->len - first);
	return t->len;
}

/*
 * Remove a directory tree without following symbolic links; directories the
 * command made unreadable are opened up first.  Returns 0 or -1 (errno).
 */
static int
run_rmtree_at(int parent, const char *name)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd, rc = 0, saved = 0;

	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	(void)fchmodat(parent, name, 0700, 0);
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (run_rmtree_at(dirfd(d), de->d_name) == -1 && rc == 0) {
			rc = -1;
			saved = errno;
		}
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) == -1 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	errno = saved;
	return rc;
}

/* Remove the job's directory (or, with --keep-tmp, say where it is). */
static void
run_job_cleanup_dir(struct run_slot *s, struct run_job *j)
{
	if (j->dir == NULL)
		return;
	if (s->cfg->keep_tmp)
		log_warnx("%s: job %s: kept %s", j->label, j->cj->id, j->dir);
	else if (run_rmtree_at(AT_FDCWD, j->dir) == -1)
		log_warn("%s: cannot remove %s", j->label, j->dir);
}

/* Free everything of a job but the client_job. */
static void
run_job_free(struct run_job *j)
{
	spawn_close_fds(&j->sp);
	run_lines_end(&j->out_lines);
	run_lines_end(&j->err_lines);
	free(j->label);
	free(j->dir);
	free(j->in);
	free(j->out);
	if (j->spool_fd != -1)
		close(j->spool_fd);
	free(j->spool);
}

/* Note a reply the server owes (j NULL for a TOUCH); see run_slot_reply(). */
static void
run_slot_owe(struct run_slot *s, enum run_owed_kind kind,
    const struct run_job *j)
{
	struct run_owed	*o, *ring;
	size_t		 i, cap;

	if (s->nowed == s->owed_cap) {
		cap = s->owed_cap > 0 ? s->owed_cap * 2 : 8;
		ring = xcalloc(cap, sizeof *ring);
		for (i = 0; i < s->nowed; i++)
			ring[i] = s->owed[(s->owed_head + i) % s->owed_cap];
		free(s->owed);
		s->owed = ring;
		s->owed_cap = cap;
		s->owed_head = 0;
	}
	o = &s->owed[(s->owed_head + s->nowed++) % s->owed_cap];
	o->kind = kind;
	o->id = j != NULL ? xstrdup(j->cj->id) : NULL;
	o->label = j != NULL ? xstrdup(j->label) : NULL;
}

/* Drop the oldest reply owed. */
static void
run_slot_pop(struct run_slot *s)
{
	struct run_owed	*o = &s->owed[s->owed_head];

	free(o->id);
	free(o->label);
	s->owed_head = (s->owed_head + 1) % s->owed_cap;
	s->nowed--;
	if (s->prefetched && s->before_take > 0)
		s->before_take--;
}

/*
 * Drop a lost connection.  Replies still owed for results and failures will
 * never come: say so (the server may or may not have stored them).
 */
static void
run_slot_disconnect(struct run_slot *s)
{
	struct run_owed	*o;

	while (s->nowed > 0) {
		o = &s->owed[s->owed_head];
		if (o->kind == OWED_RESULT || o->kind == OWED_FAILURE)
			log_warnx("%s: job %s: the connection was lost before the "
			    "server confirmed the %s; the job may run again",
			    o->label, o->id, o->kind == OWED_RESULT ? "result" :
			    "failure report");
		run_slot_pop(s);
	}
	/* A job the prefetched TAKE got goes back when the connection closes. */
	s->prefetched = 0;
	s->before_take = 0;
	client_close(s->c);
	s->c = NULL;
	s->lost = 1;
}

/*
 * A connection problem: say why.  A lost connection, when --reconnect
 * allows, only drops it (s->lost: the caller reconnects); anything else is
 * fatal and its status remembered.  Returns -1.
 */
static int
run_slot_fatal(struct run_slot *s, char *cause)
{
	log_warnx("%s", cause);
	free(cause);
	if (s->c != NULL && client_status(s->c) == JQ_EXIT_CONNECT &&
	    s->cfg->reconnect_ms > 0 && run_stop != 2) {
		run_slot_disconnect(s);
		return -1;
	}
	s->status = s->c != NULL ? client_status(s->c) : JQ_EXIT_CONNECT;
	return -1;
}

/*
 * Connect again after a loss, with exponential backoff and jitter, for at
 * most --reconnect.  0 connected, -1 gave up (status set), 1 SIGUSR2.
 */
static int
run_slot_reconnect(struct run_slot *s)
{
	struct pollfd	 pfd;
	uint64_t	 now, end, delay = RUN_BACKOFF_MIN_MS, nap;
	char		*cause = NULL;
	int		 status;

	now = util_now_ms();
	end = now + s->cfg->reconnect_ms;
	log_warnx("reconnecting to %s (for at most %llu ms)",
	    net_default_server(s->cfg->server),
	    (unsigned long long)s->cfg->reconnect_ms);
	for (;;) {
		if (run_stop == 2)
			return 1;
		s->c = client_open(s->cfg->server, s->worker, &status, &cause);
		if (s->c != NULL) {
			log_warnx("reconnected to %s", client_server(s->c));
			s->lost = 0;
			return 0;
		}
		now = util_now_ms();
		if ((status != JQ_EXIT_CONNECT && status != JQ_EXIT_PROTOCOL) ||
		    now >= end) {
			log_warnx("%s; gave up reconnecting", cause);
			free(cause);
			s->status = status;
			return -1;
		}
		free(cause);
		cause = NULL;
		/* Sleep delay/2 to delay, so that slots spread out. */
		nap = delay / 2 + (uint64_t)random() % (delay / 2 + 1);
		if (nap > end - now)
			nap = end - now;
		for (;;) {
			uint64_t t = util_now_ms(), until = now + nap;

			if (t >= until || run_stop == 2)
				break;
			pfd.fd = run_wake[0];
			pfd.events = POLLIN;
			if (poll(&pfd, 1, (int)(until - t)) > 0)
				run_drain_wake();
		}
		delay = delay * 2 > RUN_BACKOFF_MAX_MS ? RUN_BACKOFF_MAX_MS :
		    delay * 2;
	}
}

/*
 * Read the reply to one TOUCH.  It tells the lease, so later keep-alives
 * come at a third of it.  A refusal (the lease ran out, the job went back)
 * is only logged: a late result is still accepted.
 */
static int
run_slot_touch_reply(struct run_slot *s)
{
	char		*rest, *cause = NULL, num[PROTO_U64_LEN];
	const char	*v;
	size_t		 len;
	uint64_t	 lease;

	if (client_reply(s->c, &rest, &cause) == 0) {
		if ((v = proto_word_kv(rest, KEY_LEASE, &len)) != NULL &&
		    len < sizeof num) {
			memcpy(num, v, len);
			num[len] = '\0';
			if (parse_u64(num, 1, JQ_SECONDS_MAX, &lease) == 0)
				s->keepalive_ms = lease * 1000 / 3;
		}
		return 0;
	}
	if (client_status(s->c) == JQ_EXIT_CONNECT)
		return run_slot_fatal(s, cause);
	log_warnx("lease renewal refused: %s", cause);
	free(cause);
	return 0;
}

/*
 * Read the oldest reply owed.  A refused result (ERR DONE: someone else
 * delivered first) is only logged.  0, or -1 (fatal, or lost: the ring is
 * then empty).
 */
static int
run_slot_reply(struct run_slot *s)
{
	struct run_owed	*o = &s->owed[s->owed_head];
	const char	*what;
	char		*cause = NULL, *line;
	int		 rc = 0;

	switch (o->kind) {
	case OWED_TOUCH:
		rc = run_slot_touch_reply(s);
		break;
	case OWED_ABORTED:
		if ((line = client_line(s->c, &cause)) == NULL)
			rc = run_slot_fatal(s, cause);
		else if (strncmp(line, REPLY_ERR " " ERR_ABORTED,
		    strlen(REPLY_ERR " " ERR_ABORTED)) != 0)
			rc = run_slot_fatal(s, xprintf("unexpected reply to "
			    "ABORT: \"%.80s\"", line));
		break;
	default:
		what = o->kind == OWED_RESULT ? "result" :
		    o->kind == OWED_FAILURE ? "failure report" : "release";
		if (client_reply(s->c, NULL, &cause) == 0)
			break;
		if (client_status(s->c) == JQ_EXIT_CONNECT) {
			rc = run_slot_fatal(s, cause);
			break;
		}
		log_warnx("%s: job %s: %s not accepted: %s", o->label, o->id,
		    what, cause);
		if (client_status(s->c) != JQ_EXIT_REFUSED)
			s->failed = 1;
		free(cause);
		break;
	}
	if (s->nowed > 0)		/* (a lost connection emptied the ring) */
		run_slot_pop(s);
	return rc;
}

/*
 * Send what is buffered and read the replies owed: all of them, or when a
 * prefetched TAKE is out, those that come before its reply.  0 or -1.
 */
static int
run_slot_settle(struct run_slot *s)
{
	char	*cause = NULL;

	if (client_flush(s->c, &cause) != 0)
		return run_slot_fatal(s, cause);
	while (s->c != NULL && s->nowed > 0 &&
	    !(s->prefetched && s->before_take == 0))
		if (run_slot_reply(s) != 0)
			return -1;
	return 0;
}

/*
 * Count the next TAKE against --max-jobs, once however often it is sent
 * (again after a loss, or after a prefetched one found every job held).
 * 1 when it may go out, 0 when the slots have taken all they may.
 */
static int
run_slot_count(struct run_slot *s)
{
	if (!s->counted && s->counter != NULL && __atomic_fetch_add(s->counter,
	    1, __ATOMIC_SEQ_CST) >= s->cfg->max_jobs)
		return 0;
	s->counted = 1;
	return 1;
}

/*
 * Ask for the next job ahead of the result about to go out: "TAKE ...
 * wait=0" before the PUT or FAIL.  The server answers it at once and makes
 * the result durable while our next command starts, so the fsyncs behind
 * each result leave the per-job path.  Not when stopping or at --max-jobs,
 * nor for a job that ran on while the server was away: the restarted
 * server holds it for nobody and could hand it straight back to us.
 * 0, or -1 (fatal).
 */
static int
run_slot_prefetch(struct run_slot *s, const struct run_job *j)
{
	char	*cause = NULL;

	if (run_stop || s->c == NULL || s->prefetched || j->offline ||
	    !run_slot_count(s))
		return 0;
	if (client_send(s->c, &cause, "%s wait=0", s->take) != 0)
		return run_slot_fatal(s, cause);
	s->prefetched = 1;
	s->before_take = s->nowed;
	return 0;
}

/* Make T (and T/in, T/out) and the <in>/<out> paths. */
static int
run_job_prepare(struct run_slot *s, struct run_job *j)
{
	const struct run_config	*cfg = s->cfg;
	int			 uses = template_uses(cfg->tpl);
	char			*base, *stem, *sub;
	const char		*ext = template_out_ext(cfg->tpl);

	j->dir = xprintf("%s/jq-run.XXXXXX", cfg->tmpdir);
	if (mkdtemp(j->dir) == NULL) {
		log_warn("mkdtemp %s", j->dir);
		free(j->dir);
		j->dir = NULL;
		return -1;
	}
	base = template_basename(j->cj->name);
	stem = template_stem(base);
	if (uses & TEMPLATE_USES_IN) {
		sub = xprintf("%s/in", j->dir);
		if (mkdir(sub, 0700) == -1) {
			log_warn("mkdir %s", sub);
			free(sub);
			goto fail;
		}
		j->in = xprintf("%s/%s", sub, base);
		free(sub);
	}
	if (uses & TEMPLATE_USES_OUT) {
		sub = xprintf("%s/out", j->dir);
		if (mkdir(sub, 0700) == -1) {
			log_warn("mkdir %s", sub);
			free(sub);
			goto fail;
		}
		j->out = ext == NULL ? xprintf("%s/%s", sub, stem) :
		    xprintf("%s/%s.%s", sub, stem, ext);
		free(sub);
	}
	free(base);
	free(stem);
	return 0;
fail:
	free(base);
	free(stem);
	return -1;
}

/*
 * Keep the job's lease alive while the server has not heard from us for a
 * third of it: TOUCH, or inside a result being streamed "DATA 0".
 */
static int
run_job_keepalive(struct run_slot *s, struct run_job *j, uint64_t now)
{
	char	*cause = NULL;
	int	 rc;

	if (s->c == NULL || now < j->last_sent + s->keepalive_ms)
		return 0;
	if (j->put_started)
		rc = client_send(s->c, &cause, FRAME_WORD_DATA " 0");
	else if ((rc = client_send(s->c, &cause, "TOUCH %s", j->cj->id)) == 0)
		run_slot_owe(s, OWED_TOUCH, NULL);
	if (rc != 0 || client_flush(s->c, &cause) != 0)
		return run_slot_fatal(s, cause);
	j->last_sent = now;
	return 0;
}

/*
 * Receive the payload into the <in> file.  0 done, -1 fatal, 1 stopped by
 * SIGUSR2 (the payload is left unread: the connection will be closed).
 */
static int
run_job_receive(struct run_slot *s, struct run_job *j)
{
	const char	*data;
	char		*cause = NULL;
	ssize_t		 n;
	int		 fd, saved;

	fd = open(j->in, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		log_warn("%s", j->in);
		s->status = JQ_EXIT_IO;
		return -1;
	}
	while ((n = client_rx_next(s->c, &j->rx, &data, &cause)) > 0) {
		if (util_write_all(fd, data, (size_t)n) != 0) {
			saved = errno;
			close(fd);
			errno = saved;
			log_warn("%s", j->in);
			s->status = JQ_EXIT_IO;
			return -1;
		}
		if (run_stop == 2) {
			close(fd);
			return 1;
		}
		if (run_job_keepalive(s, j, util_now_ms()) == -1) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (n < 0)
		return run_slot_fatal(s, cause);
	j->rx_done = 1;
	return 0;
}

/* Start the command for the job. */
static int
run_job_spawn(struct run_slot *s, struct run_job *j)
{
	const struct run_config	*cfg = s->cfg;
	struct template_vars	 vars;
	char			**argv, **envp, *cause = NULL;
	char			*set[7];
	int			 uses = template_uses(cfg->tpl), i, rc;

	vars.in = j->in;
	vars.out = j->out;
	vars.name = j->cj->name;
	vars.id = j->cj->id;
	argv = template_expand(cfg->tpl, &vars);
	set[0] = xprintf("JQ_SERVER=%s", client_server(s->c));
	set[1] = xprintf("JQ_JOB_ID=%s", j->cj->id);
	set[2] = xprintf("JQ_JOB_NAME=%s", j->cj->name);
	set[3] = xprintf("JQ_ATTEMPT=%u", j->cj->attempt);
	set[4] = xprintf("JQ_WORKER=%s", s->worker);
	set[5] = xprintf("TMPDIR=%s", j->dir);	/* its scratch goes away too */
	set[6] = NULL;
	envp = spawn_env((const char *const *)set);
	rc = spawn_start(&j->sp, argv, envp,
	    (uses & TEMPLATE_USES_IN) ? SPAWN_NULL : SPAWN_PIPE,
	    SPAWN_PIPE, SPAWN_PIPE, &cause);
	for (i = 0; set[i] != NULL; i++)
		free(set[i]);
	spawn_env_free(envp);
	template_argv_free(argv);
	if (rc == -1) {
		log_warnx("%s: job %s: %s", j->label, j->cj->id, cause);
		free(cause);
		s->status = JQ_EXIT_IO;
		return -1;
	}
	j->started = 1;
	if (cfg->timeout_ms > 0)
		j->deadline = util_now_ms() + cfg->timeout_ms;
	if (j->in != NULL)
		j->rx_done = 1;		/* nothing goes to stdin */
	return 0;
}

/* Close the command's stdin (all payload given, or it stopped reading). */
static void
run_job_close_stdin(struct run_job *j)
{
	if (j->sp.fd_in != -1) {
		close(j->sp.fd_in);
		j->sp.fd_in = -1;
	}
	j->inlen = j->inoff = 0;
}

/* Write pending payload bytes to the command's stdin, without blocking. */
static void
run_job_feed(struct run_slot *s, struct run_job *j)
{
	ssize_t	 n;

	while (j->sp.fd_in != -1 && j->inoff < j->inlen) {
		n = write(j->sp.fd_in, s->inbuf + j->inoff, j->inlen - j->inoff);
		if (n > 0) {
			j->inoff += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		/* EPIPE: the command does not want the rest; we drop it. */
		run_job_close_stdin(j);
		return;
	}
	j->inlen = j->inoff = 0;
	if (j->rx_done)
		run_job_close_stdin(j);
}

/* Take the next span of payload from the client and pass it to stdin. */
static int
run_job_rx(struct run_slot *s, struct run_job *j)
{
	const char	*data;
	char		*cause = NULL;
	ssize_t		 n;

	n = client_rx_next(s->c, &j->rx, &data, &cause);
	if (n < 0)
		return run_slot_fatal(s, cause);
	if (n == 0) {
		j->rx_done = 1;
		if (j->inlen == 0)
			run_job_close_stdin(j);
		return 0;
	}
	if (j->sp.fd_in == -1)
		return 0;		/* the command stopped reading */
	if ((size_t)n > s->insize) {
		free(s->inbuf);
		s->inbuf = xmalloc((size_t)n);
		s->insize = (size_t)n;
	}
	memcpy(s->inbuf, data, (size_t)n);
	j->inlen = (size_t)n;
	j->inoff = 0;
	run_job_feed(s, j);
	return 0;
}

/*
 * The server was lost while the job ran: go on without it if its data was
 * read in full and no part of its result has been sent (stdout then goes to
 * a spool file); 0, or -1 when the job must be given up.
 */
static int
run_job_offline(struct run_slot *s, struct run_job *j)
{
	if (j->offline)
		return 0;
	if (!j->rx_done || j->put_started) {
		log_warnx("%s: job %s: given up: the connection was lost while %s",
		    j->label, j->cj->id, !j->rx_done ? "its data arrived" :
		    "its result was being sent");
		return -1;
	}
	if (j->out == NULL) {
		j->spool = xprintf("%s/.jq-run-result.XXXXXX", j->dir);
		if ((j->spool_fd = mkostemp(j->spool, O_CLOEXEC)) == -1) {
			log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
			free(j->spool);
			j->spool = NULL;
			s->status = JQ_EXIT_IO;
			return -1;
		}
		if (s->held > 0 && util_write_all(j->spool_fd, s->hold,
		    s->held) != 0) {
			log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
			s->status = JQ_EXIT_IO;
			return -1;
		}
		s->held = 0;
	}
	j->offline = 1;
	log_warnx("%s: job %s: runs on; its result goes to the server after "
	    "reconnecting", j->label, j->cj->id);
	return 0;
}

/* Offline: append n bytes of s->buf (the command's stdout) to the spool. */
static int
run_job_spool(struct run_slot *s, struct run_job *j, size_t n)
{
	if (util_write_all(j->spool_fd, s->buf, n) != 0) {
		log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
		s->status = JQ_EXIT_IO;
		return -1;
	}
	return 0;
}

/* Read the command's stdout: the result, or lines for our stdout. */
static int
run_job_stdout(struct run_slot *s, struct run_job *j)
{
	char	*cause = NULL;
	ssize_t	 n;
	int	 first;

	n = read(j->sp.fd_out, s->buf, RUN_BUF);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(j->sp.fd_out);
		j->sp.fd_out = -1;
		run_lines_end(&j->out_lines);
		return 0;
	}
	if (j->out != NULL) {
		run_lines_add(&j->out_lines, s->buf, (size_t)n);
		return 0;
	}
	if (j->offline)
		return run_job_spool(s, j, (size_t)n);
	/*
	 * The first RUN_BUF bytes are held back: a small result then goes
	 * out whole when the command ends, behind the next job's TAKE (see
	 * run_slot_prefetch).  Past that it streams, sent at once.
	 */
	if (!j->put_started && s->held + (size_t)n <= RUN_BUF) {
		memcpy(s->hold + s->held, s->buf, (size_t)n);
		s->held += (size_t)n;
		return 0;
	}
	first = !j->put_started;
	if (first) {
		client_tx_init(&j->tx);
		j->put_started = 1;
	}
	if ((first && (client_send(s->c, &cause, "PUT %s", j->cj->id) != 0 ||
	    (s->held > 0 && client_tx_data(s->c, &j->tx, s->hold, s->held,
	    &cause) != 0))) ||
	    client_tx_data(s->c, &j->tx, s->buf, (size_t)n, &cause) != 0 ||
	    client_flush(s->c, &cause) != 0) {
		run_slot_fatal(s, cause);
		/* Lost with the first bytes: the whole result is still ours. */
		if (first && s->lost && s->status == 0) {
			j->put_started = 0;
			if (run_job_offline(s, j) == 0)
				return run_job_spool(s, j, (size_t)n);
		}
		return -1;
	}
	s->held = 0;
	j->last_sent = util_now_ms();
	return 0;
}

/* Read the command's stderr: copy it out, keep its tail. */
static void
run_job_stderr(struct run_slot *s, struct run_job *j)
{
	ssize_t	 n;

	n = read(j->sp.fd_err, s->buf, RUN_BUF);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(j->sp.fd_err);
		j->sp.fd_err = -1;
		run_lines_end(&j->err_lines);
		return;
	}
	run_tail_add(&j->tail, s->buf, (size_t)n);
	run_lines_add(&j->err_lines, s->buf, (size_t)n);
}

/*
 * Apply --timeout: SIGTERM to the group, SIGKILL after the grace.  It
 * counts until the job is finished, so a background child that keeps
 * stdout open after the command exited is killed too.
 */
static void
run_job_check_time(struct run_slot *s, struct run_job *j, uint64_t now)
{
	if (j->deadline != 0 && !j->timed_out && now >= j->deadline) {
		j->timed_out = 1;
		j->kill_at = now + RUN_GRACE_MS;
		if (s->cfg->verbose)
			log_warnx("%s: job %s: timed out, sending SIGTERM",
			    j->label, j->cj->id);
		spawn_kill(&j->sp, SIGTERM);
	}
	if (j->kill_at != 0 && now >= j->kill_at) {
		j->kill_at = 0;
		spawn_kill(&j->sp, SIGKILL);
	}
}

/* Milliseconds poll() may sleep before the next deadline. */
static int
run_job_poll_timeout(const struct run_slot *s, const struct run_job *j,
    uint64_t now)
{
	uint64_t	 at, keep;

	at = j->kill_at != 0 ? j->kill_at : !j->timed_out ? j->deadline : 0;
	keep = j->last_sent + s->keepalive_ms;
	if (s->c != NULL && (at == 0 || keep < at))
		at = keep;
	if (at == 0)
		return -1;
	return at <= now ? 0 : at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

/*
 * A step of the job failed (-1).  When the connection was lost, the job may
 * go on without the server (0); otherwise it ends here (-1).
 */
static int
run_job_lost(struct run_slot *s, struct run_job *j)
{
	if (s->status != 0 || !s->lost)
		return -1;
	return run_job_offline(s, j);
}

/*
 * The socket, watched only for its closing, signalled something: read
 * what is there, which tells a lost connection (or nonsense).
 */
static int
run_job_hangup(struct run_slot *s)
{
	char	*cause = NULL, *line;

	if ((line = client_line(s->c, &cause)) == NULL)
		return run_slot_fatal(s, cause);
	log_warnx("unexpected message from %s: \"%.80s\"", client_server(s->c),
	    line);
	s->status = JQ_EXIT_PROTOCOL;
	return -1;
}

/*
 * Run the job's command to its end, moving bytes between the socket and
 * the command's pipes.  0 finished, -1 fatal, 1 stopped by SIGUSR2.
 */
static int
run_job_loop(struct run_slot *s, struct run_job *j)
{
	struct pollfd	 pfd[5];
	int		 n, r, sock_i, in_i, out_i, err_i, sock_in = 0;
	uint64_t	 now;

	for (;;) {
		if (run_stop == 2)
			return 1;
		if (run_stop == 1 && !j->stop_noted) {
			j->stop_noted = 1;
			if (s->cfg->verbose)
				log_warnx("%s: job %s: last job of this slot",
				    j->label, j->cj->id);
		}
		if (run_child) {
			run_child = 0;
			spawn_reap(&j->sp);
		}
		now = util_now_ms();
		run_job_check_time(s, j, now);
		if (run_job_keepalive(s, j, now) == -1 &&
		    run_job_lost(s, j) == -1)
			return -1;
		/* Owed replies (TOUCHes, the last job's result when its TAKE
		 * was prefetched) come after the payload: read them once it
		 * ended. */
		if (j->rx_done && s->nowed > 0 && client_buffered(s->c) > 0) {
			if (run_slot_reply(s) == -1 &&
			    run_job_lost(s, j) == -1)
				return -1;
			continue;
		}
		if (j->sp.exited && j->sp.fd_out == -1 && j->sp.fd_err == -1 &&
		    j->rx_done) {
			run_job_close_stdin(j);	/* a grandchild may hold it */
			return 0;
		}
		/* Payload bytes already buffered: no need to poll for them. */
		if (!j->rx_done && j->inlen == 0 && client_buffered(s->c) > 0) {
			if (run_job_rx(s, j) == -1 && run_job_lost(s, j) == -1)
				return -1;
			continue;
		}
		n = 0;
		sock_i = in_i = out_i = err_i = -1;
		pfd[n].fd = run_wake[0];
		pfd[n++].events = POLLIN;
		sock_in = s->c != NULL && ((!j->rx_done && j->inlen == 0) ||
		    (j->rx_done && s->nowed > 0));
		if (sock_in || (s->c != NULL && j->rx_done)) {
			/* Not expecting anything: watch for the server leaving
			 * (not inside a payload, whose rest stays unread). */
			pfd[sock_i = n].fd = client_fd(s->c);
			pfd[n++].events = sock_in ? POLLIN : POLLRDHUP;
		}
		if (j->sp.fd_in != -1 && j->inlen > 0) {
			pfd[in_i = n].fd = j->sp.fd_in;
			pfd[n++].events = POLLOUT;
		}
		if (j->sp.fd_out != -1) {
			pfd[out_i = n].fd = j->sp.fd_out;
			pfd[n++].events = POLLIN;
		}
		if (j->sp.fd_err != -1) {
			pfd[err_i = n].fd = j->sp.fd_err;
			pfd[n++].events = POLLIN;
		}
		r = poll(pfd, (nfds_t)n, run_job_poll_timeout(s, j, now));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_warn("poll");
			s->status = JQ_EXIT_IO;
			return -1;
		}
		if (pfd[0].revents != 0)
			run_drain_wake();
		if (in_i != -1 && pfd[in_i].revents != 0)
			run_job_feed(s, j);
		if (out_i != -1 && pfd[out_i].revents != 0 &&
		    run_job_stdout(s, j) == -1 && run_job_lost(s, j) == -1)
			return -1;
		if (err_i != -1 && pfd[err_i].revents != 0)
			run_job_stderr(s, j);
		if (sock_i == -1 || s->c == NULL || pfd[sock_i].revents == 0)
			continue;
		if (!sock_in)
			r = run_job_hangup(s);
		else
			r = j->rx_done ? run_slot_reply(s) : run_job_rx(s, j);
		if (r == -1 && run_job_lost(s, j) == -1)
			return -1;
	}
}

/*
 * The command ended: queue the result or the failure (replies are read by
 * run_slot_settle() with the next TAKE's).  A job that ran on without the
 * server reconnects first.  Returns 0, -1 (fatal, or lost again: see
 * s->lost) or 1 (SIGUSR2 while reconnecting).
 */
static int
run_job_deliver(struct run_slot *s, struct run_job *j)
{
	char		 how[64], kv[64], *cause = NULL, *msg, *reason = NULL;
	const char	*file = j->out != NULL ? j->out : j->spool;
	size_t		 len;
	struct stat	 st;
	int		 ok, fd = -1, status = j->sp.status, rc;

	if (j->offline && !j->timed_out && spawn_status(status, how,
	    sizeof how) != 0) {
		/* The restarted server runs it again: a late failure must
		 * not cancel another worker's result. */
		log_warnx("%s: job %s failed (%s) while the server was away; not "
		    "reported, the server runs it again", j->label, j->cj->id,
		    how);
		s->failed = 1;
		return 0;
	}
	if (j->offline && j->timed_out) {
		log_warnx("%s: job %s timed out while the server was away; not "
		    "reported, the server runs it again", j->label, j->cj->id);
		s->failed = 1;
		return 0;
	}
	if (s->c == NULL && (rc = run_slot_reconnect(s)) != 0)
		return rc;
	if (j->spool_fd != -1) {
		close(j->spool_fd);
		j->spool_fd = -1;
	}
	if (j->offline)
		j->put_started = 0;	/* nothing sent since the loss */

	ok = spawn_status(status, how, sizeof how) == 0;
	if (j->timed_out) {
		ok = 0;
		snprintf(how, sizeof how, "timed out");
		snprintf(kv, sizeof kv, "timeout=1");
		reason = xprintf("jq-run: timed out after %llu ms",
		    (unsigned long long)s->cfg->timeout_ms);
	} else if (WIFSIGNALED(status))
		snprintf(kv, sizeof kv, "signal=%d", WTERMSIG(status));
	else
		snprintf(kv, sizeof kv, "exit=%d", WEXITSTATUS(status));

	if (ok && file != NULL) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			ok = 0;
			kv[0] = '\0';		/* exited 0: no status to report */
			snprintf(how, sizeof how, "no output file");
			reason = xprintf("jq-run: the command did not write <out> "
			    "(%s)", strrchr(j->out, '/') + 1);
		}
	}
	if (ok && file != NULL) {
		if (run_slot_prefetch(s, j) != 0)
			goto lost;
		client_tx_init(&j->tx);
		j->put_started = 1;
		if (client_send(s->c, &cause, "PUT %s", j->cj->id) != 0)
			goto fatal;
		if (client_tx_fd(s->c, &j->tx, fd, &cause) != 0) {
			if (client_status(s->c) != JQ_EXIT_IO)
				goto fatal;
			ok = 0;
			kv[0] = '\0';
			snprintf(how, sizeof how, "unreadable output");
			reason = xprintf("jq-run: %s", cause);
			free(cause);
			cause = NULL;
		}
	} else if (ok && !j->put_started) {
		/* stdout, all of it held (maybe none): the whole result */
		if (run_slot_prefetch(s, j) != 0)
			goto lost;
		client_tx_init(&j->tx);
		if (client_send(s->c, &cause, "PUT %s", j->cj->id) != 0)
			goto fatal;
		j->put_started = 1;
		if (s->held > 0 && client_tx_data(s->c, &j->tx, s->hold, s->held,
		    &cause) != 0)
			goto fatal;
	}
	s->held = 0;
	if (fd != -1)
		close(fd);
	fd = -1;

	if (ok) {
		if (client_tx_end(s->c, &j->tx, &cause) != 0)
			goto fatal;
		run_slot_owe(s, OWED_RESULT, j);
	} else {
		if (j->put_started) {
			if (client_tx_abort(s->c, &cause) != 0)
				goto fatal;
			run_slot_owe(s, OWED_ABORTED, j);
		}
		msg = xmalloc(RUN_TAIL + (reason ? strlen(reason) + 2 : 0));
		len = run_tail_get(&j->tail, msg);
		if (reason != NULL) {
			if (len > 0 && msg[len - 1] != '\n')
				msg[len++] = '\n';
			memcpy(msg + len, reason, strlen(reason));
			len += strlen(reason);
		}
		if (run_slot_prefetch(s, j) != 0) {
			free(msg);
			goto lost;
		}
		client_tx_init(&j->tx);
		if (client_send(s->c, &cause, "FAIL %s%s%s", j->cj->id,
		    *kv != '\0' ? " " : "", kv) != 0 ||
		    client_tx_data(s->c, &j->tx, msg, len, &cause) != 0 ||
		    client_tx_end(s->c, &j->tx, &cause) != 0) {
			free(msg);
			goto fatal;
		}
		free(msg);
		run_slot_owe(s, OWED_FAILURE, j);
		s->failed = 1;
		log_warnx("%s: job %s failed: %s", j->label, j->cj->id, how);
	}
	if (s->cfg->verbose)
		log_warnx("%s: job %s: %s in %llu ms", j->label, j->cj->id,
		    ok ? "done" : how,
		    (unsigned long long)(util_now_ms() - j->start));
	free(reason);
	return 0;
fatal:
	if (fd != -1)
		close(fd);
	free(reason);
	return run_slot_fatal(s, cause);
lost:
	if (fd != -1)
		close(fd);
	free(reason);
	return -1;
}

/*
 * SIGUSR2 during a job: kill the command's group and give the job back.
 * When its payload was read to the end the stream is in sync and we say
 * RELEASE; otherwise the slot just closes the connection, which hands back
 * a hold=conn job just as well.
 */
static void
run_job_abandon(struct run_slot *s, struct run_job *j)
{
	char	*cause = NULL;

	if (j->started) {
		spawn_kill(&j->sp, SIGKILL);
		spawn_wait(&j->sp);
	}
	if (s->cfg->verbose)
		log_warnx("%s: job %s: stopped, handing it back", j->label,
		    j->cj->id);
	if (!j->rx_done || s->c == NULL)
		return;
	if (j->put_started) {
		if (client_tx_abort(s->c, &cause) != 0)
			goto fail;
		run_slot_owe(s, OWED_ABORTED, j);
	}
	if (client_send(s->c, &cause, "RELEASE %s", j->cj->id) != 0)
		goto fail;
	run_slot_owe(s, OWED_RELEASE, j);
	(void)run_slot_settle(s);
	return;
fail:
	log_warnx("%s", cause);
	free(cause);
}

/* Run one job.  0 delivered (result or failure), -1 fatal, 1 stopped. */
static int
run_slot_job(struct run_slot *s, struct client_job *cj)
{
	struct run_job	 j;
	int		 rc;

	memset(&j, 0, sizeof j);
	s->held = 0;
	j.spool_fd = -1;
	j.sp.pid = -1;
	j.sp.fd_in = j.sp.fd_out = j.sp.fd_err = -1;
	j.cj = cj;
	j.start = j.last_sent = util_now_ms();
	j.label = run_label(cj->name);
	client_rx_init(&j.rx);
	/* Heartbeats at a third of the lease the server gave this job. */
	s->keepalive_ms = cj->lease > 0 ? (uint64_t)cj->lease * 1000 / 3 :
	    RUN_KEEPALIVE_MS;
	if (s->cfg->verbose)
		log_warnx("%s: job %s: started (attempt %u)", j.label, cj->id,
		    cj->attempt);
	if (run_job_prepare(s, &j) == -1) {
		s->status = JQ_EXIT_IO;
		rc = -1;
		goto out;
	}
	if (j.in != NULL && (rc = run_job_receive(s, &j)) != 0)
		goto out;
	run_lines_init(&j.err_lines, 2, j.label);
	if (j.out != NULL)
		run_lines_init(&j.out_lines, 1, j.label);
	if ((rc = run_job_spawn(s, &j)) != 0)
		goto out;
	rc = run_job_loop(s, &j);
	if (rc == 0) {
		spawn_close_fds(&j.sp);
		run_lines_end(&j.out_lines);
		run_lines_end(&j.err_lines);
		/* From a file, a result lost with the server can go again. */
		while ((rc = run_job_deliver(s, &j)) == -1 && s->lost &&
		    s->status == 0 && (j.out != NULL || j.spool != NULL)) {
			log_warnx("%s: job %s: sending the result again", j.label,
			    cj->id);
			j.offline = 1;
		}
	}
out:
	if (rc == 1)
		run_job_abandon(s, &j);
	else if (rc == -1 && j.started) {
		spawn_kill(&j.sp, SIGKILL);
		spawn_wait(&j.sp);
	}
	spawn_close_fds(&j.sp);
	run_job_cleanup_dir(s, &j);
	run_job_free(&j);
	return rc;
}

/*
 * Wait until the TAKE reply can be read, or a stop signal came.  Returns 0
 * (readable), 1 (stop: the caller closes the connection, which cancels the
 * TAKE and hands back a job the server may have sent meanwhile) or -1.
 */
static int
run_slot_wait_input(struct run_slot *s)
{
	struct pollfd	 pfd[2];

	for (;;) {
		if (client_buffered(s->c) > 0)
			return 0;
		if (run_stop)
			return 1;
		pfd[0].fd = run_wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = client_fd(s->c);
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			s->status = JQ_EXIT_IO;
			return -1;
		}
		if (pfd[0].revents != 0)
			run_drain_wake();
		if (pfd[1].revents != 0)
			return 0;
	}
}

/*
 * Read the reply to the TAKE that went out with the last result, after the
 * replies owed before it.  Like client_take_reply() (1 job, 0 NOJOB, -1
 * error), and 2 to go round again (every job is held: ask again, waiting;
 * or the connection was lost), 3 to stop (a fatal error, said already, or
 * a stop signal: a job that came is handed back).
 */
static int
run_slot_take_prefetched(struct run_slot *s, struct client_job *cj,
    char **cause)
{
	struct run_job		 j;
	struct client_rx	 rx;
	const char		*data;
	ssize_t			 n;
	int			 r;

	memset(cj, 0, sizeof *cj);
	if (run_slot_settle(s) != 0)
		return s->lost && s->status == 0 ? 2 : 3;
	s->prefetched = 0;
	r = client_take_reply(s->c, cj, cause);
	if (r == 0 && client_status(s->c) == JQ_EXIT_TIMEOUT) {
		free(*cause);
		*cause = NULL;
		return 2;
	}
	if (r != 1 || !run_stop)
		return r;
	if (run_stop == 2) {
		/* No time to read its data: closing hands the job back. */
		client_job_free(cj);
		run_slot_disconnect(s);
		return 3;
	}
	/* The first stop: read the data to its end and say RELEASE. */
	client_rx_init(&rx);
	while ((n = client_rx_next(s->c, &rx, &data, cause)) > 0)
		;
	memset(&j, 0, sizeof j);
	j.cj = cj;
	j.label = run_label(cj->name);
	if (n < 0 || client_send(s->c, cause, "RELEASE %s", cj->id) != 0)
		run_slot_fatal(s, *cause);
	else
		run_slot_owe(s, OWED_RELEASE, &j);
	*cause = NULL;
	free(j.label);
	client_job_free(cj);
	return 3;
}

/* A slot process: take and run jobs until none remains or told to stop. */
static int
run_slot_main(const struct run_config *cfg, const char *worker,
    uint64_t *counter, const sigset_t *mask, pid_t parent)
{
	struct run_slot		 s;
	struct client_job	 cj;
	char			*cause = NULL, *enc;
	int			 status, r;

	memset(&s, 0, sizeof s);
	s.cfg = cfg;
	s.worker = xstrdup(worker);
	s.counter = counter;
	run_sigaction(SIGINT, SIG_IGN);
	run_sigaction(SIGTERM, SIG_IGN);
	run_sigaction(SIGHUP, SIG_IGN);
	run_sigaction(SIGUSR1, run_on_signal);
	run_sigaction(SIGUSR2, run_on_signal);
	if (pipe2(run_wake, O_CLOEXEC | O_NONBLOCK) == -1)
		err(JQ_EXIT_IO, "pipe");
#ifdef __linux__
	/* A parent killed outright must not leave slots running on their own:
	 * its death stops the slot as a second SIGTERM would. */
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2) == -1)
		log_warn("prctl");
	if (getppid() != parent)
		run_stop = 2;
#endif
	sigprocmask(SIG_SETMASK, mask, NULL);

	if ((s.c = client_open(cfg->server, s.worker, &status, &cause)) == NULL) {
		log_warnx("%s", cause);
		free(cause);
		free(s.worker);
		return status;
	}
	if (cfg->match != NULL) {
		enc = proto_encode_dup(cfg->match, strlen(cfg->match));
		s.take = xprintf("TAKE hold=conn match=%s", enc);
		free(enc);
	} else
		s.take = xstrdup("TAKE hold=conn");
	s.buf = xmalloc(RUN_BUF);
	s.hold = xmalloc(RUN_BUF);
	s.keepalive_ms = RUN_KEEPALIVE_MS;
	srandom((unsigned)getpid() ^ (unsigned)util_now_ms());

	for (;;) {
		if (s.prefetched) {
			/* The TAKE went out with the last result. */
			r = run_slot_take_prefetched(&s, &cj, &cause);
			if (r == 2)
				continue;	/* every job is held: wait for one */
			if (r == 3)
				break;		/* a stop came: the job went back */
		} else {
			if (run_stop)
				break;
			if (s.c == NULL && run_slot_reconnect(&s) != 0)
				break;
			if (!run_slot_count(&s))
				break;
			if (client_send(s.c, &cause, "%s", s.take) != 0) {
				run_slot_fatal(&s, cause);
				if (s.lost && s.status == 0)
					continue;
				break;
			}
			if (run_slot_settle(&s) != 0) {
				if (s.lost && s.status == 0)
					continue;
				break;
			}
			if ((r = run_slot_wait_input(&s)) != 0)
				break;
			r = client_take_reply(s.c, &cj, &cause);
		}
		if (r == 0) {		/* NOJOB: nothing left for us */
			free(cause);
			break;
		}
		if (r < 0) {
			run_slot_fatal(&s, cause);
			if (s.lost && s.status == 0)
				continue;
			break;
		}
		if (!run_id_ok(cj.id)) {
			enc = run_label(cj.id);
			log_warnx("%s sent a job id that is not 1 to %d letters, "
			    "digits, '-' or '_': \"%s\"; not run",
			    client_server(s.c), RUN_ID_MAX, enc);
			free(enc);
			client_job_free(&cj);
			s.status = JQ_EXIT_PROTOCOL;
			break;
		}
		s.counted = 0;
		r = run_slot_job(&s, &cj);
		client_job_free(&cj);
		if (r == -1 && s.lost && s.status == 0)
			continue;
		if (r != 0)
			break;
	}
	if (s.status == 0 && s.c != NULL && !s.prefetched)
		(void)run_slot_settle(&s);
	client_close(s.c);
	while (s.nowed > 0)
		run_slot_pop(&s);
	free(s.owed);
	free(s.take);
	free(s.buf);
	free(s.hold);
	free(s.inbuf);
	free(s.worker);
	if (s.status != 0)
		return s.status;
	if (run_stop == 2)
		return JQ_EXIT_SIGNAL;
	return s.failed ? JQ_EXIT_FAILED : JQ_EXIT_OK;
}

/*
 * jq-run's parent: fork the slots, relay SIGINT/SIGTERM to them, reap them,
 * and combine their statuses into jq-run's exit status.
 */
int
run_main(const struct run_config *cfg)
{
	sigset_t	 block, old, wait_mask;
	pid_t		*pids, pid;
	int		*statuses, status, result = JQ_EXIT_OK, sent = 0;
	unsigned	 i, alive = 0;
	uint64_t	*counter = NULL;
	char		*base, *worker;
	pid_t		 parent = getpid();

	run_sigaction(SIGPIPE, SIG_IGN);
	base = cfg->worker != NULL ? xstrdup(cfg->worker) : util_worker_name();
	if (cfg->max_jobs > 0) {
		counter = mmap(NULL, sizeof *counter, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (counter == MAP_FAILED)
			err(JQ_EXIT_IO, "mmap");
		*counter = 0;
	}

	/* Slots inherit this mask and unblock once their handlers are set. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	run_sigaction(SIGINT, run_on_signal);
	run_sigaction(SIGTERM, run_on_signal);
	run_sigaction(SIGHUP, run_on_signal);
	run_sigaction(SIGCHLD, run_on_signal);

	pids = xcalloc(cfg->jobs, sizeof *pids);
	statuses = xcalloc(cfg->jobs, sizeof *statuses);
	fflush(NULL);
	for (i = 0; i < cfg->jobs; i++) {
		worker = cfg->jobs > 1 ? xprintf("%s/%u", base, i + 1) :
		    xstrdup(base);
		pid = fork();
		if (pid == 0) {
			free(pids);
			free(statuses);
			status = run_slot_main(cfg, worker, counter, &old,
			    parent);
			free(worker);
			free(base);
			exit(status);
		}
		free(worker);
		if (pid == -1) {
			log_warn("fork");
			statuses[i] = JQ_EXIT_IO << 8;
			pids[i] = -1;
			continue;
		}
		pids[i] = pid;
		alive++;
	}
	free(base);

	wait_mask = old;
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGHUP);
	sigdelset(&wait_mask, SIGCHLD);
	sigaddset(&wait_mask, SIGUSR1);
	sigaddset(&wait_mask, SIGUSR2);
	for (;;) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (i = 0; i < cfg->jobs; i++)
				if (pids[i] == pid) {
					statuses[i] = status;
					pids[i] = -1;
					alive--;
				}
		if (alive == 0)
			break;
		if (run_signals > sent && sent < 2) {
			sent = run_signals >= 2 ? 2 : 1;
			if (cfg->verbose)
				log_warnx(sent == 1 ? "stopping: running jobs "
				    "finish first (signal again to stop now)" :
				    "stopping now: running jobs are handed back");
			for (i = 0; i < cfg->jobs; i++)
				if (pids[i] > 0)
					kill(pids[i], sent == 1 ? SIGUSR1 :
					    SIGUSR2);
		}
		sigsuspend(&wait_mask);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);

	for (i = 0; i < cfg->jobs; i++) {
		status = statuses[i];
		if (WIFSIGNALED(status)) {
			log_warnx("worker slot %u killed by signal %d", i + 1,
			    WTERMSIG(status));
			status = JQ_EXIT_IO;
		} else
			status = WEXITSTATUS(status);
		if (status == JQ_EXIT_FAILED && result == JQ_EXIT_OK)
			result = JQ_EXIT_FAILED;
		else if (status > JQ_EXIT_FAILED && status != JQ_EXIT_SIGNAL &&
		    result <= JQ_EXIT_FAILED)
			result = status;
	}
	if (run_signals > 0)
		result = JQ_EXIT_SIGNAL;
	if (counter != NULL)
		munmap(counter, sizeof *counter);
	free(pids);
	free(statuses);
	return result;
}
