/*
 * xmalloc.c: allocators that exit on failure.
 *
 * For clients and for the server's start-up only: the server's request path
 * answers an error instead of dying.
 */
#include <err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* Allocate size bytes or exit. */
void *
xmalloc(size_t size)
{
	void	*p;

	if ((p = malloc(size == 0 ? 1 : size)) == NULL)
		err(JQ_EXIT_IO, "malloc %zu bytes", size);
	return p;
}

/* Allocate a zeroed array of n elements of size bytes or exit. */
void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		err(JQ_EXIT_IO, "calloc %zu x %zu bytes", n, size);
	return p;
}

/* Resize an array to n elements of size bytes, checking for overflow. */
void *
xreallocarray(void *p, size_t n, size_t size)
{
	void	*q;

	if (size != 0 && n > SIZE_MAX / size)
		errx(JQ_EXIT_IO, "array of %zu x %zu bytes overflows", n, size);
	if ((q = realloc(p, n * size == 0 ? 1 : n * size)) == NULL)
		err(JQ_EXIT_IO, "realloc %zu x %zu bytes", n, size);
	return q;
}

/* Duplicate a string or exit. */
char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		err(JQ_EXIT_IO, "strdup");
	return p;
}

/* Duplicate at most n bytes of a string or exit. */
char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		err(JQ_EXIT_IO, "strndup");
	return p;
}

/* Format into a new string or exit; returns its length. */
int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		err(JQ_EXIT_IO, "vasprintf");
	return n;
}

/* Format into a new string and return it, or exit. */
char *
xprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		err(JQ_EXIT_IO, "vasprintf");
	va_end(ap);
	return s;
}
