/*
 * jq-run: take jobs from a jq server and run a command for each one.
 *
 *	jq-run [OPTION]... [SERVER] -- COMMAND [ARG]...
 *
 * This file only parses the command line; the worker lives in run.c, the
 * placeholders in template.c and the careful fork/exec in spawn.c.
 *
 * The command line is split at the first "--" before popt sees it: what
 * precedes it are options and the optional SERVER, what follows is COMMAND
 * and its arguments, untouched (popt would otherwise keep parsing options
 * among them).  The "--" is required, so a forgotten one is an error instead
 * of a server name run as a command.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <popt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define PROG		"jq-run"
#define RUN_JOBS_MAX	1024

/* argv up to "--", as popt's context sees it: lives as long as the context */
char	**run_head;	/* global, so its store cannot be optimised away */
#define RUN_RECONNECT_DEFAULT_MS (60 * 1000)

enum {
	OPT_JOBS = 'j', OPT_VERBOSE = 'v',
	OPT_TIMEOUT = 256, OPT_KEEP_TMP, OPT_MAX_JOBS, OPT_MATCH, OPT_WORKER,
	OPT_TMPDIR, OPT_RECONNECT
};

static struct poptOption run_options[] = {
	{ "jobs", 'j', POPT_ARG_STRING, NULL, OPT_JOBS,
	  "run N jobs at once (default: the number of online CPUs)", "N" },
	{ "timeout", '\0', POPT_ARG_STRING, NULL, OPT_TIMEOUT,
	  "kill a job's command after DURATION (ms, s, m, h, d; default s)",
	  "DURATION" },
	{ "max-jobs", '\0', POPT_ARG_STRING, NULL, OPT_MAX_JOBS,
	  "stop after N jobs in total", "N" },
	{ "match", '\0', POPT_ARG_STRING, NULL, OPT_MATCH,
	  "take only jobs whose name matches GLOB", "GLOB" },
	{ "worker", '\0', POPT_ARG_STRING, NULL, OPT_WORKER,
	  "worker name told to the server (default HOSTNAME:PID)", "NAME" },
	{ "tmpdir", '\0', POPT_ARG_STRING, NULL, OPT_TMPDIR,
	  "make job directories in DIR (default $TMPDIR or /tmp)", "DIR" },
	{ "reconnect", '\0', POPT_ARG_STRING, NULL, OPT_RECONNECT,
	  "when the server is lost, try to reconnect for DURATION (default "
	  "60s; 0: exit 6 at once)", "DURATION" },
	{ "keep-tmp", '\0', POPT_ARG_NONE, NULL, OPT_KEEP_TMP,
	  "keep each job's temporary directory (for debugging)", NULL },
	{ "verbose", 'v', POPT_ARG_NONE, NULL, OPT_VERBOSE,
	  "log each job's start, end, status and time", NULL },
	CLI_AUTH_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(
"Take jobs from SERVER (default: $JQ_SERVER) and run COMMAND for each, until\n"
"no work remains.  In COMMAND's arguments:\n"
"  <in>  {in}        a file holding the job's data (else it goes to stdin)\n"
"  <out> {out}       the file to write the result to (else stdout is sent)\n"
"  <out.EXT> {out.EXT}  the same, ending in .EXT\n"
"  <name> {name}     the job's name     <id> {id}  the job's id\n"
"  <<  {{            a literal < or {, so <<in> is the text <in>\n"
"Exit status: 0 all jobs succeeded, 1 some failed, 2 usage, 6 cannot reach\n"
"the server (or lost it for longer than --reconnect), 7 protocol error,\n"
"8 local error, 9 stopped by a signal."),
	POPT_TABLEEND
};

/* Replace *slot with the option's argument ("last one wins", no leak). */
static void
run_take_arg(poptContext pc, char **slot)
{
	free(*slot);
	*slot = poptGetOptArg(pc);
}

/* The default number of slots: one per online CPU. */
static unsigned
run_default_jobs(void)
{
	long	 n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > RUN_JOBS_MAX ? RUN_JOBS_MAX : (unsigned)n;
}

int
main(int argc, char *argv[])
{
	struct run_config	 cfg;
	poptContext		 pc;
	char			*jobs = NULL, *timeout = NULL, *max_jobs = NULL;
	char			*match = NULL, *worker = NULL, *tmpdir = NULL;
	char			*cause = NULL, *dir, *server_arg;
	char			*reconnect = NULL;
	struct stat		 st;
	struct net_addr		 addr;
	const char		**operands, *env;
	int			 dashes, i, rc, nops = 0, status;

	log_init(PROG, 0);
	memset(&cfg, 0, sizeof cfg);
	cfg.jobs = run_default_jobs();

	/* Options and SERVER before the first "--", the command after it. */
	for (dashes = 1; dashes < argc; dashes++)
		if (strcmp(argv[dashes], "--") == 0)
			break;
	run_head = xcalloc((size_t)dashes + 1, sizeof *run_head);
	for (i = 0; i < dashes; i++)
		run_head[i] = argv[i];
	pc = cli_context(PROG, dashes, run_head, run_options,
	    "[OPTION]... [SERVER] -- COMMAND [ARG]...");
	while ((rc = poptGetNextOpt(pc)) > 0) {
		switch (rc) {
		case OPT_JOBS:
			run_take_arg(pc, &jobs);
			break;
		case OPT_TIMEOUT:
			run_take_arg(pc, &timeout);
			break;
		case OPT_MAX_JOBS:
			run_take_arg(pc, &max_jobs);
			break;
		case OPT_MATCH:
			run_take_arg(pc, &match);
			break;
		case OPT_WORKER:
			run_take_arg(pc, &worker);
			break;
		case OPT_TMPDIR:
			run_take_arg(pc, &tmpdir);
			break;
		case OPT_RECONNECT:
			run_take_arg(pc, &reconnect);
			break;
		case OPT_KEEP_TMP:
			cfg.keep_tmp = 1;
			break;
		case OPT_VERBOSE:
			cfg.verbose++;
			break;
		}
	}
	if (rc < -1)
		cli_bad_option(pc, rc);

	if (jobs != NULL)
		cfg.jobs = cli_uint("--jobs", jobs, 1, RUN_JOBS_MAX);
	if (timeout != NULL) {
		cfg.timeout_ms = cli_duration("--timeout", timeout);
		if (cfg.timeout_ms == 0 ||
		    cfg.timeout_ms > (uint64_t)INT_MAX * 1000)
			usage_error(PROG, "--timeout: \"%s\" is not a duration "
			    "from 1ms to %d s", timeout, INT_MAX);
	}
	cfg.reconnect_ms = RUN_RECONNECT_DEFAULT_MS;
	if (reconnect != NULL) {
		cfg.reconnect_ms = cli_duration("--reconnect", reconnect);
		if (cfg.reconnect_ms > (uint64_t)JQ_SECONDS_MAX * 1000)
			usage_error(PROG, "--reconnect: \"%s\" is longer than "
			    "365d", reconnect);
	}
	if (max_jobs != NULL)
		cfg.max_jobs = cli_uint("--max-jobs", max_jobs, 1, UINT_MAX);
	if (match != NULL && (*match == '\0' || strlen(match) > JQ_GLOB_MAX))
		usage_error(PROG, "--match: the glob must have 1 to %d bytes",
		    JQ_GLOB_MAX);
	if (worker != NULL && (*worker == '\0' ||
	    strlen(worker) > JQ_WORKER_MAX - 8))
		usage_error(PROG, "--worker: the name must have 1 to %d bytes",
		    JQ_WORKER_MAX - 8);

	if ((operands = poptGetArgs(pc)) != NULL)
		while (operands[nops] != NULL)
			nops++;
	if (dashes >= argc)
		usage_error(PROG, "missing '--' before COMMAND");
	if (nops > 1)
		usage_error(PROG, "unexpected operand '%s' (the command goes "
		    "after '--')", operands[1]);
	if (dashes + 1 >= argc)
		usage_error(PROG, "missing COMMAND after '--'");
	server_arg = nops == 1 ? xstrdup(operands[0]) : NULL;
	cfg.server = server_arg;
	if (net_default_server(cfg.server) == NULL)
		usage_error(PROG, "no SERVER operand and JQ_SERVER is not set");
	if (net_parse_addr(net_default_server(cfg.server), 0, &addr, &cause) != 0)
		usage_error(PROG, "%s", cause);
	if ((cfg.tpl = template_parse(argc - dashes - 1, argv + dashes + 1,
	    &cause)) == NULL)
		usage_error(PROG, "COMMAND %s", cause);

	/* Job directories live under an absolute path: <in> never looks
	 * like an option, and the command may change its directory. */
	if (tmpdir == NULL)
		tmpdir = xstrdup((env = getenv("TMPDIR")) != NULL && *env != '\0' ?
		    env : "/tmp");
	if ((dir = realpath(tmpdir, NULL)) == NULL)
		err(JQ_EXIT_IO, "%s", tmpdir);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		errx(JQ_EXIT_IO, "%s: Not a directory", tmpdir);
	cfg.tmpdir = dir;
	cfg.match = match;
	cfg.worker = worker;

	status = run_main(&cfg);

	template_free(cfg.tpl);
	free(server_arg);
	free(dir);
	free(jobs);
	free(timeout);
	free(reconnect);
	free(max_jobs);
	free(match);
	free(worker);
	free(tmpdir);
	return status;
}
