/*
 * statlist.c: jq-stat --list: the jobs of a server one by one, as an
 * aligned table for people or as JSON objects for scripts.
 *
 * The jobs come from JOBS requests (jq-protocol(7)), a page at a time: a
 * reply ends "END next=<id>" while jobs may be left, and the next request
 * asks for those after that id.  Each page is printed before the next is
 * asked for, so memory stays bounded by one page (the server caps it)
 * whatever the number of jobs.  A page's next id must be past the last
 * one, so a server cannot keep us going round.
 *
 * The table's columns are as wide as the widest value of the first page
 * (a later value that is wider widens the column from its row on); the
 * name comes last and is not padded.  Every name, worker and message is
 * shown through show.c, so no byte of it reaches the terminal raw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jq.h"

#define STATLIST_TAIL_MAX	100	/* bytes of a message's last line in the table */
#define STATLIST_TIME_LEN	32	/* a time in either form, NUL included */

/* Which optional keys a JOBINFO line had. */
#define ROW_WORKER	0x01
#define ROW_STARTED	0x02
#define ROW_ENDED	0x04
#define ROW_RUNTIME	0x08
#define ROW_FAILURE	0x10	/* status= (msg= may be empty) */

/* A decoded text field: any bytes. */
struct statlist_str {
	char	*s;
	size_t	 len;
};

/* One JOBINFO line. */
struct statlist_row {
	char			*id;	/* decimal, as sent */
	struct statlist_str	 name, queue, state, worker, status, msg;
	char			*after;	/* "3,4": a blocked job's prerequisites */
	uint64_t		 attempts, started, ended, runtime_ms;
	int			 priority;	/* 0 if not told (older server) */
	unsigned		 has;	/* ROW_* */
};

/* The rows of one page. */
struct statlist_page {
	struct statlist_row	*rows;
	size_t			 n, alloc;
	int			 more;	/* END had next= */
	uint64_t		 next;
};

/* The column widths of the table, and whether its header is out. */
struct statlist_table {
	int	 header;
	size_t	 id, state, attempts, worker, duration, status;
};

/* Decode a percent-encoded word into out; 0 or -1. */
static int
statlist_decode(const char *word, struct statlist_str *out)
{
	ssize_t	 n;

	free(out->s);
	out->s = xstrdup(word);
	if ((n = proto_decode(out->s)) < 0) {
		free(out->s);
		out->s = NULL;
		return -1;
	}
	out->len = (size_t)n;
	return 0;
}

/* Free the fields of a row. */
static void
statlist_row_free(struct statlist_row *row)
{
	free(row->id);
	free(row->name.s);
	free(row->queue.s);
	free(row->state.s);
	free(row->worker.s);
	free(row->status.s);
	free(row->msg.s);
	free(row->after);
}

/* Free the rows of a page and empty it. */
static void
statlist_page_clear(struct statlist_page *pg)
{
	size_t	 i;

	for (i = 0; i < pg->n; i++)
		statlist_row_free(&pg->rows[i]);
	pg->n = 0;
	pg->more = 0;
}

/*
 * Parse "JOBINFO <id> <name> k=v..." (after its first word) into row;
 * NULL, or the name of the bad or missing field.  Unknown keys are
 * ignored; queue=, state= and attempts= must be there.
 */
static const char *
statlist_parse_row(char *p, struct statlist_row *row)
{
	static const struct {
		const char	*key;
		size_t		 off;
		unsigned	 bit;
	} nums[] = {
		{ JOBS_ATTEMPTS, offsetof(struct statlist_row, attempts), 0 },
		{ JOBS_STARTED, offsetof(struct statlist_row, started),
		    ROW_STARTED },
		{ JOBS_ENDED, offsetof(struct statlist_row, ended), ROW_ENDED },
		{ JOBS_RUNTIME, offsetof(struct statlist_row, runtime_ms),
		    ROW_RUNTIME },
	};
	char		*id = proto_word(&p), *name = proto_word(&p), *w, *eq;
	uint64_t	 idnum;
	size_t		 i;
	int		 attempts = 0;

	if (id == NULL || parse_u64(id, 1, UINT64_MAX, &idnum) != 0)
		return "id";
	row->id = xstrdup(id);
	if (name == NULL || statlist_decode(name, &row->name) != 0)
		return "name";
	while ((w = proto_word(&p)) != NULL) {
		if ((eq = strchr(w, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(w, JOBS_PREREQ) == 0) {
			if (*eq == '\0' || strspn(eq, "0123456789,") !=
			    strlen(eq))
				return w;
			free(row->after);
			row->after = xstrdup(eq);
			continue;
		}
		for (i = 0; i < sizeof nums / sizeof nums[0]; i++) {
			if (strcmp(w, nums[i].key) != 0)
				continue;
			if (parse_u64(eq, 0, UINT64_MAX, (uint64_t *)(void *)
			    ((char *)row + nums[i].off)) != 0)
				return nums[i].key;
			if (nums[i].bit == 0)
				attempts = 1;	/* the one required number */
			row->has |= nums[i].bit;
		}
		if (strcmp(w, KEY_PRIORITY) == 0 && parse_int(eq,
		    JQ_PRIORITY_MIN, JQ_PRIORITY_MAX, &row->priority) != 0)
			return KEY_PRIORITY;
		if ((strcmp(w, JOBS_QUEUE) == 0 &&
		    statlist_decode(eq, &row->queue) != 0) ||
		    (strcmp(w, JOBS_STATE) == 0 &&
		    statlist_decode(eq, &row->state) != 0) ||
		    (strcmp(w, JOBS_WORKER) == 0 &&
		    statlist_decode(eq, &row->worker) != 0) ||
		    (strcmp(w, STAT_STATUS) == 0 &&
		    statlist_decode(eq, &row->status) != 0) ||
		    (strcmp(w, STAT_MSG) == 0 &&
		    statlist_decode(eq, &row->msg) != 0))
			return w;
	}
	if (row->queue.s == NULL)
		return JOBS_QUEUE;
	if (row->state.s == NULL)
		return JOBS_STATE;
	if (!attempts)
		return JOBS_ATTEMPTS;
	if (row->worker.s != NULL)
		row->has |= ROW_WORKER;
	if (row->status.s != NULL) {
		row->has |= ROW_FAILURE;
		/* "exit:1" reads "exit 1", as in the STAT failed lines */
		if ((eq = memchr(row->status.s, ':', row->status.len)) != NULL)
			*eq = ' ';
		if (row->msg.s == NULL)
			row->msg.s = xstrdup("");
	}
	return NULL;
}

/*
 * Send one JOBS request, for the jobs after id after (0: from the first),
 * and read its reply into pg; 0, or -1 with *cause and client_status().
 * The caller checks that the next page moves on.
 */
static int
statlist_page(struct client *c, const struct statlist_filter *f,
    uint64_t after, struct statlist_page *pg, char **cause)
{
	char		*line, *p, *kind, *w, *match = NULL, *queue = NULL;
	const char	*bad;
	int		 rc;

	if (f->match != NULL)
		match = proto_encode_dup(f->match, strlen(f->match));
	if (f->queue != NULL)
		queue = proto_encode_dup(f->queue, strlen(f->queue));
	rc = client_send(c, cause, "JOBS%s%s%s%s%s%s " JOBS_AFTER "=%llu",
	    f->states ? " " JOBS_STATE "=" : "", f->states ? f->states : "",
	    queue ? " " JOBS_QUEUE "=" : "", queue ? queue : "",
	    match ? " " KEY_MATCH "=" : "", match ? match : "",
	    (unsigned long long)after);
	free(match);
	free(queue);
	if (rc != 0)
		return -1;
	for (;;) {
		if ((line = client_line(c, cause)) == NULL)
			return -1;
		p = line;
		if ((kind = proto_word(&p)) == NULL)
			continue;	/* a newer server's: ignored */
		if (strcmp(kind, REPLY_ERR) == 0) {
			*cause = xprintf("server refused to list jobs: %s", p);
			return -1;
		}
		if (strcmp(kind, REPLY_END) == 0)
			break;
		if (strcmp(kind, REPLY_JOBINFO) != 0)
			continue;	/* a newer server's: ignored */
		if (pg->n == pg->alloc) {
			pg->alloc = pg->alloc ? pg->alloc * 2 : 64;
			pg->rows = xreallocarray(pg->rows, pg->alloc,
			    sizeof *pg->rows);
		}
		memset(&pg->rows[pg->n], 0, sizeof *pg->rows);
		bad = statlist_parse_row(p, &pg->rows[pg->n++]);
		if (bad != NULL) {
			*cause = xprintf("malformed " REPLY_JOBINFO " line in "
			    "the JOBS reply: bad or missing \"%s\"", bad);
			return -1;
		}
	}
	while ((w = proto_word(&p)) != NULL) {
		if (strncmp(w, JOBS_NEXT "=", strlen(JOBS_NEXT) + 1) != 0)
			continue;
		if (parse_u64(w + strlen(JOBS_NEXT) + 1, 0, UINT64_MAX,
		    &pg->next) != 0) {
			*cause = xprintf("bad \"%.40s\" in the JOBS reply", w);
			return -1;
		}
		pg->more = 1;
	}
	return 0;
}

/* Write epoch milliseconds as local "MM-DD HH:MM:SS". */
static void
statlist_time_text(uint64_t ms, char buf[STATLIST_TIME_LEN])
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, STATLIST_TIME_LEN, "%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, STATLIST_TIME_LEN, "?");
}

/* Write epoch milliseconds as ISO 8601 UTC: 2026-11-24T10:00:00.123Z. */
static void
statlist_time_iso(uint64_t ms, char buf[STATLIST_TIME_LEN])
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;
	size_t		 n;

	if (gmtime_r(&t, &tm) == NULL ||
	    (n = strftime(buf, STATLIST_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm))
	    == 0) {
		snprintf(buf, STATLIST_TIME_LEN, "?");
		return;
	}
	snprintf(buf + n, STATLIST_TIME_LEN - n, ".%03uZ",
	    (unsigned)(ms % 1000));
}

/* Write a run time for the table: 0.4s, 12.0s, 1m05s, 2h03m. */
static void
statlist_duration(const struct statlist_row *row, char *buf, size_t size)
{
	if (!(row->has & ROW_RUNTIME))
		snprintf(buf, size, "-");
	else if (row->runtime_ms < 60000)
		snprintf(buf, size, "%llu.%llus",
		    (unsigned long long)row->runtime_ms / 1000,
		    (unsigned long long)row->runtime_ms % 1000 / 100);
	else
		progress_duration(row->runtime_ms / 1000, buf, size);
}

/* Widen w to at least n. */
static void
statlist_widen(size_t *w, size_t n)
{
	if (*w < n)
		*w = n;
}

/* Widen the table's columns for the rows of a page. */
static void
statlist_widths(struct statlist_table *t, const struct statlist_page *pg)
{
	const struct statlist_row	*row;
	char				 buf[64];
	size_t				 i;

	for (i = 0; i < pg->n; i++) {
		row = &pg->rows[i];
		statlist_widen(&t->id, strlen(row->id));
		statlist_widen(&t->state, show_text_width(row->state.s,
		    row->state.len));
		snprintf(buf, sizeof buf, "%llu",
		    (unsigned long long)row->attempts);
		statlist_widen(&t->attempts, strlen(buf));
		if (row->has & ROW_WORKER)
			statlist_widen(&t->worker, show_text_width(
			    row->worker.s, row->worker.len));
		statlist_duration(row, buf, sizeof buf);
		statlist_widen(&t->duration, strlen(buf));
		if (row->has & ROW_FAILURE)
			statlist_widen(&t->status, show_text_width(
			    row->status.s, row->status.len));
	}
}

/* Print s (len bytes) in the text form, padded to width w, and a gap. */
static void
statlist_cell(const char *s, size_t len, size_t w)
{
	size_t	 n = show_text_width(s, len);

	show_text(s, len);
	printf("%*s  ", n < w ? (int)(w - n) : 0, "");
}

/* Print one row of the table, and its message's last line below it. */
static void
statlist_text_row(const struct statlist_table *t,
    const struct statlist_row *row)
{
	char	 tstart[STATLIST_TIME_LEN] = "-", tend[STATLIST_TIME_LEN] = "-";
	char	 dur[64];

	if (row->has & ROW_STARTED)
		statlist_time_text(row->started, tstart);
	if (row->has & ROW_ENDED)
		statlist_time_text(row->ended, tend);
	statlist_duration(row, dur, sizeof dur);
	printf("%*s  ", (int)t->id, row->id);
	statlist_cell(row->state.s, row->state.len, t->state);
	printf("%*llu  ", (int)t->attempts, (unsigned long long)row->attempts);
	if (row->has & ROW_WORKER)
		statlist_cell(row->worker.s, row->worker.len, t->worker);
	else
		statlist_cell("-", 1, t->worker);
	printf("%-14s  %-14s  %*s  ", tstart, tend, (int)t->duration, dur);
	if (row->has & ROW_FAILURE)
		statlist_cell(row->status.s, row->status.len, t->status);
	else
		statlist_cell("-", 1, t->status);
	show_text(row->name.s, row->name.len);
	putchar('\n');
	if ((row->has & ROW_FAILURE) && row->msg.len > 0) {
		printf("%*s  ", (int)t->id, "");
		show_text_tail(row->msg.s, row->msg.len, STATLIST_TAIL_MAX);
		putchar('\n');
	}
}

/* Print a page as rows of the table, the header first. */
static void
statlist_text_page(struct statlist_table *t, const struct statlist_page *pg)
{
	size_t	 i;

	statlist_widths(t, pg);
	if (!t->header) {
		printf("%*s  %-*s  %*s  %-*s  %-14s  %-14s  %*s  %-*s  NAME\n",
		    (int)t->id, "ID", (int)t->state, "STATE", (int)t->attempts,
		    "ATTEMPTS", (int)t->worker, "WORKER", "STARTED", "ENDED",
		    (int)t->duration, "DURATION", (int)t->status, "STATUS");
		t->header = 1;
	}
	for (i = 0; i < pg->n; i++)
		statlist_text_row(t, &pg->rows[i]);
}

/* Print "key": followed by a time in ISO 8601, or null. */
static void
statlist_json_time(const char *key, int has, uint64_t ms)
{
	char	 buf[STATLIST_TIME_LEN];

	printf(",\"%s\":", key);
	if (!has) {
		printf("null");
		return;
	}
	statlist_time_iso(ms, buf);
	printf("\"%s\"", buf);
}

/* Print the number after word (as in "exit 3"), or null. */
static void
statlist_json_code(const struct statlist_str *status, const char *word)
{
	size_t		 n = strlen(word);
	unsigned	 v;

	if (status->len > n + 1 && strncmp(status->s, word, n) == 0 &&
	    status->s[n] == ' ' && parse_uint(status->s + n + 1, 0, 255,
	    &v) == 0)
		printf("%u", v);
	else
		printf("null");
}

/* Print ,"after": the ids of list (digits and commas) as strings, or null. */
static void
statlist_json_after(const char *list)
{
	const char	*p;
	size_t		 len;

	printf(",\"after\":");
	if (list == NULL) {
		printf("null");
		return;
	}
	putchar('[');
	for (p = list; *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		printf("%s\"%.*s\"", p == list ? "" : ",", (int)len, p);
	}
	putchar(']');
}

/* Print one row as a JSON object (jq-stat(1) names its fields). */
static void
statlist_json_row(const struct statlist_row *row)
{
	printf("{\"id\":");
	show_json(row->id, strlen(row->id));
	printf(",\"name\":");
	show_json(row->name.s, row->name.len);
	printf(",\"queue\":");
	show_json(row->queue.s, row->queue.len);
	printf(",\"priority\":%d", row->priority);
	printf(",\"state\":");
	show_json(row->state.s, row->state.len);
	printf(",\"attempts\":%llu,\"worker\":",
	    (unsigned long long)row->attempts);
	if (row->has & ROW_WORKER)
		show_json(row->worker.s, row->worker.len);
	else
		printf("null");
	statlist_json_time("started", row->has & ROW_STARTED, row->started);
	statlist_json_time("ended", row->has & ROW_ENDED, row->ended);
	printf(",\"duration_ms\":");
	if (row->has & ROW_RUNTIME)
		printf("%llu", (unsigned long long)row->runtime_ms);
	else
		printf("null");
	statlist_json_after(row->after);
	printf(",\"failure\":");
	if (!(row->has & ROW_FAILURE)) {
		printf("null}");
		return;
	}
	printf("{\"status\":");
	show_json(row->status.s, row->status.len);
	printf(",\"exit\":");
	statlist_json_code(&row->status, STATUS_EXIT);
	printf(",\"signal\":");
	statlist_json_code(&row->status, STATUS_SIGNAL);
	printf(",\"message\":");
	show_json(row->msg.s, row->msg.len);
	printf("}}");
}

/*
 * List the jobs that pass filter f on stdout: as a table, or (json) as
 * JSON objects separated by commas, for the caller's array.  Returns
 * JQ_EXIT_OK, or another JQ_EXIT_* status with *cause set.
 */
int
statlist_print(struct client *c, const struct statlist_filter *f, int json,
    char **cause)
{
	struct statlist_page	 pg;
	struct statlist_table	 t;
	uint64_t		 after = 0;
	size_t			 i, printed = 0;
	int			 status = JQ_EXIT_OK;

	memset(&pg, 0, sizeof pg);
	memset(&t, 0, sizeof t);
	t.id = strlen("ID");
	t.state = strlen("STATE");
	t.attempts = strlen("ATTEMPTS");
	t.worker = strlen("WORKER");
	t.duration = strlen("DURATION");
	t.status = strlen("STATUS");
	for (;;) {
		if (statlist_page(c, f, after, &pg, cause) != 0) {
			status = client_status(c);
			break;
		}
		if (json) {
			for (i = 0; i < pg.n; i++, printed++) {
				if (printed > 0)
					putchar(',');
				statlist_json_row(&pg.rows[i]);
			}
		} else
			statlist_text_page(&t, &pg);
		if (ferror(stdout)) {
			*cause = xstrdup("cannot write standard output");
			status = JQ_EXIT_IO;
			break;
		}
		if (!pg.more)
			break;
		if (pg.next <= after) {
			*cause = xprintf("the server's next page of jobs begins "
			    "after job %llu, not past job %llu: it must move on",
			    (unsigned long long)pg.next,
			    (unsigned long long)after);
			status = JQ_EXIT_PROTOCOL;
			break;
		}
		after = pg.next;
		statlist_page_clear(&pg);
	}
	statlist_page_clear(&pg);
	free(pg.rows);
	return status;
}
