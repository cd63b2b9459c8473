/*
 * run.c: jq-run's worker.
 *
 * Its rooms, in the order the calls go (each only calls those below it):
 * the parent (run_main), the slots (run_slot_*), one job (run_job_*), and
 * a command's output (run_lines_*, run_tail_*, run_rmtree); the signal
 * state (run_on_signal) is used by all.  A job's steps return a verdict
 * and leave the connection's state (fatal errors, owed replies,
 * reconnecting, prefetching) to the slot.  Each room's notes open its
 * section below.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
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
#define RUN_TAIL	JQ_MSG_KEEP	/* stderr bytes kept for FAIL */

/* runsig.c: this process's signal state; the handler touches nothing else. */
extern volatile sig_atomic_t	run_signals;	/* parent: SIGINT/TERM/HUP seen */
extern volatile sig_atomic_t	run_stop;	/* slot: 1 SIGUSR1, 2 SIGUSR2 */
extern volatile sig_atomic_t	run_child;	/* SIGCHLD seen */
extern int			run_wake[2];	/* slot: self-pipe */
void	 run_on_signal(int);
void	 run_sigaction(int, void (*)(int));
void	 run_drain_wake(void);

/* relay.c: a stream copied to one of our descriptors line by line. */
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
void	 run_lines_init(struct run_lines *, int, const char *);
void	 run_lines_add(struct run_lines *, const char *, size_t);
void	 run_lines_end(struct run_lines *);
void	 run_tail_add(struct run_tail *, const char *, size_t);
size_t	 run_tail_get(const struct run_tail *, char *);
int	 run_rmtree(const char *);
char	*run_label(const char *);

/*
 * runjob.c: one job.  Each step returns what the slot must do next.
 */
enum run_verdict {
	RUN_DONE,		/* the step is over: go on */
	RUN_FATAL,		/* a local failure, said already: exit JQ_EXIT_IO */
	RUN_LOST,		/* the connection failed (j->cause, if set, says how)
				 * or, from run_job_offline, the job cannot run on */
	RUN_STOPPED,		/* SIGUSR2: kill the command, hand the job back */
	RUN_IDLE,		/* the server has not heard from us for a while:
				 * the slot sends a keep-alive, then steps again */
	RUN_SOCKET		/* the server sent something that is not payload
				 * (a reply owed, or the connection closing): the
				 * slot reads it, then steps again */
};

/*
 * What a slot lends the job it runs.  The job reads and writes through c
 * but never changes it: only the slot connects, drops the connection (c
 * is then NULL) and reads replies.  The buffers are reused job after job.
 */
struct run_link {
	const struct run_config	*cfg;
	char			*worker;
	struct client		*c;		/* NULL while the server is away */
	uint64_t		 keepalive_ms;	/* a third of the job's lease */
	char			*buf;		/* RUN_BUF: a read of stdout, stderr */
	char			*hold;		/* RUN_BUF: stdout held before the PUT */
	char			*inbuf;		/* payload bytes waiting for stdin */
	size_t			 insize;
};

/* The state of the job a slot runs. */
struct run_job {
	struct run_link		*link;		/* the slot's */
	struct client_job	*cj;
	char			*label;		/* the name, printable, for messages */
	char			*dir;		/* T */
	char			*in;		/* T/in/BASENAME or NULL */
	char			*out;		/* T/out/STEM[.EXT] or NULL */
	int			 in_fd;		/* <in> while it is received, or -1 */
	struct spawn		 sp;
	int			 started;	/* sp holds a process */
	struct client_rx	 rx;
	int			 rx_done;	/* payload read to its END */
	size_t			 inlen, inoff;	/* bytes of link->inbuf for stdin */
	struct client_tx	 tx;
	int			 put_started;	/* PUT line sent, payload open */
	size_t			 held;		/* bytes of stdout in link->hold */
	size_t			 unsent;	/* bytes of link->buf lost with the
						 * PUT they began: for the spool */
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
	char			*cause;		/* RUN_LOST: why; the slot takes it */
};

/* How a job that ran to its end is reported. */
struct run_outcome {
	int	 ok;			/* a result goes out (PUT), else FAIL */
	char	 how[64];		/* for messages: "exit 1", "timed out" */
	char	 kv[64];		/* FAIL's status field, "" for none */
	char	*reason;		/* our own line after the stderr tail */
	int	 fd;			/* ok: the result file, or -1 (stdout) */
};

void	 run_job_init(struct run_job *, struct run_link *, struct client_job *);
enum run_verdict run_job_prepare(struct run_job *);
enum run_verdict run_job_receive(struct run_job *);
enum run_verdict run_job_spawn(struct run_job *);
enum run_verdict run_job_loop(struct run_job *, int);
enum run_verdict run_job_offline(struct run_job *);
int	 run_job_unreported(const struct run_job *);
void	 run_job_outcome(struct run_job *, struct run_outcome *);
char	*run_job_fail_msg(const struct run_job *, const char *, size_t *);
int	 run_job_resend(struct run_job *);
void	 run_job_abandon(struct run_job *);
void	 run_job_kill(struct run_job *);
void	 run_job_free(struct run_job *);

/* slot.c: a slot process, which takes jobs and runs them one at a time. */
int	 run_slot_main(const struct run_config *, const char *, uint64_t *,
	    const sigset_t *, pid_t);

/* ==== runsig.c ==== */

/*
 * runsig.c: the signal state of a jq-run process (the parent or a slot).
 *
 * The handler only notes what came and writes a byte to the self-pipe that
 * a slot's poll loops watch; the parent, which has no pipe, waits in
 * sigsuspend().  What each signal means is said in run.c.
 */

volatile sig_atomic_t	run_signals;	/* parent: SIGINT/TERM/HUP seen */
volatile sig_atomic_t	run_stop;	/* slot: 1 SIGUSR1, 2 SIGUSR2 */
volatile sig_atomic_t	run_child;	/* SIGCHLD seen */
int			run_wake[2] = { -1, -1 };	/* slot: self-pipe */

/* Note a signal and wake the poll loop; nothing else. */
void
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
void
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
void
run_drain_wake(void)
{
	char	 buf[64];

	while (read(run_wake[0], buf, sizeof buf) > 0)
		;
}

/* ==== relay.c ==== */

/*
 * relay.c: what jq-run does with a command's output and leftovers.
 *
 * A stream that is not a result is copied to one of our descriptors line by
 * line, each line prefixed by the job's name and written in one write, so
 * that the lines of slots running side by side do not mix.  The last
 * RUN_TAIL bytes of stderr are kept for the FAIL message.  A job's
 * directory is removed without following the links a command may leave.
 */

#define RUN_LINE_MAX	4096		/* longer lines are split */
#define RUN_LABEL_MAX	200		/* bytes of a job name in messages */

/* Start copying a stream to fd, each line prefixed by "label: ". */
void
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
void
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
void
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
void
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
size_t
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

/* Remove the tree at path (see run_rmtree_at).  Returns 0 or -1 (errno). */
int
run_rmtree(const char *path)
{
	return run_rmtree_at(AT_FDCWD, path);
}

/* A printable copy of a job name for messages: control bytes become '?'. */
char *
run_label(const char *name)
{
	char	*s = xstrndup(name, RUN_LABEL_MAX), *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	return s;
}

/* ==== runjob.c ==== */

/*
 * runjob.c: one job of a jq-run slot, from its temp dir to its outcome.
 *
 *   T = mkdtemp(TMPDIR/jq-run.XXXXXX), with T/in and T/out
 *   <in>:  the payload is received into T/in/BASENAME first;
 *          otherwise it is streamed into the command's stdin while it runs
 *   <out>: after exit 0, T/out/STEM[.EXT] is sent as the result;
 *          otherwise stdout is streamed back as the result while it runs
 *          (PUT on the first byte past RUN_BUF held back; ABORT then FAIL
 *          if the command fails)
 *   stderr: copied to our stderr as "NAME: line", its tail kept for FAIL
 *   T is removed afterwards, whatever happened (unless --keep-tmp)
 *
 * The poll loop never holds more than one read of the socket (at most the
 * client's input buffer) and one read of stdout in memory, so jobs of any
 * size stream through.  A job is finished once the command has exited, its
 * stdout and stderr reached EOF and its payload has been read to the end (a
 * command that ignores stdin gets EPIPE on its pipe, which we take as
 * "discard the rest").
 *
 * The connection is the slot's (struct run_link).  A step that needs the
 * slot returns a verdict (run.h) and is called again once the slot has
 * acted: a keep-alive is due, the server sent a reply, the connection
 * failed.  After a loss the slot asks run_job_offline() whether the
 * command may run on without the server: only when its data was read in
 * full and no part of its result has been sent; its stdout then goes to a
 * spool file in T, delivered after reconnecting.
 */

#define RUN_GRACE_MS	5000		/* SIGTERM to SIGKILL on timeout */
#ifndef POLLRDHUP
#define POLLRDHUP	0		/* then only POLLHUP tells */
#endif

/* The descriptors one poll() of the loop watches, and where each one sits. */
struct run_poll {
	struct pollfd	 fd[5];
	nfds_t		 n;
	int		 sock, in, out, err;	/* index in fd, or -1 */
	int		 sock_in;	/* 1: input awaited, 0: only the closing */
};

/* Start the state of a job the slot has taken (it keeps owning cj). */
void
run_job_init(struct run_job *j, struct run_link *link, struct client_job *cj)
{
	memset(j, 0, sizeof *j);
	j->link = link;
	j->cj = cj;
	j->in_fd = j->spool_fd = -1;
	j->sp.pid = -1;
	j->sp.fd_in = j->sp.fd_out = j->sp.fd_err = -1;
	j->start = j->last_sent = util_now_ms();
	j->label = run_label(cj->name);
	client_rx_init(&j->rx);
	if (link->cfg->verbose)
		log_warnx("%s: job %s: started (attempt %u)", j->label, cj->id,
		    cj->attempt);
}

/* Make the directory sub in T; its path, or NULL (said). */
static char *
run_job_subdir(const struct run_job *j, const char *sub)
{
	char	*path = xprintf("%s/%s", j->dir, sub);

	if (mkdir(path, 0700) == -1) {
		log_warn("mkdir %s", path);
		free(path);
		return NULL;
	}
	return path;
}

/* Make T (and T/in, T/out) and the <in>/<out> paths. */
enum run_verdict
run_job_prepare(struct run_job *j)
{
	const struct run_config	*cfg = j->link->cfg;
	int			 uses = template_uses(cfg->tpl);
	const char		*ext = template_out_ext(cfg->tpl);
	char			*base, *stem, *sub;
	enum run_verdict	 v = RUN_FATAL;

	j->dir = xprintf("%s/jq-run.XXXXXX", cfg->tmpdir);
	if (mkdtemp(j->dir) == NULL) {
		log_warn("mkdtemp %s", j->dir);
		free(j->dir);
		j->dir = NULL;
		return RUN_FATAL;
	}
	base = template_basename(j->cj->name);
	stem = template_stem(base);
	if (uses & TEMPLATE_USES_IN) {
		if ((sub = run_job_subdir(j, "in")) == NULL)
			goto out;
		j->in = xprintf("%s/%s", sub, base);
		free(sub);
	}
	if (uses & TEMPLATE_USES_OUT) {
		if ((sub = run_job_subdir(j, "out")) == NULL)
			goto out;
		j->out = ext == NULL ? xprintf("%s/%s", sub, stem) :
		    xprintf("%s/%s.%s", sub, stem, ext);
		free(sub);
	}
	v = RUN_DONE;
out:
	free(base);
	free(stem);
	return v;
}

/* Is a keep-alive due: has the server not heard from us for a while? */
static int
run_job_idle(const struct run_job *j, uint64_t now)
{
	return j->link->c != NULL && now >= j->last_sent +
	    j->link->keepalive_ms;
}

/*
 * Receive the payload into the <in> file.  RUN_DONE once all of it is
 * there; RUN_IDLE (call again after the keep-alive), RUN_LOST, RUN_FATAL
 * or RUN_STOPPED (the payload is left unread: the connection will close).
 */
enum run_verdict
run_job_receive(struct run_job *j)
{
	const char	*data;
	ssize_t		 n;

	if (j->in_fd == -1) {
		j->in_fd = open(j->in, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (j->in_fd == -1) {
			log_warn("%s", j->in);
			return RUN_FATAL;
		}
	}
	while ((n = client_rx_next(j->link->c, &j->rx, &data,
	    &j->cause)) > 0) {
		if (util_write_all(j->in_fd, data, (size_t)n) != 0) {
			log_warn("%s", j->in);
			return RUN_FATAL;
		}
		if (run_stop == 2)
			return RUN_STOPPED;
		if (run_job_idle(j, util_now_ms()))
			return RUN_IDLE;
	}
	close(j->in_fd);
	j->in_fd = -1;
	if (n < 0)
		return RUN_LOST;
	j->rx_done = 1;
	return RUN_DONE;
}

/* Start the command for the job, its stderr (and stdout) relayed to ours. */
enum run_verdict
run_job_spawn(struct run_job *j)
{
	const struct run_config	*cfg = j->link->cfg;
	struct template_vars	 vars;
	char			**argv, **envp, *cause = NULL;
	char			*set[7];
	int			 uses = template_uses(cfg->tpl), i, rc;

	run_lines_init(&j->err_lines, 2, j->label);
	if (j->out != NULL)
		run_lines_init(&j->out_lines, 1, j->label);
	vars.in = j->in;
	vars.out = j->out;
	vars.name = j->cj->name;
	vars.id = j->cj->id;
	argv = template_expand(cfg->tpl, &vars);
	set[0] = xprintf("JQ_SERVER=%s", client_server(j->link->c));
	set[1] = xprintf("JQ_JOB_ID=%s", j->cj->id);
	set[2] = xprintf("JQ_JOB_NAME=%s", j->cj->name);
	set[3] = xprintf("JQ_ATTEMPT=%u", j->cj->attempt);
	set[4] = xprintf("JQ_WORKER=%s", j->link->worker);
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
		return RUN_FATAL;
	}
	j->started = 1;
	if (cfg->timeout_ms > 0)
		j->deadline = util_now_ms() + cfg->timeout_ms;
	if (j->in != NULL)
		j->rx_done = 1;		/* nothing goes to stdin */
	return RUN_DONE;
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
run_job_feed(struct run_job *j)
{
	ssize_t	 n;

	while (j->sp.fd_in != -1 && j->inoff < j->inlen) {
		n = write(j->sp.fd_in, j->link->inbuf + j->inoff,
		    j->inlen - j->inoff);
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
static enum run_verdict
run_job_rx(struct run_job *j)
{
	struct run_link	*l = j->link;
	const char	*data;
	ssize_t		 n;

	n = client_rx_next(l->c, &j->rx, &data, &j->cause);
	if (n < 0)
		return RUN_LOST;
	if (n == 0) {
		j->rx_done = 1;
		if (j->inlen == 0)
			run_job_close_stdin(j);
		return RUN_DONE;
	}
	if (j->sp.fd_in == -1)
		return RUN_DONE;	/* the command stopped reading */
	if ((size_t)n > l->insize) {
		free(l->inbuf);
		l->inbuf = xmalloc((size_t)n);
		l->insize = (size_t)n;
	}
	memcpy(l->inbuf, data, (size_t)n);
	j->inlen = (size_t)n;
	j->inoff = 0;
	run_job_feed(j);
	return RUN_DONE;
}

/* Offline: append n bytes of link->buf (the command's stdout) to the spool. */
static enum run_verdict
run_job_spool(struct run_job *j, size_t n)
{
	if (util_write_all(j->spool_fd, j->link->buf, n) != 0) {
		log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
		return RUN_FATAL;
	}
	return RUN_DONE;
}

/*
 * The server was lost while the job ran (the slot dropped the connection):
 * go on without it if its data was read in full and no part of its result
 * has been sent (stdout then goes to a spool file, the bytes held back and
 * those lost with the first PUT first).  RUN_DONE it runs on; RUN_LOST it
 * is given up (said); RUN_FATAL.
 */
enum run_verdict
run_job_offline(struct run_job *j)
{
	size_t	 unsent = j->unsent;

	j->unsent = 0;
	if (j->offline)
		return RUN_DONE;
	if (!j->rx_done || j->put_started) {
		log_warnx("%s: job %s: given up: the connection was lost while %s",
		    j->label, j->cj->id, !j->rx_done ? "its data arrived" :
		    "its result was being sent");
		return RUN_LOST;
	}
	if (j->out == NULL) {
		j->spool = xprintf("%s/.jq-run-result.XXXXXX", j->dir);
		if ((j->spool_fd = mkostemp(j->spool, O_CLOEXEC)) == -1) {
			log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
			free(j->spool);
			j->spool = NULL;
			return RUN_FATAL;
		}
		if (j->held > 0 && util_write_all(j->spool_fd, j->link->hold,
		    j->held) != 0) {
			log_warn("%s: job %s: %s", j->label, j->cj->id, j->spool);
			return RUN_FATAL;
		}
		j->held = 0;
	}
	j->offline = 1;
	log_warnx("%s: job %s: runs on; its result goes to the server after "
	    "reconnecting", j->label, j->cj->id);
	return unsent > 0 ? run_job_spool(j, unsent) : RUN_DONE;
}

/*
 * Send n bytes of stdout (in link->buf) as part of the result, the PUT line
 * and the bytes held back first.  Lost with the first bytes, the whole
 * result is still ours: it can go to the spool (run_job_offline).
 */
static enum run_verdict
run_job_stream(struct run_job *j, size_t n)
{
	struct run_link	*l = j->link;
	int		 first = !j->put_started;

	if (first) {
		client_tx_init(&j->tx);
		j->put_started = 1;
	}
	if ((first && (client_send(l->c, &j->cause, "PUT %s", j->cj->id) != 0 ||
	    (j->held > 0 && client_tx_data(l->c, &j->tx, l->hold, j->held,
	    &j->cause) != 0))) ||
	    client_tx_data(l->c, &j->tx, l->buf, n, &j->cause) != 0 ||
	    client_flush(l->c, &j->cause) != 0) {
		if (first) {
			j->put_started = 0;
			j->unsent = n;
		}
		return RUN_LOST;
	}
	j->held = 0;
	j->last_sent = util_now_ms();
	return RUN_DONE;
}

/* Read the command's stdout: the result, or lines for our stdout. */
static enum run_verdict
run_job_stdout(struct run_job *j)
{
	struct run_link	*l = j->link;
	ssize_t		 n;

	n = read(j->sp.fd_out, l->buf, RUN_BUF);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return RUN_DONE;
	if (n <= 0) {
		close(j->sp.fd_out);
		j->sp.fd_out = -1;
		run_lines_end(&j->out_lines);
		return RUN_DONE;
	}
	if (j->out != NULL) {
		run_lines_add(&j->out_lines, l->buf, (size_t)n);
		return RUN_DONE;
	}
	if (j->offline)
		return run_job_spool(j, (size_t)n);
	/*
	 * The first RUN_BUF bytes are held back: a small result then goes
	 * out whole when the command ends, behind the next job's TAKE (see
	 * run_slot_prefetch).  Past that it streams, sent at once.
	 */
	if (!j->put_started && j->held + (size_t)n <= RUN_BUF) {
		memcpy(l->hold + j->held, l->buf, (size_t)n);
		j->held += (size_t)n;
		return RUN_DONE;
	}
	return run_job_stream(j, (size_t)n);
}

/* Read the command's stderr: copy it out, keep its tail. */
static void
run_job_stderr(struct run_job *j)
{
	ssize_t	 n;

	n = read(j->sp.fd_err, j->link->buf, RUN_BUF);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(j->sp.fd_err);
		j->sp.fd_err = -1;
		run_lines_end(&j->err_lines);
		return;
	}
	run_tail_add(&j->tail, j->link->buf, (size_t)n);
	run_lines_add(&j->err_lines, j->link->buf, (size_t)n);
}

/*
 * Apply --timeout: SIGTERM to the group, SIGKILL after the grace.  It
 * counts until the job is finished, so a background child that keeps
 * stdout open after the command exited is killed too.
 */
static void
run_job_check_time(struct run_job *j, uint64_t now)
{
	if (j->deadline != 0 && !j->timed_out && now >= j->deadline) {
		j->timed_out = 1;
		j->kill_at = now + RUN_GRACE_MS;
		if (j->link->cfg->verbose)
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
run_job_poll_timeout(const struct run_job *j, uint64_t now)
{
	uint64_t	 at, keep;

	at = j->kill_at != 0 ? j->kill_at : !j->timed_out ? j->deadline : 0;
	keep = j->last_sent + j->link->keepalive_ms;
	if (j->link->c != NULL && (at == 0 || keep < at))
		at = keep;
	if (at == 0)
		return -1;
	return at <= now ? 0 : at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

/* Watch fd for events; its index in p->fd. */
static int
run_job_poll_add(struct run_poll *p, int fd, short events)
{
	p->fd[p->n].fd = fd;
	p->fd[p->n].events = events;
	return (int)p->n++;
}

/*
 * What the loop waits for: the self-pipe; the socket for payload, for the
 * replies owed once the payload ended, or else only for the server leaving
 * (not inside a payload, whose rest stays unread); the command's pipes.
 */
static void
run_job_poll_set(const struct run_job *j, int owed, struct run_poll *p)
{
	struct client	*c = j->link->c;

	p->n = 0;
	p->sock = p->in = p->out = p->err = -1;
	(void)run_job_poll_add(p, run_wake[0], POLLIN);
	p->sock_in = c != NULL && ((!j->rx_done && j->inlen == 0) ||
	    (j->rx_done && owed));
	if (p->sock_in || (c != NULL && j->rx_done))
		p->sock = run_job_poll_add(p, client_fd(c), p->sock_in ?
		    POLLIN : POLLRDHUP);
	if (j->sp.fd_in != -1 && j->inlen > 0)
		p->in = run_job_poll_add(p, j->sp.fd_in, POLLOUT);
	if (j->sp.fd_out != -1)
		p->out = run_job_poll_add(p, j->sp.fd_out, POLLIN);
	if (j->sp.fd_err != -1)
		p->err = run_job_poll_add(p, j->sp.fd_err, POLLIN);
}

/* Act on what poll() found.  RUN_DONE to go round again. */
static enum run_verdict
run_job_poll_act(struct run_job *j, const struct run_poll *p)
{
	enum run_verdict	 v;

	if (p->fd[0].revents != 0)
		run_drain_wake();
	if (p->in != -1 && p->fd[p->in].revents != 0)
		run_job_feed(j);
	if (p->out != -1 && p->fd[p->out].revents != 0 &&
	    (v = run_job_stdout(j)) != RUN_DONE)
		return v;
	if (p->err != -1 && p->fd[p->err].revents != 0)
		run_job_stderr(j);
	if (p->sock == -1 || j->link->c == NULL || p->fd[p->sock].revents == 0)
		return RUN_DONE;
	if (p->sock_in && !j->rx_done)
		return run_job_rx(j);
	return RUN_SOCKET;		/* a reply owed, or a hangup */
}

/* Has the job finished: command exited, output at EOF, payload read? */
static int
run_job_finished(struct run_job *j)
{
	if (!j->sp.exited || j->sp.fd_out != -1 || j->sp.fd_err != -1 ||
	    !j->rx_done)
		return 0;
	run_job_close_stdin(j);		/* a grandchild may hold it */
	spawn_close_fds(&j->sp);
	run_lines_end(&j->out_lines);
	run_lines_end(&j->err_lines);
	return 1;
}

/*
 * Run the job's command to its end, moving bytes between the socket and
 * the command's pipes; owed says whether the server owes replies.  RUN_DONE
 * once finished; RUN_IDLE or RUN_SOCKET (call again once the slot acted),
 * RUN_LOST, RUN_FATAL or RUN_STOPPED.
 */
enum run_verdict
run_job_loop(struct run_job *j, int owed)
{
	struct run_poll		 p;
	enum run_verdict	 v;
	uint64_t		 now;

	for (;;) {
		if (run_stop == 2)
			return RUN_STOPPED;
		if (run_stop == 1 && !j->stop_noted) {
			j->stop_noted = 1;
			if (j->link->cfg->verbose)
				log_warnx("%s: job %s: last job of this slot",
				    j->label, j->cj->id);
		}
		if (run_child) {
			run_child = 0;
			spawn_reap(&j->sp);
		}
		now = util_now_ms();
		run_job_check_time(j, now);
		if (run_job_idle(j, now))
			return RUN_IDLE;
		/* Owed replies (TOUCHes, the last job's result when its TAKE
		 * was prefetched) come after the payload: the slot reads them
		 * once it ended. */
		if (j->rx_done && owed && j->link->c != NULL &&
		    client_buffered(j->link->c) > 0)
			return RUN_SOCKET;
		if (run_job_finished(j))
			return RUN_DONE;
		/* Payload bytes already buffered: no need to poll for them. */
		if (!j->rx_done && j->inlen == 0 &&
		    client_buffered(j->link->c) > 0) {
			if ((v = run_job_rx(j)) != RUN_DONE)
				return v;
			continue;
		}
		run_job_poll_set(j, owed, &p);
		if (poll(p.fd, p.n, run_job_poll_timeout(j, now)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			return RUN_FATAL;
		}
		if ((v = run_job_poll_act(j, &p)) != RUN_DONE)
			return v;
	}
}

/*
 * A job that failed or timed out while the server was away is not
 * reported: the restarted server runs it again, and a late failure must
 * not cancel another worker's result.  1 when so (said), else 0.
 */
int
run_job_unreported(const struct run_job *j)
{
	char	 how[64];

	if (!j->offline)
		return 0;
	if (j->timed_out) {
		log_warnx("%s: job %s timed out while the server was away; not "
		    "reported, the server runs it again", j->label, j->cj->id);
		return 1;
	}
	if (spawn_status(j->sp.status, how, sizeof how) != 0) {
		log_warnx("%s: job %s failed (%s) while the server was away; not "
		    "reported, the server runs it again", j->label, j->cj->id,
		    how);
		return 1;
	}
	return 0;
}

/*
 * How the finished job is reported: its status and, after exit 0, its
 * result file opened (the <out> file or the spool; stdout is in the hold
 * buffer or sent already).  The caller closes o->fd and frees o->reason.
 */
void
run_job_outcome(struct run_job *j, struct run_outcome *o)
{
	const char	*file = j->out != NULL ? j->out : j->spool, *why = NULL;
	int		 status = j->sp.status;
	struct stat	 st;

	if (j->spool_fd != -1) {
		close(j->spool_fd);
		j->spool_fd = -1;
	}
	if (j->offline)
		j->put_started = 0;	/* nothing sent since the loss */
	o->fd = -1;
	o->reason = NULL;
	o->ok = spawn_status(status, o->how, sizeof o->how) == 0;
	if (j->timed_out) {
		o->ok = 0;
		snprintf(o->how, sizeof o->how, "timed out");
		snprintf(o->kv, sizeof o->kv, "timeout=1");
		o->reason = xprintf("jq-run: timed out after %llu ms",
		    (unsigned long long)j->link->cfg->timeout_ms);
	} else if (WIFSIGNALED(status))
		snprintf(o->kv, sizeof o->kv, "signal=%d", WTERMSIG(status));
	else
		snprintf(o->kv, sizeof o->kv, "exit=%d", WEXITSTATUS(status));
	if (!o->ok || file == NULL)
		return;
	o->fd = open(file, O_RDONLY | O_CLOEXEC);
	if (o->fd == -1 || fstat(o->fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	if (why == NULL)
		return;
	if (o->fd != -1)
		close(o->fd);
	o->fd = -1;
	o->ok = 0;
	o->kv[0] = '\0';		/* exited 0: no status to report */
	if (j->out != NULL) {
		snprintf(o->how, sizeof o->how, "no output file");
		o->reason = xprintf("jq-run: the command did not write <out> "
		    "(%s)", strrchr(j->out, '/') + 1);
	} else {			/* our own spool file */
		snprintf(o->how, sizeof o->how, "unreadable output");
		o->reason = xprintf("jq-run: %s: %s", j->spool, why);
	}
}

/*
 * The FAIL message: the tail of stderr, then our own reason (if any) on a
 * line of its own.  Not NUL-terminated: its length goes to *len.
 */
char *
run_job_fail_msg(const struct run_job *j, const char *reason, size_t *len)
{
	char	*msg = xmalloc(RUN_TAIL + (reason ? strlen(reason) + 2 : 0));
	size_t	 n = run_tail_get(&j->tail, msg);

	if (reason != NULL) {
		if (n > 0 && msg[n - 1] != '\n')
			msg[n++] = '\n';
		memcpy(msg + n, reason, strlen(reason));
		n += strlen(reason);
	}
	*len = n;
	return msg;
}

/*
 * The connection was lost while the result went out.  From a file (<out>
 * or the spool) it can go again after reconnecting: 1 (said), else 0.
 */
int
run_job_resend(struct run_job *j)
{
	if (j->out == NULL && j->spool == NULL)
		return 0;
	log_warnx("%s: job %s: sending the result again", j->label, j->cj->id);
	j->offline = 1;
	return 1;
}

/* Kill the command's process group, if it runs, and reap it. */
void
run_job_kill(struct run_job *j)
{
	if (j->started) {
		spawn_kill(&j->sp, SIGKILL);
		spawn_wait(&j->sp);
	}
}

/* SIGUSR2 during the job: kill the command (the slot hands the job back). */
void
run_job_abandon(struct run_job *j)
{
	run_job_kill(j);
	if (j->link->cfg->verbose)
		log_warnx("%s: job %s: stopped, handing it back", j->label,
		    j->cj->id);
}

/* Close what the job holds, remove T (or, with --keep-tmp, say where it
 * is) and free everything of the job but the client_job. */
void
run_job_free(struct run_job *j)
{
	spawn_close_fds(&j->sp);
	if (j->in_fd != -1)
		close(j->in_fd);
	if (j->spool_fd != -1)
		close(j->spool_fd);
	if (j->dir != NULL) {
		if (j->link->cfg->keep_tmp)
			log_warnx("%s: job %s: kept %s", j->label, j->cj->id,
			    j->dir);
		else if (run_rmtree(j->dir) == -1)
			log_warn("%s: cannot remove %s", j->label, j->dir);
	}
	run_lines_end(&j->out_lines);
	run_lines_end(&j->err_lines);
	free(j->label);
	free(j->dir);
	free(j->in);
	free(j->out);
	free(j->spool);
	free(j->cause);
}

/* ==== slot.c ==== */

/*
 * slot.c: a jq-run slot, one process that takes jobs and runs them one
 * after the other on its own blocking connection.
 *
 * TAKE says hold=conn, so the server takes back the jobs of a slot that
 * dies.  A job costs one round trip: the result (PUT or FAIL, payload and
 * all) and the next TAKE leave in one write, and the replies to both are
 * read together.  Replies come in the order the requests went; the slot
 * keeps a ring of the replies it is owed and reads them when it must.
 *
 * The slot owns the connection; a job (runjob.c) only moves payload and
 * result bytes through it.  Each step of a job returns a verdict, and the
 * slot does what touches the connection's state: keep-alives, replies,
 * dropping the connection and reconnecting, prefetching the next job,
 * sending the result or the failure.
 *
 * Leases: while a job runs, a slot that has sent nothing for a third of the
 * job's lease (from the JOB line; RUN_KEEPALIVE_MS if it gave none) sends
 * TOUCH (whose reply tells the lease too), or "DATA 0" inside a result
 * being streamed.
 *
 * A lost server (kill -9, restart): a slot reconnects with exponential
 * backoff (100 ms doubling to 5 s, with jitter) for at most --reconnect,
 * then takes jobs again.  A command running when the connection dropped
 * runs on if run_job_offline() allows; its result is sent after
 * reconnecting (the server keeps the first result it gets; a refusal is
 * logged).  A failure seen while away is not reported: the restarted
 * server runs the job again, so a late failure can never cancel another
 * worker's result.  Otherwise the command is killed and the job, which the
 * restarted server has waiting again, runs again.
 *
 * --max-jobs N is exact across slots: a counter in a shared anonymous
 * mapping, incremented atomically by a slot before each TAKE.
 */

#define RUN_KEEPALIVE_MS 500		/* when the JOB line tells no lease */
#define RUN_BACKOFF_MIN_MS 100		/* first reconnection delay */
#define RUN_BACKOFF_MAX_MS 5000		/* longest reconnection delay */
#define RUN_ID_MAX	64		/* bytes of a job id we accept */

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
	struct run_link		 link;		/* lent to the running job */
	char			*take;		/* the TAKE request line */
	uint64_t		*counter;	/* shared --max-jobs counter or NULL */
	int			 status;	/* exit status once fatal */
	int			 failed;	/* some job failed */
	struct run_owed		*owed;		/* ring of replies owed, oldest first */
	size_t			 owed_cap, owed_head, nowed;
	int			 prefetched;	/* a TAKE wait=0 went with the result */
	size_t			 before_take;	/* owed replies that precede its reply */
	int			 counted;	/* the next TAKE is counted (--max-jobs) */
	int			 lost;		/* link.c is NULL: reconnect before use */
};

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

/* Note a reply the server owes (id, label NULL for a TOUCH). */
static void
run_slot_owe(struct run_slot *s, enum run_owed_kind kind, const char *id,
    const char *label)
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
	o->id = id != NULL ? xstrdup(id) : NULL;
	o->label = label != NULL ? xstrdup(label) : NULL;
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
	client_close(s->link.c);
	s->link.c = NULL;
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
	struct client	*c = s->link.c;

	log_warnx("%s", cause);
	free(cause);
	if (c != NULL && client_status(c) == JQ_EXIT_CONNECT &&
	    s->link.cfg->reconnect_ms > 0 && run_stop != 2) {
		run_slot_disconnect(s);
		return -1;
	}
	s->status = c != NULL ? client_status(c) : JQ_EXIT_CONNECT;
	return -1;
}

/* Sleep nap ms, unless SIGUSR2 comes; the slots spread out this way. */
static void
run_slot_nap(uint64_t nap)
{
	struct pollfd	 pfd;
	uint64_t	 now, until = util_now_ms() + nap;

	while ((now = util_now_ms()) < until && run_stop != 2) {
		pfd.fd = run_wake[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)(until - now)) > 0)
			run_drain_wake();
	}
}

/*
 * Connect again after a loss, with exponential backoff and jitter, for at
 * most --reconnect.  0 connected, -1 gave up (status set), 1 SIGUSR2.
 */
static int
run_slot_reconnect(struct run_slot *s)
{
	const struct run_config	*cfg = s->link.cfg;
	uint64_t		 now, end, delay = RUN_BACKOFF_MIN_MS, nap;
	char			*cause = NULL;
	int			 status;

	end = util_now_ms() + cfg->reconnect_ms;
	log_warnx("reconnecting to %s (for at most %llu ms)",
	    net_default_server(cfg->server),
	    (unsigned long long)cfg->reconnect_ms);
	for (;;) {
		if (run_stop == 2)
			return 1;
		s->link.c = client_open(cfg->server, s->link.worker, &status,
		    &cause);
		if (s->link.c != NULL) {
			log_warnx("reconnected to %s", client_server(s->link.c));
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
		run_slot_nap(nap < end - now ? nap : end - now);
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

	if (client_reply(s->link.c, &rest, &cause) == 0) {
		if ((v = proto_word_kv(rest, "lease", &len)) != NULL &&
		    len < sizeof num) {
			memcpy(num, v, len);
			num[len] = '\0';
			if (parse_u64(num, 1, JQ_SECONDS_MAX, &lease) == 0)
				s->link.keepalive_ms = lease * 1000 / 3;
		}
		return 0;
	}
	if (client_status(s->link.c) == JQ_EXIT_CONNECT)
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
	struct client	*c = s->link.c;
	const char	*what;
	char		*cause = NULL, *line;
	int		 rc = 0;

	switch (o->kind) {
	case OWED_TOUCH:
		rc = run_slot_touch_reply(s);
		break;
	case OWED_ABORTED:
		if ((line = client_line(c, &cause)) == NULL)
			rc = run_slot_fatal(s, cause);
		else if (strncmp(line, "ERR " ERR_ABORTED, 4 +
		    strlen(ERR_ABORTED)) != 0)
			rc = run_slot_fatal(s, xprintf("unexpected reply to "
			    "ABORT: \"%.80s\"", line));
		break;
	default:
		what = o->kind == OWED_RESULT ? "result" :
		    o->kind == OWED_FAILURE ? "failure report" : "release";
		if (client_reply(c, NULL, &cause) == 0)
			break;
		if (client_status(c) == JQ_EXIT_CONNECT) {
			rc = run_slot_fatal(s, cause);
			break;
		}
		log_warnx("%s: job %s: %s not accepted: %s", o->label, o->id,
		    what, cause);
		if (client_status(c) != JQ_EXIT_REFUSED)
			s->failed = 1;
		free(cause);
		break;
	}
	if (s->nowed > 0)		/* (a lost connection emptied the ring) */
		run_slot_pop(s);
	return rc;
}

/*
 * The socket, watched only for its closing while no reply is owed,
 * signalled something: read what is there, which tells a lost connection
 * (or nonsense).  Returns -1.
 */
static int
run_slot_hangup(struct run_slot *s)
{
	char	*cause = NULL, *line;

	if ((line = client_line(s->link.c, &cause)) == NULL)
		return run_slot_fatal(s, cause);
	log_warnx("unexpected message from %s: \"%.80s\"",
	    client_server(s->link.c), line);
	s->status = JQ_EXIT_PROTOCOL;
	return -1;
}

/*
 * Send what is buffered and read the replies owed: all of them, or when a
 * prefetched TAKE is out, those that come before its reply.  0 or -1.
 */
static int
run_slot_settle(struct run_slot *s)
{
	char	*cause = NULL;

	if (client_flush(s->link.c, &cause) != 0)
		return run_slot_fatal(s, cause);
	while (s->link.c != NULL && s->nowed > 0 &&
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
	    1, __ATOMIC_SEQ_CST) >= s->link.cfg->max_jobs)
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

	if (run_stop || s->link.c == NULL || s->prefetched || j->offline ||
	    !run_slot_count(s))
		return 0;
	if (client_send(s->link.c, &cause, "%s wait=0", s->take) != 0)
		return run_slot_fatal(s, cause);
	s->prefetched = 1;
	s->before_take = s->nowed;
	return 0;
}

/*
 * Keep the job's lease alive (the server has not heard from us for a third
 * of it): TOUCH, or inside a result being streamed "DATA 0".  0 or -1.
 */
static int
run_slot_keepalive(struct run_slot *s, struct run_job *j)
{
	struct client	*c = s->link.c;
	char		*cause = NULL;
	int		 rc;

	if (j->put_started)
		rc = client_send(c, &cause, "DATA 0");
	else if ((rc = client_send(c, &cause, "TOUCH %s", j->cj->id)) == 0)
		run_slot_owe(s, OWED_TOUCH, NULL, NULL);
	if (rc != 0 || client_flush(c, &cause) != 0)
		return run_slot_fatal(s, cause);
	j->last_sent = util_now_ms();
	return 0;
}

/*
 * What a job's verdict means for the slot: 0 go on, 1 stopped (SIGUSR2),
 * -1 the job ends: fatal (s->status set), or lost (the connection, if the
 * job said why, is dropped here).  RUN_IDLE and RUN_SOCKET are the
 * callers'.
 */
static int
run_slot_verdict(struct run_slot *s, struct run_job *j, enum run_verdict v)
{
	switch (v) {
	case RUN_DONE:
		return 0;
	case RUN_STOPPED:
		return 1;
	case RUN_LOST:
		if (j->cause != NULL)
			run_slot_fatal(s, j->cause);
		j->cause = NULL;
		return -1;
	default:		/* RUN_FATAL */
		s->status = JQ_EXIT_IO;
		return -1;
	}
}

/*
 * A step of a running job failed (-1).  When that lost the connection, the
 * job may go on without the server (0); otherwise it ends here (-1).
 */
static int
run_slot_runs_on(struct run_slot *s, struct run_job *j)
{
	if (s->status != 0 || !s->lost)
		return -1;
	return run_slot_verdict(s, j, run_job_offline(j));
}

/* Receive the job's payload into its <in> file.  0, -1 or 1 (stopped). */
static int
run_slot_receive(struct run_slot *s, struct run_job *j)
{
	enum run_verdict	 v;

	while ((v = run_job_receive(j)) == RUN_IDLE)
		if (run_slot_keepalive(s, j) != 0)
			return -1;
	return run_slot_verdict(s, j, v);
}

/*
 * Run the job's command to its end (run_job_loop), doing for it what
 * touches the connection.  0 finished, -1 fatal or lost, 1 stopped.
 */
static int
run_slot_watch(struct run_slot *s, struct run_job *j)
{
	enum run_verdict	 v;
	int			 rc;

	for (;;) {
		switch (v = run_job_loop(j, s->nowed > 0)) {
		case RUN_IDLE:
			rc = run_slot_keepalive(s, j);
			break;
		case RUN_SOCKET:
			rc = s->nowed > 0 ? run_slot_reply(s) :
			    run_slot_hangup(s);
			break;
		case RUN_LOST:
			rc = run_slot_verdict(s, j, v);
			break;
		default:		/* finished, stopped or fatal */
			return run_slot_verdict(s, j, v);
		}
		if (rc == -1 && run_slot_runs_on(s, j) == -1)
			return -1;
	}
}

/*
 * The job succeeded: send its result, the <out> or spool file, or the
 * stdout held back (maybe none) when none of it went yet; a streamed
 * result only needs its end.  A file that cannot be read turns the outcome
 * into a failure.  0 or -1.
 */
static int
run_slot_put(struct run_slot *s, struct run_job *j, struct run_outcome *o)
{
	struct client	*c;
	char		*cause = NULL;

	if (o->fd == -1 && j->put_started)
		return 0;
	if (run_slot_prefetch(s, j) != 0)
		return -1;
	c = s->link.c;
	client_tx_init(&j->tx);
	if (client_send(c, &cause, "PUT %s", j->cj->id) != 0)
		return run_slot_fatal(s, cause);
	j->put_started = 1;
	if (o->fd == -1) {
		if (j->held > 0 && client_tx_data(c, &j->tx, s->link.hold,
		    j->held, &cause) != 0)
			return run_slot_fatal(s, cause);
		j->held = 0;
	} else if (client_tx_fd(c, &j->tx, o->fd, &cause) != 0) {
		if (client_status(c) != JQ_EXIT_IO)
			return run_slot_fatal(s, cause);
		o->ok = 0;
		o->kv[0] = '\0';
		snprintf(o->how, sizeof o->how, "unreadable output");
		o->reason = xprintf("jq-run: %s", cause);
		free(cause);
	}
	return 0;
}

/*
 * The job failed: end a result being sent (ABORT), then FAIL with the
 * stderr tail and our reason.  0 or -1.
 */
static int
run_slot_fail(struct run_slot *s, struct run_job *j,
    const struct run_outcome *o)
{
	char	*cause = NULL, *msg;
	size_t	 len;
	int	 rc;

	if (j->put_started) {
		if (client_tx_abort(s->link.c, &cause) != 0)
			return run_slot_fatal(s, cause);
		run_slot_owe(s, OWED_ABORTED, j->cj->id, j->label);
	}
	if (run_slot_prefetch(s, j) != 0)
		return -1;
	msg = run_job_fail_msg(j, o->reason, &len);
	client_tx_init(&j->tx);
	rc = client_send(s->link.c, &cause, "FAIL %s%s%s", j->cj->id,
	    *o->kv != '\0' ? " " : "", o->kv) != 0 ||
	    client_tx_data(s->link.c, &j->tx, msg, len, &cause) != 0 ||
	    client_tx_end(s->link.c, &j->tx, &cause) != 0 ? -1 : 0;
	free(msg);
	if (rc != 0)
		return run_slot_fatal(s, cause);
	run_slot_owe(s, OWED_FAILURE, j->cj->id, j->label);
	s->failed = 1;
	log_warnx("%s: job %s failed: %s", j->label, j->cj->id, o->how);
	return 0;
}

/*
 * The command ended: queue the result or the failure (replies are read by
 * run_slot_settle() with the next TAKE's).  A job that ran on without the
 * server reconnects first.  Returns 0, -1 (fatal, or lost again: see
 * s->lost) or 1 (SIGUSR2 while reconnecting).
 */
static int
run_slot_deliver(struct run_slot *s, struct run_job *j)
{
	struct run_outcome	 o;
	char			*cause = NULL;
	int			 rc;

	if (run_job_unreported(j)) {
		s->failed = 1;
		return 0;
	}
	if (s->link.c == NULL && (rc = run_slot_reconnect(s)) != 0)
		return rc;
	run_job_outcome(j, &o);		/* o.fd and o.reason are ours */
	rc = o.ok ? run_slot_put(s, j, &o) : 0;
	if (rc == 0 && o.ok) {
		if (client_tx_end(s->link.c, &j->tx, &cause) != 0)
			rc = run_slot_fatal(s, cause);
		else
			run_slot_owe(s, OWED_RESULT, j->cj->id, j->label);
	} else if (rc == 0)
		rc = run_slot_fail(s, j, &o);
	if (rc == 0 && s->link.cfg->verbose)
		log_warnx("%s: job %s: %s in %llu ms", j->label, j->cj->id,
		    o.ok ? "done" : o.how,
		    (unsigned long long)(util_now_ms() - j->start));
	if (o.fd != -1)
		close(o.fd);
	free(o.reason);
	return rc;
}

/*
 * SIGUSR2 during a job, its command killed: give the job back.  When its
 * payload was read to the end the stream is in sync and we say RELEASE;
 * otherwise the slot just closes the connection, which hands back a
 * hold=conn job just as well.
 */
static void
run_slot_release(struct run_slot *s, struct run_job *j)
{
	char	*cause = NULL;

	if (!j->rx_done || s->link.c == NULL)
		return;
	if (j->put_started) {
		if (client_tx_abort(s->link.c, &cause) != 0)
			goto fail;
		run_slot_owe(s, OWED_ABORTED, j->cj->id, j->label);
	}
	if (client_send(s->link.c, &cause, "RELEASE %s", j->cj->id) != 0)
		goto fail;
	run_slot_owe(s, OWED_RELEASE, j->cj->id, j->label);
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

	/* Heartbeats at a third of the lease the server gave this job. */
	s->link.keepalive_ms = cj->lease > 0 ? (uint64_t)cj->lease * 1000 / 3 :
	    RUN_KEEPALIVE_MS;
	run_job_init(&j, &s->link, cj);
	rc = run_slot_verdict(s, &j, run_job_prepare(&j));
	if (rc == 0 && j.in != NULL)
		rc = run_slot_receive(s, &j);
	if (rc == 0)
		rc = run_slot_verdict(s, &j, run_job_spawn(&j));
	if (rc == 0)
		rc = run_slot_watch(s, &j);
	if (rc == 0) {
		/* From a file, a result lost with the server can go again. */
		while ((rc = run_slot_deliver(s, &j)) == -1 && s->lost &&
		    s->status == 0 && run_job_resend(&j))
			;
	}
	if (rc == 1) {
		run_job_abandon(&j);
		run_slot_release(s, &j);
	} else if (rc == -1)
		run_job_kill(&j);
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
		if (client_buffered(s->link.c) > 0)
			return 0;
		if (run_stop)
			return 1;
		pfd[0].fd = run_wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = client_fd(s->link.c);
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
	struct client_rx	 rx;
	const char		*data;
	char			*label;
	ssize_t			 n;
	int			 r;

	memset(cj, 0, sizeof *cj);
	if (run_slot_settle(s) != 0)
		return s->lost && s->status == 0 ? 2 : 3;
	s->prefetched = 0;
	r = client_take_reply(s->link.c, cj, cause);
	if (r == 0 && client_status(s->link.c) == JQ_EXIT_TIMEOUT) {
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
	while ((n = client_rx_next(s->link.c, &rx, &data, cause)) > 0)
		;
	label = run_label(cj->name);
	if (n < 0 || client_send(s->link.c, cause, "RELEASE %s", cj->id) != 0)
		run_slot_fatal(s, *cause);
	else
		run_slot_owe(s, OWED_RELEASE, cj->id, label);
	*cause = NULL;
	free(label);
	client_job_free(cj);
	return 3;
}

/*
 * Get the next job: the reply to the TAKE that went with the last result,
 * or that of a new TAKE.  Returns as run_slot_take_prefetched().
 */
static int
run_slot_take(struct run_slot *s, struct client_job *cj, char **cause)
{
	if (s->prefetched)
		return run_slot_take_prefetched(s, cj, cause);
	if (run_stop)
		return 3;
	if (s->link.c == NULL && run_slot_reconnect(s) != 0)
		return 3;
	if (!run_slot_count(s))
		return 3;
	if (client_send(s->link.c, cause, "%s", s->take) != 0) {
		run_slot_fatal(s, *cause);
		*cause = NULL;
		return s->lost && s->status == 0 ? 2 : 3;
	}
	if (run_slot_settle(s) != 0)
		return s->lost && s->status == 0 ? 2 : 3;
	if (run_slot_wait_input(s) != 0)
		return 3;
	return client_take_reply(s->link.c, cj, cause);
}

/* Refuse a job whose id is unsafe (run_id_ok): 0, or -1 (status set). */
static int
run_slot_check_id(struct run_slot *s, struct client_job *cj)
{
	char	*label;

	if (run_id_ok(cj->id))
		return 0;
	label = run_label(cj->id);
	log_warnx("%s sent a job id that is not 1 to %d letters, digits, '-' "
	    "or '_': \"%s\"; not run", client_server(s->link.c), RUN_ID_MAX,
	    label);
	free(label);
	s->status = JQ_EXIT_PROTOCOL;
	return -1;
}

/*
 * The signals of a slot: SIGINT, SIGTERM and SIGHUP come only through the
 * parent, as SIGUSR1 (finish the running job, take no other) and SIGUSR2
 * (stop now); mask is the mask to run with once the handlers are set.
 */
static void
run_slot_signals(const sigset_t *mask, pid_t parent)
{
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
#else
	(void)parent;
#endif
	sigprocmask(SIG_SETMASK, mask, NULL);
}

/* Take and run jobs until none remains, a stop came or something failed. */
static void
run_slot_serve(struct run_slot *s)
{
	struct client_job	 cj;
	char			*cause = NULL;
	int			 r;

	for (;;) {
		r = run_slot_take(s, &cj, &cause);
		if (r == 2)
			continue;	/* every job is held, or reconnect */
		if (r == 3)
			break;		/* a stop came: a job went back */
		if (r == 0) {		/* NOJOB: nothing left for us */
			free(cause);
			break;
		}
		if (r < 0) {
			run_slot_fatal(s, cause);
			cause = NULL;
			if (s->lost && s->status == 0)
				continue;
			break;
		}
		if (run_slot_check_id(s, &cj) != 0) {
			client_job_free(&cj);
			break;
		}
		s->counted = 0;
		r = run_slot_job(s, &cj);
		client_job_free(&cj);
		if (r == -1 && s->lost && s->status == 0)
			continue;
		if (r != 0)
			break;
	}
}

/* A slot process: take and run jobs until none remains or told to stop. */
int
run_slot_main(const struct run_config *cfg, const char *worker,
    uint64_t *counter, const sigset_t *mask, pid_t parent)
{
	struct run_slot	 s;
	char		*cause = NULL, *enc;
	int		 status;

	memset(&s, 0, sizeof s);
	s.link.cfg = cfg;
	s.link.worker = xstrdup(worker);
	s.counter = counter;
	run_slot_signals(mask, parent);
	s.link.c = client_open(cfg->server, s.link.worker, &status, &cause);
	if (s.link.c == NULL) {
		log_warnx("%s", cause);
		free(cause);
		free(s.link.worker);
		return status;
	}
	if (cfg->match != NULL) {
		enc = proto_encode_dup(cfg->match, strlen(cfg->match));
		s.take = xprintf("TAKE hold=conn match=%s", enc);
		free(enc);
	} else
		s.take = xstrdup("TAKE hold=conn");
	s.link.buf = xmalloc(RUN_BUF);
	s.link.hold = xmalloc(RUN_BUF);
	s.link.keepalive_ms = RUN_KEEPALIVE_MS;
	srandom((unsigned)getpid() ^ (unsigned)util_now_ms());

	run_slot_serve(&s);

	if (s.status == 0 && s.link.c != NULL && !s.prefetched)
		(void)run_slot_settle(&s);
	client_close(s.link.c);
	while (s.nowed > 0)
		run_slot_pop(&s);
	free(s.owed);
	free(s.take);
	free(s.link.buf);
	free(s.link.hold);
	free(s.link.inbuf);
	free(s.link.worker);
	if (s.status != 0)
		return s.status;
	if (run_stop == 2)
		return JQ_EXIT_SIGNAL;
	return s.failed ? JQ_EXIT_FAILED : JQ_EXIT_OK;
}

/* ==== run.c ==== */

/*
 * run.c: jq-run's worker, the parent process.
 *
 * The parent forks one slot process per -j (slot.c); it does nothing else
 * than relay signals and reap slots.  Each slot takes jobs and runs them
 * one after the other on its own connection (runjob.c runs one job).  See
 * run.h for how the files fit together.
 *
 * Signals: the parent catches SIGINT and SIGTERM (and SIGHUP, which a
 * closed terminal sends).  The first becomes SIGUSR1 to every slot (take no
 * new job, finish and deliver the running one), the second SIGUSR2 (kill the
 * running command's process group, hand the job back, remove T, exit).
 * Slots ignore SIGINT, SIGTERM and SIGHUP, so a Ctrl-C in a terminal reaches
 * them only through the parent; on Linux a parent killed outright sends its
 * slots SIGUSR2 (PR_SET_PDEATHSIG).  Handlers only set flags and write a
 * byte to a self-pipe that the poll loops watch (runsig.c).
 *
 * --max-jobs N is exact across slots: a counter in a shared anonymous
 * mapping, made here, incremented atomically by a slot before each TAKE.
 */

/* The slot processes, by index: their pids (-1 once reaped) and statuses. */
struct run_slots {
	unsigned	 n, alive;
	pid_t		*pids;
	int		*statuses;	/* wait statuses */
};

/*
 * Fork the slots, each named WORKER/I (or WORKER with one slot).  They
 * inherit a mask that blocks the signals jq-run handles, and set old as
 * their mask once their handlers are in place.
 */
static void
run_fork_slots(const struct run_config *cfg, struct run_slots *sl,
    uint64_t *counter, const sigset_t *old)
{
	char		*base, *worker;
	pid_t		 pid, parent = getpid();
	unsigned	 i;
	int		 status;

	base = cfg->worker != NULL ? xstrdup(cfg->worker) : util_worker_name();
	sl->n = cfg->jobs;
	sl->alive = 0;
	sl->pids = xcalloc(sl->n, sizeof *sl->pids);
	sl->statuses = xcalloc(sl->n, sizeof *sl->statuses);
	fflush(NULL);
	for (i = 0; i < sl->n; i++) {
		worker = sl->n > 1 ? xprintf("%s/%u", base, i + 1) :
		    xstrdup(base);
		pid = fork();
		if (pid == 0) {
			free(sl->pids);
			free(sl->statuses);
			status = run_slot_main(cfg, worker, counter, old,
			    parent);
			free(worker);
			free(base);
			exit(status);
		}
		free(worker);
		if (pid == -1) {
			log_warn("fork");
			sl->statuses[i] = JQ_EXIT_IO << 8;
			sl->pids[i] = -1;
			continue;
		}
		sl->pids[i] = pid;
		sl->alive++;
	}
	free(base);
}

/* Reap the slots that exited, until none is left to wait for. */
static void
run_reap_slots(struct run_slots *sl)
{
	pid_t		 pid;
	unsigned	 i;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < sl->n; i++)
			if (sl->pids[i] == pid) {
				sl->statuses[i] = status;
				sl->pids[i] = -1;
				sl->alive--;
			}
}

/*
 * Wait for every slot to exit, passing SIGINT/SIGTERM/SIGHUP on: the first
 * as SIGUSR1, the second as SIGUSR2.  Signals are taken only inside
 * sigsuspend() with old's mask (but SIGUSR1 and SIGUSR2).
 */
static void
run_wait_slots(const struct run_config *cfg, struct run_slots *sl,
    const sigset_t *old)
{
	sigset_t	 wait_mask = *old;
	int		 sent = 0;
	unsigned	 i;

	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGHUP);
	sigdelset(&wait_mask, SIGCHLD);
	sigaddset(&wait_mask, SIGUSR1);
	sigaddset(&wait_mask, SIGUSR2);
	for (;;) {
		run_reap_slots(sl);
		if (sl->alive == 0)
			break;
		if (run_signals > sent && sent < 2) {
			sent = run_signals >= 2 ? 2 : 1;
			if (cfg->verbose)
				log_warnx(sent == 1 ? "stopping: running jobs "
				    "finish first (signal again to stop now)" :
				    "stopping now: running jobs are handed back");
			for (i = 0; i < sl->n; i++)
				if (sl->pids[i] > 0)
					kill(sl->pids[i], sent == 1 ? SIGUSR1 :
					    SIGUSR2);
		}
		sigsuspend(&wait_mask);
	}
}

/*
 * jq-run's exit status from the slots': the worst of them (a slot killed
 * by a signal counts as JQ_EXIT_IO), some job failed, or stopped by a
 * signal.
 */
static int
run_exit_status(const struct run_slots *sl)
{
	int		 result = JQ_EXIT_OK, status;
	unsigned	 i;

	for (i = 0; i < sl->n; i++) {
		status = sl->statuses[i];
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
	return result;
}

/*
 * jq-run's parent: fork the slots, relay SIGINT/SIGTERM to them, reap them,
 * and combine their statuses into jq-run's exit status.
 */
int
run_main(const struct run_config *cfg)
{
	struct run_slots	 sl;
	sigset_t		 block, old;
	uint64_t		*counter = NULL;
	int			 result;

	run_sigaction(SIGPIPE, SIG_IGN);
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

	run_fork_slots(cfg, &sl, counter, &old);
	run_wait_slots(cfg, &sl, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);

	result = run_exit_status(&sl);
	if (counter != NULL)
		munmap(counter, sizeof *counter);
	free(sl.pids);
	free(sl.statuses);
	return result;
}
