/*
 * putwait.c: jq-put --wait: wait for a job's end and write its result to
 * standard output, byte for byte, or say how it failed (jq-protocol(7),
 * WAIT).
 *
 * A waiting caller survives its server: when the connection is lost (the
 * server was killed, or restarted, or it shut down: ERR CLOSED), the wait
 * goes on after reconnecting, with exponential backoff and jitter (0.1 s
 * doubling to 5 s, as jq-run's) for at most --reconnect from the loss
 * until a server answers the WAIT again (one that answers ERR CLOSED has
 * not).
 * It then asks again by the job's name, learned from the first WAITING or
 * RESULT line, so a restarted server that numbered its list anew still
 * finds the job.  The job itself is the server's: a restarted server runs
 * it again if its result was not durable, and answers at once if it was.
 *
 * The result goes straight to standard output as it arrives.  When the
 * connection is lost in the middle of it, the part written stays, and the
 * result sent again after reconnecting must begin with the same bytes
 * (their CRC-32C is compared), which are skipped.  Output that cannot be
 * made right (the result sent again differs, or a payload arrives
 * damaged) ends in an error, and when standard output is a regular file
 * it is cut back to where it began, so a failed --wait leaves nothing
 * half-written there.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jq.h"

#define PUTWAIT_BACKOFF_MIN_MS	100	/* first nap before reconnecting */
#define PUTWAIT_BACKOFF_MAX_MS	5000	/* longest nap */

/* A wait, and what of the result went to standard output. */
struct putwait {
	const char	*server;
	char		*id;		/* the job's id ("0": by name only) */
	char		*name;		/* its name, decoded, once known; or NULL */
	size_t		 namelen;
	uint64_t	 reconnect_ms;
	uint64_t	 written;	/* result bytes written to stdout */
	uint32_t	 crc;		/* their CRC-32C */
	off_t		 start;		/* stdout's offset at start; -1: no file */
	int		 status;	/* the JQ_EXIT_* of the last failure */
	uint64_t	 lost_at;	/* when the server was lost; 0: it is not */
	uint64_t	 delay;		/* the backoff's next nap, at most */
	int		 sent;		/* the first WAIT went out already */
};

/* Note where standard output begins, if it is a regular file. */
static void
putwait_start(struct putwait *w)
{
	struct stat	 st;

	w->start = -1;
	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode))
		w->start = lseek(STDOUT_FILENO, 0, SEEK_CUR);
}

/*
 * Give up with status and cause (ours): a result begun on standard output
 * is cut back when it is a file, or said to be there.
 */
static void JQ_NORETURN
putwait_fail(struct putwait *w, int status, char *cause)
{
	const char	*what = "";
	char		*note = NULL;

	if (w->written > 0 && w->start >= 0 &&
	    ftruncate(STDOUT_FILENO, w->start) == 0 &&
	    lseek(STDOUT_FILENO, w->start, SEEK_SET) == w->start)
		what = " (the output begun is removed)";
	else if (w->written > 0)
		what = note = xprintf(" (%llu bytes of it were written to "
		    "standard output)", (unsigned long long)w->written);
	if (strcmp(w->id, "0") == 0)	/* named, never reached */
		warnx("%s%s", cause, what);
	else
		warnx("job %s: %s%s", w->id, cause, what);
	free(note);
	free(cause);
	exit(status);
}

/* Sleep ms milliseconds. */
static void
putwait_nap(uint64_t ms)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * The connection was lost (*cause, ours, says how): connect again.  The
 * loss lasts, and the backoff grows, until the server answers a WAIT
 * (putwait_back): a server that keeps answering ERR CLOSED is given up on
 * after --reconnect, as one that cannot be reached is.  NULL when it gives
 * up (w->status and *cause set).
 */
static struct client *
putwait_reconnect(struct putwait *w, char **cause)
{
	struct client	*c;
	uint64_t	 end, now, nap;
	char		 d[32];

	if (w->lost_at == 0) {
		w->lost_at = util_now_ms();
		w->delay = PUTWAIT_BACKOFF_MIN_MS;
		progress_wall(w->reconnect_ms, d, sizeof d);
		warnx("job %s: %s; reconnecting (for at most %s)", w->id,
		    *cause, d);
	}
	end = w->lost_at + w->reconnect_ms;
	for (;;) {
		if ((now = util_now_ms()) >= end)
			return NULL;
		nap = w->delay / 2 + (uint64_t)random() % (w->delay / 2 + 1);
		putwait_nap(nap < end - now ? nap : end - now);
		w->delay = w->delay * 2 > PUTWAIT_BACKOFF_MAX_MS ?
		    PUTWAIT_BACKOFF_MAX_MS : w->delay * 2;
		free(*cause);
		*cause = NULL;
		if ((c = client_open(w->server, NULL, &w->status, cause)) != NULL)
			return c;
		/* a server dying under us may say nonsense first */
		if (w->status != JQ_EXIT_CONNECT &&
		    w->status != JQ_EXIT_PROTOCOL)
			return NULL;
	}
}

/* The server answered the WAIT: a loss, if there was one, is over. */
static void
putwait_back(struct putwait *w, struct client *c)
{
	if (w->lost_at == 0)
		return;
	warnx("job %s: reconnected to %s", w->id, client_server(c));
	w->lost_at = 0;
}

/*
 * Learn the job from a WAITING, RESULT or FAILED line, whose words after
 * the verb are in p: its id and name.  0, or -1 if they are malformed.
 */
static int
putwait_learn(struct putwait *w, char **p)
{
	char		*id = proto_word(p), *name = proto_word(p);
	uint64_t	 n;
	ssize_t		 len;

	if (id == NULL || name == NULL || parse_u64(id, 1, UINT64_MAX, &n) != 0 ||
	    (len = proto_decode(name)) <= 0)
		return -1;
	free(w->id);
	w->id = xstrdup(id);
	free(w->name);
	w->name = xmalloc((size_t)len + 1);
	memcpy(w->name, name, (size_t)len + 1);
	w->namelen = (size_t)len;
	return 0;
}

/* The value of key in the words of p, decoded into a new string, or NULL. */
static char *
putwait_kv(const char *p, const char *key, size_t *len)
{
	const char	*v;
	char		*s;
	size_t		 n;
	ssize_t		 dec;

	if ((v = proto_word_kv(p, key, &n)) == NULL)
		return NULL;
	s = xstrndup(v, n);
	if ((dec = proto_decode(s)) < 0) {
		free(s);
		return NULL;
	}
	*len = (size_t)dec;
	return s;
}

/*
 * The job failed for good (FAILED <id> <name> status= msg=, its words in
 * line after the verb): say so, with the tail of its message.
 */
static int
putwait_failed(struct putwait *w, char *p)
{
	char	*status, *msg, *colon, *rest = xstrdup(p), *words = rest;
	size_t	 slen = 0, mlen = 0;

	status = putwait_kv(p, STAT_STATUS, &slen);
	msg = putwait_kv(p, STAT_MSG, &mlen);
	if (putwait_learn(w, &words) != 0) {
		free(status);
		free(msg);
		free(rest);
		w->status = JQ_EXIT_PROTOCOL;
		return -1;
	}
	free(rest);
	/* "exit:3" reads "exit 3", as jq-stat shows it */
	if (status != NULL && (colon = memchr(status, ':', slen)) != NULL)
		*colon = ' ';
	if (w->written > 0 && w->start >= 0 &&
	    ftruncate(STDOUT_FILENO, w->start) == 0)
		(void)lseek(STDOUT_FILENO, w->start, SEEK_SET);
	fflush(stdout);
	fprintf(stderr, "%s: job %s failed (", cli_prog, w->id);
	show_text_fp(stderr, status ? status : STATUS_FAILED, status ? slen :
	    strlen(STATUS_FAILED));
	fputs("): ", stderr);
	show_text_fp(stderr, w->name, w->namelen);
	fputc('\n', stderr);
	if (msg != NULL)
		show_text_lines(stderr, msg, mlen);
	free(status);
	free(msg);
	return 1;
}

/*
 * Write the result payload to standard output, skipping what a lost
 * connection left written there already (it must match).  0, or -1 with
 * *cause and w->status.
 */
static int
putwait_result(struct putwait *w, struct client *c, uint64_t size,
    char **cause)
{
	struct client_rx	 rx;
	const char		*data;
	ssize_t			 n;
	uint64_t		 off, k;
	uint32_t		 again = 0;

	if (size < w->written) {
		w->status = JQ_EXIT_PROTOCOL;
		*cause = xprintf("the result is %llu bytes now; %llu were "
		    "written before the connection was lost",
		    (unsigned long long)size, (unsigned long long)w->written);
		return -1;
	}
	client_rx_init(&rx);
	while ((n = client_rx_next(c, &rx, &data, cause)) > 0) {
		off = rx.total - (uint64_t)n;
		if (off < w->written) {
			k = w->written - off < (uint64_t)n ? w->written - off :
			    (uint64_t)n;
			again = crc32c_update(again, data, (size_t)k);
			if (off + k == w->written && again != w->crc) {
				w->status = JQ_EXIT_PROTOCOL;
				*cause = xstrdup("the result sent again differs "
				    "from the part written before the "
				    "connection was lost");
				return -1;
			}
			data += k;
			n -= (ssize_t)k;
		}
		if (n == 0)
			continue;
		if (util_write_all(STDOUT_FILENO, data, (size_t)n) != 0) {
			w->status = JQ_EXIT_IO;
			*cause = xprintf("standard output: %s", strerror(errno));
			return -1;
		}
		w->written += (uint64_t)n;
		w->crc = crc32c_update(w->crc, data, (size_t)n);
	}
	if (n < 0) {
		w->status = client_status(c);
		return -1;
	}
	if (rx.total != w->written) {	/* shorter than what was written */
		w->status = JQ_EXIT_PROTOCOL;
		*cause = xprintf("the result sent again is %llu bytes; %llu "
		    "were written before", (unsigned long long)rx.total,
		    (unsigned long long)w->written);
		return -1;
	}
	return 0;
}

/*
 * Ask for the job's end on c and take the answer: 0 the result is out,
 * 1 the job failed (said), -1 with *cause and w->status.
 */
static int
putwait_once(struct putwait *w, struct client *c, char **cause)
{
	char		*line, *p, *enc = NULL, *v;
	size_t		 vlen;
	uint64_t	 size;
	int		 rc;

	if (w->sent)		/* with the ADD (jq-put --add --wait) */
		rc = w->sent = 0;
	else {
		if (w->name != NULL)
			enc = proto_encode_dup(w->name, w->namelen);
		rc = client_send(c, cause, "WAIT %s%s%s", w->id, enc ?
		    " " KEY_NAME "=" : "", enc ? enc : "");
		free(enc);
	}
	if (rc != 0) {
		w->status = client_status(c);
		return -1;
	}
	for (;;) {
		if ((line = client_line(c, cause)) == NULL) {
			w->status = client_status(c);
			return -1;
		}
		if (strncmp(line, REPLY_WAITING " ",
		    strlen(REPLY_WAITING) + 1) == 0) {
			p = line + strlen(REPLY_WAITING) + 1;
			if (putwait_learn(w, &p) != 0)
				break;
			putwait_back(w, c);
			continue;
		}
		if (strncmp(line, REPLY_FAILED " ",
		    strlen(REPLY_FAILED) + 1) == 0) {
			putwait_back(w, c);
			if ((rc = putwait_failed(w, line +
			    strlen(REPLY_FAILED) + 1)) < 0)
				break;
			return rc;
		}
		if (strncmp(line, REPLY_RESULT " ",
		    strlen(REPLY_RESULT) + 1) != 0) {
			client_bad_reply(c, line, cause);
			w->status = client_status(c);
			return -1;
		}
		p = line + strlen(REPLY_RESULT) + 1;
		if ((v = putwait_kv(p, KEY_SIZE, &vlen)) == NULL ||
		    parse_u64(v, 0, UINT64_MAX, &size) != 0 ||
		    putwait_learn(w, &p) != 0) {
			free(v);
			break;
		}
		free(v);
		putwait_back(w, c);
		return putwait_result(w, c, size, cause);
	}
	w->status = JQ_EXIT_PROTOCOL;
	*cause = xprintf("malformed reply to WAIT from %s", client_server(c));
	return -1;
}

/*
 * Wait for job id (or "0" and the job named name, len bytes) on c (NULL:
 * connect to addr first) and write its result to standard output; sent:
 * a WAIT for it went out on c already, so the first answer is read only.
 * Returns JQ_EXIT_OK, or JQ_EXIT_FAILED when the job failed (said);
 * exits on anything else.  c is closed.
 */
int
putwait_run(struct client *c, const char *addr, const char *id,
    const char *name, size_t len, uint64_t reconnect_ms, int sent)
{
	struct putwait	 w;
	char		*cause = NULL, *tmp;
	int		 rc;

	memset(&w, 0, sizeof w);
	w.server = addr;
	w.id = xstrdup(id);
	if (name != NULL) {
		w.name = xmalloc(len + 1);
		memcpy(w.name, name, len);
		w.name[len] = '\0';
		w.namelen = len;
	}
	w.reconnect_ms = reconnect_ms;
	w.sent = sent && c != NULL;
	putwait_start(&w);
	srandom((unsigned)getpid() ^ (unsigned)util_now_ms());
	if (c == NULL && (c = client_open(addr, NULL, &w.status,
	    &cause)) == NULL)
		putwait_fail(&w, w.status, cause);
	for (;;) {
		if ((rc = putwait_once(&w, c, &cause)) >= 0)
			break;
		client_close(c);
		c = NULL;
		if (w.status != JQ_EXIT_CONNECT || reconnect_ms == 0)
			putwait_fail(&w, w.status, cause);
		if ((c = putwait_reconnect(&w, &cause)) == NULL) {
			tmp = xprintf("%s; gave up waiting for the server",
			    cause);
			free(cause);
			putwait_fail(&w, w.status, tmp);
		}
	}
	client_close(c);
	free(w.id);
	free(w.name);
	if (rc == 0 && fflush(stdout) != 0)
		err(JQ_EXIT_IO, "standard output");
	return rc == 0 ? JQ_EXIT_OK : JQ_EXIT_FAILED;
}
