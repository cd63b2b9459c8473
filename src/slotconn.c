/*
 * slotconn.c: a slot's connection to the server, below slot.c.
 *
 * Replies come in the order the requests went: the slot notes each reply
 * it is owed in a ring (run_conn_owe) and reads them when it must, all of
 * them (run_conn_settle) or the oldest one (run_conn_reply).  A reply that
 * refuses a result or a release is only logged.
 *
 * A lost connection, when --reconnect allows, is dropped (s->lost) and
 * opened again later with exponential backoff and jitter, for at most
 * --reconnect; any other problem is fatal and its exit status kept in
 * s->status (run_conn_fatal).  Replies owed on a dropped connection will
 * never come: results and failures among them are said to be unconfirmed.
 *
 * The next TAKE can go out ahead of a result (run_conn_prefetch), and is
 * counted against --max-jobs once however often it is sent
 * (run_conn_count).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define RUN_BACKOFF_MIN_MS 100		/* first reconnection delay */
#define RUN_BACKOFF_MAX_MS 5000		/* longest reconnection delay */

/* Note a reply the server owes (id, label NULL for a TOUCH). */
void
run_conn_owe(struct run_slot *s, enum run_owed_kind kind, const char *id,
    const char *label)
{
	struct run_owed	*o, *ring;
	size_t		 i, cap;

	if (s->nowed == s->owed_cap) {
		cap = s->owed_cap > 0 ? s->owed_cap * 2 : 8;
		ring = xcalloc(cap, sizeof *ring);
		for (i = 0; i < s->nowed; i++)
			ring[i] = s->owed[(s->owed_head + i) % s->owed_cap];
		free(s->owed);
		s->owed = ring;
		s->owed_cap = cap;
		s->owed_head = 0;
	}
	o = &s->owed[(s->owed_head + s->nowed++) % s->owed_cap];
	o->kind = kind;
	o->id = id != NULL ? xstrdup(id) : NULL;
	o->label = label != NULL ? xstrdup(label) : NULL;
}

/* Drop the oldest reply owed. */
static void
run_conn_pop(struct run_slot *s)
{
	struct run_owed	*o = &s->owed[s->owed_head];

	free(o->id);
	free(o->label);
	s->owed_head = (s->owed_head + 1) % s->owed_cap;
	s->nowed--;
	if (s->prefetched && s->before_take > 0)
		s->before_take--;
}

/*
 * Drop a lost connection.  Replies still owed for results and failures will
 * never come: say so (the server may or may not have stored them).
 */
void
run_conn_drop(struct run_slot *s)
{
	struct run_owed	*o;

	while (s->nowed > 0) {
		o = &s->owed[s->owed_head];
		if (o->kind == OWED_RESULT || o->kind == OWED_FAILURE)
			log_warnx("%s: job %s: the connection was lost before the "
			    "server confirmed the %s; the job may run again",
			    o->label, o->id, o->kind == OWED_RESULT ? "result" :
			    "failure report");
		run_conn_pop(s);
	}
	/* A job the prefetched TAKE got goes back when the connection closes. */
	s->prefetched = 0;
	s->before_take = 0;
	client_close(s->link.c);
	s->link.c = NULL;
	s->lost = 1;
}

/*
 * A connection problem: say why.  A lost connection, when --reconnect
 * allows, only drops it (s->lost: the caller reconnects); anything else is
 * fatal and its status remembered.  Returns -1.
 */
int
run_conn_fatal(struct run_slot *s, char *cause)
{
	struct client	*c = s->link.c;

	log_warnx("%s", cause);
	free(cause);
	if (c != NULL && client_status(c) == JQ_EXIT_CONNECT &&
	    s->link.cfg->reconnect_ms > 0 && run_stop != 2) {
		run_conn_drop(s);
		return -1;
	}
	s->status = c != NULL ? client_status(c) : JQ_EXIT_CONNECT;
	return -1;
}

/* Sleep nap ms, unless SIGUSR2 comes; the slots spread out this way. */
static void
run_conn_nap(uint64_t nap)
{
	struct pollfd	 pfd;
	uint64_t	 now, until = util_now_ms() + nap;

	while ((now = util_now_ms()) < until && run_stop != 2) {
		pfd.fd = run_wake[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)(until - now)) > 0)
			run_drain_wake();
	}
}

/*
 * Connect again after a loss, with exponential backoff and jitter, for at
 * most --reconnect.  0 connected, -1 gave up (status set), 1 SIGUSR2.
 */
int
run_conn_reconnect(struct run_slot *s)
{
	const struct run_config	*cfg = s->link.cfg;
	uint64_t		 now, end, delay = RUN_BACKOFF_MIN_MS, nap;
	char			*cause = NULL;
	int			 status;

	end = util_now_ms() + cfg->reconnect_ms;
	log_warnx("reconnecting to %s (for at most %llu ms)",
	    net_default_server(cfg->server),
	    (unsigned long long)cfg->reconnect_ms);
	for (;;) {
		if (run_stop == 2)
			return 1;
		s->link.c = client_open(cfg->server, s->link.worker, &status,
		    &cause);
		if (s->link.c != NULL) {
			log_warnx("reconnected to %s", client_server(s->link.c));
			s->lost = 0;
			return 0;
		}
		now = util_now_ms();
		if ((status != JQ_EXIT_CONNECT && status != JQ_EXIT_PROTOCOL) ||
		    now >= end) {
			log_warnx("%s; gave up reconnecting", cause);
			free(cause);
			s->status = status;
			return -1;
		}
		free(cause);
		cause = NULL;
		/* Sleep delay/2 to delay, so that slots spread out. */
		nap = delay / 2 + (uint64_t)random() % (delay / 2 + 1);
		run_conn_nap(nap < end - now ? nap : end - now);
		delay = delay * 2 > RUN_BACKOFF_MAX_MS ? RUN_BACKOFF_MAX_MS :
		    delay * 2;
	}
}

/*
 * Read the reply to one TOUCH.  It tells the lease, so later keep-alives
 * come at a third of it.  A refusal (the lease ran out, the job went back)
 * is only logged: a late result is still accepted.
 */
static int
run_conn_touch_reply(struct run_slot *s)
{
	char		*rest, *cause = NULL, num[PROTO_U64_LEN];
	const char	*v;
	size_t		 len;
	uint64_t	 lease;

	if (client_reply(s->link.c, &rest, &cause) == 0) {
		if ((v = proto_word_kv(rest, KEY_LEASE, &len)) != NULL &&
		    len < sizeof num) {
			memcpy(num, v, len);
			num[len] = '\0';
			if (parse_u64(num, 1, JQ_SECONDS_MAX, &lease) == 0)
				s->link.keepalive_ms = lease * 1000 / 3;
		}
		return 0;
	}
	if (client_status(s->link.c) == JQ_EXIT_CONNECT)
		return run_conn_fatal(s, cause);
	log_warnx("lease renewal refused: %s", cause);
	free(cause);
	return 0;
}

/*
 * Read the oldest reply owed.  A refused result (ERR DONE: someone else
 * delivered first) is only logged.  0, or -1 (fatal, or lost: the ring is
 * then empty).
 */
int
run_conn_reply(struct run_slot *s)
{
	struct run_owed	*o = &s->owed[s->owed_head];
	struct client	*c = s->link.c;
	const char	*what;
	char		*cause = NULL, *line, *rest = NULL;
	int		 rc = 0;

	switch (o->kind) {
	case OWED_TOUCH:
		rc = run_conn_touch_reply(s);
		break;
	case OWED_ABORTED:
		if ((line = client_line(c, &cause)) == NULL)
			rc = run_conn_fatal(s, cause);
		else if (strncmp(line, REPLY_ERR " " ERR_ABORTED,
		    strlen(REPLY_ERR " " ERR_ABORTED)) != 0)
			rc = run_conn_fatal(s, xprintf("unexpected reply to "
			    "ABORT: \"%.80s\"", line));
		break;
	default:
		what = o->kind == OWED_RESULT ? "result" :
		    o->kind == OWED_FAILURE ? "failure report" : "release";
		if (client_reply(c, &rest, &cause) == 0) {
			/* a new server stores a result by its input's identity */
			if (o->kind == OWED_RESULT && (strcspn(rest, " ") !=
			    strlen(o->id) || strncmp(rest, o->id,
			    strlen(o->id)) != 0))
				log_warnx("%s: job %s: the server stored the "
				    "result as its job %.*s (same input)",
				    o->label, o->id, (int)strcspn(rest, " "),
				    rest);
			break;
		}
		if (client_status(c) == JQ_EXIT_CONNECT) {
			rc = run_conn_fatal(s, cause);
			break;
		}
		log_warnx("%s: job %s: %s not accepted: %s", o->label, o->id,
		    what, cause);
		/* counted as done when sent: the summary must not claim it */
		if (o->kind == OWED_RESULT && s->tally->done > 0) {
			s->tally->done--;
			s->tally->refused++;
		}
		if (client_status(c) != JQ_EXIT_REFUSED)
			s->failed = 1;
		free(cause);
		break;
	}
	if (s->nowed > 0)		/* (a lost connection emptied the ring) */
		run_conn_pop(s);
	return rc;
}

/*
 * The socket, watched only for its closing while no reply is owed,
 * signalled something: read what is there, which tells a lost connection
 * (or nonsense).  Returns -1.
 */
int
run_conn_hangup(struct run_slot *s)
{
	char	*cause = NULL, *line;

	if ((line = client_line(s->link.c, &cause)) == NULL)
		return run_conn_fatal(s, cause);
	log_warnx("unexpected message from %s: \"%.80s\"",
	    client_server(s->link.c), line);
	s->status = JQ_EXIT_PROTOCOL;
	return -1;
}

/*
 * Send what is buffered and read the replies owed: all of them, or when a
 * prefetched TAKE is out, those that come before its reply.  0 or -1.
 */
int
run_conn_settle(struct run_slot *s)
{
	char	*cause = NULL;

	if (client_flush(s->link.c, &cause) != 0)
		return run_conn_fatal(s, cause);
	while (s->link.c != NULL && s->nowed > 0 &&
	    !(s->prefetched && s->before_take == 0))
		if (run_conn_reply(s) != 0)
			return -1;
	return 0;
}

/*
 * Count the next TAKE against --max-jobs, once however often it is sent
 * (again after a loss, or after a prefetched one found every job held).
 * 1 when it may go out, 0 when the slots have taken all they may.
 */
int
run_conn_count(struct run_slot *s)
{
	if (!s->counted && s->counter != NULL && __atomic_fetch_add(s->counter,
	    1, __ATOMIC_SEQ_CST) >= s->link.cfg->max_jobs)
		return 0;
	s->counted = 1;
	return 1;
}

/*
 * Ask for the next job ahead of the result about to go out: "TAKE ...
 * wait=0" before the PUT or FAIL.  The server answers it at once and makes
 * the result durable while our next command starts, so the fsyncs behind
 * each result leave the per-job path.  Not when stopping or at --max-jobs,
 * nor for a job that ran on while the server was away (offline): the
 * restarted server holds it for nobody and could hand it straight back to
 * us.  0, or -1 (fatal).
 */
int
run_conn_prefetch(struct run_slot *s, int offline)
{
	char	*cause = NULL;

	if (run_stop || s->link.c == NULL || s->prefetched || offline ||
	    !run_conn_count(s))
		return 0;
	if (client_send(s->link.c, &cause, "%s wait=0", s->take) != 0)
		return run_conn_fatal(s, cause);
	s->prefetched = 1;
	s->before_take = s->nowed;
	return 0;
}

/*
 * Wait until the TAKE reply can be read, or a stop signal came.  Returns 0
 * (readable), 1 (stop: the caller closes the connection, which cancels the
 * TAKE and hands back a job the server may have sent meanwhile) or -1.
 */
int
run_conn_wait(struct run_slot *s)
{
	struct pollfd	 pfd[2];

	for (;;) {
		if (client_buffered(s->link.c) > 0)
			return 0;
		if (run_stop)
			return 1;
		pfd[0].fd = run_wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = client_fd(s->link.c);
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			s->status = JQ_EXIT_IO;
			return -1;
		}
		if (pfd[0].revents != 0)
			run_drain_wake();
		if (pfd[1].revents != 0)
			return 0;
	}
}

/*
 * The slot is done: read the replies still owed (unless it failed, or a
 * prefetched TAKE is out: closing hands back the job it may get), close
 * the connection and forget the ring.
 */
void
run_conn_close(struct run_slot *s)
{
	if (s->status == 0 && s->link.c != NULL && !s->prefetched)
		(void)run_conn_settle(s);
	client_close(s->link.c);
	s->link.c = NULL;
	while (s->nowed > 0)
		run_conn_pop(s);
	free(s->owed);
	s->owed = NULL;
}
