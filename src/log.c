/*
 * log.c: the server's log, one line per event on stderr, prefixed with the
 * program name.  Verbosity: -1 nothing, 0 errors and warnings, 1 info,
 * 2 debug.
 *
 * A tally (log_tally) keeps events that can come by the thousand (refused
 * connections, failed handshakes) from flooding the log: the first
 * LOG_TALLY_BURST of an interval of LOG_TALLY_MS are logged one by one, the
 * rest only counted by reason, and one summary line per interval gives the
 * counts (log_tally_flush).
 *
 * A status line (log_status: jq-serve's progress on a terminal) stays under
 * the log: each log line clears it first and draws it again after itself,
 * in the same write, so that the two never garble each other.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define LOG_TALLY_MS	10000	/* one summary line per interval at most */
#define LOG_TALLY_BURST	3	/* events of an interval logged one by one */
#define LOG_LINE_MAX	2048	/* bytes of a log line, LF included */

static const char	*log_prog = "jq";
static int		 log_level = 1;
static char		 log_status_line[LOG_STATUS_MAX];	/* "": none shown */

#define LOG_CLEAR	"\r\033[K"	/* to the line's start, and erase it */

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
	char	 buf[sizeof LOG_CLEAR - 1 + LOG_LINE_MAX + LOG_STATUS_MAX];
	char	*line = buf + sizeof LOG_CLEAR - 1;
	size_t	 len, i, status = strlen(log_status_line);
	int	 n;

	n = snprintf(line, LOG_LINE_MAX, "%s: ", log_prog);
	len = n < 0 ? 0 : (size_t)n;
	if (len < LOG_LINE_MAX) {
		n = vsnprintf(line + len, LOG_LINE_MAX - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (errnum != 0 && len < LOG_LINE_MAX) {
		n = snprintf(line + len, LOG_LINE_MAX - len, ": %s",
		    strerror(errnum));
		if (n > 0)
			len += (size_t)n;
	}
	if (len > LOG_LINE_MAX - 1)
		len = LOG_LINE_MAX - 1;
	/* names and texts from peers must not break the line or reach a terminal */
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	if (status == 0) {
		(void)util_write_all(STDERR_FILENO, line, len);
		return;
	}
	memcpy(buf, LOG_CLEAR, sizeof LOG_CLEAR - 1);
	memcpy(line + len, log_status_line, status);
	(void)util_write_all(STDERR_FILENO, buf,
	    sizeof LOG_CLEAR - 1 + len + status);
}

/*
 * Show line (our own text, without control bytes) as the status line under
 * the log, in place of the one shown; NULL or "" only clears it.
 */
void
log_status(const char *line)
{
	char	 buf[sizeof LOG_CLEAR - 1 + LOG_STATUS_MAX];
	size_t	 len = line != NULL ? strlen(line) : 0;

	if (len == 0 && log_status_line[0] == '\0')
		return;
	if (len > LOG_STATUS_MAX - 1)
		len = LOG_STATUS_MAX - 1;
	memcpy(log_status_line, line != NULL ? line : "", len);
	log_status_line[len] = '\0';
	memcpy(buf, LOG_CLEAR, sizeof LOG_CLEAR - 1);
	memcpy(buf + sizeof LOG_CLEAR - 1, log_status_line, len);
	(void)util_write_all(STDERR_FILENO, buf, sizeof LOG_CLEAR - 1 + len);
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

/*
 * Print the summary of t's interval if it counted events it did not log,
 * and start a new one.  The interval is over when LOG_TALLY_MS have passed
 * since its first event, or at once with force (at exit).
 */
void
log_tally_flush(struct log_tally *t, uint64_t now, int force)
{
	char	 reasons[512];
	size_t	 len = 0, i;
	int	 n;

	if (t->start_ms == 0 || (!force && now - t->start_ms < LOG_TALLY_MS))
		return;
	if (t->total > t->logged) {
		reasons[0] = '\0';
		for (i = 0; i < LOG_TALLY_REASONS && t->reason[i] != NULL; i++) {
			n = snprintf(reasons + len, sizeof reasons - len, "%s%lu %s",
			    i > 0 ? ", " : "", t->count[i], t->reason[i]);
			if (n < 0 || (size_t)n >= sizeof reasons - len)
				break;
			len += (size_t)n;
		}
		log_warnx("%s: %lu in the last %llu s (the first %u logged "
		    "above): %s", t->what, t->total,
		    (unsigned long long)(now - t->start_ms + 999) / 1000,
		    t->logged, reasons);
	}
	t->start_ms = 0;
	t->total = 0;
	t->logged = 0;
	for (i = 0; i < LOG_TALLY_REASONS; i++) {
		t->reason[i] = NULL;
		t->count[i] = 0;
	}
}

/*
 * Count an event of tally t for reason (a string that outlives t, compared
 * by its text), and log its line (fmt) if it is among the first
 * LOG_TALLY_BURST of the interval.  Reasons past LOG_TALLY_REASONS count
 * under the last one.
 */
void
log_tally(struct log_tally *t, const char *reason, const char *fmt, ...)
{
	va_list		 ap;
	uint64_t	 now = util_now_ms();
	size_t		 i;

	log_tally_flush(t, now, 0);
	if (t->start_ms == 0)
		t->start_ms = now ? now : 1;	/* 0 means no interval */
	for (i = 0; i < LOG_TALLY_REASONS - 1 && t->reason[i] != NULL; i++)
		if (strcmp(t->reason[i], reason) == 0)
			break;
	if (t->reason[i] == NULL)
		t->reason[i] = reason;
	t->count[i]++;
	t->total++;
	if (t->logged >= LOG_TALLY_BURST)
		return;
	t->logged++;
	if (log_level < 0)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap, 0);
	va_end(ap);
}
