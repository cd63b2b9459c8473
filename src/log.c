/*
 * log.c: the server's log, one line per event on stderr, prefixed with the
 * program name.  Verbosity: -1 nothing, 0 errors and warnings, 1 info,
 * 2 debug.
 */
#include <stdarg.h>
#include <stdio.h>

#include "jq.h"

static const char	*log_prog = "jq";
static int		 log_level = 1;

/* Set the program name and verbosity for the log. */
void
log_init(const char *prog, int level)
{
	log_prog = prog;
	log_level = level;
}

/* Return the verbosity. */
int
log_verbose(void)
{
	return log_level;
}

/* Print one log line. */
static void
log_vline(const char *fmt, va_list ap)
{
	char	 line[2048];

	vsnprintf(line, sizeof line, fmt, ap);
	fprintf(stderr, "%s: %s\n", log_prog, line);
}

/* Log an event worth knowing about at verbosity 1. */
void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	if (log_level < 1)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap);
	va_end(ap);
}

/* Log a warning or error, unless the log is off (-q). */
void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	if (log_level < 0)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap);
	va_end(ap);
}

/* Log a detail at verbosity 2. */
void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_level < 2)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap);
	va_end(ap);
}
