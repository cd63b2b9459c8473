/*
 * relay.c: what jq-run does with a command's output and leftovers.
 *
 * A stream that is not a result is copied to one of our descriptors line by
 * line, each line prefixed by the job's name and written in one write, so
 * that the lines of slots running side by side do not mix.  The last
 * RUN_TAIL bytes of stderr are kept for the FAIL message.  A job's
 * directory is removed without following the links a command may leave.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define RUN_LINE_MAX	4096		/* longer lines are split */
#define RUN_LABEL_MAX	200		/* bytes of a job name in messages */

/* Start copying a stream to fd, each line prefixed by "label: ". */
void
run_lines_init(struct run_lines *l, int fd, const char *label)
{
	l->fd = fd;
	l->prefix = strlen(label) + 2;
	l->buf = xmalloc(l->prefix + RUN_LINE_MAX + 1);
	memcpy(l->buf, label, l->prefix - 2);
	memcpy(l->buf + l->prefix - 2, ": ", 2);
	l->len = l->prefix;
}

/* Write out the pending line, adding its LF; one write per line. */
static void
run_lines_emit(struct run_lines *l)
{
	l->buf[l->len++] = '\n';
	(void)util_write_all(l->fd, l->buf, l->len);
	l->len = l->prefix;
}

/* Copy n bytes of a stream; complete lines go out at once. */
void
run_lines_add(struct run_lines *l, const char *p, size_t n)
{
	while (n > 0) {
		size_t	 room = l->prefix + RUN_LINE_MAX - l->len, k;
		const char *nl = memchr(p, '\n', n < room ? n : room);

		k = nl != NULL ? (size_t)(nl - p) : (n < room ? n : room);
		memcpy(l->buf + l->len, p, k);
		l->len += k;
		p += k;
		n -= k;
		if (nl != NULL) {
			p++;
			n--;
			run_lines_emit(l);
		} else if (l->len == l->prefix + RUN_LINE_MAX)
			run_lines_emit(l);
	}
}

/* The stream ended: write out an unfinished last line, free the buffer. */
void
run_lines_end(struct run_lines *l)
{
	if (l->buf == NULL)
		return;
	if (l->len > l->prefix)
		run_lines_emit(l);
	free(l->buf);
	l->buf = NULL;
}

/* Keep the last RUN_TAIL bytes of a stream. */
void
run_tail_add(struct run_tail *t, const char *p, size_t n)
{
	if (n >= RUN_TAIL) {
		memcpy(t->buf, p + n - RUN_TAIL, RUN_TAIL);
		t->len = RUN_TAIL;
		t->head = 0;
		return;
	}
	while (n > 0) {
		size_t k = RUN_TAIL - t->head < n ? RUN_TAIL - t->head : n;

		memcpy(t->buf + t->head, p, k);
		t->head = (t->head + k) % RUN_TAIL;
		t->len = t->len + k > RUN_TAIL ? RUN_TAIL : t->len + k;
		p += k;
		n -= k;
	}
}

/* Copy the tail, oldest byte first, into out (RUN_TAIL bytes); its length. */
size_t
run_tail_get(const struct run_tail *t, char *out)
{
	size_t	 start = (t->head + RUN_TAIL - t->len) % RUN_TAIL, first;

	first = RUN_TAIL - start < t->len ? RUN_TAIL - start : t->len;
	memcpy(out, t->buf + start, first);
	memcpy(out + first, t->buf, t->len - first);
	return t->len;
}

/* A printable copy of a job name for messages: control bytes become '?'. */
char *
run_label(const char *name)
{
	char	*s = xstrndup(name, RUN_LABEL_MAX), *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	return s;
}
