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
 * The first connection is made the same way, so a worker may start before
 * its server; with --keep, a slot whose server finished waits for the
 * next one, and no wait has a limit.  Messages about the server, which
 * every slot would print, are said once per worker (run_say).
 *
 * The next TAKE can go out ahead of a result (run_conn_prefetch), and is
 * counted against --max-jobs once however often it is sent
 * (run_conn_count).
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define RUN_BACKOFF_MIN_MS 100		/* first reconnection delay */
#define RUN_BACKOFF_MAX_MS 5000		/* longest reconnection delay */
#define RUN_BACKOFF_IDLE_MS 1000	/* ... waiting for a server to come */
#define RUN_NAP_SLICE_MS 200		/* how often a waiting slot looks up */
#define RUN_IDLE_SAY_MS 5000		/* a TAKE unanswered this long: said once */

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
		/* counted as done when sent: the summary must not claim it */
		if (o->kind == OWED_RESULT && s->tally->done > 0) {
			s->tally->done--;
			s->tally->unconfirmed++;
		}
		run_conn_pop(s);
	}
	/* A job the prefetched TAKE got goes back when the connection closes. */
	s->prefetched = 0;
	s->before_take = 0;
	client_close(s->link.c);
	s->link.c = NULL;
	s->lost = 1;
	s->why = RUN_CONNECT_LOST;
}

/*
 * A connection problem: say why.  A lost connection, when --reconnect
 * allows, only drops it (s->lost: the caller reconnects); anything else is
 * fatal and its status remembered.  Returns -1.  A connection lost after
 * another slot heard the server finish is the server leaving: nothing is
 * said, and the slot, idle, stops (run_conn_give_up).
 */
int
run_conn_fatal(struct run_slot *s, char *cause)
{
	struct client	*c = s->link.c;
	const struct run_config	*cfg = s->link.cfg;

	if (c == NULL || client_status(c) != JQ_EXIT_CONNECT || cfg->keep ||
	    !run_share_finished())
		run_say("%s", cause);
	free(cause);
	if (c != NULL && client_status(c) == JQ_EXIT_CONNECT &&
	    (cfg->reconnect_ms > 0 || cfg->keep) && run_stop != 2) {
		run_conn_drop(s);
		return -1;
	}
	s->status = c != NULL ? client_status(c) : JQ_EXIT_CONNECT;
	return -1;
}

/*
 * Should a slot waiting for its server stop waiting?  On SIGUSR2; idle (no
 * job held), on any stop, or when another slot heard the server finish
 * (without --keep: the server we wait for has gone for good).
 */
static int
run_conn_give_up(const struct run_slot *s, int idle)
{
	return run_stop == 2 || (idle && (run_stop ||
	    (!s->link.cfg->keep && run_share_finished())));
}

/*
 * Sleep nap ms, unless run_conn_give_up; the slots spread out this way.
 * Another slot cannot wake us, so we look every RUN_NAP_SLICE_MS.
 */
void
run_conn_nap(const struct run_slot *s, uint64_t nap, int idle)
{
	struct pollfd	 pfd;
	uint64_t	 now, until = util_now_ms() + nap, slice;

	while ((now = util_now_ms()) < until && !run_conn_give_up(s, idle)) {
		pfd.fd = run_wake[0];
		pfd.events = POLLIN;
		slice = until - now < RUN_NAP_SLICE_MS ? until - now :
		    RUN_NAP_SLICE_MS;
		if (poll(&pfd, 1, (int)slice) > 0)
			run_drain_wake();
	}
}

/*
 * Say that the slot waits for its server, and for how long: once per
 * worker.  A first connection says nothing until its first try failed.
 */
static void
run_conn_say_wait(const struct run_slot *s, const char *srv,
    uint64_t limit_ms)
{
	char	 d[32];

	progress_wall(limit_ms, d, sizeof d);
	switch (s->why) {
	case RUN_CONNECT_FIRST:
		if (limit_ms == UINT64_MAX)
			run_say("waiting for %s", srv);
		else
			run_say("waiting for %s (for at most %s)", srv, d);
		break;
	case RUN_CONNECT_LOST:
		if (limit_ms == UINT64_MAX)
			run_say("reconnecting to %s", srv);
		else
			run_say("reconnecting to %s (for at most %s)", srv,
			    d);
		break;
	case RUN_CONNECT_NEXT:		/* run_slot_next said it */
		break;
	}
}

/*
 * Connect (again), with exponential backoff and jitter: for at most
 * --reconnect, or with --keep for as long as it takes.  idle: no job is
 * held, so any stop ends the wait.  0 connected; -1 gave up (status set);
 * 1 stopped.
 */
int
run_conn_reconnect(struct run_slot *s, int idle)
{
	const struct run_config	*cfg = s->link.cfg;
	const char		*srv = net_default_server(cfg->server);
	uint64_t		 now, end, limit, delay = RUN_BACKOFF_MIN_MS, nap;
	uint64_t		 most;
	char			*cause = NULL;
	int			 status, tries = 0;

	limit = cfg->keep ? UINT64_MAX : cfg->reconnect_ms;
	end = limit == UINT64_MAX ? UINT64_MAX : util_now_ms() + limit;
	/* a worker waiting for a server to come is quick to see it come */
	most = s->why == RUN_CONNECT_LOST ? RUN_BACKOFF_MAX_MS :
	    RUN_BACKOFF_IDLE_MS;
	if (run_conn_give_up(s, idle))
		return 1;
	if (s->why != RUN_CONNECT_FIRST)
		run_conn_say_wait(s, srv, limit);
	/* --keep: the server that said finished may listen a moment more
	 * (jq-serve --linger): not a connection a millisecond to it */
	if (s->why == RUN_CONNECT_NEXT)
		run_conn_nap(s, s->idle_next < 3 ? RUN_BACKOFF_MIN_MS <<
		    (s->idle_next > 0 ? s->idle_next - 1 : 0) :
		    RUN_BACKOFF_MIN_MS * 4, idle);
	for (;;) {
		if (run_conn_give_up(s, idle))
			return 1;
		s->link.c = client_open(cfg->server, s->link.worker, &status,
		    &cause);
		if (s->link.c != NULL) {
			if ((s->why != RUN_CONNECT_FIRST || tries > 0) &&
			    (s->why != RUN_CONNECT_NEXT || s->idle_next < 2))
				run_say("%s to %s", s->why == RUN_CONNECT_LOST ?
				    "reconnected" : "connected",
				    client_server(s->link.c));
			s->lost = 0;
			s->gen++;
			if (s->why == RUN_CONNECT_NEXT)	/* a new server */
				(void)run_share_streak(0);
			return 0;
		}
		now = util_now_ms();
		/* a garbled reply may come from a server dying under us; a
		 * server we meet first that speaks nonsense is no jq server */
		if ((status != JQ_EXIT_CONNECT && (status != JQ_EXIT_PROTOCOL ||
		    s->why != RUN_CONNECT_LOST)) || now >= end) {
			if (tries > 0 || s->why != RUN_CONNECT_FIRST)
				run_say("%s; gave up waiting", cause);
			else
				run_say("%s", cause);
			free(cause);
			s->status = status;
			return -1;
		}
		if (tries++ == 0 && s->why == RUN_CONNECT_FIRST) {
			run_say("%s", cause);
			run_conn_say_wait(s, srv, limit);
		}
		free(cause);
		cause = NULL;
		/* Sleep delay/2 to delay, so that slots spread out. */
		nap = delay / 2 + (uint64_t)random() % (delay / 2 + 1);
		run_conn_nap(s, nap < end - now ? nap : end - now, idle);
		delay = delay * 2 > most ? most : delay * 2;
	}
}

/*
 * --keep: the server said it has no more work for us.  Wait until it goes
 * (it closes the connection when it exits), then let the slot connect to
 * the next one.  0 gone, 1 stopped.
 */
int
run_conn_await_close(struct run_slot *s)
{
	struct pollfd	 pfd[2];
	char		 byte;

	for (;;) {
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
			return 1;
		}
		if (pfd[0].revents != 0)
			run_drain_wake();
		/* anything from a finished server (it says nothing more) or its
		 * end: either way, this connection is over */
		if (pfd[1].revents != 0 && (client_buffered(s->link.c) > 0 ||
		    recv(client_fd(s->link.c), &byte, 1, MSG_PEEK |
		    MSG_DONTWAIT) != -1 || errno != EAGAIN))
			break;
	}
	client_close(s->link.c);
	s->link.c = NULL;
	s->lost = 1;
	s->why = RUN_CONNECT_NEXT;
	return 0;
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

/* Read the number key of a reply line into *v: 0, or -1 if absent or bad. */
static int
run_conn_num(const char *line, const char *key, uint64_t *v)
{
	const char	*p;
	char		 num[PROTO_U64_LEN];
	size_t		 len;

	if ((p = proto_word_kv(line, key, &len)) == NULL || len >= sizeof num)
		return -1;
	memcpy(num, p, len);
	num[len] = '\0';
	return parse_u64(num, 0, UINT64_MAX, v);
}

/*
 * Ask the server for its counts: STAT, adding up the failures its WORKER
 * lines tell (retried ones too, which the STAT line does not count), to
 * the END.  No reply may be owed (settle first).  0, or -1 (fatal or lost,
 * said).
 */
int
run_conn_stat(struct run_slot *s, struct run_stat *st)
{
	struct client	*c = s->link.c;
	char		*cause = NULL, *line;
	int		 first = 1, bad = 0;
	uint64_t	 n;

	st->reported = 0;
	if (client_send(c, &cause, "STAT") != 0 ||
	    client_flush(c, &cause) != 0)
		return run_conn_fatal(s, cause);
	for (;;) {
		if ((line = client_line(c, &cause)) == NULL)
			return run_conn_fatal(s, cause);
		if (first) {
			first = 0;
			bad = strncmp(line, REPLY_STAT " ",
			    strlen(REPLY_STAT) + 1) != 0 ||
			    run_conn_num(line, STAT_RUNNING, &st->running) ||
			    run_conn_num(line, STAT_DONE, &st->done);
			if (bad && strncmp(line, REPLY_ERR " ",
			    strlen(REPLY_ERR) + 1) == 0)
				break;		/* a one-line refusal */
		} else if (strcmp(line, REPLY_END) == 0)
			break;
		else if (strncmp(line, REPLY_WORKER " ",
		    strlen(REPLY_WORKER) + 1) == 0 &&
		    run_conn_num(line, STAT_FAILED, &n) == 0)
			st->reported += n;
	}
	if (!bad)
		return 0;
	s->status = JQ_EXIT_PROTOCOL;
	run_say("%s sent a STAT reply jq-run cannot read",
	    client_server(c));
	return -1;
}

/*
 * Read the oldest reply owed.  A refused result is only logged and
 * counted: not kept (ERR DONE: someone else delivered first; status 4) or
 * not stored (ERR IO or any other error; jq-run then exits 7).  0, or -1
 * (fatal, or lost: the ring is then empty).
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
			if (client_status(c) == JQ_EXIT_REFUSED)
				s->tally->refused++;
			else
				s->tally->unstored++;
		} else if (client_status(c) != JQ_EXIT_REFUSED)
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
	run_say("unexpected message from %s: \"%.80s\"",
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
 * us, nor while another slot holds such a result (run_slot_await_held in
 * slot.c); nor after --halt-after failures in a row, when the slot looks at the
 * server before it takes another job (run_slot_doubt).  0, or -1 (fatal).
 */
int
run_conn_prefetch(struct run_slot *s, int offline)
{
	char	*cause = NULL;

	if (run_stop || s->link.c == NULL || s->prefetched || offline ||
	    run_share_held(0) > 0 ||
	    (s->link.cfg->halt_after > 0 &&
	    run_share_streak(-1) >= s->link.cfg->halt_after) ||
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
 * A wait of RUN_IDLE_SAY_MS says once that we wait for work there (the
 * server has none for us now: a jq-serve --keep with an empty queue, or
 * the last jobs running elsewhere), so a silent worker is not taken for a
 * stuck one; run_say prints it once for all the slots.
 */
int
run_conn_wait(struct run_slot *s)
{
	struct pollfd	 pfd[2];
	uint64_t	 say_at = util_now_ms() + RUN_IDLE_SAY_MS, now;
	int		 timeout;

	for (;;) {
		if (client_buffered(s->link.c) > 0)
			return 0;
		if (run_stop)
			return 1;
		timeout = -1;
		if (say_at != 0) {
			now = util_now_ms();
			if (now >= say_at) {
				run_say("waiting for work on %s: it has had "
				    "none for us for %d s", client_server(
				    s->link.c), RUN_IDLE_SAY_MS / 1000);
				say_at = 0;
			} else
				timeout = (int)(say_at - now);
		}
		pfd[0].fd = run_wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = client_fd(s->link.c);
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, timeout) == -1) {
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
