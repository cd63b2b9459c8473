/*
 * jq-take: take one job from a jq server.
 *
 * With -o FILE the job data goes to FILE (through a temporary file beside it
 * and a rename, so FILE is never partial) and the job id to stdout.  Without
 * -o the data goes to stdout and the id to the file named by --id-file, which
 * is written completely before the first data byte.
 *
 * Every local file is created (as a temporary) before the TAKE, so a
 * misspelt directory costs no job.  (An existing symlink or non-regular FILE,
 * such as /dev/fd/3, is written in place instead: see outfile_open.)  While the caller has not been handed
 * the id, a local failure gives the job back with RELEASE; once the id is
 * out (--id-file), the job stays taken and the message says so.
 */
#include <sys/stat.h>

#include <err.h>
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <popt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define TAKE_NOTE_MS	2000	/* a wait this long is explained (a terminal) */

static const char take_epilogue[] =
"Take one job from the jq server SERVER (default: $JQ_SERVER).\n"
"With -o, the job data is written to FILE (never partially) and the job id\n"
"is printed on stdout; the data of a directory's job (a tree) is unpacked\n"
"into FILE, a new directory.  Without -o, the data goes to stdout and --id-file is\n"
"required: the id (and name, with -n) is written there before the data.\n"
"\n"
"Exit status: 0 took a job, 2 usage error, 3 no job remains (nothing is\n"
"printed or created), or this worker is drained (jq-put --drain; said),\n"
"5 --wait ran out, 6 cannot reach the server, 7 server error or checksum\n"
"mismatch, 8 local I/O error, 9 interrupted, 10 authentication failed (token\n"
"missing or wrong, or a server that does not prove itself).";

/* What the command line asks for. */
struct take_config {
	const char	*server;	/* address */
	char		*output;	/* -o FILE, or NULL: the data to stdout */
	char		*idfile;	/* --id-file, or NULL */
	char		*glob;		/* --match, or NULL */
	char		*queues;	/* --queue, a comma list; NULL: default */
	char		*worker;	/* --worker, or NULL: HOSTNAME:PID */
	int		 name;		/* -n: the name after the id */
	int		 null;		/* -z: NUL after each, not LF */
	int		 wait;		/* --wait given */
	uint64_t	 wait_ms;
	unsigned	 lease_s;	/* --lease, or 0: the server's */
};

enum {
	OPT_OUTPUT = 256, OPT_ID_FILE, OPT_NAME, OPT_NULL, OPT_MATCH, OPT_WAIT,
	OPT_WORKER, OPT_LEASE, OPT_QUEUE
};

static struct poptOption take_options[] = {
	{ "output", 'o', POPT_ARG_STRING, NULL, OPT_OUTPUT,
	    "write the job data to FILE and the id to stdout", "FILE" },
	{ "id-file", 'i', POPT_ARG_STRING, NULL, OPT_ID_FILE,
	    "write the id to FILE before the data (needed without -o)", "FILE" },
	{ "name", 'n', POPT_ARG_NONE, NULL, OPT_NAME,
	    "print the job's name after its id", NULL },
	{ "null", 'z', POPT_ARG_NONE, NULL, OPT_NULL,
	    "end the id and name with NUL instead of newline", NULL },
	{ "match", 'm', POPT_ARG_STRING, NULL, OPT_MATCH,
	    "take only jobs whose name matches the fnmatch(3) GLOB", "GLOB" },
	{ "queue", '\0', POPT_ARG_STRING, NULL, OPT_QUEUE,
	    "take from queue NAME (repeat, or a comma list: any of them; "
	    "default: the queue \"default\")", "NAME" },
	{ "wait", 'w', POPT_ARG_STRING, NULL, OPT_WAIT,
	    "wait at most SECONDS (or 500ms, 2m, ...) while other workers "
	    "hold every job; default: forever", "SECONDS" },
	{ "worker", '\0', POPT_ARG_STRING, NULL, OPT_WORKER,
	    "worker name told to the server (default: HOSTNAME:PID)", "NAME" },
	{ "lease", '\0', POPT_ARG_STRING, NULL, OPT_LEASE,
	    "hold the job for DURATION (1s to 365d, rounded up to "
	    "seconds) unless renewed with 'jq-put --touch'; default: "
	    "the server's --lease", "DURATION" },
	CLI_AUTH_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(take_epilogue),
	POPT_TABLEEND
};

/* A file written under a temporary name beside its final name. */
struct outfile {
	const char	*path;		/* final name, from argv */
	char		*tmp;		/* temporary name; NULL once renamed or removed */
	int		 fd;
};

/* Temporary files to remove if a signal stops us (see take_signal). */
static char *volatile take_tmp[2];

/* Remove the temporary files and exit 9 on SIGINT/SIGTERM/SIGHUP. */
static void
take_signal(int sig)
{
	static const char msg[] = "jq-take: interrupted\n";
	int	 i;

	(void)sig;
	for (i = 0; i < 2; i++)
		if (take_tmp[i] != NULL)
			unlink(take_tmp[i]);
	(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
	_exit(JQ_EXIT_SIGNAL);
}

/*
 * Create the temporary file for path, in path's directory; 0 or -1 with
 * *cause.  Only a new name or an existing regular file is replaced by
 * rename: anything else that exists (a symlink such as /dev/stderr, a FIFO,
 * a device, /dev/fd/3) is opened and written in place, as the shell's '>'
 * would, because renaming over it would replace the link or device itself.
 */
static int
outfile_open(struct outfile *of, const char *path, int slot, char **cause)
{
	const char	*base = strrchr(path, '/');
	struct stat	 st;
	mode_t		 mask;
	int		 dirlen;

	of->path = path;
	of->fd = -1;
	of->tmp = NULL;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		*cause = xprintf("%s: %s", path, strerror(EISDIR));
		return -1;
	}
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((of->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0666)) < 0) {
			*cause = xprintf("%s: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	base = base == NULL ? path : base + 1;
	dirlen = (int)(base - path);
	/* Long names would overflow NAME_MAX with the prefix and suffix. */
	of->tmp = xprintf("%.*s.%s.jq-XXXXXX", dirlen, path,
	    strlen(base) > 200 ? "jq-take" : base);
	if ((of->fd = mkostemp(of->tmp, O_CLOEXEC)) < 0) {
		*cause = xprintf("%s: %s", path, strerror(errno));
		free(of->tmp);
		of->tmp = NULL;
		return -1;
	}
	take_tmp[slot] = of->tmp;
	/* mkostemp makes 0600; give the file the mode open(2) would. */
	mask = umask(0);
	umask(mask);
	fchmod(of->fd, 0666 & ~mask);
	return 0;
}

/* Close the file and remove the temporary, if any; keeps errno. */
static void
outfile_discard(struct outfile *of, int slot)
{
	int	 saved = errno;

	if (of->fd >= 0)
		close(of->fd);
	of->fd = -1;
	if (of->tmp != NULL) {
		take_tmp[slot] = NULL;
		unlink(of->tmp);
		free(of->tmp);
		of->tmp = NULL;
	}
	errno = saved;
}

/*
 * Close the temporary file and rename it to its final name; 0 or -1 with
 * *cause (and the temporary removed).  No fsync: the file is a worker's
 * scratch input, which a crash makes worthless anyway (the job stays taken).
 */
static int
outfile_commit(struct outfile *of, int slot, char **cause)
{
	int	 fd = of->fd;

	of->fd = -1;
	if (close(fd) != 0 || (of->tmp != NULL && rename(of->tmp, of->path) != 0)) {
		*cause = xprintf("%s: %s", of->path, strerror(errno));
		outfile_discard(of, slot);
		return -1;
	}
	if (of->tmp != NULL) {
		take_tmp[slot] = NULL;
		free(of->tmp);
		of->tmp = NULL;
	}
	return 0;
}

/* Build the TAKE request's extra words; NULL when there are none. */
static char *
take_extra(const char *glob, const char *queues, int wait, uint64_t wait_ms,
    unsigned lease_s)
{
	unsigned long long	 secs;
	char			*enc, *s, *t;

	s = xstrdup("");
	if (queues != NULL) {
		t = xprintf("%s " KEY_QUEUE "=%s", s, queues);
		free(s);
		s = t;
	}
	if (glob != NULL) {
		enc = proto_encode_dup(glob, strlen(glob));
		t = xprintf("%s match=%s", s, enc);
		free(enc);
		free(s);
		s = t;
	}
	/* wait= counts seconds: round up, so -w 500ms waits, -w 0 does not. */
	secs = wait_ms / 1000 + (wait_ms % 1000 != 0);
	if (wait && secs <= JQ_SECONDS_MAX) {
		t = xprintf("%s wait=%llu", s, secs);
		free(s);
		s = t;
	}
	if (lease_s > 0) {
		t = xprintf("%s lease=%u", s, lease_s);
		free(s);
		s = t;
	}
	if (*s == '\0') {
		free(s);
		return NULL;
	}
	t = xstrdup(s + 1);		/* without the first space */
	free(s);
	return t;
}

/*
 * The job's handle (ID:TOKEN, what jq-put takes), and with -n the name,
 * each ended by LF or (with -z) NUL.
 */
static char *
take_record(const struct client_job *job, int name, int null, size_t *len)
{
	char	*handle = client_handle(job);
	size_t	 idlen = strlen(handle);
	char	*buf, end = null ? '\0' : '\n';

	*len = idlen + 1 + (name ? job->namelen + 1 : 0);
	buf = xmalloc(*len);
	memcpy(buf, handle, idlen);
	free(handle);
	buf[idlen] = end;
	if (name) {
		memcpy(buf + idlen + 1, job->name, job->namelen);
		buf[*len - 1] = end;
	}
	return buf;
}

/*
 * Copy the job's payload to fd.  On a local write error set *werr to errno
 * and, with drain, read the rest of the payload so that the connection stays
 * usable (for RELEASE); without drain return at once.  Returns 0 when the
 * payload was received and verified (whatever *werr says), -1 with *cause
 * for a connection or checksum failure.
 */
static int
take_receive(struct client *c, int fd, int drain, int *werr, char **cause)
{
	struct client_rx	 rx;
	const char		*data;
	ssize_t			 n;

	*werr = 0;
	client_rx_init(&rx);
	while ((n = client_rx_next(c, &rx, &data, cause)) > 0) {
		if (*werr != 0)
			continue;
		if (util_write_all(fd, data, (size_t)n) != 0) {
			*werr = errno;
			if (!drain)
				return 0;
		}
	}
	return n < 0 ? -1 : 0;
}

/*
 * Report a failure that happened after the TAKE, then exit with status.  When
 * the caller has not been handed the id (no --id-file) and the payload was
 * consumed (synced), give the job back with RELEASE; otherwise it stays taken
 * and the message says so.
 */
static void JQ_NORETURN
take_fail(struct client *c, const struct client_job *job, const char *idfile,
    int synced, int status, char *cause)
{
	char	*ignored = NULL;

	if (idfile != NULL)
		fprintf(stderr, "%s: job %s: %s (job stays taken; its id is in "
		    "%s)\n", cli_prog, job->id, cause, idfile);
	else if (synced && client_simple(c, &ignored, "RELEASE %s " KEY_TOKEN
	    "=%s", job->id, job->token) == 0)
		fprintf(stderr, "%s: job %s: %s (job given back)\n", cli_prog,
		    job->id, cause);
	else
		fprintf(stderr, "%s: job %s: %s (job stays taken)\n", cli_prog,
		    job->id, cause);
	free(ignored);
	free(cause);
	client_close(c);
	exit(status);
}

/* Fill the config from one option (cli_parse); values are checked here. */
static void
take_option(void *arg, int val, char **value)
{
	struct take_config	*cfg = arg;

	switch (val) {
	case OPT_OUTPUT:
		cli_keep(&cfg->output, value);
		break;
	case OPT_ID_FILE:
		cli_keep(&cfg->idfile, value);
		break;
	case OPT_NAME:
		cfg->name = 1;
		break;
	case OPT_NULL:
		cfg->null = 1;
		break;
	case OPT_MATCH:
		cli_keep(&cfg->glob, value);
		cli_length("--match", "pattern", cfg->glob, JQ_GLOB_MAX);
		break;
	case OPT_QUEUE:
		cli_queues("--queue", *value, &cfg->queues);
		break;
	case OPT_WAIT:
		cfg->wait_ms = cli_duration("--wait", *value);
		cfg->wait = 1;
		break;
	case OPT_LEASE:
		cfg->lease_s = cli_seconds("--lease", *value);
		break;
	case OPT_WORKER:
		cli_keep(&cfg->worker, value);
		cli_length("--worker", "name", cfg->worker, JQ_WORKER_MAX);
		break;
	}
}

/* Check the operand and that the options go together. */
static void
take_check(struct take_config *cfg, poptContext pc)
{
	const char	*arg = cli_operand(pc);

	if (cfg->output == NULL && cfg->idfile == NULL)
		usage_error(cli_prog, "--id-file is required without --output "
		    "(stdout carries the job data)");
	if (cfg->output != NULL && *cfg->output == '\0')
		usage_error(cli_prog, "--output: empty file name");
	if (cfg->idfile != NULL && *cfg->idfile == '\0')
		usage_error(cli_prog, "--id-file: empty file name");
	cfg->server = cli_server(arg);
}

/* Remove the temporary files and exit 9 on SIGINT, SIGTERM and SIGHUP. */
static void
take_catch_signals(void)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = take_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/*
 * Every job left may be held by others: the server answers a TAKE once
 * one comes back.  A person at a terminal who sees nothing for a while
 * deserves to know why (a lost handle holds its job until its lease ends).
 */
static void
take_note_wait(struct client *c, const char *queues)
{
	struct pollfd	 pfd;
	int		 n;

	if (!isatty(STDERR_FILENO) || client_buffered(c) > 0)
		return;
	pfd.fd = client_fd(c);
	pfd.events = POLLIN;
	while ((n = poll(&pfd, 1, TAKE_NOTE_MS)) == -1 && errno == EINTR)
		;
	if (n == 0 && queues != NULL)
		warnx("waiting for a job of queue %s: none waits there now; one "
		    "comes when a job is added there, or when a running one "
		    "comes back (its worker fails it, or its lease ends; "
		    "jq-stat shows them)", queues);
	else if (n == 0)
		warnx("waiting for a job: every job left is running; one comes "
		    "back when its worker delivers or fails it, or when its "
		    "lease ends (jq-stat shows them)");
}

/*
 * Connect and TAKE a job into *job.  Without one, remove the local files
 * and exit: silently for no work (3) or --wait running out (5).
 */
static struct client *
take_job(struct take_config *cfg, struct outfile *out, struct outfile *idf,
    struct client_job *job)
{
	char		*extra, *cause = NULL;
	int		 rc, status;
	struct client	*c;

	if ((c = client_open(cfg->server, cfg->worker, &status, &cause)) == NULL) {
		outfile_discard(out, 0);
		outfile_discard(idf, 1);
		errx(status, "%s", cause);
	}
	extra = take_extra(cfg->glob, cfg->queues, cfg->wait, cfg->wait_ms,
	    cfg->lease_s);
	rc = client_send(c, &cause, "TAKE%s%s", extra ? " " : "",
	    extra ? extra : "") != 0 || client_flush(c, &cause) != 0 ? -1 : 1;
	if (rc == 1) {
		take_note_wait(c, cfg->queues);
		rc = client_take_reply(c, job, &cause);
	}
	free(extra);
	free(cfg->glob);	/* the exits below must not leave it unfreed */
	cfg->glob = NULL;
	free(cfg->queues);
	cfg->queues = NULL;
	if (rc <= 0) {
		outfile_discard(out, 0);
		outfile_discard(idf, 1);
		status = client_status(c);	/* rc 0: NOWORK or TIMEOUT, silent */
		client_close(c);
		if (rc < 0 || job->drained)	/* a drain is news: say it */
			errx(status, "%s", cause);
		exit(status);
	}
	return c;
}

/* Write the id file, complete before the data starts; else give the job back. */
static void
take_write_idfile(struct client *c, const struct client_job *job,
    const struct take_config *cfg, struct outfile *idf, struct outfile *out)
{
	char	*rec, *cause = NULL, *skip = NULL;
	size_t	 reclen;

	rec = take_record(job, cfg->name, cfg->null, &reclen);
	if (util_write_all(idf->fd, rec, reclen) != 0) {
		cause = xprintf("%s: %s", cfg->idfile, strerror(errno));
		outfile_discard(idf, 1);
	} else
		outfile_commit(idf, 1, &cause);
	free(rec);
	if (cause != NULL) {
		outfile_discard(out, 0);
		/* Nobody has the id yet: consume the data, give it back. */
		take_fail(c, job, NULL, client_rx_skip(c, &skip) == 0,
		    JQ_EXIT_IO, cause);
	}
}

/*
 * A tree job (kind=tree) taken with -o PATH: unpack the tar stream the
 * temporary file holds, safely (arch.c, the default limits), into a new
 * directory beside PATH, then rename it to PATH, which must not exist.
 * The temporary file goes in any case; 0 or -1 with *cause (nothing of
 * the tree is left).
 */
static int
take_unpack_tree(struct outfile *of, const char *path, char **cause)
{
	const char	*slash = strrchr(path, '/');
	char		*tmp, *why = NULL;
	int		 dfd, rc = -1;

	tmp = slash == NULL ? xstrdup(".jq-take-tree.XXXXXX") :
	    xprintf("%.*s/.jq-take-tree.XXXXXX", (int)(slash - path), path);
	if (mkdtemp(tmp) == NULL) {
		*cause = xprintf("%s: %s", tmp, strerror(errno));
		free(tmp);
		outfile_discard(of, 0);
		return -1;
	}
	if ((dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || lseek(of->fd, 0, SEEK_SET) != 0)
		*cause = xprintf("%s: %s", tmp, strerror(errno));
	else if (arch_unpack(of->fd, dfd, &cli_tree_limits, &why) != 0)
		*cause = xprintf("the tree is refused: %s", why);
	else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path,
	    RENAME_NOREPLACE) != 0)
		*cause = errno == EEXIST ? xprintf("%s exists: a tree is "
		    "unpacked into a new directory only", path) :
		    xprintf("%s: %s", path, strerror(errno));
	else
		rc = 0;
	if (dfd != -1)
		close(dfd);
	free(why);
	if (rc != 0 && arch_remove(AT_FDCWD, tmp, &why) != 0)
		free(why);
	free(tmp);
	outfile_discard(of, 0);
	return rc;
}

/* Receive the data to stdout, or to -o FILE and then print the id. */
static void
take_write_data(struct client *c, const struct client_job *job,
    const struct take_config *cfg, struct outfile *out)
{
	const char	*output = cfg->output, *idfile = cfg->idfile;
	char		*rec, *cause = NULL;
	size_t		 reclen;
	int		 rc, werr;

	if (output == NULL) {
		/* Stream to stdout, stopping at the first write error. */
		if (take_receive(c, STDOUT_FILENO, 0, &werr, &cause) != 0)
			take_fail(c, job, idfile, 0, client_status(c), cause);
		if (werr != 0)
			take_fail(c, job, idfile, 0, JQ_EXIT_IO,
			    xprintf("standard output: %s", strerror(werr)));
		return;
	}
	if (take_receive(c, out->fd, 1, &werr, &cause) != 0) {
		outfile_discard(out, 0);
		take_fail(c, job, idfile, 0, client_status(c), cause);
	}
	if (werr != 0) {
		outfile_discard(out, 0);
		take_fail(c, job, idfile, 1, JQ_EXIT_IO,
		    xprintf("%s: %s", output, strerror(werr)));
	}
	/* a tree goes into a new directory, unless -o names a link or a
	 * device (written in place: the tar stream itself) */
	if (job->tree && out->tmp != NULL) {
		if (take_unpack_tree(out, output, &cause) != 0)
			take_fail(c, job, idfile, 1, JQ_EXIT_IO, cause);
	} else if (outfile_commit(out, 0, &cause) != 0)
		take_fail(c, job, idfile, 1, JQ_EXIT_IO, cause);
	rec = take_record(job, cfg->name, cfg->null, &reclen);
	rc = util_write_all(STDOUT_FILENO, rec, reclen);
	werr = errno;
	free(rec);
	if (rc != 0)
		take_fail(c, job, idfile, 1, JQ_EXIT_IO,
		    xprintf("standard output: %s", strerror(werr)));
}

/* Take one job: local files, TAKE, the id file, then the data. */
static int
take_run(struct take_config *cfg)
{
	struct outfile		 out = { NULL, NULL, -1 }, idf = { NULL, NULL, -1 };
	struct client		*c;
	struct client_job	 job;
	char			*cause = NULL;

	take_catch_signals();
	/* Local files first: failing here costs no job. */
	if (cfg->output != NULL && outfile_open(&out, cfg->output, 0,
	    &cause) != 0)
		errx(JQ_EXIT_IO, "%s", cause);
	if (cfg->idfile != NULL && outfile_open(&idf, cfg->idfile, 1,
	    &cause) != 0) {
		outfile_discard(&out, 0);
		errx(JQ_EXIT_IO, "%s", cause);
	}
	c = take_job(cfg, &out, &idf, &job);
	if (cfg->idfile != NULL)
		take_write_idfile(c, &job, cfg, &idf, &out);
	take_write_data(c, &job, cfg, &out);
	client_job_free(&job);
	client_close(c);
	return JQ_EXIT_OK;
}

/* Take one job: options, checks, then take_run. */
int
main(int argc, char *argv[])
{
	struct take_config	 cfg;
	poptContext		 pc;
	int			 rc;

	memset(&cfg, 0, sizeof cfg);
	pc = cli_context("jq-take", argc, argv, take_options,
	    "[OPTION...] [SERVER]");
	cli_parse(pc, take_option, &cfg);
	take_check(&cfg, pc);
	rc = take_run(&cfg);
	free(cfg.output);
	free(cfg.idfile);
	free(cfg.glob);
	free(cfg.queues);
	free(cfg.worker);
	return rc;
}
