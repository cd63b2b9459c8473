/*
 * jq-put: send the result of a job (or report its failure) to a jq server;
 * with --add, add new jobs to it; with --wait, wait for a job's result
 * (putwait.c); with --cancel, --drain and --undrain, manage its queue and
 * workers; with --shutdown, stop it.
 *
 * FILE is checked before connecting, so a missing file never reaches the
 * server.  The server stores a result only when its size and CRC-32C match,
 * and refuses a second result for the same job (exit 4).  An added job's
 * id is printed only once the server has its data durably.
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

static const char put_epilogue[] =
"Send FILE (standard input when FILE is absent or -) as the result of job ID\n"
"on the jq server SERVER, or with --fail report the job as failed.\n"
"ID is the job handle jq-take printed, ID:TOKEN (e.g. 7:0123abcd...): the\n"
"token names the attempt, and only its holder may fail, renew or hand it\n"
"back.  SERVER may be omitted when JQ_SERVER is set; then, without --fail,\n"
"--touch or --retry, a first operand that is a handle is the ID (so\n"
"'jq-put \"$id\" out.mp3' works).\n"
"A job accepts one result: a second one is refused and the first stays.\n"
"With --touch, renew the lease of running job ID instead (from a shell loop\n"
"that runs a job taken with jq-take); with --retry, let failed job ID (a\n"
"handle or the bare number jq-stat shows) run again.  Neither reads a FILE.\n"
"\n"
"With --add (jq-put --add [SERVER] [FILE|-]...), add one job per FILE to\n"
"SERVER, named by the FILE's base name (--name NAME for standard input or a\n"
"single FILE), and print each new id on a line of its own.  A name is a\n"
"job's identity: adding one that is a job already is refused, or with\n"
"--if-new answered with that job's id.  With JQ_SERVER set, a first operand\n"
"that is - or an existing file is a FILE.  --after ID[,ID]... makes the new\n"
"jobs wait until those jobs are done (and fail if one fails); --before ID\n"
"makes job ID wait for them (from a running job: --before \"$JQ_JOB_ID\",\n"
"then exit 75).  With --shutdown, ask SERVER to\n"
"take no more jobs, let the running ones finish, and exit.\n"
"\n"
"With --wait (jq-put --wait [SERVER] ID, or --name NAME), wait until job ID\n"
"has ended and write its result to standard output; a job that failed for\n"
"good is told on standard error (status 1).  --add --wait adds one job and\n"
"waits for it.  A lost server is waited for (--reconnect, 60s by default).\n"
"With --cancel, a waiting job fails for good as \"cancelled\" (a running\n"
"one is refused, status 4).  With --drain WORKER (a name or a glob, matched\n"
"against worker names and their node, NAME of NAME/N), those workers get no\n"
"new job and their jq-run exits once its running jobs are delivered;\n"
"--undrain undoes it.\n"
"\n"
"Exit status: 0 stored (or renewed, queued again, added, shutting down,\n"
"waited for and written, cancelled, drained), 1 --wait: the job failed,\n"
"2 usage error, 4 refused (the job already has a result or has failed, there\n"
"is no such job, the result is stale; --fail, --touch: not the holder of the\n"
"job's current attempt; --retry: the job has not failed; --add: the name is\n"
"a job, or its result would clash, or gives no safe file name; --cancel: the\n"
"job is running or has ended; --undrain: not drained),\n"
"6 cannot reach the server (or it is shutting down), 7 server error or\n"
"checksum mismatch (--add: the server cannot keep the data), 8 FILE cannot\n"
"be read, 10 authentication failed (token missing or wrong, or a server\n"
"that does not prove itself).";

/* What the command line asks for. */
struct put_config {
	const char	*server;	/* address */
	char		*id;		/* the job's number */
	char		 token[PROTO_TOKEN_LEN + 1];	/* "" for --retry ID */
	const char	*file;		/* NULL or "-": standard input */
	const char	*mode;		/* "--fail", "--touch", "--retry";
					 * NULL: FILE */
	int		 fail, touch, retry, add, shutdown, if_new;
	int		 wait, cancel, drain, undrain;
	const char	*worker;	/* --drain, --undrain: the pattern */
	uint64_t	 reconnect_ms;	/* --wait: wait for a lost server */
	int		 have_reconnect;
	char		*name;		/* --add --name, or NULL */
	char		*queue;		/* --add --queue, or NULL: default */
	int		 priority;	/* --add --priority */
	int		 have_priority;
	char		*add_args;	/* " queue=Q priority=N" for ADD, or "" */
	const char	**files;	/* --add: the FILEs, NULL-terminated */
	char		*message;	/* --message, or NULL */
	int		 have_status;	/* --exit-status given */
	unsigned	 exit_status;
	unsigned	 lease_s;	/* --lease, or 0 */
	char		*after;		/* --add --after: "3,4" (ids), or NULL */
	char		*after_names;	/* --after: names, encoded, commas as %2C */
	size_t		 nafter;	/* ids and names in --after */
	char		*before;	/* --add --before: an id, or NULL */
	char		*before_name;	/* --before NAME: encoded, or NULL */
	int		 tempfail;	/* --fail --tempfail */
};

enum {
	OPT_FAIL = 256, OPT_MESSAGE, OPT_EXIT_STATUS, OPT_TOUCH, OPT_LEASE,
	OPT_RETRY, OPT_ADD, OPT_NAME, OPT_IF_NEW, OPT_SHUTDOWN,
	OPT_WAIT, OPT_RECONNECT, OPT_CANCEL, OPT_DRAIN, OPT_UNDRAIN,
	OPT_QUEUE, OPT_PRIORITY, OPT_AFTER, OPT_BEFORE, OPT_TEMPFAIL
};

#define PUT_RECONNECT_DEFAULT_MS (60 * 1000)	/* as jq-run's */
#define PUT_ADD_WINDOW		32	/* --add: ADDs sent ahead of their
					 * replies (under JQ_INFLIGHT_MAX) */

static struct poptOption put_options[] = {
	{ "fail", 'f', POPT_ARG_NONE, NULL, OPT_FAIL,
	    "report the job as failed instead of sending a result", NULL },
	{ "message", 'm', POPT_ARG_STRING, NULL, OPT_MESSAGE,
	    "with --fail: the failure message", "TEXT" },
	{ "exit-status", 'x', POPT_ARG_STRING, NULL, OPT_EXIT_STATUS,
	    "with --fail: the exit status to record (0-255)", "N" },
	{ "touch", '\0', POPT_ARG_NONE, NULL, OPT_TOUCH,
	    "renew the lease of running job ID (no FILE)", NULL },
	{ "lease", '\0', POPT_ARG_STRING, NULL, OPT_LEASE,
	    "with --touch: the new lease, 1s to 365d (rounded up to "
	    "seconds); default: the job's current lease", "DURATION" },
	{ "retry", '\0', POPT_ARG_NONE, NULL, OPT_RETRY,
	    "let failed job ID run again (no FILE)", NULL },
	{ "add", 'a', POPT_ARG_NONE, NULL, OPT_ADD,
	    "add a job per FILE (- or none: standard input); print the ids",
	    NULL },
	{ "name", 'n', POPT_ARG_STRING, NULL, OPT_NAME,
	    "with --add: the job's name (for standard input or one FILE); "
	    "with --wait or --cancel: the job of that name", "NAME" },
	{ "queue", '\0', POPT_ARG_STRING, NULL, OPT_QUEUE,
	    "with --add: put the jobs in queue NAME (default: \"default\")",
	    "NAME" },
	{ "priority", '\0', POPT_ARG_STRING, NULL, OPT_PRIORITY,
	    "with --add: the jobs' priority, -1000 to 1000, higher first "
	    "(default 0)", "N" },
	{ "after", '\0', POPT_ARG_STRING, NULL, OPT_AFTER,
	    "with --add: the new jobs run once these jobs are done (ids, "
	    "handles or names, comma-separated)", "ID[,ID]..." },
	{ "before", '\0', POPT_ARG_STRING, NULL, OPT_BEFORE,
	    "with --add: job ID runs only once the new jobs are done (e.g. "
	    "\"$JQ_JOB_ID\" from a running job, which then exits 75)", "ID" },
	{ "tempfail", '\0', POPT_ARG_NONE, NULL, OPT_TEMPFAIL,
	    "with --fail: a temporary failure (EX_TEMPFAIL, exit status 75 "
	    "unless -x): the job runs again later", NULL },
	{ "if-new", '\0', POPT_ARG_NONE, NULL, OPT_IF_NEW,
	    "with --add: a name that is a job already is not an error; print "
	    "that job's id", NULL },
	{ "wait", '\0', POPT_ARG_NONE, NULL, OPT_WAIT,
	    "wait until job ID has ended; its result to standard output "
	    "(with --add: the job added)", NULL },
	{ "reconnect", '\0', POPT_ARG_STRING, NULL, OPT_RECONNECT,
	    "with --wait: wait this long for a lost server (default 60s; 0: "
	    "exit 6 at once)", "DURATION" },
	{ "cancel", '\0', POPT_ARG_NONE, NULL, OPT_CANCEL,
	    "waiting job ID fails for good, \"cancelled\"", NULL },
	{ "drain", '\0', POPT_ARG_NONE, NULL, OPT_DRAIN,
	    "workers matching WORKER get no new job (jq-run exits)", NULL },
	{ "undrain", '\0', POPT_ARG_NONE, NULL, OPT_UNDRAIN,
	    "undo --drain WORKER", NULL },
	{ "shutdown", '\0', POPT_ARG_NONE, NULL, OPT_SHUTDOWN,
	    "ask the server to finish its running jobs and exit", NULL },
	CLI_AUTH_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(put_epilogue),
	POPT_TABLEEND
};

/* Whether s is a non-empty string of ASCII digits. */
static int
put_all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	return s[strspn(s, "0123456789")] == '\0';
}

/* Whether s is a job handle, ID:TOKEN. */
static int
put_is_handle(const char *s)
{
	char	*id, token[PROTO_TOKEN_LEN + 1];

	if (client_parse_handle(s, &id, token) != 0)
		return 0;
	free(id);
	return 1;
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

/*
 * A job named by word: its id (a number, or a handle ID:TOKEN) as a new
 * string in *id, else (a name) NULL in *id and its encoding, with a comma
 * as %2C, as the result; a usage error, naming option, if it is empty.
 */
static char *
put_job_ref(const char *option, const char *word, char **id)
{
	char		 token[PROTO_TOKEN_LEN + 1], *enc, *out, *o;
	const char	*p;
	unsigned	 n;

	*id = NULL;
	if (client_parse_handle(word, id, token) == 0)
		return NULL;
	*id = NULL;
	if (put_all_digits(word) && parse_uint(word, 1, QUEUE_JOBS_MAX, &n) == 0) {
		*id = xprintf("%u", n);
		return NULL;
	}
	if (*word == '\0' || strlen(word) > JQ_NAME_MAX)
		usage_error(cli_prog, "%s: '%s' is not a job id, handle or "
		    "name", option, word);
	enc = proto_encode_dup(word, strlen(word));
	out = o = xmalloc(3 * strlen(enc) + 1);
	for (p = enc; *p != '\0'; p++) {
		if (*p == ',') {
			memcpy(o, "%2C", 3);
			o += 3;
		} else
			*o++ = *p;
	}
	*o = '\0';
	free(enc);
	return out;
}

/* Append word to the comma-separated list *list. */
static void
put_list_add(char **list, char *word)
{
	char	*joined;

	if (*list == NULL) {
		*list = word;
		return;
	}
	joined = xprintf("%s,%s", *list, word);
	free(*list);
	free(word);
	*list = joined;
}

/* --after LIST (given again: more): the ids and the names, checked. */
static void
put_after(struct put_config *cfg, const char *list)
{
	char	*copy = xstrdup(list), *p, *word, *id, *name;

	for (p = copy; p != NULL; ) {
		word = strsep(&p, ",");
		if ((name = put_job_ref("--after", word, &id)) != NULL)
			put_list_add(&cfg->after_names, name);
		else
			put_list_add(&cfg->after, id);
		if (++cfg->nafter > JQ_AFTER_MAX)
			usage_error(cli_prog, "--after: more than %d jobs",
			    JQ_AFTER_MAX);
	}
	free(copy);
}

/* Fill the config from one option (cli_parse). */
static void
put_option(void *arg, int val, char **value)
{
	struct put_config	*cfg = arg;

	switch (val) {
	case OPT_FAIL:
		cfg->fail = 1;
		break;
	case OPT_TOUCH:
		cfg->touch = 1;
		break;
	case OPT_RETRY:
		cfg->retry = 1;
		break;
	case OPT_ADD:
		cfg->add = 1;
		break;
	case OPT_NAME:
		cli_keep(&cfg->name, value);
		cli_length("--name", "a job's name", cfg->name, JQ_NAME_MAX);
		break;
	case OPT_IF_NEW:
		cfg->if_new = 1;
		break;
	case OPT_QUEUE:
		if (strchr(*value, ',') != NULL)
			usage_error(cli_prog, "--queue: a job is in one queue; "
			    "\"%s\" names several", *value);
		free(cfg->queue);
		cfg->queue = NULL;
		cli_queues("--queue", *value, &cfg->queue);
		break;
	case OPT_PRIORITY:
		cfg->priority = cli_priority("--priority", *value);
		cfg->have_priority = 1;
		break;
	case OPT_SHUTDOWN:
		cfg->shutdown = 1;
		break;
	case OPT_WAIT:
		cfg->wait = 1;
		break;
	case OPT_RECONNECT:
		cfg->reconnect_ms = cli_duration("--reconnect", *value);
		if (cfg->reconnect_ms > (uint64_t)JQ_SECONDS_MAX * 1000)
			usage_error(cli_prog, "--reconnect: \"%s\" is longer "
			    "than 365d", *value);
		cfg->have_reconnect = 1;
		break;
	case OPT_CANCEL:
		cfg->cancel = 1;
		break;
	case OPT_DRAIN:
		cfg->drain = 1;
		break;
	case OPT_UNDRAIN:
		cfg->undrain = 1;
		break;
	case OPT_MESSAGE:
		cli_keep(&cfg->message, value);
		if (strlen(cfg->message) > JQ_MSG_MAX)
			usage_error(cli_prog, "--message: longer than %d bytes",
			    JQ_MSG_MAX);
		break;
	case OPT_EXIT_STATUS:
		cfg->exit_status = cli_uint("--exit-status", *value, 0, 255);
		cfg->have_status = 1;
		break;
	case OPT_LEASE:
		cfg->lease_s = cli_seconds("--lease", *value);
		break;
	case OPT_AFTER:
		put_after(cfg, *value);
		break;
	case OPT_BEFORE:
		free(cfg->before);
		free(cfg->before_name);
		cfg->before_name = put_job_ref("--before", *value,
		    &cfg->before);
		break;
	case OPT_TEMPFAIL:
		cfg->tempfail = 1;
		break;
	}
}

/* Check which options go together, and name the mode (NULL: send FILE). */
static void
put_check_options(struct put_config *cfg)
{
	char	 prio[32] = "";

	if (!cfg->fail && cfg->message != NULL)
		usage_error(cli_prog, "--message needs --fail");
	if (!cfg->fail && cfg->have_status)
		usage_error(cli_prog, "--exit-status needs --fail");
	/* the verbs that change the queue: one at a time (but --add --wait) */
	if (cfg->fail + cfg->touch + cfg->retry + cfg->add + cfg->shutdown +
	    cfg->cancel + cfg->drain + cfg->undrain + (cfg->wait &&
	    !cfg->add) > 1)
		usage_error(cli_prog, "--fail, --touch, --retry, --add, --wait, "
		    "--cancel, --drain, --undrain and --shutdown exclude each "
		    "other (but --add --wait)");
	if (!cfg->touch && cfg->lease_s > 0)
		usage_error(cli_prog, "--lease needs --touch");
	if (!cfg->add && cfg->if_new)
		usage_error(cli_prog, "--if-new needs --add");
	if (!cfg->add && cfg->queue != NULL)
		usage_error(cli_prog, "--queue needs --add");
	if (!cfg->add && cfg->have_priority)
		usage_error(cli_prog, "--priority needs --add");
	if (cfg->priority != 0)
		snprintf(prio, sizeof prio, " " KEY_PRIORITY "=%d",
		    cfg->priority);
	cfg->add_args = xprintf("%s%s%s", cfg->queue ? " " KEY_QUEUE "=" : "",
	    cfg->queue ? cfg->queue : "", prio);
	if (!cfg->add && cfg->after != NULL)
		usage_error(cli_prog, "--after needs --add");
	if (!cfg->add && (cfg->before != NULL || cfg->before_name != NULL))
		usage_error(cli_prog, "--before needs --add");
	if (!cfg->fail && cfg->tempfail)
		usage_error(cli_prog, "--tempfail needs --fail");
	if (cfg->name != NULL && !cfg->add && !cfg->wait && !cfg->cancel)
		usage_error(cli_prog, "--name needs --add, --wait or --cancel");
	if (!cfg->wait && cfg->have_reconnect)
		usage_error(cli_prog, "--reconnect needs --wait");
	if (!cfg->have_reconnect)
		cfg->reconnect_ms = PUT_RECONNECT_DEFAULT_MS;
	cfg->mode = cfg->fail ? "--fail" : cfg->touch ? "--touch" :
	    cfg->retry ? "--retry" : NULL;
}

/* Sort out the operands [SERVER] ID [FILE]; see the epilogue for the rule. */
static void
put_operands(struct put_config *cfg, poptContext pc)
{
	const char	**ops = poptGetArgs(pc), *addr = NULL, *mode = cfg->mode;
	const char	*id;
	int		 n, nofile = mode != NULL;
	uint64_t	 idnum;

	for (n = 0; ops != NULL && ops[n] != NULL; n++)
		;
	if (n == 0)
		usage_error(cli_prog, "missing job ID");
	if (n > (nofile ? 2 : 3))
		usage_error(cli_prog, "%s: unexpected operand%s%s%s",
		    ops[nofile ? 2 : 3], nofile ? " (" : "", nofile ? mode : "",
		    nofile ? " reads no FILE)" : "");
	if (n == 3 || (n == 2 && (nofile || net_default_server(NULL) == NULL ||
	    !put_is_handle(ops[0])))) {
		addr = ops[0];
		id = ops[1];
		cfg->file = n == 3 ? ops[2] : NULL;
	} else {
		id = ops[0];
		cfg->file = n == 2 ? ops[1] : NULL;
	}
	if (client_parse_handle(id, &cfg->id, cfg->token) == 0)
		;
	else if (cfg->retry && put_all_digits(id) &&
	    parse_u64(id, 1, UINT64_MAX, &idnum) == 0)
		cfg->id = xstrdup(id);
	else
		usage_error(cli_prog, "'%s' is not a job handle: ID is what "
		    "jq-take printed, ID%cTOKEN (a number, '%c', %d hex digits)",
		    id, CLIENT_HANDLE_SEP, CLIENT_HANDLE_SEP, PROTO_TOKEN_LEN);
	cfg->server = cli_server(addr);
}

/* Send the result, failure, TOUCH or RETRY; exit with the status if refused. */
static int
put_send(const struct put_config *cfg)
{
	const char		*id = cfg->id, *token = cfg->token;
	const char		*file = cfg->file;
	const char		*message = cfg->message;
	char			*cause = NULL, *extra = NULL;
	int			 rc, status, fd = -1;
	struct client		*c;

	if (cfg->mode == NULL)
		fd = put_open(file);	/* before connecting: exit 8, not 6 */
	if ((c = client_open(cfg->server, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	if (cfg->touch) {
		if (cfg->lease_s > 0)
			rc = client_simple(c, &cause, "TOUCH %s " KEY_TOKEN
			    "=%s " KEY_LEASE "=%u", id, token, cfg->lease_s);
		else
			rc = client_simple(c, &cause, "TOUCH %s " KEY_TOKEN
			    "=%s", id, token);
	} else if (cfg->retry) {
		rc = client_simple(c, &cause, "RETRY %s", id);
	} else if (cfg->fail) {
		if (cfg->have_status || cfg->tempfail)
			extra = xprintf("exit=%u%s", cfg->have_status ?
			    cfg->exit_status : 75, cfg->tempfail ?
			    " " KEY_TEMPFAIL "=1" : "");
		rc = client_fail(c, id, token, extra, message != NULL ? message : "",
		    message != NULL ? strlen(message) : 0, &cause);
		free(extra);
	} else {
		rc = client_put_fd(c, id, token, fd, &cause);
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
	return JQ_EXIT_OK;
}

/* The base name of FILE, to name its job by; NULL if it has none. */
static const char *
put_base(const char *file)
{
	const char	*slash = strrchr(file, '/');

	file = slash ? slash + 1 : file;
	return *file == '\0' || strcmp(file, ".") == 0 ||
	    strcmp(file, "..") == 0 ? NULL : file;
}

/*
 * Sort out the operands of --add, [SERVER] [FILE|-]..., and check every
 * FILE can be read (before connecting: nothing is added when one cannot).
 */
static void
put_add_operands(struct put_config *cfg, poptContext pc)
{
	const char	**ops = poptGetArgs(pc), *addr = NULL;
	struct stat	 st;
	size_t		 n = 0, i, nstdin = 0;
	static const char *stdin_only[] = { "-", NULL };

	for (n = 0; ops != NULL && ops[n] != NULL; n++)
		;
	/* with JQ_SERVER, a first operand that is a file is a FILE */
	if (n > 0 && !(net_default_server(NULL) != NULL &&
	    (strcmp(ops[0], "-") == 0 || (stat(ops[0], &st) == 0 &&
	    !S_ISSOCK(st.st_mode))))) {
		addr = ops[0];
		ops++;
		n--;
	}
	cfg->server = cli_server(addr);
	cfg->files = n > 0 ? ops : stdin_only;
	n = n > 0 ? n : 1;
	if (cfg->name != NULL && n > 1)
		usage_error(cli_prog, "--name names one job; %zu FILEs given", n);
	if (cfg->wait && n > 1)
		usage_error(cli_prog, "--add --wait adds one job and waits for "
		    "it; %zu FILEs given", n);
	for (i = 0; i < n; i++) {
		if (!put_is_stdin(cfg->files[i])) {
			close(put_open(cfg->files[i]));
			if (put_base(cfg->files[i]) == NULL && cfg->name == NULL)
				usage_error(cli_prog, "%s: no file name to name "
				    "the job by; use --name", cfg->files[i]);
			continue;
		}
		if (nstdin++ > 0)
			usage_error(cli_prog, "standard input (-) can be read "
			    "once");
		if (cfg->name == NULL)
			usage_error(cli_prog, "a job read from standard input "
			    "needs --name");
	}
}

/*
 * Send an ADD of the data readable from fd as a job named name, size bytes
 * long if known (else UINT64_MAX); its reply is read later, in its turn
 * (put_add_reply).  A local read error abandons the data, so nothing is
 * added: -1 with *aborted set (the server answers ERR ABORTED in its turn).
 * -1 with *cause and *status on failure.
 */
static int
put_add_send(struct client *c, const struct put_config *cfg, const char *name,
    int fd, uint64_t size, int *aborted, int *status, char **cause)
{
	struct client_tx	 tx;
	char			*enc, *ignored, sz[PROTO_U64_LEN + 8];
	int			 rc;

	*aborted = 0;
	sz[0] = '\0';
	if (size != UINT64_MAX)
		snprintf(sz, sizeof sz, " " KEY_SIZE "=%llu",
		    (unsigned long long)size);
	enc = proto_encode_dup(name, strlen(name));
	rc = client_send(c, cause, "ADD " KEY_NAME "=%s%s%s%s%s%s%s%s%s%s%s%s",
	    enc, sz, cfg->if_new ? " " KEY_IF_NEW "=1" : "",
	    cfg->after ? " " KEY_AFTER "=" : "", cfg->after ? cfg->after : "",
	    cfg->after_names ? " " KEY_AFTER_NAME "=" : "",
	    cfg->after_names ? cfg->after_names : "",
	    cfg->before ? " " KEY_BEFORE "=" : "",
	    cfg->before ? cfg->before : "",
	    cfg->before_name ? " " KEY_BEFORE_NAME "=" : "",
	    cfg->before_name ? cfg->before_name : "",
	    cfg->add_args != NULL ? cfg->add_args : "");
	free(enc);
	client_tx_init(&tx);
	if (rc == 0)
		rc = client_tx_fd(c, &tx, fd, cause);
	if (rc != 0 && client_status(c) == JQ_EXIT_IO) {
		/* the read error stands; the server drops what it had */
		ignored = NULL;
		*aborted = client_tx_abort(c, &ignored) == 0;
		free(ignored);
		*status = JQ_EXIT_IO;
		return -1;
	}
	/*
	 * --add --wait: the WAIT goes out in the same write, by name (the id
	 * is not known yet; the name is the job's identity): the server reads
	 * it once the ADD is answered, which saves a round trip.
	 */
	if (rc == 0)
		rc = client_tx_end(c, &tx, cause);
	if (rc == 0 && cfg->wait) {
		enc = proto_encode_dup(name, strlen(name));
		rc = client_send(c, cause, "WAIT 0 " KEY_NAME "=%s", enc);
		free(enc);
	}
	if (rc != 0) {
		*status = client_status(c);
		return -1;
	}
	return 0;
}

/*
 * Read the reply to the oldest ADD not answered yet: *id is its id, or
 * with if_new that of the job the name was already (ours to free).  -1 with
 * *cause and *status when the server refused it (the connection stays
 * usable), -2 when the connection is lost or out of step.
 */
static int
put_add_reply(struct client *c, char **id, int *status, char **cause)
{
	char	*line, *rest, *word;

	if ((line = client_line(c, cause)) == NULL) {
		*status = client_status(c);
		return -2;
	}
	if (strncmp(line, REPLY_OK " ", sizeof REPLY_OK) == 0)
		rest = line + sizeof REPLY_OK;
	else {
		client_bad_reply(c, line, cause);
		*status = client_status(c);
		return strncmp(line, REPLY_ERR " ", sizeof REPLY_ERR) == 0 ?
		    -1 : -2;
	}
	/* OK <id>, and existing=1 when the name was a job already */
	if ((word = proto_word(&rest)) == NULL || !put_all_digits(word)) {
		*cause = xprintf("unexpected reply to ADD: \"OK %.40s\"",
		    word ? word : "");
		*status = JQ_EXIT_PROTOCOL;
		return -2;
	}
	*id = xstrdup(word);
	return 0;
}

/* The FILE operand i as error messages name it. */
static const char *
put_add_what(const struct put_config *cfg, size_t i)
{
	return put_is_stdin(cfg->files[i]) ? "standard input" : cfg->files[i];
}

/* The job name FILE operand i is added as. */
static const char *
put_add_name(const struct put_config *cfg, size_t i)
{
	return cfg->name != NULL ? cfg->name : put_base(cfg->files[i]);
}

/* --add: where the adds stand (put_add_answer, put_add). */
struct put_adds {
	const struct put_config	*cfg;
	size_t		 sent;		/* ADDs sent */
	size_t		 answered;	/* of those, replies read */
	size_t		 failed;	/* the first that failed, or SIZE_MAX */
	size_t		 added_after;	/* added after it (ids printed) */
	int		 status;	/* its exit status */
	int		 lost;		/* the connection is lost */
	char		*cause;		/* why it failed */
};

/*
 * Record that FILE i failed: the first failure is told at the end, a later
 * one (an ADD sent before the first failure was heard of) at once.
 */
static void
put_add_failed(struct put_adds *pa, size_t i, int status, char *cause)
{
	if (pa->failed != SIZE_MAX) {
		warnx("%s (%s): %s", put_add_what(pa->cfg, i),
		    put_add_name(pa->cfg, i), cause);
		free(cause);
		return;
	}
	pa->failed = i;
	pa->status = status;
	pa->cause = cause;
}

/*
 * Read the reply to the oldest ADD in flight and print its id: an id the
 * server gave is printed even after an earlier FILE failed, since the job
 * is there and nothing else would tell it.
 */
static void
put_add_answer(struct client *c, struct put_adds *pa)
{
	char	*id, *cause = NULL;
	int	 status, rc;

	rc = put_add_reply(c, &id, &status, &cause);
	if (rc == -2) {
		put_add_failed(pa, pa->answered, status, cause);
		pa->lost = 1;
		return;
	}
	if (rc == -1)
		put_add_failed(pa, pa->answered, status, cause);
	else {
		printf("%s\n", id);
		if (fflush(stdout) != 0)
			err(JQ_EXIT_IO, "standard output");
		free(id);
		if (pa->failed != SIZE_MAX)
			pa->added_after++;
	}
	pa->answered++;
}

/*
 * --add: add a job per FILE, in order, printing each id.  The ADDs go out
 * pipelined, PUT_ADD_WINDOW at most waiting for their replies, which come
 * in order.  The first failure stops the sending; the ADDs already sent are
 * still answered and their ids printed; the message says which FILEs were
 * added before it (and how many after it).
 */
static int
put_add(const struct put_config *cfg)
{
	struct client	*c;
	struct put_adds	 pa;
	struct stat	 st;
	const char	*file;
	char		*cause = NULL, *id, *before, *after;
	size_t		 i;
	int		 fd, status, rc, aborted;

	if ((c = client_open(cfg->server, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	if (cfg->wait) {	/* one FILE: its result to stdout */
		file = cfg->files[0];
		fd = put_open(file);
		rc = put_add_send(c, cfg, put_add_name(cfg, 0), fd, fstat(fd,
		    &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size :
		    UINT64_MAX, &aborted, &status, &cause);
		if (rc == 0)
			rc = put_add_reply(c, &id, &status, &cause);
		if (rc != 0)
			errx(status, "%s (%s): %s", put_add_what(cfg, 0),
			    put_add_name(cfg, 0), cause);
		rc = putwait_run(c, cfg->server, id, put_add_name(cfg, 0),
		    strlen(put_add_name(cfg, 0)), cfg->reconnect_ms, 1);
		free(id);
		return rc;
	}
	memset(&pa, 0, sizeof pa);
	pa.cfg = cfg;
	pa.failed = SIZE_MAX;
	for (i = 0; cfg->files[i] != NULL && pa.failed == SIZE_MAX; i++) {
		while (pa.sent - pa.answered >= PUT_ADD_WINDOW && !pa.lost)
			put_add_answer(c, &pa);
		if (pa.failed != SIZE_MAX)
			break;
		file = cfg->files[i];
		fd = put_open(file);
		cause = NULL;
		rc = put_add_send(c, cfg, put_add_name(cfg, i), fd, fstat(fd,
		    &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size :
		    UINT64_MAX, &aborted, &status, &cause);
		if (!put_is_stdin(file))
			close(fd);
		if (rc != 0) {
			/* the ones before it are answered first */
			while (pa.answered < pa.sent && !pa.lost)
				put_add_answer(c, &pa);
			put_add_failed(&pa, i, status, cause);
			if (aborted && !pa.lost) {	/* its ERR ABORTED */
				cause = NULL;
				if (put_add_reply(c, &id, &status, &cause) == 0)
					free(id);
				free(cause);
			}
			pa.lost = 1;
			break;
		}
		pa.sent++;
	}
	while (pa.answered < pa.sent && !pa.lost)
		put_add_answer(c, &pa);
	client_close(c);
	if (pa.failed == SIZE_MAX)
		return JQ_EXIT_OK;
	i = pa.failed;
	before = i == 0 ? xstrdup("") : xprintf("; the %zu FILE%s before it "
	    "%s added (from %s to %s)", i, i == 1 ? "" : "s", i == 1 ? "was" :
	    "were", cfg->files[0], cfg->files[i - 1]);
	after = pa.sent > i + 1 && !pa.lost ? xprintf("; of the %zu sent "
	    "after it, %zu %s added (their ids follow)", pa.sent - i - 1,
	    pa.added_after, pa.added_after == 1 ? "was" : "were") :
	    pa.sent > pa.answered + 1 ? xprintf("; the %zu sent after it may "
	    "have been added", pa.sent - pa.answered - 1) : xstrdup("");
	errx(pa.status, "%s (%s): %s%s%s", put_add_what(cfg, i),
	    put_add_name(cfg, i), pa.cause, before, after);
}

/*
 * Sort out the operands of --wait and --cancel: [SERVER] ID, where ID is a
 * job id or a handle (ID:TOKEN), or with --name only [SERVER].
 */
static void
put_job_operands(struct put_config *cfg, poptContext pc)
{
	const char	**ops = poptGetArgs(pc), *addr = NULL, *id;
	char		 token[PROTO_TOKEN_LEN + 1];
	uint64_t	 num;
	int		 n;

	for (n = 0; ops != NULL && ops[n] != NULL; n++)
		;
	if (cfg->name != NULL) {
		if (n > 1)
			usage_error(cli_prog, "%s: unexpected operand (--name "
			    "names the job)", ops[1]);
		cfg->server = cli_server(n == 1 ? ops[0] : NULL);
		cfg->id = xstrdup("0");		/* the name decides */
		return;
	}
	if (n == 0)
		usage_error(cli_prog, "missing job ID (or --name NAME)");
	if (n > 2)
		usage_error(cli_prog, "%s: unexpected operand", ops[2]);
	if (n == 2)
		addr = ops[0];
	id = ops[n - 1];
	if (client_parse_handle(id, &cfg->id, token) != 0) {
		if (!put_all_digits(id) || parse_u64(id, 1, UINT64_MAX,
		    &num) != 0)
			usage_error(cli_prog, "'%s' is not a job id (the number "
			    "jq-put --add printed, or a handle ID%cTOKEN)", id,
			    CLIENT_HANDLE_SEP);
		cfg->id = xstrdup(id);
	}
	cfg->server = cli_server(addr);
}

/* Connect to the server of cfg, or exit with the status that fits. */
static struct client *
put_connect(const struct put_config *cfg)
{
	struct client	*c;
	char		*cause = NULL;
	int		 status;

	if ((c = client_open(cfg->server, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	return c;
}

/* --cancel: waiting job ID (or --name NAME) fails for good, "cancelled". */
static int
put_cancel(const struct put_config *cfg)
{
	struct client	*c = put_connect(cfg);
	char		*cause = NULL, *enc = NULL;
	int		 rc, status;

	if (cfg->name != NULL)
		enc = proto_encode_dup(cfg->name, strlen(cfg->name));
	rc = client_simple(c, &cause, "CANCEL %s%s%s", cfg->id, enc ? " "
	    KEY_NAME "=" : "", enc ? enc : "");
	free(enc);
	status = rc == 0 ? JQ_EXIT_OK : client_status(c);
	client_close(c);
	if (rc != 0 && cfg->name != NULL)
		errx(status, "%s", cause);
	if (rc != 0)
		errx(status, "job %s: %s", cfg->id, cause);
	return JQ_EXIT_OK;
}

/* Sort out the operands of --drain and --undrain: [SERVER] WORKER. */
static void
put_drain_operands(struct put_config *cfg, poptContext pc)
{
	const char	**ops = poptGetArgs(pc);
	int		 n;

	for (n = 0; ops != NULL && ops[n] != NULL; n++)
		;
	if (n == 0 || (n == 1 && net_default_server(NULL) == NULL))
		usage_error(cli_prog, "missing WORKER (a worker name or glob)");
	if (n > 2)
		usage_error(cli_prog, "%s: unexpected operand", ops[2]);
	cfg->server = cli_server(n == 2 ? ops[0] : NULL);
	cfg->worker = ops[n - 1];
	if (*cfg->worker == '\0')
		usage_error(cli_prog, "WORKER is empty");
	cli_length("WORKER", "a worker name", cfg->worker, JQ_WORKER_MAX);
}

/*
 * --drain: the workers matching WORKER get no new job; --undrain: they
 * may again.  A drain that matches no connected worker is said: a typo
 * would otherwise go unnoticed (it holds all the same).
 */
static int
put_drain(const struct put_config *cfg)
{
	struct client	*c = put_connect(cfg);
	char		*cause = NULL, *enc, *rest = NULL;
	const char	*v;
	size_t		 len;
	int		 rc, status;

	enc = proto_encode_dup(cfg->worker, strlen(cfg->worker));
	rc = client_send(c, &cause, "%s %s", cfg->drain ? "DRAIN" : "UNDRAIN",
	    enc);
	free(enc);
	if (rc == 0)
		rc = client_reply(c, &rest, &cause);
	status = rc == 0 ? JQ_EXIT_OK : client_status(c);
	if (rc == 0 && cfg->drain && (v = proto_word_kv(rest, KEY_WORKERS,
	    &len)) != NULL && len == 1 && *v == '0')
		warnx("no worker matching %s is connected now; it is drained "
		    "all the same (jq-put --undrain undoes it)", cfg->worker);
	client_close(c);
	if (rc != 0)
		errx(status, "%s: %s", cfg->worker, cause);
	return JQ_EXIT_OK;
}

/* --shutdown: ask the server to finish its running jobs and exit. */
static int
put_shutdown(const struct put_config *cfg)
{
	struct client	*c;
	char		*cause = NULL;
	int		 status;

	if ((c = client_open(cfg->server, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	if (client_simple(c, &cause, "SHUTDOWN") != 0) {
		status = client_status(c);
		client_close(c);
		errx(status, "%s", cause);
	}
	client_close(c);
	return JQ_EXIT_OK;
}

/* Send a result or a failure for one job. */
int
main(int argc, char *argv[])
{
	struct put_config	 cfg;
	poptContext		 pc;
	int			 rc;

	memset(&cfg, 0, sizeof cfg);
	pc = cli_context("jq-put", argc, argv, put_options,
	    "[OPTION...] [SERVER] ID [FILE]\n"
	    "  or:  jq-put --add [--wait] [OPTION...] [SERVER] [FILE|-]...\n"
	    "  or:  jq-put --wait|--cancel [OPTION...] [SERVER] ID\n"
	    "  or:  jq-put --drain|--undrain [OPTION...] [SERVER] WORKER\n"
	    "  or:  jq-put --shutdown [OPTION...] [SERVER]");
	cli_parse(pc, put_option, &cfg);
	put_check_options(&cfg);
	if (cfg.add) {
		put_add_operands(&cfg, pc);
		rc = put_add(&cfg);
	} else if (cfg.wait || cfg.cancel) {
		put_job_operands(&cfg, pc);
		rc = cfg.wait ? putwait_run(NULL, cfg.server, cfg.id, cfg.name,
		    cfg.name ? strlen(cfg.name) : 0, cfg.reconnect_ms, 0) :
		    put_cancel(&cfg);
	} else if (cfg.drain || cfg.undrain) {
		put_drain_operands(&cfg, pc);
		rc = put_drain(&cfg);
	} else if (cfg.shutdown) {
		cfg.server = cli_server(cli_operand(pc));
		rc = put_shutdown(&cfg);
	} else {
		put_operands(&cfg, pc);
		rc = put_send(&cfg);
	}
	free(cfg.name);
	free(cfg.queue);
	free(cfg.add_args);
	free(cfg.message);
	free(cfg.id);
	return rc;
}
