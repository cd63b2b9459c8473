/*
 * cli.c: what every tool's command line shares: the help, usage and version
 * options (popt's POPT_AUTOHELP has no -V), the option loop, the one-line
 * error for a bad option, and strict parsing of option values.
 *
 * Every main has one shape: an option table, cli_context and cli_parse
 * with the tool's handler filling its config struct, a validation step,
 * then a call into the code that does the work, then cleanup.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <popt.h>

#include "jq.h"

const char	*cli_prog = "jq";
static poptContext cli_pc;	/* freed at exit, whichever way we leave */

struct poptOption cli_no_options[] = { POPT_TABLEEND };
char		*cli_token_file;
int		 cli_no_auth;

/* Keep the last --token-file (freed at exit), or note --no-auth. */
static void
cli_auth_cb(poptContext pc, enum poptCallbackReason reason,
    const struct poptOption *opt, const char *arg, void *data)
{
	(void)pc;
	(void)reason;
	(void)data;
	if (opt->val == 'n') {
		cli_no_auth = 1;
		return;
	}
	free(cli_token_file);
	cli_token_file = xstrdup(arg);
}

struct poptOption cli_auth_options[] = {
	{ NULL, '\0', POPT_ARG_CALLBACK, (void *)cli_auth_cb, 0, NULL, NULL },
	{ "token-file", '\0', POPT_ARG_STRING, NULL, 't',
	  "the shared secret (default $JQ_TOKEN_FILE or ~/.config/jq/token)",
	  "FILE" },
	{ "no-auth", '\0', POPT_ARG_NONE, NULL, 'n',
	  "talk to a server that does not prove it holds the token (one run "
	  "with --no-auth, or another user's UNIX socket); also JQ_NO_AUTH=1",
	  NULL },
	POPT_TABLEEND
};

struct arch_limits cli_tree_limits = {
	ARCH_MAX_SIZE_DEFAULT, ARCH_MAX_ENTRIES_DEFAULT, ARCH_MAX_RATIO_DEFAULT
};

/* Parse --max-tree-size or --max-tree-entries into cli_tree_limits. */
static void
cli_tree_cb(poptContext pc, enum poptCallbackReason reason,
    const struct poptOption *opt, const char *arg, void *data)
{
	(void)pc;
	(void)reason;
	(void)data;
	if (opt->val == 's' && (parse_size(arg, &cli_tree_limits.max_size)
	    != 0 || cli_tree_limits.max_size == 0))
		usage_error(cli_prog, "--max-tree-size: \"%s\" is not a size "
		    "(a number from 1 with an optional K, M, G or T)", arg);
	if (opt->val == 'e' && parse_u64(arg, 1, UINT32_MAX,
	    &cli_tree_limits.max_entries) != 0)
		usage_error(cli_prog, "--max-tree-entries: \"%s\" is not a "
		    "number from 1 to %u", arg, UINT32_MAX);
}

struct poptOption cli_tree_options[] = {
	{ NULL, '\0', POPT_ARG_CALLBACK, (void *)cli_tree_cb, 0, NULL, NULL },
	{ "max-tree-size", '\0', POPT_ARG_STRING, NULL, 's',
	  "unpack at most SIZE bytes of a tree's files (default 4G)", "SIZE" },
	{ "max-tree-entries", '\0', POPT_ARG_STRING, NULL, 'e',
	  "unpack at most N entries of a tree (default 100000)", "N" },
	POPT_TABLEEND
};

/* Print help, usage or version for the option seen, and exit 0. */
static void
cli_help_cb(poptContext pc, enum poptCallbackReason reason,
    const struct poptOption *opt, const char *arg, void *data)
{
	(void)reason;
	(void)arg;
	(void)data;
	switch (opt->val) {
	case 'h':
		poptPrintHelp(pc, stdout, 0);
		break;
	case 'u':
		poptPrintUsage(pc, stdout, 0);
		break;
	case 'V':
		printf("%s (jq) %s\n", cli_prog, JQ_VERSION);
		break;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: standard output: write error\n", cli_prog);
		exit(JQ_EXIT_IO);
	}
	exit(JQ_EXIT_OK);
}

/* Free the option context (atexit). */
static void
cli_free(void)
{
	if (cli_pc != NULL)
		poptFreeContext(cli_pc);
	cli_pc = NULL;
	free(cli_token_file);
	cli_token_file = NULL;
}

/*
 * Start parsing a tool's command line: name the program for messages,
 * ignore SIGPIPE (a closed pipe is EPIPE, reported like any error), and
 * make the popt context, which is freed at exit.
 */
poptContext
cli_context(const char *prog, int argc, char **argv, struct poptOption *opts,
    const char *operands)
{
	cli_prog = prog;
	signal(SIGPIPE, SIG_IGN);
	cli_pc = poptGetContext(prog, argc, (const char **)argv, opts, 0);
	poptSetOtherOptionHelp(cli_pc, operands);
	atexit(cli_free);
	return cli_pc;
}

/*
 * Read the options, calling fn(cfg, val, &value) for each one popt hands
 * back, value being its argument.  fn may keep the value with cli_keep;
 * whatever it leaves is freed.  Exit 2 on a bad option.
 */
void
cli_parse(poptContext pc, cli_option_fn *fn, void *cfg)
{
	char	*arg;
	int	 rc;

	while ((rc = poptGetNextOpt(pc)) > 0) {
		/*
		 * Ours to free.  For a flag it is not always NULL: popt may
		 * hand back the argument of an option it handled by itself.
		 */
		arg = poptGetOptArg(pc);
		if (fn != NULL)
			fn(cfg, rc, &arg);
		free(arg);
	}
	if (rc < -1)
		cli_bad_option(pc, rc);
}

/* Keep an option's value in *slot: the last one given wins, none leaks. */
void
cli_keep(char **slot, char **arg)
{
	free(*slot);
	*slot = *arg;
	*arg = NULL;
}

/* Return the one optional operand (or NULL); exit 2 if there are more. */
const char *
cli_operand(poptContext pc)
{
	const char	*arg = poptGetArg(pc);

	if (poptPeekArg(pc) != NULL)
		usage_error(cli_prog, "%s: unexpected operand", poptPeekArg(pc));
	return arg;
}

/* Return the server to use: the operand, else $JQ_SERVER; exit 2 if none. */
const char *
cli_server(const char *operand)
{
	const char	*addr;

	if ((addr = net_default_server(operand)) == NULL)
		usage_error(cli_prog, "no SERVER operand and JQ_SERVER is not set");
	return addr;
}

struct poptOption cli_help_options[] = {
	{ NULL, '\0', POPT_ARG_CALLBACK, (void *)cli_help_cb, 0, NULL, NULL },
	{ "help", '?', 0, NULL, 'h', "show this help and exit", NULL },
	{ "usage", '\0', 0, NULL, 'u', "show a short usage message and exit",
	  NULL },
	{ "version", 'V', 0, NULL, 'V', "show the version and exit", NULL },
	POPT_TABLEEND
};

/* Report popt's error rc for the option being parsed, and exit 2. */
void
cli_bad_option(void *ctx, int rc)
{
	poptContext	 pc = ctx;

	usage_error(cli_prog, "%s: %s", poptBadOption(pc,
	    POPT_BADOPTION_NOALIAS), poptStrerror(rc));
}

/* Parse a number option value strictly, or exit 2 naming the option. */
unsigned
cli_uint(const char *opt, const char *val, unsigned min, unsigned max)
{
	unsigned	 v;

	if (parse_uint(val, min, max, &v) != 0)
		usage_error(cli_prog, "%s: \"%s\" is not a number from %u to %u",
		    opt, val, min, max);
	return v;
}

/* Parse a --priority value, JQ_PRIORITY_MIN..MAX, or exit 2 naming the option. */
int
cli_priority(const char *opt, const char *val)
{
	int	 v;

	if (parse_int(val, JQ_PRIORITY_MIN, JQ_PRIORITY_MAX, &v) != 0)
		usage_error(cli_prog, "%s: \"%s\" is not a priority (a whole "
		    "number from %d to %d, higher first)", opt, val,
		    JQ_PRIORITY_MIN, JQ_PRIORITY_MAX);
	return v;
}

/*
 * Add the --queue value val (a name or a comma list) to *list, a comma
 * list; exit 2 naming the option if a name is bad or there are more than
 * JQ_TAKE_QUEUES_MAX.
 */
void
cli_queues(const char *opt, const char *val, char **list)
{
	const char	*p = val, *end;
	char		*all;
	size_t		 len, n = 0;

	if (*list != NULL)
		for (n = 1, p = *list; (p = strchr(p, ',')) != NULL; p++)
			n++;
	for (p = val;; p = end + 1) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (!proto_queue_valid(p, len))
			usage_error(cli_prog, "%s: \"%.*s\" is not a queue name "
			    "(1 to %d of the bytes A-Z a-z 0-9 . _ -)", opt,
			    (int)(len > 80 ? 80 : len), p, JQ_QUEUE_NAME_MAX);
		if (++n > JQ_TAKE_QUEUES_MAX)
			usage_error(cli_prog, "%s: more than %d queues", opt,
			    JQ_TAKE_QUEUES_MAX);
		if (end == NULL)
			break;
	}
	all = *list == NULL ? xstrdup(val) : xprintf("%s,%s", *list, val);
	free(*list);
	*list = all;
}

/* Parse a duration option value (in ms), or exit 2 naming the option. */
uint64_t
cli_duration(const char *opt, const char *val)
{
	uint64_t	 v;

	if (parse_duration(val, &v) != 0)
		usage_error(cli_prog, "%s: \"%s\" is not a duration (a number "
		    "with an optional unit ms, s, m, h or d)", opt, val);
	return v;
}

/* Parse a duration of 1ms to 365d, rounded up to seconds, or exit 2. */
unsigned
cli_seconds(const char *opt, const char *val)
{
	uint64_t	 ms = cli_duration(opt, val);

	if (ms == 0 || ms > (uint64_t)JQ_SECONDS_MAX * 1000)
		usage_error(cli_prog, "%s: \"%s\" is not a duration from 1s to "
		    "365d", opt, val);
	return (unsigned)((ms + 999) / 1000);
}

/* Check that a text option (what it holds: "the name") has 1 to max bytes. */
void
cli_length(const char *opt, const char *what, const char *val, size_t max)
{
	if (*val == '\0' || strlen(val) > max)
		usage_error(cli_prog, "%s: %s must have 1 to %zu bytes", opt,
		    what, max);
}
