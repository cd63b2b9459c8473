/*
 * jq-stat: show a jq server's job counts, queues, workers and failed jobs,
 * and with --list every job (statlist.c), as text for people or, with
 * --json, as JSON for scripts.
 *
 * The STAT reply is read whole before anything is printed: a STAT line of
 * key=value counts, WORKER, FAILED and QUEUE lines, then END
 * (jq-protocol(7)).  A server older than the QUEUE lines has one queue,
 * QUEUE_DEFAULT, holding every job.  Names and messages arrive
 * percent-encoded and may hold any byte: show.c prints them safely, as C
 * escapes in the text form and as valid JSON strings.
 *
 * The JSON form is versioned (JQ_STAT_SCHEMA, documented field by field in
 * jq-stat(1)): fields may be added within a version; renaming, removing or
 * retyping one needs the next version and a new tests/schema/ file, which
 * tests/stat-list.bats checks the output against.
 *
 * The rate and the ETA come from the counts and two keys a server of this
 * version adds to the STAT line, the run's elapsed time and the jobs it
 * resumed (progress.c does the sums, as jq-serve's status line does); a
 * server without them gets no progress line.
 *
 * --watch asks again every interval on the same connection: on a terminal
 * each answer replaces the last one (the screen is cleared first), else
 * the answers follow one another.  It ends with status 0 once an answer
 * shows every job finished.
 */
#include <err.h>
#include <errno.h>
#include <popt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jq.h"

#define STAT_WATCH_DEFAULT_MS	1000	/* --watch without an interval */
#define STAT_WATCH_MIN_MS	100
#define STAT_WATCH_MAX_MS	(86400 * 1000)
#define STAT_POLL_MS		250	/* --watch asks this often, prints less */
#define STAT_CLEAR		"\033[H\033[2J"	/* home, clear the screen */
#define JQ_STAT_SCHEMA		"jq-stat/1"	/* the JSON's "schema" */

static const char stat_epilogue[] =
"Show how many jobs the jq server SERVER (default: $JQ_SERVER) holds in each\n"
"state and queue, the rate and ETA, which workers are connected, and the\n"
"jobs that failed.  --list shows every job instead, one line each;\n"
"--state, --queue and --match choose which (and imply --list).  --watch 2\n"
"shows it again every 2 s (default 1 s) until the run ends; a --watch value\n"
"that is not an interval is the SERVER.\n"
"\n"
"Exit status: 0 success, 2 usage error, 6 cannot reach the server, 7 server\n"
"error or malformed reply, 8 cannot write the output, 10 authentication\n"
"failed (token missing or wrong, or a server that does not prove itself).";

/* What the command line asks for. */
struct stat_config {
	const char	*server;	/* address */
	int		 json;		/* --json */
	uint64_t	 watch_ms;	/* --watch interval; 0: once */
	char		*watch_server;	/* a --watch value that was the SERVER */
	int		 list;		/* --list, or a filter given */
	struct statlist_filter filter;	/* --state, --queue, --match */
	char		*states, *queue, *match;	/* theirs, owned */
};

/* The words --state takes, comma-separated. */
static const char *const stat_states[] = { JOBSTATE_WAITING, JOBSTATE_RUNNING,
    JOBSTATE_DONE, JOBSTATE_FAILED, JOBSTATE_BLOCKED };

static struct poptOption stat_options[] = {
	{ "json", 'j', POPT_ARG_NONE, NULL, 'j',
	    "print JSON instead of text", NULL },
	{ "list", 'l', POPT_ARG_NONE, NULL, 'l',
	    "list the jobs, one line each", NULL },
	{ "state", '\0', POPT_ARG_STRING, NULL, 's',
	    "list only jobs in these states: waiting, running, done, failed, "
	    "blocked, comma-separated", "STATE[,STATE]..." },
	{ "queue", '\0', POPT_ARG_STRING, NULL, 'q',
	    "list only jobs of the queue NAME", "NAME" },
	{ "match", '\0', POPT_ARG_STRING, NULL, 'm',
	    "list only jobs whose names match the shell pattern GLOB", "GLOB" },
	{ "watch", 'w', POPT_ARG_STRING | POPT_ARGFLAG_OPTIONAL, NULL, 'w',
	    "show it again every INTERVAL (default 1s) until the run ends",
	    "INTERVAL" },
	CLI_AUTH_TABLE,
	CLI_HELP_TABLE,
	CLI_EPILOGUE(stat_epilogue),
	POPT_TABLEEND
};

/* A decoded field: any bytes, NUL included. */
struct stat_str {
	char	*s;
	size_t	 len;
};

/* One WORKER line. */
struct stat_worker {
	struct stat_str	 name, peer;
	uint64_t	 running, done, failed;
};

/* One FAILED line. */
struct stat_failed {
	struct stat_str	 id, name, status, msg;
};

/* One QUEUE line. */
struct stat_queue {
	struct stat_str	 name;
	uint64_t	 total, waiting, running, done, failed;
	uint64_t	 blocked;	/* 0 from a server without dependencies */
};

/* The whole STAT reply. */
struct stat_reply {
	uint64_t		 total, waiting, running, done, failed;
	uint64_t		 blocked;	/* 0 from a server without them */
	uint64_t		 protocol;
	uint64_t		 elapsed_ms, resumed;	/* when has_progress */
	int			 has_progress;
	uint64_t		 window_ms, window_finished, idle;
	int			 has_window;	/* the three keys above */
	struct stat_str		 version;
	struct stat_worker	*workers;
	size_t			 nworkers;
	struct stat_failed	*fails;
	size_t			 nfails;
	struct stat_queue	*queues;
	size_t			 nqueues;
};

/* A numeric key of the STAT line and where its value goes. */
struct stat_key {
	const char	*key;
	size_t		 off;
	int		 optional;	/* older servers do not send it */
};

/* Decode a percent-encoded word into *out; 0 or -1. */
static int
stat_decode(const char *word, struct stat_str *out)
{
	ssize_t	 n;

	out->s = xstrdup(word);
	if ((n = proto_decode(out->s)) < 0) {
		free(out->s);
		out->s = NULL;
		return -1;
	}
	out->len = (size_t)n;
	return 0;
}

/* Parse a decimal count; 0 or -1. */
static int
stat_number(const char *word, uint64_t *out)
{
	return parse_u64(word, 0, UINT64_MAX, out);
}

/*
 * Parse the key=value words of one reply line (after its fixed words).
 * Numeric keys in nums go to base + offset; string keys in strs are decoded
 * into the matching stat_str.  Unknown keys are ignored.  Every key listed
 * must appear, but the optional ones.  Returns NULL or the name of the
 * first bad or missing key; *seenp (if not NULL) gets bit i set for each
 * nums[i] that appeared.
 */
static const char *
stat_fields(char *p, void *base, const struct stat_key *nums, size_t nnums,
    const char *const *strkeys, struct stat_str *const *strs, size_t nstrs,
    unsigned *seenp)
{
	char		*w, *eq;
	unsigned	 seen = 0;	/* bit i: nums[i]; bit nnums+i: strs[i] */
	size_t		 i;

	while ((w = proto_word(&p)) != NULL) {
		if ((eq = strchr(w, '=')) == NULL)
			continue;
		*eq++ = '\0';
		for (i = 0; i < nnums; i++) {
			if (strcmp(w, nums[i].key) != 0)
				continue;
			if (stat_number(eq, (uint64_t *)(void *)
			    ((char *)base + nums[i].off)) != 0)
				return nums[i].key;
			seen |= 1U << i;
		}
		for (i = 0; i < nstrs; i++) {
			if (strcmp(w, strkeys[i]) != 0)
				continue;
			free(strs[i]->s);
			if (stat_decode(eq, strs[i]) != 0)
				return strkeys[i];
			seen |= 1U << (nnums + i);
		}
	}
	if (seenp != NULL)
		*seenp = seen;
	for (i = 0; i < nnums; i++)
		if (!(seen & 1U << i) && !nums[i].optional)
			return nums[i].key;
	for (i = 0; i < nstrs; i++)
		if (!(seen & 1U << (nnums + i)))
			return strkeys[i];
	return NULL;
}

/* Parse "STAT k=v..."; NULL or the name of the bad field. */
static const char *
stat_parse_head(char *p, struct stat_reply *r)
{
	static const struct stat_key nums[] = {
		{ STAT_TOTAL, offsetof(struct stat_reply, total), 0 },
		{ STAT_WAITING, offsetof(struct stat_reply, waiting), 0 },
		{ STAT_RUNNING, offsetof(struct stat_reply, running), 0 },
		{ STAT_DONE, offsetof(struct stat_reply, done), 0 },
		{ STAT_FAILED, offsetof(struct stat_reply, failed), 0 },
		{ STAT_PROTOCOL, offsetof(struct stat_reply, protocol), 0 },
		{ STAT_ELAPSED, offsetof(struct stat_reply, elapsed_ms), 1 },
		{ STAT_RESUMED, offsetof(struct stat_reply, resumed), 1 },
		{ STAT_BLOCKED, offsetof(struct stat_reply, blocked), 1 },
		{ STAT_WINDOW_MS, offsetof(struct stat_reply, window_ms), 1 },
		{ STAT_WINDOW_FINISHED, offsetof(struct stat_reply,
		    window_finished), 1 },
		{ STAT_IDLE, offsetof(struct stat_reply, idle), 1 },
	};
	static const char *const strkeys[] = { STAT_VERSION };
	struct stat_str *const strs[] = { &r->version };
	const unsigned	 progress_keys = 1U << 6 | 1U << 7;	/* nums[6], [7] */
	const unsigned	 window_keys = 1U << 9 | 1U << 10 | 1U << 11;
	const char	*bad;
	unsigned	 seen = 0;

	bad = stat_fields(p, r, nums, 12, strkeys, strs, 1, &seen);
	r->has_progress = (seen & progress_keys) == progress_keys;
	r->has_window = (seen & window_keys) == window_keys;
	return bad;
}

/* Parse "WORKER <name> peer=.. running=.. done=.. failed=.."; NULL or the bad field. */
static const char *
stat_parse_worker(char *p, struct stat_worker *w)
{
	static const struct stat_key nums[] = {
		{ STAT_RUNNING, offsetof(struct stat_worker, running), 0 },
		{ STAT_DONE, offsetof(struct stat_worker, done), 0 },
		{ STAT_FAILED, offsetof(struct stat_worker, failed), 0 },
	};
	static const char *const strkeys[] = { STAT_PEER };
	struct stat_str *const strs[] = { &w->peer };
	char	*name = proto_word(&p);

	if (name == NULL || stat_decode(name, &w->name) != 0)
		return "name";
	return stat_fields(p, w, nums, 3, strkeys, strs, 1, NULL);
}

/* Parse "FAILED <id> <name> status=.. msg=.."; NULL or the bad field. */
static const char *
stat_parse_failed(char *p, struct stat_failed *f)
{
	static const char *const strkeys[] = { STAT_STATUS, STAT_MSG };
	struct stat_str *const strs[] = { &f->status, &f->msg };
	char		*id = proto_word(&p), *name = proto_word(&p), *colon;
	const char	*bad;
	uint64_t	 idnum;

	if (id == NULL || parse_u64(id, 1, UINT64_MAX, &idnum) != 0)
		return "id";
	f->id.s = xstrdup(id);
	f->id.len = strlen(id);
	if (name == NULL || stat_decode(name, &f->name) != 0)
		return "name";
	if ((bad = stat_fields(p, f, NULL, 0, strkeys, strs, 2, NULL)) != NULL)
		return bad;
	/* "exit:1" reads "exit 1" in both output forms */
	if ((colon = memchr(f->status.s, ':', f->status.len)) != NULL)
		*colon = ' ';
	return NULL;
}

/* Parse "QUEUE <name> total=.. waiting=.. ..."; NULL or the bad field. */
static const char *
stat_parse_queue(char *p, struct stat_queue *q)
{
	static const struct stat_key nums[] = {
		{ STAT_TOTAL, offsetof(struct stat_queue, total), 0 },
		{ STAT_WAITING, offsetof(struct stat_queue, waiting), 0 },
		{ STAT_RUNNING, offsetof(struct stat_queue, running), 0 },
		{ STAT_DONE, offsetof(struct stat_queue, done), 0 },
		{ STAT_FAILED, offsetof(struct stat_queue, failed), 0 },
		{ STAT_BLOCKED, offsetof(struct stat_queue, blocked), 1 },
	};
	char	*name = proto_word(&p);

	if (name == NULL || stat_decode(name, &q->name) != 0)
		return "name";
	return stat_fields(p, q, nums, 6, NULL, NULL, 0, NULL);
}

/* A server without QUEUE lines has one queue, the default, holding every job. */
static void
stat_default_queue(struct stat_reply *r)
{
	struct stat_queue	*q;

	r->queues = xcalloc(1, sizeof *r->queues);
	r->nqueues = 1;
	q = &r->queues[0];
	q->name.s = xstrdup(QUEUE_DEFAULT);
	q->name.len = strlen(QUEUE_DEFAULT);
	q->total = r->total;
	q->waiting = r->waiting;
	q->running = r->running;
	q->done = r->done;
	q->failed = r->failed;
	q->blocked = r->blocked;
}

/*
 * Send STAT and read the reply up to END into r; 0, or -1 with *cause and
 * client_status() set (JQ_EXIT_PROTOCOL for a malformed reply).
 */
static int
stat_read(struct client *c, struct stat_reply *r, char **cause)
{
	char		*line, *p;
	const char	*bad = NULL, *kind;

	memset(r, 0, sizeof *r);
	if (client_send(c, cause, "STAT") != 0 ||
	    (line = client_line(c, cause)) == NULL)
		return -1;
	p = line;
	kind = proto_word(&p);
	if (kind != NULL && strcmp(kind, REPLY_ERR) == 0) {
		*cause = xprintf("server refused: %s", p);
		return -1;
	}
	if (kind == NULL || strcmp(kind, REPLY_STAT) != 0) {
		*cause = xprintf("unexpected reply to STAT: \"%.80s\"", line);
		return -1;
	}
	if ((bad = stat_parse_head(p, r)) != NULL)
		goto malformed;
	for (;;) {
		if ((line = client_line(c, cause)) == NULL)
			return -1;
		p = line;
		if ((kind = proto_word(&p)) == NULL)
			kind = "";
		if (strcmp(kind, REPLY_END) == 0) {
			if (r->nqueues == 0)
				stat_default_queue(r);
			return 0;
		}
		if (strcmp(kind, REPLY_WORKER) == 0) {
			r->workers = xreallocarray(r->workers, r->nworkers + 1,
			    sizeof *r->workers);
			memset(&r->workers[r->nworkers], 0, sizeof *r->workers);
			bad = stat_parse_worker(p, &r->workers[r->nworkers++]);
		} else if (strcmp(kind, REPLY_FAILED) == 0) {
			r->fails = xreallocarray(r->fails, r->nfails + 1,
			    sizeof *r->fails);
			memset(&r->fails[r->nfails], 0, sizeof *r->fails);
			bad = stat_parse_failed(p, &r->fails[r->nfails++]);
		} else if (strcmp(kind, REPLY_QUEUE) == 0) {
			r->queues = xreallocarray(r->queues, r->nqueues + 1,
			    sizeof *r->queues);
			memset(&r->queues[r->nqueues], 0, sizeof *r->queues);
			bad = stat_parse_queue(p, &r->queues[r->nqueues++]);
		}
		/* Other lines come from newer servers: ignore them. */
		if (bad != NULL)
			goto malformed;
	}
malformed:
	*cause = xprintf("malformed %s line in the STAT reply: bad or missing "
	    "\"%s\"", kind, bad);
	return -1;
}

/* Free the strings and arrays of a reply. */
static void
stat_free(struct stat_reply *r)
{
	size_t	 i;

	for (i = 0; i < r->nworkers; i++) {
		free(r->workers[i].name.s);
		free(r->workers[i].peer.s);
	}
	for (i = 0; i < r->nfails; i++) {
		free(r->fails[i].id.s);
		free(r->fails[i].name.s);
		free(r->fails[i].status.s);
		free(r->fails[i].msg.s);
	}
	for (i = 0; i < r->nqueues; i++)
		free(r->queues[i].name.s);
	free(r->workers);
	free(r->fails);
	free(r->queues);
	free(r->version.s);
}

/* The counts of a reply with the progress keys, for progress.c. */
static void
stat_progress(const struct stat_reply *r, struct progress *p)
{
	p->total = r->total;
	p->running = r->running;
	p->done = r->done;
	p->failed = r->failed;
	p->resumed = r->resumed;
	p->elapsed_ms = r->elapsed_ms;
	if (!r->has_window) {
		progress_window_run(p);		/* an older server */
		return;
	}
	p->window_ms = r->window_ms;
	p->window_finished = r->window_finished;
	p->idle = r->idle != 0;
}

/* Print the progress and elapsed lines, if the server sent their keys. */
static void
text_progress(const struct stat_reply *r)
{
	struct progress	 p;
	char		 line[PROGRESS_LINE_MAX], wall[32];

	if (!r->has_progress)
		return;
	stat_progress(r, &p);
	progress_line(&p, line, sizeof line);
	progress_wall(r->elapsed_ms, wall, sizeof wall);
	printf("progress %s\nelapsed  %s", line, wall);
	if (r->resumed > 0)
		printf(", %llu jobs finished in an earlier run",
		    (unsigned long long)r->resumed);
	putchar('\n');
}

/* Print the reply for people. */
static void
stat_print_text(const char *addr, const struct stat_reply *r)
{
	size_t	 i;

	printf("server   ");
	show_text(addr, strlen(addr));
	printf(" (jq-serve ");
	show_text(r->version.s, r->version.len);
	printf(", protocol %llu)\n", (unsigned long long)r->protocol);
	printf("jobs     %llu total, %llu waiting, %llu running, %llu done, "
	    "%llu failed", (unsigned long long)r->total,
	    (unsigned long long)r->waiting, (unsigned long long)r->running,
	    (unsigned long long)r->done, (unsigned long long)r->failed);
	if (r->blocked > 0)
		printf(", %llu blocked", (unsigned long long)r->blocked);
	putchar('\n');
	text_progress(r);
	printf("queues   %zu\n", r->nqueues);
	for (i = 0; i < r->nqueues; i++) {
		const struct stat_queue *q = &r->queues[i];

		printf("  ");
		show_text(q->name.s, q->name.len);
		printf("  %llu total, %llu waiting, %llu running, %llu done, "
		    "%llu failed", (unsigned long long)q->total,
		    (unsigned long long)q->waiting,
		    (unsigned long long)q->running,
		    (unsigned long long)q->done, (unsigned long long)q->failed);
		if (q->blocked > 0)
			printf(", %llu blocked", (unsigned long long)q->blocked);
		putchar('\n');
	}
	printf("workers  %zu\n", r->nworkers);
	for (i = 0; i < r->nworkers; i++) {
		const struct stat_worker *w = &r->workers[i];

		printf("  ");
		show_text(w->name.s, w->name.len);
		printf("  from ");
		show_text(w->peer.s, w->peer.len);
		printf("  running %llu  done %llu  failed %llu\n",
		    (unsigned long long)w->running, (unsigned long long)w->done,
		    (unsigned long long)w->failed);
	}
	printf("failed   %llu", (unsigned long long)r->failed);
	if (r->nfails < r->failed)
		printf(" (%zu listed)", r->nfails);
	putchar('\n');
	for (i = 0; i < r->nfails; i++) {
		const struct stat_failed *f = &r->fails[i];

		printf("  %s  ", f->id.s);
		show_text(f->name.s, f->name.len);
		printf("  ");
		show_text(f->status.s, f->status.len);
		if (f->msg.len > 0) {
			printf(": ");
			show_text_tail(f->msg.s, f->msg.len, 60);
		}
		putchar('\n');
	}
}

/* Print "key":value pairs of counts, comma-separated. */
static void
json_counts(const char *const *keys, const uint64_t *vals, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		printf("%s\"%s\":%llu", i ? "," : "", keys[i],
		    (unsigned long long)vals[i]);
}

/*
 * Print the "progress" member: the run's elapsed time and resumed jobs,
 * the rate (jobs per second) and the ETA (seconds), null while unknown;
 * null as a whole when the server sent no progress keys.
 */
static void
json_progress(const struct stat_reply *r)
{
	struct progress	 p;
	uint64_t	 eta;
	double		 rate;

	printf(",\"progress\":");
	if (!r->has_progress) {
		printf("null");
		return;
	}
	stat_progress(r, &p);
	printf("{\"elapsed_ms\":%llu,\"resumed\":%llu,\"rate\":",
	    (unsigned long long)r->elapsed_ms, (unsigned long long)r->resumed);
	if (progress_rate(&p, &rate) == 0)
		printf("%.3f", rate);
	else
		printf("null");
	printf(",\"eta_s\":");
	if (progress_eta(&p, &eta) == 0)
		printf("%llu", (unsigned long long)eta);
	else
		printf("null");
	printf(",\"idle\":%s}", p.idle ? "true" : "false");
}

/* Print the "queues" member: each queue's counts, by its name. */
static void
json_queues(const struct stat_reply *r)
{
	static const char *const qkeys[] = { "total", "waiting", "running",
	    "done", "failed", "blocked" };
	size_t	 i;

	printf(",\"queues\":{");
	for (i = 0; i < r->nqueues; i++) {
		const struct stat_queue *q = &r->queues[i];
		const uint64_t	 counts[] = { q->total, q->waiting, q->running,
		    q->done, q->failed, q->blocked };

		if (i > 0)
			putchar(',');
		show_json(q->name.s, q->name.len);
		printf(":{");
		json_counts(qkeys, counts, 6);
		putchar('}');
	}
	putchar('}');
}

/*
 * Print the reply as one JSON object on one line, but for its closing
 * brace: --list adds a member first.
 */
static void
stat_print_json(const char *addr, const struct stat_reply *r)
{
	static const char *const jobkeys[] = { "total", "waiting", "running",
	    "done", "failed", "blocked" };
	static const char *const wkeys[] = { "running", "done", "failed" };
	const uint64_t	 jobs[] = { r->total, r->waiting, r->running, r->done,
	    r->failed, r->blocked };
	size_t		 i;

	printf("{\"schema\":\"" JQ_STAT_SCHEMA "\",\"server\":");
	show_json(addr, strlen(addr));
	printf(",\"version\":");
	show_json(r->version.s, r->version.len);
	printf(",\"protocol\":%llu,\"jobs\":{", (unsigned long long)r->protocol);
	json_counts(jobkeys, jobs, 6);
	putchar('}');
	json_queues(r);
	json_progress(r);
	printf(",\"workers\":[");
	for (i = 0; i < r->nworkers; i++) {
		const struct stat_worker *w = &r->workers[i];
		const uint64_t	 counts[] = { w->running, w->done, w->failed };

		printf("%s{\"name\":", i ? "," : "");
		show_json(w->name.s, w->name.len);
		printf(",\"peer\":");
		show_json(w->peer.s, w->peer.len);
		putchar(',');
		json_counts(wkeys, counts, 3);
		putchar('}');
	}
	printf("],\"failed\":[");
	for (i = 0; i < r->nfails; i++) {
		const struct stat_failed *f = &r->fails[i];

		printf("%s{\"id\":", i ? "," : "");
		show_json(f->id.s, f->id.len);
		printf(",\"name\":");
		show_json(f->name.s, f->name.len);
		printf(",\"status\":");
		show_json(f->status.s, f->status.len);
		printf(",\"message\":");
		show_json(f->msg.s, f->msg.len);
		putchar('}');
	}
	putchar(']');
}

/*
 * Parse a --watch interval: a duration (2, 500ms, 1m) or seconds with a
 * decimal fraction (0.5, as watch(1) takes them).  0 or -1.
 */
static int
stat_interval(const char *s, uint64_t *ms)
{
	const char	*dot = strchr(s, '.');
	char		*whole;
	uint64_t	 secs, frac = 0, scale = 100;
	int		 rc;

	if (dot == NULL)
		return parse_duration(s, ms);
	if (dot[1] == '\0' || strlen(dot + 1) > 3)
		return -1;
	for (dot++; *dot != '\0'; dot++, scale /= 10) {
		if (*dot < '0' || *dot > '9')
			return -1;
		frac += (uint64_t)(*dot - '0') * scale;
	}
	whole = xstrndup(s, strcspn(s, "."));
	rc = parse_u64(whole, 0, STAT_WATCH_MAX_MS / 1000, &secs);
	free(whole);
	if (rc != 0)
		return -1;
	*ms = secs * 1000 + frac;
	return 0;
}

/* Check a --state value: known words, comma-separated; exit 2 if not. */
static void
stat_check_states(const char *v)
{
	const char	*p = v, *end;
	size_t		 len, i;

	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < sizeof stat_states / sizeof stat_states[0]; i++)
			if (strlen(stat_states[i]) == len &&
			    strncmp(p, stat_states[i], len) == 0)
				break;
		if (i == sizeof stat_states / sizeof stat_states[0])
			usage_error(cli_prog, "--state: \"%s\" is not a list of "
			    "waiting, running, done, failed and blocked, "
			    "comma-separated",
			    v);
		if (end == NULL)
			return;
		p = end + 1;
	}
}

/*
 * Fill the config from one option (cli_parse).  popt gives --watch the
 * next word when it does not begin with '-': an interval is the interval,
 * anything else the SERVER operand, so "--watch HOST" works.
 */
static void
stat_option(void *arg, int val, char **value)
{
	struct stat_config	*cfg = arg;
	uint64_t		 ms;

	switch (val) {
	case 'j':
		cfg->json = 1;
		return;
	case 'l':
		cfg->list = 1;
		return;
	case 's':
		stat_check_states(*value);
		cli_keep(&cfg->states, value);
		cfg->list = 1;
		return;
	case 'q':
		cli_length("--queue", "the name", *value, JQ_NAME_MAX);
		cli_keep(&cfg->queue, value);
		cfg->list = 1;
		return;
	case 'm':
		cli_length("--match", "the pattern", *value, JQ_GLOB_MAX);
		cli_keep(&cfg->match, value);
		cfg->list = 1;
		return;
	case 'w':
		break;
	default:
		return;
	}
	cfg->watch_ms = STAT_WATCH_DEFAULT_MS;
	if (*value == NULL)
		return;
	if (stat_interval(*value, &ms) != 0) {
		cli_keep(&cfg->watch_server, value);
		return;
	}
	if (ms < STAT_WATCH_MIN_MS || ms > STAT_WATCH_MAX_MS)
		usage_error(cli_prog, "--watch: \"%s\" is not a duration from "
		    "100ms to 1d", *value);
	cfg->watch_ms = ms;
}

/* Sleep ms milliseconds (a signal ends us: nothing to clean up). */
static void
stat_sleep(uint64_t ms)
{
	struct timespec	 ts = { (time_t)(ms / 1000),
	    (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/*
 * Print one answer, in place of the last one on a terminal (--watch):
 * the counts, or with --list the jobs (in JSON, the counts and the jobs).
 * Exit when the jobs cannot be listed or the output cannot be written.
 */
static void
stat_print(const struct stat_config *cfg, struct client *c,
    const struct stat_reply *r, int shown)
{
	char	*cause = NULL;
	int	 status = JQ_EXIT_OK;

	if (cfg->watch_ms > 0 && !cfg->json) {
		if (isatty(STDOUT_FILENO))
			fputs(STAT_CLEAR, stdout);
		else if (shown)
			putchar('\n');
	}
	if (cfg->json) {
		stat_print_json(client_server(c), r);
		if (cfg->list) {
			printf(",\"list\":[");
			status = statlist_print(c, &cfg->filter, 1, &cause);
			putchar(']');
		}
		printf("}\n");
	} else if (cfg->list)
		status = statlist_print(c, &cfg->filter, 0, &cause);
	else
		stat_print_text(client_server(c), r);
	if (fflush(stdout) != 0 || ferror(stdout))
		err(JQ_EXIT_IO, "standard output");
	if (status != JQ_EXIT_OK)
		errx(status, "%s: %s", client_server(c), cause);
}

/*
 * Ask the server for its counts, workers and failed jobs, and print them
 * (with --list, list its jobs too); with --watch, again every interval until every job has finished.  The
 * server is asked every STAT_POLL_MS all the same, so that the end is seen
 * before the server leaves (it waits for this connection, at most its
 * --linger, 1 s by default).
 */
static int
stat_show(const struct stat_config *cfg)
{
	char			*cause = NULL;
	int			 status, finished, shown = 0;
	uint64_t		 poll_ms, next = 0, now;
	struct client		*c;
	struct stat_reply	 r;

	if ((c = client_open(cfg->server, NULL, &status, &cause)) == NULL)
		errx(status, "%s", cause);
	poll_ms = cfg->watch_ms < STAT_POLL_MS ? cfg->watch_ms : STAT_POLL_MS;
	for (;;) {
		if (stat_read(c, &r, &cause) != 0) {
			status = client_status(c);
			errx(status, "%s: %s", client_server(c), cause);
		}
		finished = r.done + r.failed >= r.total;
		now = util_now_ms();
		if (!shown || finished || now >= next) {
			stat_print(cfg, c, &r, shown);
			shown = 1;
			next = now + cfg->watch_ms;
		}
		stat_free(&r);
		if (cfg->watch_ms == 0 || finished)
			break;
		stat_sleep(poll_ms);
	}
	client_close(c);
	return JQ_EXIT_OK;
}

/* Options, the SERVER operand, then STAT (and JOBS). */
int
main(int argc, char *argv[])
{
	struct stat_config	 cfg;
	poptContext		 pc;
	const char		*operand;
	int			 status;

	memset(&cfg, 0, sizeof cfg);
	pc = cli_context("jq-stat", argc, argv, stat_options,
	    "[OPTION...] [SERVER]");
	cli_parse(pc, stat_option, &cfg);
	operand = cli_operand(pc);
	if (cfg.watch_server != NULL && operand != NULL)
		usage_error(cli_prog, "%s: unexpected operand", operand);
	cfg.server = cli_server(cfg.watch_server != NULL ? cfg.watch_server :
	    operand);
	cfg.filter.states = cfg.states;
	cfg.filter.queue = cfg.queue;
	cfg.filter.match = cfg.match;
	status = stat_show(&cfg);
	free(cfg.watch_server);
	free(cfg.states);
	free(cfg.queue);
	free(cfg.match);
	return status;
}
