/*
 * jq-run: take jobs from a jq server and run a command for each one.
 *
 *	jq-run [OPTION]... [SERVER] -- COMMAND [ARG]...
 *
 * This file only parses the command line; the worker lives in run.c and
 * the files run.h lists, the placeholders in template.c and the careful
 * fork/exec in spawn.c.
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
#include <sched.h>
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
#define RUN_HALT_AFTER_DEFAULT 5

enum {
	OPT_JOBS = 'j', OPT_VERBOSE = 'v',
	OPT_TIMEOUT = 256, OPT_KEEP_TMP, OPT_MAX_JOBS, OPT_MATCH, OPT_WORKER,
	OPT_TMPDIR, OPT_RECONNECT, OPT_KEEP, OPT_HALT_AFTER, OPT_QUEUE
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
	{ "queue", '\0', POPT_ARG_STRING, NULL, OPT_QUEUE,
	  "take jobs of queue NAME (repeat, or a comma list: any of them; "
	  "default: the queue \"default\")", "NAME" },
	{ "worker", '\0', POPT_ARG_STRING, NULL, OPT_WORKER,
	  "worker name told to the server (default HOSTNAME:PID)", "NAME" },
	{ "tmpdir", '\0', POPT_ARG_STRING, NULL, OPT_TMPDIR,
	  "make job directories in DIR (default $TMPDIR or /tmp)", "DIR" },
	{ "reconnect", '\0', POPT_ARG_STRING, NULL, OPT_RECONNECT,
	  "wait this long for the server, at start and when it is lost "
	  "(default 60s; 0: exit 6 at once)", "DURATION" },
	{ "keep", '\0', POPT_ARG_NONE, NULL, OPT_KEEP,
	  "stay up: when the server finishes, wait for the next one at the "
	  "same address; never give up waiting", NULL },
	{ "halt-after", '\0', POPT_ARG_STRING, NULL, OPT_HALT_AFTER,
	  "stop when N jobs in a row failed here while other workers succeed "
	  "(default 5; 0: never)", "N" },
	{ "keep-tmp", '\0', POPT_ARG_NONE, NULL, OPT_KEEP_TMP,
	  "keep each job's temporary directory (for debugging)", NULL },
	{ "verbose", 'v', POPT_ARG_NONE, NULL, OPT_VERBOSE,
	  "log each job's start, end, status and time", NULL },
	CLI_TREE_TABLE,
	CLI_AUTH_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(
"Take jobs from SERVER (default: $JQ_SERVER) and run COMMAND for each, until\n"
"no work remains, or the server drains this worker (jq-put --drain: the\n"
"running jobs are delivered, then exit).  In COMMAND's arguments:\n"
"  <in>  {in}        a file holding the job's data (else it goes to stdin)\n"
"  <out> {out}       the file to write the result to (else stdout is sent)\n"
"  <out.EXT> {out.EXT}  the same, ending in .EXT\n"
"  <outdir> {outdir}  an empty directory: what is left there is the result\n"
"                    (a tree; not with <out>)\n"
"  <name> {name}     the job's name     <id> {id}  the job's id\n"
"  <<  {{            a literal < or {, so <<in> is the text <in>\n"
"Exit status: 0 all jobs succeeded, 1 some failed (or --halt-after stopped\n"
"the worker), 2 usage, or the command cannot be started (its job is handed\n"
"back), 6 cannot reach the server for --reconnect, 7 protocol error,\n"
"8 local error, 9 stopped by a signal, 10 authentication failed (token\n"
"missing or wrong, or a server that does not prove itself)."),
	POPT_TABLEEND
};

/* The command line: option values as given, and the config they make. */
struct run_args {
	struct run_config	 cfg;
	char			*jobs, *timeout, *max_jobs, *match;
	char			*queues;	/* --queue, a comma list */
	char			*worker, *tmpdir, *reconnect, *halt_after;
	char			*server;	/* the SERVER operand, or NULL */
	char			*dir;		/* tmpdir, absolute */
};

/*
 * The default number of slots: one per CPU this process may run on (its
 * affinity mask, which taskset, a cgroup cpuset or a batch system's
 * binding narrows), else one per online CPU.
 */
static unsigned
run_default_jobs(void)
{
	cpu_set_t	 set;
	long		 n;

	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > RUN_JOBS_MAX ? RUN_JOBS_MAX : (unsigned)n;
}

/* Split argv at the first "--": return its index (argc if none). */
static int
run_split(int argc, char *argv[])
{
	int	 dashes, i;

	for (dashes = 1; dashes < argc; dashes++)
		if (strcmp(argv[dashes], "--") == 0)
			break;
	run_head = xcalloc((size_t)dashes + 1, sizeof *run_head);
	for (i = 0; i < dashes; i++)
		run_head[i] = argv[i];
	return dashes;
}

/* Fill the arguments from one option (cli_parse). */
static void
run_option(void *arg, int val, char **value)
{
	struct run_args	*a = arg;

	switch (val) {
	case OPT_JOBS:
		cli_keep(&a->jobs, value);
		break;
	case OPT_TIMEOUT:
		cli_keep(&a->timeout, value);
		break;
	case OPT_MAX_JOBS:
		cli_keep(&a->max_jobs, value);
		break;
	case OPT_MATCH:
		cli_keep(&a->match, value);
		break;
	case OPT_QUEUE:
		cli_queues("--queue", *value, &a->queues);
		break;
	case OPT_WORKER:
		cli_keep(&a->worker, value);
		break;
	case OPT_TMPDIR:
		cli_keep(&a->tmpdir, value);
		break;
	case OPT_RECONNECT:
		cli_keep(&a->reconnect, value);
		break;
	case OPT_KEEP:
		a->cfg.keep = 1;
		break;
	case OPT_HALT_AFTER:
		cli_keep(&a->halt_after, value);
		break;
	case OPT_KEEP_TMP:
		a->cfg.keep_tmp = 1;
		break;
	case OPT_VERBOSE:
		a->cfg.verbose++;
		break;
	}
}

/* Check the option values and put them in the config. */
static void
run_check_options(struct run_args *a)
{
	struct run_config	*cfg = &a->cfg;

	if (a->jobs != NULL)
		cfg->jobs = cli_uint("--jobs", a->jobs, 1, RUN_JOBS_MAX);
	if (a->timeout != NULL) {
		cfg->timeout_ms = cli_duration("--timeout", a->timeout);
		if (cfg->timeout_ms == 0 ||
		    cfg->timeout_ms > (uint64_t)INT_MAX * 1000)
			usage_error(PROG, "--timeout: \"%s\" is not a duration "
			    "from 1ms to %d s", a->timeout, INT_MAX);
	}
	cfg->reconnect_ms = RUN_RECONNECT_DEFAULT_MS;
	if (a->reconnect != NULL) {
		cfg->reconnect_ms = cli_duration("--reconnect", a->reconnect);
		if (cfg->reconnect_ms > (uint64_t)JQ_SECONDS_MAX * 1000)
			usage_error(PROG, "--reconnect: \"%s\" is longer than "
			    "365d", a->reconnect);
	}
	cfg->halt_after = RUN_HALT_AFTER_DEFAULT;
	if (a->halt_after != NULL)
		cfg->halt_after = cli_uint("--halt-after", a->halt_after, 0,
		    UINT_MAX);
	if (a->max_jobs != NULL)
		cfg->max_jobs = cli_uint("--max-jobs", a->max_jobs, 1, UINT_MAX);
	if (a->match != NULL)
		cli_length("--match", "the glob", a->match, JQ_GLOB_MAX);
	if (a->worker != NULL)
		cli_length("--worker", "the name", a->worker, JQ_WORKER_MAX - 8);
	cfg->match = a->match;
	cfg->queues = a->queues;
	cfg->worker = a->worker;
	cfg->tree = &cli_tree_limits;
}

/* Check the operands: [SERVER] before "--", COMMAND (a template) after. */
/*
 * A node that cannot run the command must not take jobs only to fail
 * them: find it now, as each job's exec will (a name built from
 * placeholders can only be checked per job).
 */
static void
run_check_command(const char *name)
{
	char	*path, *cause = NULL;

	if (strpbrk(name, "<{") != NULL)
		return;
	if ((path = spawn_resolve(name, &cause)) == NULL)
		usage_error(PROG, "cannot run COMMAND: %s; no job taken", cause);
	free(path);
}

static void
run_check_operands(struct run_args *a, poptContext pc, int argc,
    char *argv[], int dashes)
{
	const char	**operands;
	struct net_addr	 addr;
	char		*cause = NULL;
	int		 nops = 0;

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
	a->server = nops == 1 ? xstrdup(operands[0]) : NULL;
	a->cfg.server = a->server;
	if (net_parse_addr(cli_server(a->server), 0, &addr, &cause) != 0)
		usage_error(PROG, "%s", cause);
	if ((a->cfg.tpl = template_parse(argc - dashes - 1, argv + dashes + 1,
	    &cause)) == NULL)
		usage_error(PROG, "COMMAND %s", cause);
	run_check_command(argv[dashes + 1]);
}

/*
 * Find the directory for job directories: --tmpdir, $TMPDIR or /tmp, made
 * absolute, so that <in> never looks like an option and the command may
 * change its directory.
 */
static void
run_check_tmpdir(struct run_args *a)
{
	struct stat	 st;
	const char	*env;

	if (a->tmpdir == NULL)
		a->tmpdir = xstrdup((env = getenv("TMPDIR")) != NULL &&
		    *env != '\0' ? env : "/tmp");
	if ((a->dir = realpath(a->tmpdir, NULL)) == NULL)
		err(JQ_EXIT_IO, "%s", a->tmpdir);
	if (stat(a->dir, &st) != 0 || !S_ISDIR(st.st_mode))
		errx(JQ_EXIT_IO, "%s: Not a directory", a->tmpdir);
	a->cfg.tmpdir = a->dir;
}

/* Free the template and the option values. */
static void
run_args_free(struct run_args *a)
{
	template_free(a->cfg.tpl);
	free(a->server);
	free(a->dir);
	free(a->jobs);
	free(a->timeout);
	free(a->reconnect);
	free(a->halt_after);
	free(a->max_jobs);
	free(a->match);
	free(a->queues);
	free(a->worker);
	free(a->tmpdir);
}

/* Options and operands, checks, then run_main. */
int
main(int argc, char *argv[])
{
	struct run_args	 a;
	poptContext	 pc;
	int		 dashes, status;

	log_init(PROG, 0);
	memset(&a, 0, sizeof a);
	a.cfg.jobs = run_default_jobs();

	/* Options and SERVER before the first "--", the command after it. */
	dashes = run_split(argc, argv);
	pc = cli_context(PROG, dashes, run_head, run_options,
	    "[OPTION]... [SERVER] -- COMMAND [ARG]...");
	cli_parse(pc, run_option, &a);
	run_check_options(&a);
	run_check_operands(&a, pc, argc, argv, dashes);
	run_check_tmpdir(&a);

	status = run_main(&a.cfg);

	run_args_free(&a);
	return status;
}
