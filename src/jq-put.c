/*
 * jq-put: send the result of a job (or report its failure) to a jq server.
 *
 * FILE is checked before connecting, so a missing file never reaches the
 * server.  The server stores a result only when its size and CRC-32C match,
 * and refuses a second result for the same job (exit 4).
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
static poptContext put_pc;

static const char put_epilogue[] =
"Send FILE (standard input when FILE is absent or -) as the result of job ID\n"
"on the jq server SERVER, or with --fail report the job as failed.\n"
"SERVER may be omitted when JQ_SERVER is set; then, without --fail, --touch\n"
"or --retry, a first operand made only of digits is the ID (so\n"
"'jq-put 7 out.mp3' works).\n"
"A job accepts one result: a second one is refused and the first stays.\n"
"With --touch, renew the lease of running job ID instead (from a shell loop\n"
"that runs a job taken with jq-take); with --retry, let failed job ID run\n"
"again.  Neither reads a FILE.\n"
"\n"
"Exit status: 0 stored (or renewed, or queued again), 2 usage error,\n"
"4 refused (the job already has a result or has failed, there is no such\n"
"job; --touch: the job is not running; --retry: the job has not failed),\n"
"6 cannot reach the server, 7 server error or checksum mismatch, 8 FILE\n"
"cannot be read, 9 interrupted.";

/* Whether s is a non-empty string of ASCII digits. */
static int
put_all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	return s[strspn(s, "0123456789")] == '\0';
}

/* Whether FILE means standard input: absent or "-". */
static int
put_is_stdin(const char *file)
{
	return file == NULL || strcmp(file, "-") == 0;
}

/* Open FILE for reading; exit JQ_EXIT_IO when it cannot be read. */
static int
put_open(const char *file)
{
	struct stat	 st;
	int		 fd = STDIN_FILENO;

	if (!put_is_stdin(file) && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		err(JQ_EXIT_IO, "%s", file);
	if (put_is_stdin(file))
		file = "standard input";
	if (fstat(fd, &st) != 0)
		err(JQ_EXIT_IO, "%s", file);
	if (S_ISDIR(st.st_mode))
		errx(JQ_EXIT_IO, "%s: %s", file, strerror(EISDIR));
	return fd;
}

/* Send a result or a failure for one job. */
int
main(int argc, char *argv[])
{
	char			*message = NULL, *cause = NULL, *extra = NULL;
	const char		*addr = NULL, *id, *file = NULL, **ops;
	int			 fail = 0, have_status = 0, rc, n, fd = -1;
	int			 status, touch = 0, retry = 0, nofile;
	unsigned		 exit_status = 0, lease_s = 0;
	uint64_t		 idnum, lease_ms;
	const char		*mode;
	struct client		*c;
	struct poptOption	 opts[] = {
		{ "fail", 'f', POPT_ARG_NONE, &fail, 0,
		    "report the job as failed instead of sending a result", NULL },
		{ "message", 'm', POPT_ARG_STRING, NULL, 'm',
		    "with --fail: the failure message", "TEXT" },
		{ "exit-status", 'x', POPT_ARG_STRING, NULL, 'x',
		    "with --fail: the exit status to record (0-255)", "N" },
		{ "touch", '\0', POPT_ARG_NONE, &touch, 0,
		    "renew the lease of running job ID (no FILE)", NULL },
		{ "lease", '\0', POPT_ARG_STRING, NULL, 'L',
		    "with --touch: the new lease, 1s to 365d (rounded up to "
		    "seconds); default: the job's current lease", "DURATION" },
		{ "retry", '\0', POPT_ARG_NONE, &retry, 0,
		    "let failed job ID run again (no FILE)", NULL },
		CLI_AUTH_TABLE,
		CLI_HELP_TABLE,
		CLI_EPILOGUE(put_epilogue),
		POPT_TABLEEND
	};

	put_pc = cli_context("jq-put", argc, argv, opts, "[OPTION...] [SERVER] ID [FILE]");
	while ((rc = poptGetNextOpt(put_pc)) > 0) {
		/* Last one wins; popt hands us the string to free. */
		char *val = poptGetOptArg(put_pc);

		switch (rc) {
		case 'm':
			free(message);
			message = val;
			if (strlen(message) > JQ_MSG_MAX)
				usage_error(cli_prog, "--message: longer than "
				    "%d bytes", JQ_MSG_MAX);
			break;
		case 'x':
			exit_status = cli_uint("--exit-status", val, 0, 255);
			have_status = 1;
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
		default:
			free(val);
			break;
		}
	}
	if (rc < -1)
		cli_bad_option(put_pc, rc);
	if (!fail && message != NULL)
		usage_error(cli_prog, "--message needs --fail");
	if (!fail && have_status)
		usage_error(cli_prog, "--exit-status needs --fail");
	if (fail + touch + retry > 1)
		usage_error(cli_prog, "--fail, --touch and --retry exclude each "
		    "other");
	if (!touch && lease_s > 0)
		usage_error(cli_prog, "--lease needs --touch");
	mode = fail ? "--fail" : touch ? "--touch" : retry ? "--retry" : NULL;
	nofile = mode != NULL;

	/* Operands: [SERVER] ID [FILE]; see the epilogue for the rule. */
	ops = poptGetArgs(put_pc);
	for (n = 0; ops != NULL && ops[n] != NULL; n++)
		;
	if (n == 0)
		usage_error(cli_prog, "missing job ID");
	if (n > (nofile ? 2 : 3))
		usage_error(cli_prog, "%s: unexpected operand%s%s%s",
		    ops[nofile ? 2 : 3], nofile ? " (" : "", nofile ? mode : "",
		    nofile ? " reads no FILE)" : "");
	if (n == 3 || (n == 2 && (nofile || net_default_server(NULL) == NULL ||
	    !put_all_digits(ops[0])))) {
		addr = ops[0];
		id = ops[1];
		file = n == 3 ? ops[2] : NULL;
	} else {
		id = ops[0];
		file = n == 2 ? ops[1] : NULL;
	}
	if (parse_u64(id, 1, UINT64_MAX, &idnum) != 0)
		usage_error(cli_prog, "'%s': a job ID is a positive decimal number",
		    id);
	addr = cli_server(addr);

	if (!nofile)
		fd = put_open(file);	/* before connecting: exit 8, not 6 */
	if ((c = client_open(addr, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	if (touch) {
		if (lease_s > 0)
			rc = client_simple(c, &cause, "TOUCH %s lease=%u", id,
			    lease_s);
		else
			rc = client_simple(c, &cause, "TOUCH %s", id);
	} else if (retry) {
		rc = client_simple(c, &cause, "RETRY %s", id);
	} else if (fail) {
		if (have_status)
			extra = xprintf("exit=%u", exit_status);
		rc = client_fail(c, id, extra, message != NULL ? message : "",
		    message != NULL ? strlen(message) : 0, &cause);
		free(extra);
	} else {
		rc = client_put_fd(c, id, fd, &cause);
		if (rc != 0 && client_status(c) == JQ_EXIT_IO) {
			/* A read error: name the file, nothing was stored. */
			char *tmp = xprintf("%s: %s (nothing stored)",
			    put_is_stdin(file) ? "standard input" : file, cause);
			free(cause);
			cause = tmp;
		}
		if (!put_is_stdin(file))
			close(fd);
	}
	status = rc == 0 ? JQ_EXIT_OK : client_status(c);
	client_close(c);
	if (rc != 0)
		errx(status, "job %s: %s", id, cause);
	free(message);
	return JQ_EXIT_OK;
}
