/*
 * log.c: the server's log, one line per event on stderr, prefixed with the
 * program name.  Verbosity: -1 nothing, 0 errors and warnings, 1 info,
 * 2 debug.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/*
 * Print one log line with one write(2), so that lines from the processes
 * sharing a stderr (jq-run's slots) never interleave.  A line too long
 * for the buffer is cut, not split.
 */
static void JQ_PRINTF(1, 0)
log_vline(const char *fmt, va_list ap, int errnum)
{
	char	 line[2048];
	size_t	 len, i;
	int	 n;

	n = snprintf(line, sizeof line, "%s: ", log_prog);
	len = n < 0 ? 0 : (size_t)n;
	if (len < sizeof line) {
		n = vsnprintf(line + len, sizeof line - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (errnum != 0 && len < sizeof line) {
		n = snprintf(line + len, sizeof line - len, ": %s",
		    strerror(errnum));
		if (n > 0)
			len += (size_t)n;
	}
	if (len > sizeof line - 1)
		len = sizeof line - 1;
	/* names and texts from peers must not break the line or reach a terminal */
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	(void)util_write_all(STDERR_FILENO, line, len);
}

/* Log an event worth knowing about at verbosity 1. */
void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	if (log_level < 1)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap, 0);
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
	log_vline(fmt, ap, 0);
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
	log_vline(fmt, ap, 0);
	va_end(ap);
}

/* Log a warning or error followed by the text of errno, like warn(3). */
void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 errnum = errno;

	if (log_level < 0)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap, errnum);
	va_end(ap);
	errno = errnum;
}
