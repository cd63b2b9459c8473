/*
 * conn.c: one client connection of jq-serve, as an explicit state machine.
 *
 * Input states (c->state; conn_set_state is the only function that
 * changes it):
 *
 *   CONN_LINE      reading a request line
 *   CONN_SKIPLINE  dropping an over-long line up to its LF, then ERR TOOLONG
 *   CONN_FRAME     inside a payload, reading DATA/END/ABORT
 *   CONN_DATA      inside a DATA chunk: rx.left bytes to store or drop
 *   CONN_WAIT      a TAKE waits for a job (or for the job being sent to end);
 *                  later requests stay unread in the input buffer
 *   CONN_COMMIT    an ADD waits for another ADD of the same name
 *                  (c->follow) before it goes to commit.c; later
 *                  requests wait likewise
 *   CONN_RESULT    a WAIT waits for its job to end (or for the job being
 *                  sent to end); later requests wait likewise
 *   CONN_CLOSING   flushing the output, then the connection is freed
 *
 * Transitions, and what makes them:
 *
 *   LINE     -> SKIPLINE  a line longer than JQ_LINE_MAX
 *   SKIPLINE -> LINE      its LF is found (ERR TOOLONG)
 *   LINE     -> FRAME     PUT or FAIL (NEXT_PAYLOAD from cmd.c)
 *   FRAME    -> DATA      DATA <n>, n > 0
 *   DATA     -> FRAME     the chunk's n bytes are in
 *   FRAME    -> LINE      END or ABORT: answered
 *   FRAME    -> LINE      END of a verified result or ADD, handed to
 *                         commit.c: its reply is held (see below)
 *   FRAME    -> COMMIT    END of an ADD whose name another ADD is adding,
 *                         with if_new=1: it waits for that one (c->follow)
 *   COMMIT   -> LINE      that add has ended: this one is answered or
 *                         handed to commit.c (conn_add_decide)
 *   LINE     -> WAIT      TAKE (NEXT_TAKE from cmd.c)
 *   WAIT     -> LINE      the TAKE is answered: JOB or NOJOB
 *   LINE     -> RESULT    WAIT (NEXT_WAIT from wait.c)
 *   RESULT   -> LINE      the job has ended: RESULT and its payload,
 *                         FAILED, or ERR (conn_result_try); the server
 *                         looks again at every change (conn_results_all)
 *   any      -> CLOSING   QUIT, a refusal that closes, broken framing, a
 *                         time limit, or the end of the run when idle
 *
 * Output runs beside input, and replies always come in request order.
 * Requests are read and executed ahead of their replies (a client may
 * pipeline): a PUT's or an ADD's reply cannot be written before commit.c has
 * made it durable, so it gets a hold (struct conn_hold) in c->holds, and
 * every reply after it waits in that hold's buffer; so does a job (or a
 * WAIT's result: send_result) streaming out (send_fd >= 0), whose data flows
 * only once its hold is first in line.  A job of at most CONN_INLINE_MAX
 * bytes behind a hold is copied whole into that hold's buffer at once
 * instead (send_inline), so that the requests after it are read on.  A hold is let go when its commit
 * comes back (its reply goes in front of what waited behind it) or its
 * stream has ended; the holds at the head that are let go move to the
 * socket's output (conn_flush).  At most JQ_INFLIGHT_MAX commits are in
 * flight per connection: past that it reads no further request.  Whatever
 * arrived together reaches commit.c as one batch (commit_plug).  The
 * socket's output is written directly once the callback that filled it is
 * done (conn_push_cb: one writev a reply, no EPOLLOUT watched); libevent's
 * EV_WRITE takes over only while the socket takes less than all of it.
 *
 * Memory per connection is bounded: input stops being read past
 * CONN_INPUT_MAX, the job stream adds a chunk only when the output holds
 * less than JQ_CHUNK, replies held back are capped at CONN_PENDING_MAX and
 * commits in flight at JQ_INFLIGHT_MAX, and
 * requests are not read while JQ_REPLY_BACKLOG bytes of replies wait for a
 * peer that does not read them.
 *
 * The layers below: cmd.c answers requests (and the greeting) and says what
 * the connection does next, payload.c takes in payloads, jobs.c decides what
 * becomes of jobs, wait.c says when a WAIT has its answer and opens the
 * result it sends.  None of them calls conn.c.
 *
 * Connections that have not authenticated yet are counted apart from the
 * others and kept in server.unauth, oldest first: --max-conns counts only
 * authenticated ones, and past --max-unauth server.c drops the oldest
 * unauthenticated one to make room (conn_drop_oldest_unauth), so that a
 * flood of sockets that never authenticate holds a bounded number of
 * descriptors and never keeps a worker out.  conn_note_auth moves a
 * connection out of the list once cmd.c has let it in.
 *
 * Time limits are checked by one sweep a second over every connection
 * (conn_sweep), not by a timer per read: half a request may stall for
 * --stall-timeout, a connection holding nothing may idle for
 * --idle-timeout, a peer has JQ_HANDSHAKE_MS to authenticate, output
 * that drains not at all for --stall-timeout closes the connection
 * (last_tx_ms, conn_out_cb), and a closing connection gets
 * --stall-timeout to read its last reply.
 *
 * Size: about 1250 lines, past the 800 we aim for, since issue 9 added the
 * unauthenticated accounting and the pinned-input stream here, and issue
 * 11 the waiting WAITs (conn_wait, conn_result_try), which reuse the job
 * stream for a result.  Every function left works on struct conn's private
 * fields and its state; the next piece to move out is the job stream
 * (conn_send_job, conn_pump, conn_send_end) as a module that fills an
 * evbuffer and calls nothing back.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "jq.h"

#define CONN_INPUT_MAX		(1U << 20)
#define CONN_PENDING_MAX	(64U << 10)
#define CONN_INLINE_MAX		(64U << 10)	/* a job this small, behind a
						 * reply not ready, is copied
						 * whole behind it */
#define CONN_DRAIN_MS		2000	/* after our FIN: wait this for theirs */
#define CONN_DRAIN_READS	64	/* reads of leftover input at close */
#define CONN_FDS_SEND		1	/* a job's data or a WAIT's result */
#define CONN_FDS_PAYLOAD	2	/* a PUT's or ADD's file and directory */
#define CONN_RX_READ		(256U << 10)	/* payload bytes read a call */
#define CONN_RX_TURN		4		/* such reads a turn of the loop */

enum conn_state {
	CONN_LINE,
	CONN_SKIPLINE,
	CONN_FRAME,
	CONN_DATA,
	CONN_WAIT,
	CONN_COMMIT,
	CONN_RESULT,
	CONN_CLOSING
};

/*
 * A place in a connection's output whose bytes are not known yet: a result
 * or an ADD in commit.c's hands (cm), or the job stream (stream).  out holds
 * the replies that come after it, up to the next hold; a commit's own reply
 * goes in front of them when it comes back.
 */
struct conn_hold {
	TAILQ_ENTRY(conn_hold)	 entry;
	struct commit		*cm;		/* in flight; NULL once back */
	int			 stream;	/* the job stream's place */
	int			 ready;		/* answered, or the stream ended */
	int			 late;		/* a result for a job not running */
	struct evbuffer		*out;		/* what waits behind it */
};
TAILQ_HEAD(conn_holds, conn_hold);

struct conn {
	struct bufferevent	*bev;
	struct event		*wake;		/* runs conn_process later */
	struct event		*take_timer;	/* TAKE wait= deadline */
	struct event		*push;		/* conn_push_cb, after a reply */
	int			 direct;	/* output written by conn_push_cb;
						 * libevent's EV_WRITE is off */
	enum conn_state		 state;		/* set by conn_set_state only */
	struct session		 sess;		/* the peer, its TAKE, its payload */
	uint64_t		 born_ms;	/* accepted, monotonic */
	uint64_t		 last_rx_ms;	/* last byte received */
	uint64_t		 last_tx_ms;	/* output last drained, or began
						 * to wait; monotonic */
	int			 finish;	/* server is done: close when idle */
	int			 asked;		/* sent a TAKE: a worker */
	int			 told;		/* heard NOJOB finished (or drained) */
	int			 spoke;		/* sent a request past the handshake */
	int			 shut;		/* our FIN sent (shutdown SHUT_WR) */
	uint64_t		 closing_ms;	/* entered CONN_CLOSING, monotonic */
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 wait_entry;
	int			 waiting;	/* in server.waiters */
	TAILQ_ENTRY(conn)	 unauth_entry;
	int			 unauth;	/* in server.unauth */

	/* the job being sent */
	int			 send_fd;
	struct job		*send_job;
	uint64_t		 send_size;	/* size at open, for buffer sizing */
	uint64_t		 send_total;
	uint32_t		 send_crc;
	int			 send_result;	/* it is send_job's result (WAIT) */
	int			 send_inline;	/* copied whole into conn_out now */
	struct wait_result	 send_res;	/* that result as opened */

	/* the WAIT being served (CONN_RESULT) */
	TAILQ_ENTRY(conn)	 result_entry;
	int			 result_listed;	/* in conn_results */
	int			 result_told;	/* WAITING was said */

	/* descriptors reserved from server.fds_free (server_limits) */
	unsigned		 rx_fds;	/* for the payload being read */
	int			 fdwait;	/* in conn_fdwaiters */
	TAILQ_ENTRY(conn)	 fdwait_entry;

	struct commit		*commit;	/* an ADD not handed over yet */
	struct spool_add	*follow;	/* the add whose end c->commit waits
						 * for */

	/* replies not ready yet, in request order; see the top */
	struct conn_holds	 holds;
	unsigned		 ninflight;	/* holds with a commit in flight */
	unsigned		 nlate;		/* of those, late results: no request
					 * is read ahead of them */
	unsigned		 rx_reads;	/* conn_rx_read's reads since the
						 * last read callback;
						 * CONN_RX_TURN once the socket
						 * was found empty */
};

static char	conn_linebuf[JQ_LINE_MAX + 1];	/* one loop, one line at a time */
static struct event	*conn_sweep_ev;		/* conn_sweep, once a second */
/* the connections whose WAIT waits (CONN_RESULT) */
static TAILQ_HEAD(, conn)	conn_results = TAILQ_HEAD_INITIALIZER(conn_results);
/* the connections whose PUT or ADD waits for descriptors, oldest first */
static TAILQ_HEAD(, conn)	conn_fdwaiters =
    TAILQ_HEAD_INITIALIZER(conn_fdwaiters);

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_push_cb(evutil_socket_t, short, void *);
static void	conn_out_cb(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_wake_cb(evutil_socket_t, short, void *);
static void	conn_take_timer_cb(evutil_socket_t, short, void *);
static void	conn_pump(struct conn *);
static void	conn_sweep(evutil_socket_t, short, void *);
static void	conn_wait(struct conn *);
static void	conn_result_try(struct conn *);
static void	conn_rx_settle(struct conn *);

/*
 * The one place c->state changes.  Entering CONN_CLOSING gives the peer
 * --stall-timeout to read what is left (conn_event_cb drops it after
 * that); once the output has drained, conn_reap sends our FIN.  Input is
 * still read, and thrown away, until the peer's FIN: a socket closed with
 * unread input sends a reset, which can destroy our last reply before the
 * peer has read it.
 */
static void
conn_set_state(struct conn *c, enum conn_state state)
{
	struct timeval	 tv;

	if (state == CONN_CLOSING && c->state != CONN_CLOSING)
		c->closing_ms = util_now_ms();
	c->state = state;
	conn_rx_settle(c);
	if (state != CONN_CLOSING)
		return;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	tv.tv_sec = (time_t)(server.cfg.stall_ms / 1000);
	tv.tv_usec = (suseconds_t)(server.cfg.stall_ms % 1000 * 1000);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* Where replies go now: behind the last hold if there is one. */
static struct evbuffer *
conn_out(struct conn *c)
{
	struct conn_hold	*h = TAILQ_LAST(&c->holds, conn_holds);

	return h != NULL ? h->out : bufferevent_get_output(c->bev);
}

/* Bytes of replies held back behind c's holds. */
static size_t
conn_held_bytes(const struct conn *c)
{
	const struct conn_hold	*h;
	size_t			 n = 0;

	TAILQ_FOREACH(h, &c->holds, entry)
		n += evbuffer_get_length(h->out);
	return n;
}

/* Take a place in c's output for cm's reply, or for the job stream. */
static void
conn_hold_add(struct conn *c, struct commit *cm)
{
	struct conn_hold	*h;

	h = xcalloc(1, sizeof *h);
	h->cm = cm;
	h->stream = cm == NULL;
	h->out = evbuffer_new();
	TAILQ_INSERT_TAIL(&c->holds, h, entry);
	if (cm != NULL)
		c->ninflight++;
}

/* Is the job stream first in line: may its data go out now? */
static int
conn_stream_first(const struct conn *c)
{
	const struct conn_hold	*h = TAILQ_FIRST(&c->holds);

	return h != NULL && h->stream && !h->ready;
}

/* Move the holds at the head that are let go, and what waited behind them,
 * to the socket's output. */
static void
conn_flush(struct conn *c)
{
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct conn_hold	*h, *next;

	for (h = TAILQ_FIRST(&c->holds); h != NULL && h->ready; h = next) {
		next = TAILQ_NEXT(h, entry);
		TAILQ_REMOVE(&c->holds, h, entry);
		evbuffer_add_buffer(out, h->out);
		evbuffer_free(h->out);
		free(h);
	}
}

/* cm's reply: in front of what waits behind its hold, which is let go. */
JQ_PRINTF(3, 4)
static void
conn_hold_reply(struct conn *c, struct commit *cm, const char *fmt, ...)
{
	struct conn_hold	*h;
	struct evbuffer		*line;
	va_list			 ap;

	TAILQ_FOREACH(h, &c->holds, entry)
		if (h->cm == cm)
			break;
	if (h == NULL)		/* cannot happen: every commit has its hold */
		abort();
	line = evbuffer_new();
	va_start(ap, fmt);
	cmd_vreply(line, fmt, ap);
	va_end(ap);
	evbuffer_prepend_buffer(h->out, line);
	evbuffer_free(line);
	h->cm = NULL;
	h->ready = 1;
	c->ninflight--;
	if (h->late)
		c->nlate--;
}

/* Queue a reply line, behind the job being sent if there is one. */
JQ_PRINTF(2, 3)
static void
conn_reply(struct conn *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	cmd_vreply(conn_out(c), fmt, ap);
	va_end(ap);
}

/* Schedule conn_process for the next loop iteration. */
static void
conn_kick(struct conn *c)
{
	event_active(c->wake, EV_TIMEOUT, 0);
}

/*
 * Reserve n descriptors from the budget for files: 0, or -1 when fewer
 * are free (the caller waits; conn_fds_give wakes it).
 */
static int
conn_fds_take(unsigned n)
{
	if (server.fds_free < n)
		return -1;
	server.fds_free -= n;
	return 0;
}

/*
 * Reserve a descriptor to send a file (a TAKE's job, a WAIT's result), or
 * -1 and the TAKEs and WAITs are woken at the next give.  Not while a PUT
 * or ADD waits: those finish jobs and free what they hold, and single
 * descriptors taken one by one could keep them waiting for ever.
 */
static int
conn_fds_take_send(void)
{
	if (!TAILQ_EMPTY(&conn_fdwaiters) || conn_fds_take(CONN_FDS_SEND) != 0) {
		server.fds_starved = 1;
		return -1;
	}
	return 0;
}

/*
 * Return n descriptors to the budget: a PUT or ADD that waits for them
 * gets them first (oldest first), then the TAKEs and WAITs that found
 * none are looked at again (server_wake).
 */
static void
conn_fds_give(unsigned n)
{
	struct conn	*c;

	server.fds_free += n;
	while ((c = TAILQ_FIRST(&conn_fdwaiters)) != NULL &&
	    server.fds_free >= CONN_FDS_PAYLOAD) {
		TAILQ_REMOVE(&conn_fdwaiters, c, fdwait_entry);
		c->fdwait = 0;
		server.fds_free -= CONN_FDS_PAYLOAD;
		c->rx_fds = CONN_FDS_PAYLOAD;	/* it is c's now */
		conn_kick(c);
	}
	if (server.fds_starved && server.fds_free > 0 &&
	    TAILQ_EMPTY(&conn_fdwaiters)) {
		server.fds_starved = 0;
		server_wake();
	}
}

/* Give back the payload's descriptors once c no longer receives one. */
static void
conn_rx_settle(struct conn *c)
{
	if (c->rx_fds > 0 && c->state != CONN_FRAME && c->state != CONN_DATA &&
	    c->state != CONN_COMMIT) {
		conn_fds_give(c->rx_fds);
		c->rx_fds = 0;
	}
}

/*
 * Does the complete request line at the head of in open files (PUT: the
 * result's temporary file and its directory; ADD: the spool's)?  The
 * budget is reserved before the line is read, so that the store never
 * meets EMFILE; a request that finds it spent stays unread.
 */
static int
conn_rx_wants_fds(struct evbuffer *in)
{
	struct evbuffer_ptr	 eol;
	unsigned char		*p;
	size_t			 len = evbuffer_get_length(in), i = 0;

	if (len > 64)
		len = 64;	/* leading spaces, then the verb */
	if (len < 4 || (p = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL)
		return 0;
	while (i < len - 4 && p[i] == ' ')
		i++;
	if ((memcmp(p + i, "PUT", 3) != 0 && memcmp(p + i, "ADD", 3) != 0) ||
	    (p[i + 3] != ' ' && p[i + 3] != '\n'))
		return 0;
	eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	return eol.pos >= 0;
}

/* Serve a TAKE: wait for a job, at most its wait= seconds. */
static void
conn_take(struct conn *c)
{
	struct timeval	 tv;

	conn_set_state(c, CONN_WAIT);
	if (!c->asked) {
		c->asked = 1;
		server_worker_arrived(c->sess.name);
	}
	if (c->sess.take_wait_s > 0) {
		tv.tv_sec = c->sess.take_wait_s;
		tv.tv_usec = 0;
		evtimer_add(c->take_timer, &tv);
	}
	conn_retake(c);
}

/* Do what cmd.c said the connection does next. */
static void
conn_next(struct conn *c, enum cmd_next next)
{
	switch (next) {
	case NEXT_LINE:
		break;
	case NEXT_CLOSE:
		conn_set_state(c, CONN_CLOSING);
		break;
	case NEXT_TAKE:
		conn_take(c);
		break;
	case NEXT_PAYLOAD:
		conn_set_state(c, CONN_FRAME);
		break;
	case NEXT_WAIT:
		conn_wait(c);
		break;
	}
}

/* cmd.c has let c in: count it as authenticated from now on. */
static void
conn_note_auth(struct conn *c)
{
	if (!c->unauth || !c->sess.authed)
		return;
	TAILQ_REMOVE(&server.unauth, c, unauth_entry);
	c->unauth = 0;
	server.nunauth--;
	server.nauthed++;
}

/* Accept a new connection on fd and greet it. */
struct conn *
conn_new(int fd)
{
	struct conn	*c;

	c = xcalloc(1, sizeof *c);
	c->bev = bufferevent_socket_new(server.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return NULL;
	}
	conn_set_state(c, CONN_LINE);
	c->wake = event_new(server.base, -1, 0, conn_wake_cb, c);
	c->take_timer = evtimer_new(server.base, conn_take_timer_cb, c);
	TAILQ_INIT(&c->holds);
	c->send_fd = -1;
	cmd_session_start(&c->sess, net_fd_name(fd, 1));
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE, JQ_CHUNK, 0);
	/* libevent's default of 16 KiB per read or write costs a loop
	 * iteration per 16 KiB of job data */
	bufferevent_set_max_single_read(c->bev, JQ_CHUNK);
	bufferevent_set_max_single_write(c->bev, 2 * JQ_CHUNK);
	/* replies are written at once (conn_push_cb), EV_WRITE only when the
	 * socket takes less than all */
	c->push = event_new(server.base, -1, 0, conn_push_cb, c);
	c->direct = 1;
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_cb, c);
	bufferevent_disable(c->bev, EV_WRITE);	/* on by default */
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&server.conns, c, entry);
	server.nconns++;
	TAILQ_INSERT_TAIL(&server.unauth, c, unauth_entry);
	c->unauth = 1;
	server.nunauth++;
	c->born_ms = c->last_rx_ms = c->last_tx_ms = util_now_ms();
	if (server.cfg.stall_ms == 0)
		server.cfg.stall_ms = JQ_STALL_DEFAULT_MS;
	if (server.cfg.idle_ms == 0)
		server.cfg.idle_ms = JQ_IDLE_DEFAULT_MS;
	if (conn_sweep_ev == NULL) {
		struct timeval	 sec = { 1, 0 };

		conn_sweep_ev = event_new(server.base, -1, EV_PERSIST,
		    conn_sweep, NULL);
		event_add(conn_sweep_ev, &sec);
	}
	log_debug("connection from %s", c->sess.peer);
	conn_next(c, cmd_greet(&c->sess, fd, conn_out(c)));
	conn_note_auth(c);
	return c;
}

/* Leave the list of waiting TAKEs. */
static void
conn_unwait(struct conn *c)
{
	if (c->waiting) {
		TAILQ_REMOVE(&server.waiters, c, wait_entry);
		c->waiting = 0;
	}
	evtimer_del(c->take_timer);
}

/* Forget the TAKE being served and read requests again. */
static void
conn_take_done(struct conn *c)
{
	conn_unwait(c);
	cmd_take_forget(&c->sess);
	if (c->state == CONN_WAIT)
		conn_set_state(c, CONN_LINE);
	conn_kick(c);
}

static void	conn_add_drop(struct conn *);

/* Leave the list of waiting WAITs. */
static void
conn_result_unlist(struct conn *c)
{
	if (c->result_listed) {
		TAILQ_REMOVE(&conn_results, c, result_entry);
		c->result_listed = 0;
	}
}

/*
 * Read and drop what input the kernel still holds for c's socket (at most
 * CONN_DRAIN_READS reads), so that closing it sends a FIN, not a reset.
 */
static void
conn_drain_socket(struct conn *c)
{
	char	 buf[4096];
	int	 fd = bufferevent_getfd(c->bev), i;

	for (i = 0; fd >= 0 && i < CONN_DRAIN_READS; i++)
		if (recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
			break;
}

/*
 * Free a connection: its hold=conn jobs go back to the queue.  A worker
 * leaving untold (it asked for work and never heard "finished") may come
 * back: the end of the run listens on for it (server_end_check).
 */
void
conn_free(struct conn *c)
{
	struct conn_hold	*h, *next;

	if (c->asked && !c->told)
		server.lost_workers++;
	conn_drain_socket(c);
	jobs_holder_gone(&c->sess, cmd_who(&c->sess));
	conn_unwait(c);
	conn_result_unlist(c);
	if (c->fdwait) {
		TAILQ_REMOVE(&conn_fdwaiters, c, fdwait_entry);
		c->fdwait = 0;
	}
	if (c->follow != NULL) {	/* an ADD not handed over yet */
		c->follow->followers--;
		c->follow = NULL;
		conn_add_drop(c);
	}
	for (h = TAILQ_FIRST(&c->holds); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->cm != NULL)
			h->cm->arg = NULL;	/* it completes without us */
		evbuffer_free(h->out);
		free(h);
	}
	TAILQ_INIT(&c->holds);
	if (c->send_fd >= 0) {
		close(c->send_fd);
		conn_fds_give(CONN_FDS_SEND);
	}
	if (c->rx_fds > 0)
		conn_fds_give(c->rx_fds);
	TAILQ_REMOVE(&server.conns, c, entry);
	server.nconns--;
	if (c->unauth) {
		TAILQ_REMOVE(&server.unauth, c, unauth_entry);
		server.nunauth--;
	} else
		server.nauthed--;
	evbuffer_remove_cb(bufferevent_get_output(c->bev), conn_out_cb, c);
	bufferevent_free(c->bev);
	event_free(c->push);
	event_free(c->wake);
	event_free(c->take_timer);
	cmd_session_end(&c->sess);
	free(c);
	if (server.closing && server.nconns == 0)
		event_base_loopbreak(server.base);
	else if (server.finishing && !server.closing)
		event_active(server.check, EV_TIMEOUT, 0);	/* the end? */
}

/*
 * Make room for a new connection past --max-unauth: drop the oldest one
 * still authenticating.  It is told ERR LIMIT if nothing else waits to go
 * out to it (best effort: it may not read it).
 */
void
conn_drop_oldest_unauth(void)
{
	static const char	 full[] = REPLY_ERR " " ERR_LIMIT " too many "
	    "connections waiting to authenticate; closing\n";
	struct conn		*c;

	if ((c = TAILQ_FIRST(&server.unauth)) == NULL)
		return;
	if (c->state != CONN_CLOSING) {
		log_tally(&server.turned_away, "dropped past --max-unauth",
		    "dropped the connection from %s: %u connections wait to "
		    "authenticate (--max-unauth)", c->sess.peer, server.nunauth);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
		    send(bufferevent_getfd(c->bev), full, sizeof full - 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("dropping a connection: %s", strerror(errno));
	}
	conn_free(c);
}

/*
 * The server has finished: answer what is asked, then close when idle.  A
 * worker not told yet is not closed when idle: its next TAKE is on its way
 * (jq-run asks again at once after a result); the grace of server_close
 * bounds that wait.
 */
void
conn_finish_all(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &server.conns, entry) {
		c->finish = 1;
		if (c->state == CONN_WAIT && c->send_fd < 0)
			conn_retake(c);
		if (c->state == CONN_RESULT)
			conn_result_try(c);
		conn_kick(c);
	}
}

/*
 * Connections the end of the run waits for: every one not closing that
 * has not heard "finished".
 */
unsigned
conn_unsettled(void)
{
	struct conn	*c;
	unsigned	 n = 0;

	TAILQ_FOREACH(c, &server.conns, entry)
		if (c->state != CONN_CLOSING && !c->told)
			n++;
	return n;
}

/*
 * c heard NOJOB finished (or drained): it asks for nothing more.  Once the
 * run has finished, it is closed as soon as its input is used up (our FIN
 * follows the reply), and the server may be able to leave.
 */
static void
conn_tell(struct conn *c)
{
	if (!c->told) {
		c->told = 1;
		server.told_workers++;
		if (server.finishing && c->asked)
			server_worker_told(c->sess.name);
	}
	if (server.finishing) {
		c->finish = 1;
		event_active(server.check, EV_TIMEOUT, 0);
	}
}

/* Offer jobs again to every waiting TAKE. */
void
conn_retake_all(void)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&server.waiters); c != NULL; c = next) {
		next = TAILQ_NEXT(c, wait_entry);
		conn_retake(c);
	}
}

/* Free every connection (at exit). */
void
conn_free_all(void)
{
	server.closing = 0;	/* no loopbreak from inside conn_free */
	while (!TAILQ_EMPTY(&server.conns))
		conn_free(TAILQ_FIRST(&server.conns));
	if (conn_sweep_ev != NULL) {
		event_free(conn_sweep_ev);
		conn_sweep_ev = NULL;
	}
}

/*
 * Give the stream just opened its place in c's output: a hold of its own,
 * or, when it is small and a reply before it is not ready, none (it is
 * copied whole behind that reply: send_inline).
 */
static void
conn_stream_place(struct conn *c)
{
	c->send_inline = !TAILQ_EMPTY(&c->holds) &&
	    c->send_size <= CONN_INLINE_MAX;
	if (!c->send_inline)
		conn_hold_add(c, NULL);
}

/*
 * Start sending job j: its JOB line; conn_pump adds the data.  The input
 * must still be the file pinned at start (input_open); if it is not, the
 * job fails for good and -1 is returned.
 */
static int
conn_send_job(struct conn *c, struct job *j)
{
	char		*enc, *msg, *res = NULL, token[PROTO_TOKEN_LEN + 1];
	const char	*base;
	int		 fd;

	if ((fd = input_open(j, &msg)) < 0) {
		conn_fds_give(CONN_FDS_SEND);	/* conn_retake's */
		jobs_fail_found(j, msg);
		free(msg);
		return -1;
	}
	enc = proto_encode_dup(j->path, strlen(j->path));
	jobs_token(j, token);
	/* with -r, the result's name, so that jq-run's <out> can carry its
	 * extension (-r '{stem}.mp3': out.mp3) */
	if (server.cfg.result_named) {
		base = strrchr(j->result, '/') ? strrchr(j->result, '/') + 1 :
		    j->result;
		res = proto_encode_dup(base, strlen(base));
	}
	conn_reply(c, REPLY_JOB " %llu %s " KEY_SIZE "=%llu " KEY_ATTEMPT "=%u "
	    KEY_LEASE "=%llu " KEY_TOKEN "=%s%s%s%s%s%s", (unsigned long long)j->id,
	    enc, (unsigned long long)j->in_size, j->attempt,
	    (unsigned long long)(j->run->lease_ms + 999) / 1000, token,
	    res ? " " KEY_RESULT "=" : "", res ? res : "",
	    /* a named queue's name, never encoded; none: the default */
	    j->queue_ix != 0 ? " " KEY_QUEUE "=" : "",
	    j->queue_ix != 0 ? queue_named_name(&server.queue, j) : "",
	    j->tree_fd >= 0 ? " " KEY_KIND "=" KIND_TREE : "");
	free(enc);
	free(res);
	c->send_fd = fd;
	c->send_size = j->in_size;
	c->send_job = j;
	c->send_total = 0;
	c->send_crc = 0;
	c->send_result = 0;
	conn_stream_place(c);
	jobs_sent(j, j->in_size, cmd_who(&c->sess));
	return 0;
}

/* Answer the TAKE being served, or wait for a job. */
void
conn_retake(struct conn *c)
{
	struct session	*s = &c->sess;
	struct job	*j;
	uint16_t	 qix[JQ_TAKE_QUEUES_MAX];
	size_t		 nq = 0;

	if (c->send_fd >= 0)
		return;		/* after the job being sent */
	/* a drained worker gets no job, whatever waits (jq-put --drain) */
	if (drain_count() > 0 && drain_matches(s->name)) {
		conn_reply(c, REPLY_NOJOB " " NOJOB_DRAINED);
		conn_tell(c);
		conn_take_done(c);
		return;
	}
	/* the queues it names that exist (a queue exists once it has a job) */
	if (s->take_nqueue > 0)
		nq = queue_named_resolve(&server.queue, s->take_queue,
		    s->take_nqueue, qix);
	for (;;) {
		/* a --keep server has no end but a shutdown: it waits */
		if (server.finishing || jobs_stopping() || (!server.cfg.keep &&
		    spool_inflight() == 0 && !archsrc_busy() &&
		    ((s->take_nqueue > 0 && nq == 0) ||
		    !queue_can_match(&server.queue, nq ? qix : NULL, nq,
		    s->take_match)))) {
			conn_reply(c, REPLY_NOJOB " " NOJOB_FINISHED);
			conn_tell(c);
			conn_take_done(c);
			return;
		}
		if (s->take_nqueue > 0 && nq == 0)
			break;		/* its queues have no job yet */
		/* the job's data is a file to open: wait for a descriptor */
		if (conn_fds_take_send() != 0)
			break;
		if ((j = jobs_take(nq ? qix : NULL, nq, s->take_match, s,
		    s->take_hold_conn, s->take_lease_ms)) == NULL) {
			conn_fds_give(CONN_FDS_SEND);
			break;
		}
		if (conn_send_job(c, j) == 0) {
			/* leave CONN_WAIT first: a job sent whole at once must
			 * not make conn_pump serve this TAKE a second time */
			conn_take_done(c);
			conn_pump(c);
			return;
		}
	}
	if (s->take_nowait) {
		conn_reply(c, REPLY_NOJOB " " NOJOB_TIMEOUT);
		conn_take_done(c);
		return;
	}
	if (!c->waiting) {
		TAILQ_INSERT_TAIL(&server.waiters, c, wait_entry);
		c->waiting = 1;
	}
}

/* Serve a WAIT: answer now if its job has ended, else wait for its end. */
static void
conn_wait(struct conn *c)
{
	conn_set_state(c, CONN_RESULT);
	TAILQ_INSERT_TAIL(&conn_results, c, result_entry);
	c->result_listed = 1;
	c->result_told = 0;
	conn_result_try(c);
}

/* The WAIT is answered: read requests again. */
static void
conn_result_done(struct conn *c)
{
	conn_result_unlist(c);
	if (c->state == CONN_RESULT)
		conn_set_state(c, CONN_LINE);
	conn_kick(c);
}

/*
 * Answer c's WAIT if its job has ended: RESULT and the result's bytes
 * (the job stream sends them), or FAILED; or if the server is ending,
 * ERR CLOSED.  Otherwise say WAITING, once.  Not while a job is being
 * sent to c: conn_send_end calls again after it.
 */
static void
conn_result_try(struct conn *c)
{
	struct job		*j = queue_get(&server.queue, c->sess.wait_id);
	struct wait_result	 w;
	char			*cause = NULL;

	if (c->state != CONN_RESULT || c->send_fd >= 0)
		return;
	if (j == NULL) {	/* ids are never taken back: cannot happen */
		conn_reply(c, REPLY_ERR " %s no job with id %llu", ERR_NOSUCHJOB,
		    (unsigned long long)c->sess.wait_id);
		conn_result_done(c);
		return;
	}
	if (!wait_ended(j)) {
		if (server.finishing || c->finish) {
			conn_reply(c, REPLY_ERR " %s the server is shutting "
			    "down before job %llu has ended", ERR_CLOSED,
			    (unsigned long long)j->id);
			conn_result_done(c);
		} else if (!c->result_told) {
			wait_reply_waiting(j, conn_out(c));
			c->result_told = 1;
			log_info("job %llu %s: %s waits for its end",
			    (unsigned long long)j->id, j->path, cmd_who(&c->sess));
		}
		return;
	}
	if (j->state == JOB_FAILED) {
		wait_reply_failed(j, conn_out(c));
		conn_result_done(c);
		return;
	}
	if (conn_fds_take_send() != 0)
		return;		/* conn_fds_give wakes us */
	if (wait_open_result(j, &w, &cause) != 0) {
		conn_fds_give(CONN_FDS_SEND);
		log_warnx("job %llu %s: its result cannot be sent: %s",
		    (unsigned long long)j->id, j->path, cause);
		conn_reply(c, REPLY_ERR " %s job %llu is done, but its result "
		    "cannot be sent: %s", ERR_IO, (unsigned long long)j->id,
		    cause);
		free(cause);
		conn_result_done(c);
		return;
	}
	wait_reply_result(j, &w, conn_out(c));
	/* the result goes out as a job's data does, requests read meanwhile */
	c->send_fd = w.fd;
	c->send_size = w.size;
	c->send_job = j;
	c->send_total = 0;
	c->send_crc = 0;
	c->send_result = 1;
	c->send_res = w;
	conn_stream_place(c);
	conn_result_done(c);
	conn_pump(c);
}

/* A job may have ended, or the server may be ending: answer the WAITs. */
void
conn_results_all(void)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&conn_results); c != NULL; c = next) {
		next = TAILQ_NEXT(c, result_entry);
		conn_result_try(c);
	}
}

/* A TAKE's wait= ran out. */
static void
conn_take_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	if (c->state != CONN_WAIT)
		return;
	conn_reply(c, REPLY_NOJOB " " NOJOB_TIMEOUT);
	conn_take_done(c);
}

/*
 * The job being sent has ended: END if all of it went out unchanged, else
 * ABORT, and the job fails for good with why (a new string, freed here).
 */
static void
conn_send_end(struct conn *c, char *why)
{
	struct evbuffer	*out = c->send_inline ? conn_out(c) :
	    bufferevent_get_output(c->bev);
	struct job	*j = c->send_job;

	close(c->send_fd);
	c->send_fd = -1;
	c->send_job = NULL;
	conn_fds_give(CONN_FDS_SEND);
	if (why == NULL)
		evbuffer_add_printf(out, FRAME_WORD_END " %llu %08x\n",
		    (unsigned long long)c->send_total, c->send_crc);
	else {
		evbuffer_add_printf(out, FRAME_WORD_ABORT "\n");
		if (c->send_result)
			log_warnx("job %llu %s: its result was not sent whole "
			    "to %s: %s", (unsigned long long)j->id, j->path,
			    cmd_who(&c->sess), why);
		else if (j->state == JOB_RUNNING)
			jobs_fail_found(j, why);
		free(why);
	}
	c->send_result = 0;
	/* else the stream was first in line (conn_pump): what waited follows */
	if (!c->send_inline) {
		TAILQ_FIRST(&c->holds)->ready = 1;
		conn_flush(c);
	}
	c->send_inline = 0;
	if (c->state == CONN_WAIT)
		conn_retake(c);
	else if (c->state == CONN_RESULT)
		conn_result_try(c);
	conn_kick(c);
}

/*
 * All of the job's data went out: NULL if it was the data pinned (an
 * input unchanged; an added job's data with the CRC-32C it was added
 * with), else why not (a new string).
 */
static char *
conn_send_check(struct conn *c)
{
	const struct job	*j = c->send_job;
	struct stat		 st;

	if (c->send_result)
		return wait_result_check(j, &c->send_res, c->send_fd);
	if (fstat(c->send_fd, &st) != 0)
		return xprintf("reading %s: %s", j->path, strerror(errno));
	if (j->origin == JOB_SPOOL && c->send_crc != j->data_crc)
		return xprintf("its data in the spool is damaged: CRC-32C %08x, "
		    "%08x when added", c->send_crc, j->data_crc);
	return input_changed(j, &st);
}

/*
 * Add job data to the output until it holds JQ_CHUNK.  Exactly the size
 * pinned at start is sent, never more: a file that shrank, or that changed
 * by the time its last byte was read, ends in ABORT and fails the job.
 */
static void
conn_pump(struct conn *c)
{
	struct evbuffer		*out;
	struct evbuffer		*chunk;
	struct evbuffer_iovec	 v;
	ssize_t			 n;
	size_t			 want;

	/* inline: all of it at once, behind the last hold (send_inline) */
	while (c->send_fd >= 0 && (c->send_inline || (conn_stream_first(c) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) < JQ_CHUNK))) {
		out = c->send_inline ? conn_out(c) :
		    bufferevent_get_output(c->bev);
		if (c->send_total == c->send_size) {
			conn_send_end(c, conn_send_check(c));
			continue;
		}
		want = c->send_size - c->send_total > JQ_CHUNK ? JQ_CHUNK :
		    (size_t)(c->send_size - c->send_total);
		/* reserve what is left, not a whole chunk: a 256 KiB buffer
		 * per tiny job is an mmap and munmap each time */
		chunk = evbuffer_new();
		if (chunk == NULL || evbuffer_reserve_space(chunk,
		    (ev_ssize_t)(want < 4096 ? 4096 : want), &v, 1) < 1) {
			n = -1;
			errno = ENOMEM;
		} else {
			do
				n = read(c->send_fd, v.iov_base, want);
			while (n < 0 && errno == EINTR);
		}
		if (n > 0) {
			c->send_crc = crc32c_update(c->send_crc, v.iov_base, (size_t)n);
			c->send_total += (uint64_t)n;
			v.iov_len = (size_t)n;
			evbuffer_commit_space(chunk, &v, 1);
			evbuffer_add_printf(out, FRAME_WORD_DATA " %zd\n", n);
			evbuffer_add_buffer(out, chunk);
			evbuffer_free(chunk);
			continue;
		}
		if (chunk != NULL)
			evbuffer_free(chunk);
		conn_send_end(c, n == 0 ? xprintf("%s changed while being "
		    "sent: it shrank to %llu bytes (%llu at start)",
		    c->send_result ? "its result" : "input",
		    (unsigned long long)c->send_total,
		    (unsigned long long)c->send_size) :
		    xprintf("reading %s: %s", c->send_result ?
		    c->send_job->result : c->send_job->path, strerror(errno)));
	}
}

static void	 conn_commit_acked(struct commit *);

/*
 * A verified result: hand it to commit.c; its reply waits for it to be
 * durable, and later requests are read meanwhile.
 */
static void
conn_commit(struct conn *c)
{
	struct commit	*cm;

	/* the store passes to commit.c; we answer when it is done */
	cm = xcalloc(1, sizeof *cm);
	payload_handover(&c->sess.rx, &cm->st);
	cm->job = c->sess.rx.job;
	cm->size = c->sess.rx.total;
	cm->token = c->sess.rx.token;
	cm->tree = c->sess.rx.tree;
	cm->arg = c;
	cm->fds = c->rx_fds;	/* its files: given back when it is done */
	c->rx_fds = 0;
	cm->job->committing = 1;
	/* a late result's job may be taken meanwhile: it waits for all */
	if (cm->job->state == JOB_RUNNING && commit_early_ok)
		cm->ack = conn_commit_acked;
	conn_hold_add(c, cm);
	/*
	 * A result for a job that is not running (a late one, after a
	 * reconnection) leaves the job takeable until it is stored: nothing
	 * of this connection's, its TAKE above all, is read ahead of it.
	 */
	if (cm->job->state != JOB_RUNNING) {
		TAILQ_LAST(&c->holds, conn_holds)->late = 1;
		c->nlate++;
	}
	payload_reset(&c->sess.rx);
	conn_set_state(c, CONN_LINE);
	commit_submit(cm);
}

/* A verified FAIL: record it and answer, with the jobs done so far. */
static void
conn_failed(struct conn *c)
{
	struct payload	*p = &c->sess.rx;
	struct job	*j = p->job;
	char		*status = p->status, *msg;
	size_t		 len;

	p->status = NULL;	/* the job's from now on */
	msg = payload_message(p, &len);
	c->sess.nfailed++;
	jobs_fail_reported(j, status, msg, len, p->tempfail, cmd_who(&c->sess));
	conn_reply(c, REPLY_OK " %llu " KEY_DONE "=%llu",
	    (unsigned long long)j->id, (unsigned long long)status_done_here());
}

/* Forget c's ADD that was not handed to commit.c; read requests again. */
static void
conn_add_drop(struct conn *c)
{
	struct commit	*cm = c->commit;

	c->commit = NULL;
	store_abort(&cm->st);
	if (cm->fds > 0)
		conn_fds_give(cm->fds);
	spool_add_free(cm->add);
	free(cm);
	if (c->state == CONN_COMMIT) {
		conn_set_state(c, CONN_LINE);
		conn_kick(c);
	}
}

/*
 * Decide c's verified ADD (c->commit, not handed over yet): answer it at
 * once (the name is a job now; refused), wait for an add of the same name
 * in flight (if_new), or hand it to commit.c.  The checks of cmd_add are
 * made again: things may have changed while the data came.
 */
static void
conn_add_decide(struct conn *c)
{
	struct commit		*cm = c->commit;
	struct spool_add	*a = cm->add, *pending = NULL;
	struct job		*j = NULL;
	const char		*err = NULL;
	char			*errmsg = NULL;

	if (server.finishing || jobs_stopping()) {
		err = ERR_CLOSED;
		errmsg = xstrdup("the server is shutting down; nothing added");
	} else if (deps_check(&server.queue, a->after, a->nafter, a->before,
	    &err, &errmsg) != 0) {
		;	/* a prerequisite failed, or a cycle came, meanwhile */
	} else {
		switch (spool_check(&server.queue, a, a->size, &j, &pending,
		    &err, &errmsg)) {
		case SPOOL_OK:
			spool_pend(a);
			c->commit = NULL;	/* commit.c's, with its hold */
			conn_hold_add(c, cm);
			if (c->state == CONN_COMMIT) {
				conn_set_state(c, CONN_LINE);
				conn_kick(c);
			}
			commit_submit(cm);
			return;
		case SPOOL_PENDING:
			if (a->if_new) {
				c->follow = pending;
				pending->followers++;
				return;
			}
			err = ERR_EXISTS;
			errmsg = xstrdup("a job of that name is being added; "
			    "nothing added");
			break;
		case SPOOL_EXISTS:
			if (a->if_new) {
				conn_reply(c, REPLY_OK " %llu " KEY_EXISTING "=1",
				    (unsigned long long)j->id);
				conn_add_drop(c);
				return;
			}
			err = ERR_EXISTS;
			errmsg = xprintf("job %llu has that name; nothing added",
			    (unsigned long long)j->id);
			break;
		case SPOOL_REFUSED:
			break;
		}
	}
	conn_reply(c, REPLY_ERR " %s %s", err, errmsg);
	free(errmsg);
	conn_add_drop(c);
}

/* A verified ADD: its data is in a temporary file of the spool. */
static void
conn_add(struct conn *c)
{
	struct payload	*p = &c->sess.rx;
	struct commit	*cm;

	if (p->drop) {		/* if_new, and the name was a job */
		conn_reply(c, REPLY_OK " %llu " KEY_EXISTING "=1",
		    (unsigned long long)p->job->id);
		payload_reset(p);
		conn_set_state(c, CONN_LINE);
		return;
	}
	/* the store and the add pass to the commit record */
	cm = xcalloc(1, sizeof *cm);
	payload_handover(p, &cm->st);
	cm->add = p->add;
	p->add = NULL;
	cm->add->size = p->total;
	cm->add->crc = p->crc;
	cm->arg = c;
	cm->fds = c->rx_fds;	/* its files: given back when it is done */
	c->rx_fds = 0;
	c->commit = cm;
	payload_reset(p);
	conn_set_state(c, CONN_COMMIT);
	conn_add_decide(c);
}

/*
 * An add has landed as job j (or failed: NULL): the ADDs that waited for
 * it, with if_new=1, are decided again (OK existing=1, or now theirs).
 */
static void
conn_add_followers(struct spool_add *a)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &server.conns, entry) {
		if (a->followers == 0)
			break;
		if (c->follow != a)
			continue;
		c->follow = NULL;
		a->followers--;
		conn_add_decide(c);
	}
}

static void	conn_reap(struct conn *);

/*
 * A commit of c's came back: the replies now ready go out, the job stream
 * may flow, and requests held back by JQ_INFLIGHT_MAX are read again.
 */
static void
conn_settle(struct conn *c)
{
	conn_flush(c);
	conn_pump(c);
	conn_kick(c);
	conn_reap(c);
}

/*
 * commit.c is done with an ADD: the job is made (even if its connection is
 * gone) and its id told, or the failure is told.
 */
static void
conn_add_done(struct commit *cm)
{
	struct conn		*c = cm->arg;
	struct spool_add	*a = cm->add;
	struct job		*j;
	char			*name = a->name, *result = a->result;

	spool_unpend(a);
	if (cm->fds > 0)
		conn_fds_give(cm->fds);	/* its files are closed */
	if (cm->rc == 0) {
		a->name = a->result = NULL;	/* the job's from now on */
		j = jobs_add(name, result, a->queue_ix, a->priority,
		    c != NULL ? cmd_who(&c->sess) : "a client that left");
		spool_adopt(j, a);
		jobs_add_deps(j, a);
		if (c != NULL)
			conn_hold_reply(c, cm, REPLY_OK " %llu",
			    (unsigned long long)j->id);
	} else {
		log_warnx("cannot add a job named %s: %s", a->name, cm->cause);
		if (c != NULL)
			conn_hold_reply(c, cm, REPLY_ERR " %s cannot add the "
			    "job: %s; nothing added", ERR_IO, cm->cause);
	}
	if (c != NULL)
		conn_settle(c);
	if (a->followers > 0)
		conn_add_followers(a);
	spool_add_free(a);
	free(cm->cause);
	free(cm);
}

/*
 * commit.c is done with a result: the job is done (even if its connection
 * is gone), or the failure is told; the connection reads requests again.
 */
void
conn_commit_done(struct commit *cm)
{
	struct conn	*c = cm->arg;
	struct job	*j = cm->job;
	int		 failed;

	if (cm->add != NULL) {
		conn_add_done(cm);
		return;
	}

	j->committing = 0;
	if (cm->fds > 0)
		conn_fds_give(cm->fds);	/* its files are closed */
	if (cm->acked) {	/* done already; now in place, or not */
		if (cm->rc != 0)
			log_warnx("job %llu %s: its result, acknowledged and "
			    "kept in the journal, cannot be put in place: %s; "
			    "the journal is kept, and the next start puts it "
			    "there", (unsigned long long)j->id, j->path,
			    cm->cause);
		jobs_flushed(j);
		free(cm->cause);
		free(cm);
		return;
	}
	if (cm->rc != 0) {
		log_warnx("job %llu %s: cannot store result: %s",
		    (unsigned long long)j->id, j->path, cm->cause);
		failed = jobs_reopen(j, &cm->token, cm->cause);
		if (c != NULL && cm->refused)
			conn_hold_reply(c, cm, REPLY_ERR " %s job %llu: %s; "
			    "nothing stored; the job %s", ERR_TREE,
			    (unsigned long long)j->id, cm->cause, failed ?
			    "failed after as many tries as allowed" :
			    "waits for another try");
		else if (c != NULL)
			conn_hold_reply(c, cm, REPLY_ERR " %s cannot store the "
			    "result: %s; the job %s", ERR_IO, cm->cause, failed ?
			    "failed after as many tries as allowed" :
			    "waits for another try");
	} else {
		jobs_done(j, cm->size, c == NULL ? "a worker that left" :
		    cmd_who(&c->sess));
		if (c != NULL) {
			c->sess.ndone++;
			conn_hold_reply(c, cm, REPLY_OK " %llu",
			    (unsigned long long)j->id);
		}
	}
	if (c != NULL)
		conn_settle(c);
	free(cm->cause);
	free(cm);
}

/*
 * In the loop: cm's small result is durable in the journal (its I record
 * synced): the job is done and its worker told OK now, while commit.c puts
 * the file in place; until then j->committing stays set, and what reads
 * the result waits for it (conn_commit_done).  From here on cm is not the
 * connection's.
 */
static void
conn_commit_acked(struct commit *cm)
{
	struct conn	*c = cm->arg;
	struct job	*j = cm->job;

	jobs_done(j, cm->size, c == NULL ? "a worker that left" :
	    cmd_who(&c->sess));
	if (c == NULL)
		return;
	c->sess.ndone++;
	conn_hold_reply(c, cm, REPLY_OK " %llu", (unsigned long long)j->id);
	cm->arg = NULL;
	conn_settle(c);
}

/* The payload's framing is broken: say so and close. */
static void
conn_frame_broken(struct conn *c, const char *why)
{
	conn_reply(c, REPLY_ERR " %s %s; closing", ERR_FRAMING, why);
	payload_reset(&c->sess.rx);
	conn_set_state(c, CONN_CLOSING);
}

/* Handle one frame line inside a payload. */
static void
conn_frame(struct conn *c, const char *line)
{
	struct payload	*p = &c->sess.rx;

	switch (payload_frame(p, line)) {
	case PAYLOAD_MORE:
		return;
	case PAYLOAD_DATA:
		conn_set_state(c, CONN_DATA);
		return;
	case PAYLOAD_PUT:
		conn_commit(c);
		return;
	case PAYLOAD_ADD:
		conn_add(c);
		return;
	case PAYLOAD_BROKEN:
		conn_frame_broken(c, "expected DATA, END or ABORT inside a "
		    "payload");
		return;
	case PAYLOAD_FAIL:
		conn_failed(c);
		break;
	case PAYLOAD_REFUSED:
		conn_reply(c, REPLY_ERR " %s %s", p->err, p->errmsg);
		break;
	case PAYLOAD_ABORTED:
		conn_reply(c, REPLY_ERR " %s payload abandoned by the sender; "
		    "nothing stored", ERR_ABORTED);
		break;
	}
	payload_reset(p);
	conn_set_state(c, CONN_LINE);
}

/*
 * Take the next complete line out of in into conn_linebuf, as far as the
 * state allows: 1 with a line to handle, 0 to handle the input again (the
 * state changed), -1 to wait for more input.  Over-long lines are dropped
 * here (CONN_SKIPLINE).
 */
static int
conn_next_line(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr	 eol;
	size_t			 len = evbuffer_get_length(in), eol_len;
	char			*p;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (!c->sess.authed && (eol.pos >= JQ_AUTH_LINE_MAX ||
	    (eol.pos < 0 && len >= JQ_AUTH_LINE_MAX))) {
		conn_next(c, cmd_auth_refuse(&c->sess, "line too long before "
		    "authentication", conn_out(c)));
		return 0;
	}
	if (eol.pos < 0) {
		/* a client that has not asked anything yet (it connected
		 * during the linger, its TAKE is on its way) is answered */
		if (len == 0 && c->finish && c->state == CONN_LINE &&
		    c->send_fd < 0 && TAILQ_EMPTY(&c->holds) &&
		    (c->told || !c->asked) && c->spoke) {
			conn_set_state(c, CONN_CLOSING);
			return 0;
		}
		if (len <= JQ_LINE_MAX && c->state != CONN_SKIPLINE)
			return -1;
		evbuffer_drain(in, len);
		if (c->state == CONN_FRAME)
			conn_frame_broken(c, "frame line too long");
		else
			conn_set_state(c, CONN_SKIPLINE);
		return -1;
	}
	if (c->state == CONN_SKIPLINE || (size_t)eol.pos >= JQ_LINE_MAX) {
		evbuffer_drain(in, (size_t)eol.pos + 1);
		if (c->state == CONN_FRAME) {
			conn_frame_broken(c, "frame line too long");
			return 0;
		}
		conn_set_state(c, CONN_LINE);
		conn_reply(c, REPLY_ERR " %s request longer than %d bytes; "
		    "skipped", ERR_TOOLONG, JQ_LINE_MAX);
		return 0;
	}
	evbuffer_remove(in, conn_linebuf, (size_t)eol.pos + 1);
	conn_linebuf[eol.pos] = '\0';
	/* a NUL must not cut the line short: make it a byte the parsers
	 * refuse */
	for (p = conn_linebuf; (p = memchr(p, '\0', (size_t)
	    (conn_linebuf + eol.pos - p))) != NULL; p++)
		*p = '\x01';
	return 1;
}

/*
 * Inside a DATA chunk, read what the socket holds straight into the input
 * evbuffer, up to CONN_RX_READ bytes and never past CONN_INPUT_MAX.
 * libevent 2.1 reads at most 4 KiB a call (EVBUFFER_MAX_READ, whatever
 * bufferevent_set_max_single_read says), so a result would otherwise
 * reach its file 4 KiB a write and cost a loop iteration each.  Bytes
 * past the chunk (the next frames) stay in the input for conn_process.
 * At most CONN_RX_TURN reads a turn of the loop, so that a fast sender
 * cannot keep the loop from the other connections.  End of file and
 * errors are left for libevent to find at its next read (both are
 * sticky), so the connection closes the usual way.
 */
static void
conn_rx_read(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	size_t			 len = evbuffer_get_length(in), want;
	ssize_t			 n;
	int			 nv, i;

	if (c->rx_reads >= CONN_RX_TURN || len >= CONN_INPUT_MAX ||
	    len >= c->sess.rx.left)
		return;
	want = CONN_INPUT_MAX - len < CONN_RX_READ ? CONN_INPUT_MAX - len :
	    CONN_RX_READ;
	/* bufferevent keeps the input's end frozen outside its own reads */
	(void)evbuffer_unfreeze(in, 0);
	if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) < 1) {
		(void)evbuffer_freeze(in, 0);
		return;
	}
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	do
		n = readv(bufferevent_getfd(c->bev), iov, nv);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		c->rx_reads = CONN_RX_TURN;
		(void)evbuffer_commit_space(in, v, 0);
		(void)evbuffer_freeze(in, 0);
		return;
	}
	for (i = 0; i < nv; i++) {
		if ((size_t)n < v[i].iov_len)
			v[i].iov_len = (size_t)n;
		n -= (ssize_t)v[i].iov_len;
	}
	(void)evbuffer_commit_space(in, v, nv);
	(void)evbuffer_freeze(in, 0);
	c->rx_reads++;
	c->last_rx_ms = util_now_ms();
}

/*
 * Handle whatever complete input there is, as far as the state allows.
 * Returns when more input is needed or the connection must wait.
 */
static void
conn_process(struct conn *c)
{
	struct evbuffer	*in = bufferevent_get_input(c->bev);
	size_t		 len, n;
	int		 rc;

	for (;;) {
		len = evbuffer_get_length(in);
		if (c->state == CONN_CLOSING) {
			evbuffer_drain(in, len);
			return;
		}
		if (c->state == CONN_WAIT || c->state == CONN_COMMIT ||
		    c->state == CONN_RESULT)
			return;
		/* at most JQ_INFLIGHT_MAX results in flight */
		if (c->ninflight >= JQ_INFLIGHT_MAX ||
		    conn_held_bytes(c) > CONN_PENDING_MAX)
			return;		/* resumed by conn_settle or the
					 * job stream's end */
		if (c->send_fd < 0 && evbuffer_get_length(
		    bufferevent_get_output(c->bev)) > JQ_REPLY_BACKLOG)
			return;		/* resumed by conn_write_cb */
		if (c->state == CONN_DATA) {
			if (len < c->sess.rx.left) {
				conn_rx_read(c, in);
				len = evbuffer_get_length(in);
			}
			if (len == 0)
				return;
			n = len < c->sess.rx.left ? len :
			    (size_t)c->sess.rx.left;
			payload_data(&c->sess.rx, in, n);
			if (c->sess.rx.left == 0)
				conn_set_state(c, CONN_FRAME);
			continue;
		}
		if (c->fdwait)
			return;		/* conn_fds_give kicks it */
		if (c->state == CONN_LINE && c->sess.authed && c->rx_fds == 0 &&
		    conn_rx_wants_fds(in)) {
			/* behind those already waiting, oldest first */
			if (!TAILQ_EMPTY(&conn_fdwaiters) ||
			    conn_fds_take(CONN_FDS_PAYLOAD) != 0) {
				TAILQ_INSERT_TAIL(&conn_fdwaiters, c,
				    fdwait_entry);
				c->fdwait = 1;
				return;
			}
			c->rx_fds = CONN_FDS_PAYLOAD;
		}
		if ((rc = conn_next_line(c, in)) < 0)
			return;
		if (rc == 0)
			continue;
		if (c->state == CONN_FRAME)
			conn_frame(c, conn_linebuf);
		else if (c->nlate > 0 || (c->ninflight > 0 &&
		    !(proto_request_flags(conn_linebuf) & PROTO_AHEAD))) {
			/* it must see what the earlier requests did: it waits,
			 * unread, for their replies (conn_settle) */
			evbuffer_prepend(in, "\n", 1);
			evbuffer_prepend(in, conn_linebuf,
			    strlen(conn_linebuf));
			return;
		} else {
			if (c->sess.authed && strncmp(conn_linebuf, "HELLO",
			    5) != 0)
				c->spoke = 1;
			conn_next(c, cmd_request(&c->sess, conn_linebuf,
			    conn_out(c)));
			conn_note_auth(c);
			conn_rx_settle(c);	/* refused at once: no payload */
		}
	}
}

/*
 * c is closing and its output has drained: send our FIN (shutdown), once;
 * c is freed at the peer's FIN (conn_event_cb) or CONN_DRAIN_MS later
 * (conn_sweep).
 */
static void
conn_reap(struct conn *c)
{
	if (c->state == CONN_CLOSING && !c->shut && TAILQ_EMPTY(&c->holds) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		c->shut = 1;
		c->closing_ms = util_now_ms();
		if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0)
			log_debug("connection from %s: shutdown: %s",
			    c->sess.peer, strerror(errno));
	}
}

/* Input arrived: a sign of life that renews the leases of held jobs. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	c->last_rx_ms = util_now_ms();
	c->rx_reads = 0;
	jobs_renew_held(&c->sess, c->last_rx_ms);
	commit_plug();
	conn_process(c);
	commit_unplug();
	conn_reap(c);
}

/*
 * c's output changed.  Output added while the socket's output is written
 * directly is written once the current callback is done (conn_push_cb),
 * so that a reply costs a writev and not also an epoll_ctl to watch for
 * EPOLLOUT, an epoll_wait and an epoll_ctl to stop watching.  Write
 * progress (bytes gone to the socket) and the moment output starts to
 * wait in an empty buffer are noted for conn_sweep.
 */
static void
conn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn	*c = arg;

	(void)buf;
	if (info->n_deleted > 0 || (info->orig_size == 0 && info->n_added > 0))
		c->last_tx_ms = util_now_ms();
	if (c->direct && info->n_added > 0)
		event_active(c->push, EV_TIMEOUT, 0);
}

/*
 * Write what the output holds now.  All of it written: as if libevent
 * had written it (conn_write_cb).  Some left, or an error: libevent's
 * EV_WRITE takes over (it reports the error through conn_event_cb) until
 * the output is empty again.
 */
static void
conn_push_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 n;

	(void)fd;
	(void)what;
	if (!c->direct || evbuffer_get_length(out) == 0)
		return;
	/* libevent freezes the output's start but for its own writes */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (n < 0 || evbuffer_get_length(out) > 0) {
		c->direct = 0;
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	conn_write_cb(c->bev, c);
}

/* The output fell below its low watermark: send more of the job. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (!c->direct &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		/* drained: back to direct writes, no EPOLLOUT watched */
		bufferevent_disable(c->bev, EV_WRITE);
		c->direct = 1;
	}
	conn_reap(c);
	conn_pump(c);
	if (c->send_fd < 0 && c->state != CONN_CLOSING &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_kick(c);	/* requests held back by JQ_REPLY_BACKLOG */
}

/* Deferred processing (after a wake-up or the end of a job stream). */
static void
conn_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	(void)fd;
	(void)what;
	commit_plug();
	conn_process(c);
	commit_unplug();
	conn_reap(c);
}

/* The peer closed or the socket failed. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		log_debug("connection from %s: last reply not read; dropped",
		    c->sess.peer);
		conn_free(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("connection from %s closed%s", c->sess.peer,
		    (what & BEV_EVENT_ERROR) ? " with an error" : "");
		conn_free(c);
	}
}

/*
 * Close c for a time limit: ERR TIMEOUT (best effort: the peer may not
 * read it) and close.
 */
static void
conn_time_out(struct conn *c, const char *why)
{
	if (c->sess.authed)
		log_info("connection from %s: %s; closed", c->sess.peer, why);
	else
		log_tally(&server.failed_auth, "timed out", "connection from "
		    "%s: %s; closed", c->sess.peer, why);
	if (c->state == CONN_FRAME || c->state == CONN_DATA)
		payload_reset(&c->sess.rx);
	conn_reply(c, REPLY_ERR " %s %s; closing", c->sess.authed ?
	    ERR_TIMEOUT : ERR_AUTH, why);
	conn_set_state(c, CONN_CLOSING);
	conn_reap(c);
}

/* Once a second: close connections past their time limits. */
static void
conn_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c, *next;
	uint64_t	 now = util_now_ms(), quiet, hs;
	size_t		 inlen;
	int		 half;

	(void)fd;
	(void)what;
	(void)arg;
	log_tally_flush(&server.turned_away, now, 0);
	log_tally_flush(&server.failed_auth, now, 0);
	hs = server.cfg.stall_ms < JQ_HANDSHAKE_MS ? server.cfg.stall_ms :
	    JQ_HANDSHAKE_MS;
	for (c = TAILQ_FIRST(&server.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);	/* c may be freed */
		if (c->state == CONN_CLOSING) {
			if (now - c->closing_ms >= (c->shut ? CONN_DRAIN_MS :
			    server.cfg.stall_ms))
				conn_free(c);	/* no FIN from the peer */
			continue;
		}
		quiet = now - c->last_rx_ms;
		if (!c->sess.authed) {
			if (now - c->born_ms >= hs)
				conn_time_out(c, "authentication took too long");
			continue;
		}
		/* output (a job, a result, replies) not read at all for the
		 * stall limit: its descriptors and jobs go back; ERR TIMEOUT
		 * would only wait behind what it does not read */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 &&
		    now - c->last_tx_ms >= server.cfg.stall_ms) {
			log_info("connection from %s: output not read for "
			    "%llu ms; closed", c->sess.peer,
			    (unsigned long long)(now - c->last_tx_ms));
			conn_free(c);
			continue;
		}
		/* waiting for us, not stalled: a job, a sync, descriptors */
		if (c->state == CONN_WAIT || c->state == CONN_COMMIT ||
		    c->state == CONN_RESULT || c->fdwait || c->ninflight > 0)
			continue;
		inlen = evbuffer_get_length(bufferevent_get_input(c->bev));
		half = c->state == CONN_DATA || c->state == CONN_SKIPLINE ||
		    inlen > 0;
		if (half && quiet >= server.cfg.stall_ms)
			conn_time_out(c, "stalled in the middle of a request");
		else if (!half && LIST_EMPTY(&c->sess.held) && c->send_fd < 0 &&
		    quiet >= server.cfg.idle_ms)
			conn_time_out(c, "idle");
	}
}
