/*
 * cli.c: what every tool's command line shares: the help, usage and version
 * options (popt's POPT_AUTOHELP has no -V), and the one-line error for a bad
 * option.
 */
#include <stdio.h>
#include <stdlib.h>

#include <popt.h>

#include "jq.h"

const char	*cli_prog = "jq";

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
	poptFreeContext(pc);
	exit(JQ_EXIT_OK);
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
