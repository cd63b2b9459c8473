/*
 * tap.h: the few lines of TAP every unit test prints, shared by the test
 * programs.  OK(cond, fmt, ...) prints one "ok N - ..." or "not ok N - ..."
 * line; t_esc() makes a string printable for a description; t_done() prints
 * the plan and returns the exit status.  t_tmpdir() and t_rmtree() give a
 * test its own temporary directory and take it away again.
 */
#ifndef JQ_TAP_H
#define JQ_TAP_H

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * s with control bytes escaped, for test descriptions; a few rotating buffers.
 * (Not every test prints strings that need it.)
 */
static __attribute__((unused)) const char *
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

/* A new directory under $TMPDIR (or /tmp) named for tag; exits if it cannot. */
static __attribute__((unused)) char *
t_tmpdir(const char *tag)
{
	const char	*tmp = getenv("TMPDIR");
	char		*dir;

	dir = xprintf("%s/jq-%s.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp :
	    "/tmp", tag);
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp %s: %s\n", dir, strerror(errno));
		exit(2);
	}
	return dir;
}

/* nftw callback of t_rmtree: remove one entry, children first. */
static __attribute__((unused)) int
t_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		printf("# cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Remove dir and everything in it (symbolic links are not followed); free dir. */
static __attribute__((unused)) void
t_rmtree(char *dir)
{
	nftw(dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* Print the plan (at the end, so a crash leaves none) and return the status. */
static int
t_done(void)
{
	printf("1..%d\n", t_count);
	return t_failed != 0;
}

#endif /* JQ_TAP_H */
