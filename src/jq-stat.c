/*
 * jq-stat: show a jq server's job counts, workers and failed jobs, as text
 * for people or, with --json, as JSON for scripts.
 *
 * The STAT reply is read whole before anything is printed: a STAT line of
 * key=value counts, WORKER and FAILED lines, then END (jq-protocol(7)).
 * Names and messages arrive percent-encoded and may hold any byte: the text
 * form shows control bytes as C escapes, the JSON form keeps valid UTF-8 and
 * writes every other byte as \u00XX, so the output is always valid JSON.
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

static const char stat_epilogue[] =
"Show how many jobs the jq server SERVER (default: $JQ_SERVER) holds in each\n"
"state, the rate and ETA, which workers are connected, and the jobs that\n"
"failed.  --watch 2 shows it again every 2 s (default 1 s) until the run\n"
"ends; a --watch value that is not an interval is the SERVER.\n"
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
};

static struct poptOption stat_options[] = {
	{ "json", 'j', POPT_ARG_NONE, NULL, 'j',
	    "print JSON instead of text", NULL },
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

/* The whole STAT reply. */
struct stat_reply {
	uint64_t		 total, waiting, running, done, failed;
	uint64_t		 protocol;
	uint64_t		 elapsed_ms, resumed;	/* when has_progress */
	int			 has_progress;
	struct stat_str		 version;
	struct stat_worker	*workers;
	size_t			 nworkers;
	struct stat_failed	*fails;
	size_t			 nfails;
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
	};
	static const char *const strkeys[] = { STAT_VERSION };
	struct stat_str *const strs[] = { &r->version };
	const unsigned	 progress_keys = 1U << 6 | 1U << 7;	/* nums[6], [7] */
	const char	*bad;
	unsigned	 seen = 0;

	bad = stat_fields(p, r, nums, 8, strkeys, strs, 1, &seen);
	r->has_progress = (seen & progress_keys) == progress_keys;
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
		if (strcmp(kind, REPLY_END) == 0)
			return 0;
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
	free(r->workers);
	free(r->fails);
	free(r->version.s);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 need, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need + 1;
}

/* Print bytes for a terminal: control bytes, backslash and bytes that are not UTF-8 escaped. */
static void
text_str(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;

	while (i < len) {
		if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] == '\n')
			fputs("\\n", stdout);
		else if (p[i] == '\t')
			fputs("\\t", stdout);
		else if (p[i] < 0x20 || p[i] == 0x7f ||
		    (n = utf8_len(p + i, len - i)) == 0)
			printf("\\x%02x", p[i]);
		else {
			fwrite(p + i, 1, n, stdout);
			i += n;
			continue;
		}
		i++;
	}
}

/* Print the last line of a message, shortened to its last 60 bytes or so. */
static void
text_msg_tail(const struct stat_str *m)
{
	size_t	 end = m->len, start;

	while (end > 0 && (m->s[end - 1] == '\n' || m->s[end - 1] == '\r' ||
	    m->s[end - 1] == ' ' || m->s[end - 1] == '\t'))
		end--;
	for (start = end; start > 0 && m->s[start - 1] != '\n'; start--)
		;
	if (end - start > 60) {
		start = end - 60;
		/* do not start inside a UTF-8 sequence */
		while (start < end && ((unsigned char)m->s[start] & 0xc0) == 0x80)
			start++;
		fputs("...", stdout);
	}
	text_str(m->s + start, end - start);
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
	text_str(addr, strlen(addr));
	printf(" (jq-serve ");
	text_str(r->version.s, r->version.len);
	printf(", protocol %llu)\n", (unsigned long long)r->protocol);
	printf("jobs     %llu total, %llu waiting, %llu running, %llu done, "
	    "%llu failed\n", (unsigned long long)r->total,
	    (unsigned long long)r->waiting, (unsigned long long)r->running,
	    (unsigned long long)r->done, (unsigned long long)r->failed);
	text_progress(r);
	printf("workers  %zu\n", r->nworkers);
	for (i = 0; i < r->nworkers; i++) {
		const struct stat_worker *w = &r->workers[i];

		printf("  ");
		text_str(w->name.s, w->name.len);
		printf("  from ");
		text_str(w->peer.s, w->peer.len);
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
		text_str(f->name.s, f->name.len);
		printf("  ");
		text_str(f->status.s, f->status.len);
		if (f->msg.len > 0) {
			printf(": ");
			text_msg_tail(&f->msg);
		}
		putchar('\n');
	}
}

/* Print bytes as a JSON string: valid UTF-8 kept, other bytes as \u00XX. */
static void
json_str(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;

	putchar('"');
	while (i < len) {
		if (p[i] == '"' || p[i] == '\\') {
			putchar('\\');
			putchar(p[i++]);
		} else if (p[i] == '\n') {
			fputs("\\n", stdout);
			i++;
		} else if (p[i] == '\t') {
			fputs("\\t", stdout);
			i++;
		} else if (p[i] < 0x20 || p[i] == 0x7f ||
		    (n = utf8_len(p + i, len - i)) == 0)
			printf("\\u%04x", p[i++]);
		else {
			fwrite(p + i, 1, n, stdout);
			i += n;
		}
	}
	putchar('"');
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
	putchar('}');
}

/* Print the reply as one JSON object on one line. */
static void
stat_print_json(const char *addr, const struct stat_reply *r)
{
	static const char *const jobkeys[] = { "total", "waiting", "running",
	    "done", "failed" };
	static const char *const wkeys[] = { "running", "done", "failed" };
	const uint64_t	 jobs[] = { r->total, r->waiting, r->running, r->done,
	    r->failed };
	size_t		 i;

	printf("{\"server\":");
	json_str(addr, strlen(addr));
	printf(",\"version\":");
	json_str(r->version.s, r->version.len);
	printf(",\"protocol\":%llu,\"jobs\":{", (unsigned long long)r->protocol);
	json_counts(jobkeys, jobs, 5);
	putchar('}');
	json_progress(r);
	printf(",\"workers\":[");
	for (i = 0; i < r->nworkers; i++) {
		const struct stat_worker *w = &r->workers[i];
		const uint64_t	 counts[] = { w->running, w->done, w->failed };

		printf("%s{\"name\":", i ? "," : "");
		json_str(w->name.s, w->name.len);
		printf(",\"peer\":");
		json_str(w->peer.s, w->peer.len);
		putchar(',');
		json_counts(wkeys, counts, 3);
		putchar('}');
	}
	printf("],\"failed\":[");
	for (i = 0; i < r->nfails; i++) {
		const struct stat_failed *f = &r->fails[i];

		printf("%s{\"id\":", i ? "," : "");
		json_str(f->id.s, f->id.len);
		printf(",\"name\":");
		json_str(f->name.s, f->name.len);
		printf(",\"status\":");
		json_str(f->status.s, f->status.len);
		printf(",\"message\":");
		json_str(f->msg.s, f->msg.len);
		putchar('}');
	}
	printf("]}\n");
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

	if (val == 'j')
		cfg->json = 1;
	if (val != 'w')
		return;
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

/* Print one answer, in place of the last one on a terminal (--watch). */
static void
stat_print(const struct stat_config *cfg, const char *addr,
    const struct stat_reply *r, int shown)
{
	if (cfg->watch_ms > 0 && !cfg->json) {
		if (isatty(STDOUT_FILENO))
			fputs(STAT_CLEAR, stdout);
		else if (shown)
			putchar('\n');
	}
	if (cfg->json)
		stat_print_json(addr, r);
	else
		stat_print_text(addr, r);
	if (fflush(stdout) != 0 || ferror(stdout))
		err(JQ_EXIT_IO, "standard output");
}

/*
 * Ask the server for its counts, workers and failed jobs, and print them;
 * with --watch, again every interval until every job has finished.  The
 * server is asked every STAT_POLL_MS all the same, so that the end is seen
 * before the server leaves (its --linger, 1 s by default).
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
			stat_print(cfg, client_server(c), &r, shown);
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

/* Options, the SERVER operand, then STAT. */
int
main(int argc, char *argv[])
{
	struct stat_config	 cfg = { NULL, 0, 0, NULL };
	poptContext		 pc;
	const char		*operand;
	int			 status;

	pc = cli_context("jq-stat", argc, argv, stat_options,
	    "[OPTION...] [SERVER]");
	cli_parse(pc, stat_option, &cfg);
	operand = cli_operand(pc);
	if (cfg.watch_server != NULL && operand != NULL)
		usage_error(cli_prog, "%s: unexpected operand", operand);
	cfg.server = cli_server(cfg.watch_server != NULL ? cfg.watch_server :
	    operand);
	status = stat_show(&cfg);
	free(cfg.watch_server);
	return status;
}
