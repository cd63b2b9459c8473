/*
 * tap.h: the few lines of TAP every unit test prints, shared by the test
 * programs.  OK(cond, fmt, ...) prints one "ok N - ..." or "not ok N - ..."
 * line; t_esc() makes a string printable for a description; t_done() prints
 * the plan and returns the exit status.
 */
#ifndef JQ_TAP_H
#define JQ_TAP_H

#include <stdarg.h>
#include <stdio.h>

#include "jq.h"

static int	t_count, t_failed;
/* Report one test result as a TAP line; explain failures in a comment. */
static void JQ_PRINTF(4, 5)
t_ok(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	t_count++;
	printf("%sok %d - ", ok ? "" : "not ", t_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok) {
		t_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
}
#define OK(cond, ...)	t_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* s with control bytes escaped, for test descriptions; a few rotating buffers. */
static const char *
t_esc(const char *s)
{
	static char	 buf[4][256];
	static int	 next;
	char		*b = buf[next++ % 4];
	size_t		 n = 0;

	for (; *s != '\0' && n < sizeof buf[0] - 5; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c >= 0x7f || c == '\\')
			n += (size_t)snprintf(b + n, 5, "\\x%02x", c);
		else
			b[n++] = (char)c;
	}
	b[n] = '\0';
	return b;
}

/* Print the plan (at the end, so a crash leaves none) and return the status. */
static int
t_done(void)
{
	printf("1..%d\n", t_count);
	return t_failed != 0;
}

#endif /* JQ_TAP_H */
