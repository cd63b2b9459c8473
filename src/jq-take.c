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
#include <errno.h>
#include <fcntl.h>
#include <popt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

/* The option context, file-wide so that it stays reachable at exit(). */
static poptContext take_pc;

static const char take_epilogue[] =
"Take one job from the jq server SERVER (default: $JQ_SERVER).\n"
"With -o, the job data is written to FILE (never partially) and the job id\n"
"is printed on stdout.  Without -o, the data goes to stdout and --id-file is\n"
"required: the id (and name, with -n) is written there before the data.\n"
"\n"
"Exit status: 0 took a job, 2 usage error, 3 no job remains (nothing is\n"
"printed or created), 5 --wait ran out, 6 cannot reach the server, 7 server\n"
"error or checksum mismatch, 8 local I/O error, 9 interrupted.";

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
take_extra(const char *glob, int wait, uint64_t wait_ms, unsigned lease_s)
{
	unsigned long long	 secs;
	char			*enc, *s, *t;

	s = xstrdup("");
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

/* The id, and with -n the name, each ended by LF or (with -z) NUL. */
static char *
take_record(const struct client_job *job, int name, int null, size_t *len)
{
	size_t	 idlen = strlen(job->id);
	char	*buf, end = null ? '\0' : '\n';

	*len = idlen + 1 + (name ? job->namelen + 1 : 0);
	buf = xmalloc(*len);
	memcpy(buf, job->id, idlen);
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
	else if (synced && client_simple(c, &ignored, "RELEASE %s", job->id) == 0)
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

/* Take one job: options, local files, TAKE, then the data to FILE or stdout. */
int
main(int argc, char *argv[])
{
	char			*output = NULL, *idfile = NULL, *glob = NULL;
	char			*worker = NULL, *extra, *cause = NULL, *skip = NULL;
	char			*rec;
	const char		*addr, *arg;
	int			 name = 0, null = 0, wait = 0, rc, werr, status;
	uint64_t		 wait_ms = 0, lease_ms;
	unsigned		 lease_s = 0;
	size_t			 reclen;
	struct outfile		 out = { NULL, NULL, -1 }, idf = { NULL, NULL, -1 };
	struct client		*c;
	struct client_job	 job;
	struct sigaction	 sa;
	struct poptOption	 opts[] = {
		{ "output", 'o', POPT_ARG_STRING, NULL, 'o',
		    "write the job data to FILE and the id to stdout", "FILE" },
		{ "id-file", 'i', POPT_ARG_STRING, NULL, 'i',
		    "write the id to FILE before the data (needed without -o)", "FILE" },
		{ "name", 'n', POPT_ARG_NONE, &name, 0,
		    "print the job's name after its id", NULL },
		{ "null", 'z', POPT_ARG_NONE, &null, 0,
		    "end the id and name with NUL instead of newline", NULL },
		{ "match", 'm', POPT_ARG_STRING, NULL, 'm',
		    "take only jobs whose name matches the fnmatch(3) GLOB", "GLOB" },
		{ "wait", 'w', POPT_ARG_STRING, NULL, 'w',
		    "wait at most SECONDS (or 500ms, 2m, ...) while other workers "
		    "hold every job; default: forever", "SECONDS" },
		{ "worker", '\0', POPT_ARG_STRING, NULL, 'W',
		    "worker name told to the server (default: HOSTNAME:PID)", "NAME" },
		{ "lease", '\0', POPT_ARG_STRING, NULL, 'L',
		    "hold the job for DURATION (1s to 365d, rounded up to "
		    "seconds) unless renewed with 'jq-put --touch'; default: "
		    "the server's --lease", "DURATION" },
		CLI_AUTH_TABLE,
		CLI_HELP_TABLE,
		CLI_EPILOGUE(take_epilogue),
		POPT_TABLEEND
	};

	take_pc = cli_context("jq-take", argc, argv, opts, "[OPTION...] [SERVER]");
	while ((rc = poptGetNextOpt(take_pc)) > 0) {
		/* Last one wins; popt hands us the string to free. */
		char *val = poptGetOptArg(take_pc);

		switch (rc) {
		case 'o':
			free(output);
			output = val;
			break;
		case 'i':
			free(idfile);
			idfile = val;
			break;
		case 'm':
			free(glob);
			glob = val;
			if (*glob == '\0' || strlen(glob) > JQ_GLOB_MAX)
				usage_error(cli_prog, "--match: pattern must "
				    "have 1 to %d bytes", JQ_GLOB_MAX);
			break;
		case 'w':
			wait_ms = cli_duration("--wait", val);
			wait = 1;
			free(val);
			break;
		case 'L':
			lease_ms = cli_duration("--lease", val);
			if (lease_ms == 0 || lease_ms > (uint64_t)JQ_SECONDS_MAX *
			    1000)
				usage_error(cli_prog, "--lease: \"%s\" is not a "
				    "duration from 1s to 365d", val);
			lease_s = (unsigned)((lease_ms + 999) / 1000);
			free(val);
			break;
		case 'W':
			free(worker);
			worker = val;
			if (*worker == '\0' || strlen(worker) > JQ_WORKER_MAX)
				usage_error(cli_prog, "--worker: name must have "
				    "1 to %d bytes", JQ_WORKER_MAX);
			break;
		default:
			free(val);
			break;
		}
	}
	if (rc < -1)
		cli_bad_option(take_pc, rc);
	arg = poptGetArg(take_pc);
	if (poptPeekArg(take_pc) != NULL)
		usage_error(cli_prog, "%s: unexpected operand", poptPeekArg(take_pc));
	if (output == NULL && idfile == NULL)
		usage_error(cli_prog, "--id-file is required without --output "
		    "(stdout carries the job data)");
	if (output != NULL && *output == '\0')
		usage_error(cli_prog, "--output: empty file name");
	if (idfile != NULL && *idfile == '\0')
		usage_error(cli_prog, "--id-file: empty file name");
	addr = cli_server(arg);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = take_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* Local files first: failing here costs no job. */
	if (output != NULL && outfile_open(&out, output, 0, &cause) != 0)
		errx(JQ_EXIT_IO, "%s", cause);
	if (idfile != NULL && outfile_open(&idf, idfile, 1, &cause) != 0) {
		outfile_discard(&out, 0);
		errx(JQ_EXIT_IO, "%s", cause);
	}

	if ((c = client_open(addr, worker, &status, &cause)) == NULL) {
		outfile_discard(&out, 0);
		outfile_discard(&idf, 1);
		errx(status, "%s", cause);
	}
	extra = take_extra(glob, wait, wait_ms, lease_s);
	rc = client_take(c, extra, &job, &cause);
	free(extra);
	free(glob);		/* the exits below must not leave it unfreed */
	glob = NULL;
	if (rc <= 0) {
		outfile_discard(&out, 0);
		outfile_discard(&idf, 1);
		status = client_status(c);	/* rc 0: NOWORK or TIMEOUT, silent */
		client_close(c);
		if (rc < 0)
			errx(status, "%s", cause);
		exit(status);
	}

	/* The id file is complete before the data starts. */
	if (idfile != NULL) {
		rec = take_record(&job, name, null, &reclen);
		if (util_write_all(idf.fd, rec, reclen) != 0) {
			cause = xprintf("%s: %s", idfile, strerror(errno));
			outfile_discard(&idf, 1);
		} else
			outfile_commit(&idf, 1, &cause);
		free(rec);
		if (cause != NULL) {
			outfile_discard(&out, 0);
			/* Nobody has the id yet: consume the data, give it back. */
			take_fail(c, &job, NULL, client_rx_skip(c, &skip) == 0,
			    JQ_EXIT_IO, cause);
		}
	}

	if (output == NULL) {
		/* Stream to stdout, stopping at the first write error. */
		if (take_receive(c, STDOUT_FILENO, 0, &werr, &cause) != 0)
			take_fail(c, &job, idfile, 0, client_status(c), cause);
		if (werr != 0)
			take_fail(c, &job, idfile, 0, JQ_EXIT_IO,
			    xprintf("standard output: %s", strerror(werr)));
	} else {
		if (take_receive(c, out.fd, 1, &werr, &cause) != 0) {
			outfile_discard(&out, 0);
			take_fail(c, &job, idfile, 0, client_status(c), cause);
		}
		if (werr != 0) {
			outfile_discard(&out, 0);
			take_fail(c, &job, idfile, 1, JQ_EXIT_IO,
			    xprintf("%s: %s", output, strerror(werr)));
		}
		if (outfile_commit(&out, 0, &cause) != 0)
			take_fail(c, &job, idfile, 1, JQ_EXIT_IO, cause);
		rec = take_record(&job, name, null, &reclen);
		rc = util_write_all(STDOUT_FILENO, rec, reclen);
		werr = errno;
		free(rec);
		if (rc != 0)
			take_fail(c, &job, idfile, 1, JQ_EXIT_IO,
			    xprintf("standard output: %s", strerror(werr)));
	}
	client_job_free(&job);
	client_close(c);
	free(output);
	free(idfile);
	free(glob);
	free(worker);
	return JQ_EXIT_OK;
}
