/*
 * runjob.c: one job of a jq-run slot, from its temp dir to its outcome.
 *
 *   T = mkdtemp(TMPDIR/jq-run.XXXXXX), with T/in and T/out
 *   <in>:  the payload is received into T/in/BASENAME first;
 *          otherwise it is streamed into the command's stdin while it runs
 *   <out>: after exit 0, T/out/STEM[.EXT] is sent as the result;
 *   <outdir>: T/outdir; after exit 0 its tree is packed into T/tree.tar
 *          (arch.c) and that is sent as the result, kind=tree;
 *          otherwise stdout is streamed back as the result while it runs
 *          (PUT on the first byte past RUN_BUF held back; ABORT then FAIL
 *          if the command fails)
 *   a tree job (kind=tree) with <in>: its data goes to T/in.tar, is
 *          unpacked safely into the directory T/in/BASENAME, which <in>
 *          names (a refused tree fails the job, the command never runs);
 *          without <in>, the tar stream goes to stdin like any data
 *   stderr: copied to our stderr as "NAME: line", its tail kept for FAIL
 *   T is emptied afterwards, whatever happened, and kept for the slot's
 *          next job (removing a directory costs about a millisecond on ext4
 *          here, emptying an empty one a few system calls); the slot
 *          removes it when it ends.  With --keep-tmp every job gets its own
 *          T, kept.  A T that cannot be emptied, or that is no longer the
 *          directory made (a job replaced it), is removed as a whole and the
 *          next job gets a new one.
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
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

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

/* Forget the slot's kept T (without removing it). */
static void
run_link_forget_dir(struct run_link *l)
{
	free(l->tdir);
	l->tdir = NULL;
}

/* The slot ends: remove its kept T. */
void
run_link_end_dir(struct run_link *l)
{
	char	*dir = l->tdir, *why = NULL;

	if (dir == NULL)
		return;
	l->tdir = NULL;
	if (arch_remove(AT_FDCWD, dir, &why) != 0) {
		log_warnx("cannot remove %s: %s", dir, why);
		free(why);
	}
	free(dir);
}

/*
 * T for this job: the slot's kept one while it still is the directory made
 * (not a link, same device and inode; it was emptied after the last job),
 * else a new one, kept for the next job unless --keep-tmp.  0 or -1 (said).
 */
static int
run_job_dir(struct run_job *j)
{
	struct run_link	*l = j->link;
	struct stat	 st;

	if (l->tdir != NULL) {
		if (lstat(l->tdir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_dev == l->tdev && st.st_ino == l->tino) {
			j->dir = xstrdup(l->tdir);
			return 0;
		}
		run_link_end_dir(l);
	}
	j->dir = xprintf("%s/jq-run.XXXXXX", l->cfg->tmpdir);
	if (mkdtemp(j->dir) == NULL) {
		log_warn("mkdtemp %s", j->dir);
		free(j->dir);
		j->dir = NULL;
		return -1;
	}
	if (!l->cfg->keep_tmp && lstat(j->dir, &st) == 0) {
		l->tdir = xstrdup(j->dir);
		l->tdev = st.st_dev;
		l->tino = st.st_ino;
	}
	return 0;
}

/*
 * Empty the slot's kept T after a job, for the next one: every entry
 * removed (never following a link), its mode 0700 again.  0, or -1 with
 * *cause (it is no longer the directory made, or something stays).
 */
static int
run_link_empty_dir(struct run_link *l, char **cause)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	int		 fd, rc = 0;

	fd = open(l->tdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		*cause = xprintf("%s: %s", l->tdir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_dev != l->tdev ||
	    st.st_ino != l->tino) {
		*cause = xprintf("%s: no longer the directory made", l->tdir);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
		*cause = xprintf("%s: %s", l->tdir, strerror(errno));
		close(fd);
		return -1;
	}
	if ((d = fdopendir(fd)) == NULL) {
		*cause = xprintf("%s: %s", l->tdir, strerror(errno));
		close(fd);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			rc = arch_remove(dirfd(d), de->d_name, cause);
	}
	closedir(d);
	return rc;
}

/* Make T (and T/in, T/out) and the <in>/<out> paths. */
enum run_verdict
run_job_prepare(struct run_job *j)
{
	const struct run_config	*cfg = j->link->cfg;
	int			 uses = template_uses(cfg->tpl);
	const char		*ext = template_out_ext(cfg->tpl), *dot;
	char			*base, *stem, *sub;
	enum run_verdict	 v = RUN_FATAL;

	if (run_job_dir(j) != 0)
		return RUN_FATAL;
	base = template_basename(j->cj->name);
	stem = template_stem(base);
	/* plain <out> keeps an extension a format-guessing command can use:
	 * the result name's when the server named it (-r '{stem}.mp3'), else
	 * the input's own */
	if (ext == NULL) {
		dot = template_stem_end(j->cj->result ? j->cj->result : base);
		if (*dot == '.' && dot[1] != '\0' &&
		    strlen(dot + 1) <= TEMPLATE_EXT_MAX)
			ext = dot + 1;
	}
	if (uses & TEMPLATE_USES_IN) {
		if ((sub = run_job_subdir(j, "in")) == NULL)
			goto out;
		j->in = xprintf("%s/%s", sub, base);
		free(sub);
		if (j->cj->tree)
			j->intar = xprintf("%s/in.tar", j->dir);
	}
	if (uses & TEMPLATE_USES_OUTDIR) {
		if ((j->outdir = run_job_subdir(j, "outdir")) == NULL)
			goto out;
		j->out = xprintf("%s/tree.tar", j->dir);
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
 * A tree job's data is all in T/in.tar (j->in_fd): unpack it into the
 * directory <in> names.  A tree refused (unsafe, over a limit) is the
 * job's failure, kept in j->refused; what was unpacked goes with T.
 */
static enum run_verdict
run_job_unpack_in(struct run_job *j)
{
	char	*cause = NULL;
	int	 dfd;

	if (j->intar == NULL) {
		close(j->in_fd);
		j->in_fd = -1;
		return RUN_DONE;
	}
	if (mkdir(j->in, 0700) != 0 || (dfd = open(j->in, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_warn("%s", j->in);
		return RUN_FATAL;
	}
	if (lseek(j->in_fd, 0, SEEK_SET) != 0)
		cause = xprintf("%s: %s", j->intar, strerror(errno));
	else if (arch_unpack(j->in_fd, dfd, j->link->cfg->tree, &cause) == 0)
		cause = NULL;
	close(dfd);
	close(j->in_fd);
	j->in_fd = -1;
	(void)unlink(j->intar);		/* its space, at once */
	if (cause != NULL) {
		j->refused = xprintf("jq-run: the job's tree is refused: %s",
		    cause);
		log_warnx("%s: job %s: %s", j->label, j->cj->id, j->refused + 8);
		free(cause);
	}
	return RUN_DONE;
}

/*
 * Receive the payload into the <in> file (or, for a job without one whose
 * command could not start, read it to its end and drop it).  RUN_DONE once
 * all of it is there; RUN_IDLE (call again after the keep-alive),
 * RUN_LOST, RUN_FATAL or RUN_STOPPED (the payload is left unread: the
 * connection will close).
 */
enum run_verdict
run_job_receive(struct run_job *j)
{
	const char	*data;
	ssize_t		 n;

	if (j->in == NULL) {
		while ((n = client_rx_next(j->link->c, &j->rx, &data,
		    &j->cause)) > 0)
			if (run_job_idle(j, util_now_ms()))
				return RUN_IDLE;
		if (n < 0)
			return RUN_LOST;
		j->rx_done = 1;
		return RUN_DONE;
	}
	if (j->in_fd == -1) {
		j->in_fd = open(j->intar != NULL ? j->intar : j->in, O_RDWR |
		    O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (j->in_fd == -1) {
			log_warn("%s", j->intar != NULL ? j->intar : j->in);
			return RUN_FATAL;
		}
	}
	while ((n = client_rx_next(j->link->c, &j->rx, &data,
	    &j->cause)) > 0) {
		if (util_write_all(j->in_fd, data, (size_t)n) != 0) {
			log_warn("%s", j->intar != NULL ? j->intar : j->in);
			return RUN_FATAL;
		}
		if (run_stop == 2)
			return RUN_STOPPED;
		if (run_job_idle(j, util_now_ms()))
			return RUN_IDLE;
	}
	if (n < 0) {
		close(j->in_fd);
		j->in_fd = -1;
		return RUN_LOST;
	}
	j->rx_done = 1;
	return run_job_unpack_in(j);
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
	vars.out = j->outdir != NULL ? NULL : j->out;
	vars.outdir = j->outdir;
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
	if (rc == -2) {
		j->cause = cause;	/* the slot's to say */
		return RUN_NOEXEC;
	}
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
	if ((first && (client_send(l->c, &j->cause, "PUT %s " KEY_TOKEN "=%s",
	    j->cj->id, j->cj->token) != 0 ||
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
	 * run_conn_prefetch).  Past that it streams, sent at once.
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
 * Pack what the command left in <outdir> into T/tree.tar (j->out), which
 * then goes out like an <out> file, kind=tree.  0, or -1 with the outcome
 * turned into a failure saying why.
 */
static int
run_job_pack(struct run_job *j, struct run_outcome *o)
{
	char	*cause = NULL;
	int	 fd, dfd;

	if (j->outdir == NULL || j->out == NULL)
		return 0;		/* not an <outdir> job: nothing to pack */
	dfd = open(j->outdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd == -1)
		cause = xprintf("%s", errno == ELOOP || errno == ENOTDIR ?
		    "no longer a directory" : strerror(errno));
	else if ((fd = open(j->out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		cause = xprintf("%s: %s", j->out, strerror(errno));
	else {
		if (arch_pack(dfd, fd, j->link->cfg->tree, NULL, &cause) == 0)
			cause = NULL;
		if (close(fd) != 0 && cause == NULL)
			cause = xprintf("%s: %s", j->out, strerror(errno));
	}
	if (dfd != -1)
		close(dfd);
	if (cause == NULL) {
		o->tree = 1;
		return 0;
	}
	o->ok = 0;
	o->kv[0] = '\0';		/* exited 0: no status to report */
	snprintf(o->how, sizeof o->how, "bad output tree");
	o->reason = xprintf("jq-run: <outdir>: %s", cause);
	free(cause);
	return -1;
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
	int		 status = j->sp.status, missing = 0;
	struct stat	 st;

	if (j->spool_fd != -1) {
		close(j->spool_fd);
		j->spool_fd = -1;
	}
	if (j->offline)
		j->put_started = 0;	/* nothing sent since the loss */
	o->fd = -1;
	o->reason = NULL;
	o->tree = 0;
	o->tempfail = 0;
	if (j->refused != NULL) {
		o->ok = 0;
		o->kv[0] = '\0';		/* it never ran */
		snprintf(o->how, sizeof o->how, "tree refused");
		o->reason = xstrdup(j->refused);
		return;
	}
	o->ok = spawn_status(status, o->how, sizeof o->how) == 0;
	if (j->timed_out) {
		o->ok = 0;
		snprintf(o->how, sizeof o->how, "timed out");
		snprintf(o->kv, sizeof o->kv, "timeout=1");
		o->reason = xprintf("jq-run: timed out after %llu ms",
		    (unsigned long long)j->link->cfg->timeout_ms);
	} else if (WIFSIGNALED(status))
		snprintf(o->kv, sizeof o->kv, "signal=%d", WTERMSIG(status));
	else if (WEXITSTATUS(status) == RUN_EX_TEMPFAIL) {	/* jq-run(1) */
		snprintf(o->kv, sizeof o->kv, "exit=%d " KEY_TEMPFAIL "=1",
		    WEXITSTATUS(status));
		o->tempfail = 1;
	}
	else
		snprintf(o->kv, sizeof o->kv, "exit=%d", WEXITSTATUS(status));
	if (!o->ok || file == NULL)
		return;
	if (j->outdir != NULL && run_job_pack(j, o) != 0)
		return;
	/* the command made <out>: a FIFO there must not block us, nor a
	 * symlink send another file */
	o->fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY);
	if (o->fd == -1) {
		missing = errno == ENOENT;
		why = errno == ELOOP ? "a symbolic link (not followed)" :
		    strerror(errno);
	}
	else if (fstat(o->fd, &st) == -1)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = S_ISFIFO(st.st_mode) ? "a FIFO, not a regular file" :
		    "not a regular file";
	if (why == NULL)
		return;
	if (o->fd != -1)
		close(o->fd);
	o->fd = -1;
	o->ok = 0;
	o->kv[0] = '\0';		/* exited 0: no status to report */
	if (j->out != NULL && missing) {
		snprintf(o->how, sizeof o->how, "no output file");
		o->reason = xprintf("jq-run: the command did not write <out> "
		    "(%s)", strrchr(j->out, '/') + 1);
	} else if (j->out != NULL) {
		snprintf(o->how, sizeof o->how, "bad output file");
		o->reason = xprintf("jq-run: <out> (%s): %s",
		    strrchr(j->out, '/') + 1, why);
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

/*
 * After the job: 0 if its T is the slot's kept one and was emptied for the
 * next job; -1 if it must be removed (then the slot forgets it).
 */
static int
run_job_keep_dir(struct run_job *j)
{
	struct run_link	*l = j->link;
	char		*why = NULL;

	if (l->tdir == NULL || strcmp(l->tdir, j->dir) != 0)
		return -1;
	if (run_link_empty_dir(l, &why) == 0)
		return 0;
	free(why);	/* removed as a whole instead; said if that fails */
	run_link_forget_dir(l);
	return -1;
}

/* Close what the job holds, empty T for the next job (or remove it; with
 * --keep-tmp, say where it is) and free everything of the job but the
 * client_job. */
void
run_job_free(struct run_job *j)
{
	char	*why = NULL;

	spawn_close_fds(&j->sp);
	if (j->in_fd != -1)
		close(j->in_fd);
	if (j->spool_fd != -1)
		close(j->spool_fd);
	if (j->dir != NULL) {
		if (j->link->cfg->keep_tmp)
			log_warnx("%s: job %s: kept %s", j->label, j->cj->id,
			    j->dir);
		else if (run_job_keep_dir(j) == 0)
			;	/* kept, empty, for the next job */
		else if (arch_remove(AT_FDCWD, j->dir, &why) != 0) {
			log_warnx("%s: cannot remove %s: %s", j->label, j->dir,
			    why);
			free(why);
		}
	}
	run_lines_end(&j->out_lines);
	run_lines_end(&j->err_lines);
	free(j->label);
	free(j->dir);
	free(j->in);
	free(j->out);
	free(j->outdir);
	free(j->intar);
	free(j->refused);
	free(j->spool);
	free(j->cause);
}
