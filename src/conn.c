/*
 * conn.c: one client connection of jq-serve, as an explicit state machine.
 *
 * Input states (conn.state):
 *   CONN_LINE      reading a request line
 *   CONN_SKIPLINE  dropping an over-long line up to its LF, then ERR TOOLONG
 *   CONN_FRAME     inside a payload, reading DATA/END/ABORT
 *   CONN_DATA      inside a DATA chunk: rx_left bytes to store or drop
 *   CONN_WAIT      a TAKE waits for a job (or for the job being sent to end);
 *                  later requests stay unread in the input buffer
 *   CONN_COMMIT    a result is being made durable by commit.c; later
 *                  requests wait likewise, so replies keep their order
 *   CONN_CLOSING   flushing the output, then the connection is freed
 *
 * Output runs beside input: while a job streams out (send_fd >= 0), requests
 * keep being read and stored (a worker may pipe a result back while its job
 * still arrives), and their replies wait in c->pending until the job's END
 * has been queued, so replies always come in request order.
 *
 * Memory per connection is bounded: input stops being read past
 * CONN_INPUT_MAX, the job stream adds a chunk only when the output holds
 * less than JQ_CHUNK, replies held back are capped at CONN_PENDING_MAX, and
 * requests are not read while JQ_REPLY_BACKLOG bytes of replies wait for a
 * peer that does not read them.
 *
 * Authentication (auth.c) comes first: until HELLO proves the peer holds
 * the token (or SO_PEERCRED shows a UNIX peer is our own user), lines are
 * capped at JQ_AUTH_LINE_MAX, anything but HELLO closes the connection,
 * and the handshake must end within JQ_HANDSHAKE_MS.  The peer learns
 * nothing before that but the greeting.
 *
 * Time limits are checked by one sweep a second over every connection
 * (conn_sweep), not by a timer per read: half a request may stall for
 * --stall-timeout, a connection holding nothing may idle for
 * --idle-timeout, and a closing one gets --stall-timeout to read its last
 * reply.
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
#define CONN_IOV		16

enum conn_state {
	CONN_LINE,
	CONN_SKIPLINE,
	CONN_FRAME,
	CONN_DATA,
	CONN_WAIT,
	CONN_COMMIT,
	CONN_CLOSING
};

struct conn {
	struct bufferevent	*bev;
	struct event		*wake;		/* runs conn_process later */
	struct event		*take_timer;	/* TAKE wait= deadline */
	enum conn_state		 state;
	int			 hello;
	int			 authed;	/* may send more than HELLO */
	char			 nonce[AUTH_HEX_LEN + 1];	/* our challenge */
	char			 cn[AUTH_HEX_LEN + 1];	/* the client's */
	uint64_t		 born_ms;	/* accepted, monotonic */
	uint64_t		 last_rx_ms;	/* last byte received */
	int			 finish;	/* server is done: close when idle */
	char			*name;		/* worker name, decoded */
	char			*peer;
	unsigned		 ndone, nfailed;
	int			 worker;	/* has sent TAKE */
	struct job_list		 held;		/* running jobs it took */
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 wait_entry;
	int			 waiting;	/* in server.waiters */

	/* the TAKE being served (state CONN_WAIT) */
	char			*take_match;
	int			 take_hold_conn;
	int			 take_nowait;
	uint64_t		 take_lease_ms;

	/* the job being sent */
	int			 send_fd;
	struct job		*send_job;
	uint64_t		 send_size;	/* size at open, for buffer sizing */
	uint64_t		 send_total;
	uint32_t		 send_crc;
	struct evbuffer		*pending;	/* replies held back meanwhile */

	/* the payload being received */
	enum proto_cmd		 rx_cmd;
	struct job		*rx_job;
	uint64_t		 rx_left, rx_total, rx_limit;
	uint32_t		 rx_crc;
	const char		*rx_err;	/* refused: code, payload dropped */
	char			*rx_errmsg;
	int			 rx_storing;
	struct store		 rx_store;
	struct evbuffer		*rx_msg;	/* FAIL message */
	struct commit		*commit;	/* in commit.c's hands */
	char			*rx_status;	/* FAIL exit=/signal=/timeout= */
};

static char	conn_linebuf[JQ_LINE_MAX + 1];	/* one loop, one line at a time */
static struct event	*conn_sweep_ev;		/* conn_sweep, once a second */

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_wake_cb(evutil_socket_t, short, void *);
static void	conn_take_timer_cb(evutil_socket_t, short, void *);
static void	conn_process(struct conn *);
static void	conn_pump(struct conn *);
static void	conn_job_leave(struct job *);
static void	conn_sweep(evutil_socket_t, short, void *);

/* Queue a reply line, behind the job being sent if there is one. */
JQ_PRINTF(2, 3)
static void
conn_reply(struct conn *c, const char *fmt, ...)
{
	struct evbuffer	*out;
	va_list		 ap;

	out = c->send_fd >= 0 ? c->pending : bufferevent_get_output(c->bev);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

/*
 * Stop reading and free the connection once its output has drained; a peer
 * that does not read it within --stall-timeout is dropped (conn_event_cb).
 */
static void
conn_close(struct conn *c)
{
	struct timeval	 tv;

	c->state = CONN_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	tv.tv_sec = (time_t)(server.cfg.stall_ms / 1000);
	tv.tv_usec = (suseconds_t)(server.cfg.stall_ms % 1000 * 1000);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* Refuse the peer: ERR AUTH with a reason, logged, then close. */
static void
conn_auth_refuse(struct conn *c, const char *why)
{
	log_warnx("%s: authentication refused: %s", c->peer, why);
	conn_reply(c, "ERR %s %s; closing", ERR_AUTH, why);
	conn_close(c);
}

/*
 * Decide how a new peer authenticates and greet it.  A UNIX peer running
 * as our own user is trusted (unless --unix-auth token); one running as
 * anybody else is refused outright.
 */
static void
conn_greet(struct conn *c, int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof ss;
	struct ucred		 cred;
	socklen_t		 clen = sizeof cred;

	if (server.cfg.key == NULL) {
		c->authed = 1;
		conn_reply(c, "JQ %d jq-serve/%s auth=none", JQ_PROTO_VERSION,
		    JQ_VERSION);
		return;
	}
	if (!server.cfg.unix_token &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
			conn_auth_refuse(c, "cannot tell who the peer is");
			return;
		}
		if (cred.uid != geteuid()) {
			char	 why[128];

			snprintf(why, sizeof why, "peer uid %u is not the "
			    "server's uid %u", (unsigned)cred.uid,
			    (unsigned)geteuid());
			conn_auth_refuse(c, why);
			return;
		}
		c->authed = 1;
		conn_reply(c, "JQ %d jq-serve/%s auth=peer", JQ_PROTO_VERSION,
		    JQ_VERSION);
		return;
	}
	auth_nonce(c->nonce);
	conn_reply(c, "JQ %d jq-serve/%s auth=hmac-sha256 nonce=%s",
	    JQ_PROTO_VERSION, JQ_VERSION, c->nonce);
}

/* Schedule conn_process for the next loop iteration. */
static void
conn_kick(struct conn *c)
{
	event_active(c->wake, EV_TIMEOUT, 0);
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
	c->wake = event_new(server.base, -1, 0, conn_wake_cb, c);
	c->take_timer = evtimer_new(server.base, conn_take_timer_cb, c);
	c->pending = evbuffer_new();
	c->send_fd = -1;
	c->rx_store.fd = c->rx_store.dirfd = -1;
	c->peer = net_fd_name(fd, 1);
	LIST_INIT(&c->held);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_MAX);
	bufferevent_setwatermark(c->bev, EV_WRITE, JQ_CHUNK, 0);
	/* libevent's default of 16 KiB per read or write costs a loop
	 * iteration per 16 KiB of job data */
	bufferevent_set_max_single_read(c->bev, JQ_CHUNK);
	bufferevent_set_max_single_write(c->bev, 2 * JQ_CHUNK);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&server.conns, c, entry);
	server.nconns++;
	c->born_ms = c->last_rx_ms = util_now_ms();
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
	log_debug("connection from %s", c->peer);
	conn_greet(c, fd);
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
	free(c->take_match);
	c->take_match = NULL;
	if (c->state == CONN_WAIT)
		c->state = CONN_LINE;
	conn_kick(c);
}

/* Free a connection: its held jobs go back to the queue. */
void
conn_free(struct conn *c)
{
	struct job	*j;
	int		 released = 0;

	while ((j = LIST_FIRST(&c->held)) != NULL) {
		if (!j->hold_conn) {	/* hold=lease: runs on without us */
			LIST_REMOVE(j, hold_entry);
			j->holder = NULL;
			continue;
		}
		conn_job_leave(j);
		if (j->state == JOB_RUNNING) {
			joblog_end(j, "lost", 0);
			queue_release(&server.queue, j);
			log_info("job %llu %s released: %s disconnected",
			    (unsigned long long)j->id, j->path,
			    c->name ? c->name : c->peer);
			released = 1;
		}
	}
	conn_unwait(c);
	if (c->commit != NULL)
		c->commit->arg = NULL;	/* it completes without us */
	if (c->rx_storing)
		store_abort(&c->rx_store);
	if (c->send_fd >= 0)
		close(c->send_fd);
	TAILQ_REMOVE(&server.conns, c, entry);
	server.nconns--;
	bufferevent_free(c->bev);
	event_free(c->wake);
	event_free(c->take_timer);
	evbuffer_free(c->pending);
	if (c->rx_msg != NULL)
		evbuffer_free(c->rx_msg);
	free(c->rx_errmsg);
	free(c->rx_status);
	free(c->take_match);
	free(c->name);
	free(c->peer);
	free(c);
	if (released)
		server_wake();
	if (server.closing && server.nconns == 0)
		event_base_loopbreak(server.base);
}

/* The server has finished: answer what is asked, then close when idle. */
void
conn_finish_all(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &server.conns, entry) {
		c->finish = 1;
		if (c->state == CONN_WAIT && c->send_fd < 0)
			conn_retake(c);
		conn_kick(c);
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

/* A job stops running: drop it from its holder's list, stop its lease. */
static void
conn_job_leave(struct job *j)
{
	if (j->holder != NULL) {
		LIST_REMOVE(j, hold_entry);
		j->holder = NULL;
	}
	if (j->lease_ev != NULL) {
		event_free(j->lease_ev);
		j->lease_ev = NULL;
	}
}

/* A job's lease ran out: it goes back to the queue for another worker. */
static void
conn_lease_expired(evutil_socket_t fd, short what, void *arg)
{
	struct job	*j = arg;

	(void)fd;
	(void)what;
	if (j->state != JOB_RUNNING)
		return;
	log_info("job %llu %s: lease of %llu ms ran out; it waits again",
	    (unsigned long long)j->id, j->path, (unsigned long long)j->lease_ms);
	joblog_end(j, "lost", 0);
	conn_job_leave(j);
	queue_release(&server.queue, j);
	server_wake();
}

/* Start or renew the lease of a running job. */
static void
conn_lease_renew(struct job *j)
{
	struct timeval	 tv;

	if (j->lease_ev == NULL)
		j->lease_ev = evtimer_new(server.base, conn_lease_expired, j);
	tv.tv_sec = (time_t)(j->lease_ms / 1000);
	tv.tv_usec = (suseconds_t)(j->lease_ms % 1000 * 1000);
	evtimer_add(j->lease_ev, &tv);
	j->renewed_ms = util_now_ms();
}

/*
 * Record a final failure.  If the journal cannot take it, the failure
 * still stands for this run; after a crash the job would simply run again.
 */
static void
conn_journal_failed(struct job *j)
{
	char	*cause;

	if (journal_failed(j, &cause) != 0) {
		log_warnx("job %llu %s: %s", (unsigned long long)j->id, j->path,
		    cause);
		free(cause);
	}
}

/*
 * The server could not store a result: the job goes back to the queue at
 * once, so that the next try need not wait for a lease to lapse (traffic on
 * a hold=conn connection would otherwise keep renewing it).
 */
static void
conn_job_reopen(struct job *j)
{
	if (j == NULL || j->state != JOB_RUNNING)
		return;
	joblog_end(j, "lost", 0);
	conn_job_leave(j);
	queue_release(&server.queue, j);
	server_wake();
}

/* Mark a job failed for a reason found by the server itself. */
static void
conn_fail_job(struct job *j, const char *status, const char *msg)
{
	conn_job_leave(j);
	free(j->fail_status);
	free(j->fail_msg);
	j->fail_status = xstrdup(status);
	j->fail_msg = xstrdup(msg);
	j->fail_len = strlen(msg);
	joblog_end(j, status, 0);
	queue_finish(&server.queue, j, JOB_FAILED);
	log_warnx("job %llu %s failed: %s", (unsigned long long)j->id, j->path,
	    msg);
	conn_journal_failed(j);
	server_job_finished();
}

/* Start sending job j: its JOB line; conn_pump adds the data. */
static int
conn_send_job(struct conn *c, struct job *j)
{
	struct stat	 st;
	char		*enc, *msg;
	int		 fd;

	if ((fd = open(j->path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		msg = xprintf("cannot read %s: %s", j->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		conn_fail_job(j, "failed", msg);
		free(msg);
		return -1;
	}
	enc = proto_encode_dup(j->path, strlen(j->path));
	conn_reply(c, "JOB %llu %s size=%llu attempt=%u lease=%llu",
	    (unsigned long long)j->id, enc, (unsigned long long)st.st_size,
	    j->attempt, (unsigned long long)(j->lease_ms + 999) / 1000);
	free(enc);
	j->size_in = (uint64_t)st.st_size;
	joblog_start(j, c->name ? c->name : c->peer);
	c->send_fd = fd;
	c->send_size = (uint64_t)st.st_size;
	c->send_job = j;
	c->send_total = 0;
	c->send_crc = 0;
	log_info("job %llu %s taken by %s (attempt %u)",
	    (unsigned long long)j->id, j->path, c->name ? c->name : c->peer,
	    j->attempt);
	return 0;
}

/* Answer the TAKE being served, or wait for a job. */
void
conn_retake(struct conn *c)
{
	struct job	*j;

	if (c->send_fd >= 0)
		return;		/* after the job being sent */
	for (;;) {
		if (server.finishing || !queue_can_match(&server.queue,
		    c->take_match)) {
			conn_reply(c, "NOJOB finished");
			conn_take_done(c);
			return;
		}
		if ((j = queue_take(&server.queue, c->take_match)) == NULL)
			break;
		j->holder = c;
		j->hold_conn = c->take_hold_conn;
		LIST_INSERT_HEAD(&c->held, j, hold_entry);
		j->lease_ms = c->take_lease_ms ? c->take_lease_ms :
		    server.cfg.lease_ms;
		conn_lease_renew(j);
		if (conn_send_job(c, j) == 0) {
			/* leave CONN_WAIT first: a job sent whole at once must
			 * not make conn_pump serve this TAKE a second time */
			conn_take_done(c);
			conn_pump(c);
			return;
		}
	}
	if (c->take_nowait) {
		conn_reply(c, "NOJOB timeout");
		conn_take_done(c);
		return;
	}
	if (!c->waiting) {
		TAILQ_INSERT_TAIL(&server.waiters, c, wait_entry);
		c->waiting = 1;
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
	conn_reply(c, "NOJOB timeout");
	conn_take_done(c);
}

/* Add job data to the output until it holds JQ_CHUNK; END at EOF. */
static void
conn_pump(struct conn *c)
{
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct evbuffer		*chunk;
	struct evbuffer_iovec	 v;
	struct job		*j = c->send_job;
	ssize_t			 n;
	size_t			 want;
	char			*msg;

	while (c->send_fd >= 0 && evbuffer_get_length(out) < JQ_CHUNK) {
		/*
		 * Ask for what the file should still hold (one more byte sees
		 * EOF), not a whole chunk: a 256 KiB buffer per tiny job is an
		 * mmap and munmap each time.
		 */
		want = c->send_size > c->send_total ?
		    (size_t)(c->send_size - c->send_total) + 1 : 1;
		if (want > JQ_CHUNK || want < 4096)
			want = want > JQ_CHUNK ? JQ_CHUNK : 4096;
		chunk = evbuffer_new();
		if (chunk == NULL || evbuffer_reserve_space(chunk,
		    (ev_ssize_t)want, &v, 1) < 1) {
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
			evbuffer_add_printf(out, "DATA %zd\n", n);
			evbuffer_add_buffer(out, chunk);
			evbuffer_free(chunk);
			continue;
		}
		if (chunk != NULL)
			evbuffer_free(chunk);
		close(c->send_fd);
		c->send_fd = -1;
		c->send_job = NULL;
		if (n == 0)
			evbuffer_add_printf(out, "END %llu %08x\n",
			    (unsigned long long)c->send_total, c->send_crc);
		else {
			evbuffer_add_printf(out, "ABORT\n");
			msg = xprintf("reading %s: %s", j->path, strerror(errno));
			if (j->state == JOB_RUNNING)
				conn_fail_job(j, "failed", msg);
			free(msg);
		}
		evbuffer_add_buffer(out, c->pending);
		if (c->state == CONN_WAIT)
			conn_retake(c);
		conn_kick(c);
	}
}

/* Begin reading a payload; err non-NULL means it is refused and dropped. */
static void
conn_rx_begin(struct conn *c, enum proto_cmd cmd, struct job *j,
    const char *err, char *errmsg)
{
	char	*cause;

	c->rx_cmd = cmd;
	c->rx_job = j;
	c->rx_left = c->rx_total = 0;
	c->rx_crc = 0;
	c->rx_err = err;
	c->rx_errmsg = errmsg;
	c->rx_limit = cmd == CMD_PUT ? server.cfg.max_result : JQ_MSG_MAX;
	c->state = CONN_FRAME;
	if (err != NULL)
		return;
	if (cmd == CMD_PUT) {
		if (store_open(&c->rx_store, j->result, j->rdir_dev,
		    j->rdir_ino, &cause) != 0) {
			log_warnx("job %llu %s: cannot store result: %s",
			    (unsigned long long)j->id, j->path, cause);
			c->rx_err = ERR_IO;
			c->rx_errmsg = xprintf("cannot store the result: %s; "
			    "the job waits for another try", cause);
			free(cause);
			return;
		}
		c->rx_storing = 1;
	} else {
		if (c->rx_msg == NULL)
			c->rx_msg = evbuffer_new();
		evbuffer_drain(c->rx_msg, evbuffer_get_length(c->rx_msg));
	}
}

/* Refuse the payload being received from now on (its bytes are dropped). */
static void
conn_rx_refuse(struct conn *c, const char *err, char *errmsg)
{
	if (c->rx_err != NULL) {
		free(errmsg);
		return;
	}
	c->rx_err = err;
	c->rx_errmsg = errmsg;
	if (c->rx_storing) {
		store_abort(&c->rx_store);
		c->rx_storing = 0;
	}
}

/* Store (or drop) up to n buffered bytes of the current DATA chunk. */
static void
conn_rx_data(struct conn *c, struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec	 v[CONN_IOV];
	int			 i, nv;
	size_t			 done = 0, len;
	char			*cause;

	if (c->rx_err != NULL)
		done = n;
	nv = done < n ? evbuffer_peek(in, (ev_ssize_t)n, NULL, v, CONN_IOV) : 0;
	for (i = 0; i < nv && i < CONN_IOV && done < n; i++) {
		len = v[i].iov_len < n - done ? v[i].iov_len : n - done;
		done += len;
		if (c->rx_err != NULL)
			continue;	/* refused midway: drop the rest */
		c->rx_crc = crc32c_update(c->rx_crc, v[i].iov_base, len);
		if (c->rx_cmd != CMD_PUT) {
			evbuffer_add(c->rx_msg, v[i].iov_base, len);
			continue;
		}
		if (store_write(&c->rx_store, v[i].iov_base, len, &cause) < 0) {
			log_warnx("job %llu %s: %s", (unsigned long long)
			    c->rx_job->id, c->rx_job->path, cause);
			conn_rx_refuse(c, ERR_IO, xprintf("cannot store the "
			    "result: %s; the job waits for another try", cause));
			free(cause);
		}
	}
	/* bytes past the peeked iovecs stay for the next round */
	evbuffer_drain(in, done);
	c->rx_left -= done;
	c->rx_total += done;
}

/* Reset the receive state after a payload. */
static void
conn_rx_reset(struct conn *c)
{
	if (c->rx_storing)
		store_abort(&c->rx_store);
	c->rx_storing = 0;
	free(c->rx_errmsg);
	c->rx_errmsg = NULL;
	c->rx_err = NULL;
	free(c->rx_status);
	c->rx_status = NULL;
	c->rx_job = NULL;
	c->state = CONN_LINE;
}

/* Record a FAIL: keep the tail of its message. */
static void
conn_rx_fail_commit(struct conn *c, struct job *j)
{
	size_t	 len = evbuffer_get_length(c->rx_msg), keep;

	keep = len > JQ_MSG_KEEP ? JQ_MSG_KEEP : len;
	evbuffer_drain(c->rx_msg, len - keep);
	free(j->fail_msg);
	free(j->fail_status);
	j->fail_msg = xmalloc(keep + 1);
	evbuffer_remove(c->rx_msg, j->fail_msg, keep);
	j->fail_msg[keep] = '\0';
	j->fail_len = keep;
	j->fail_status = c->rx_status ? c->rx_status : xstrdup("failed");
	c->rx_status = NULL;
	conn_job_leave(j);
	c->nfailed++;
	joblog_end(j, j->fail_status, 0);
	if (++j->failures <= server.cfg.retries) {
		log_info("job %llu %s failed (%s) on attempt %u, reported by "
		    "%s; it runs again", (unsigned long long)j->id, j->path,
		    j->fail_status, j->attempt, c->name ? c->name : c->peer);
		queue_requeue(&server.queue, j);
		return;
	}
	queue_finish(&server.queue, j, JOB_FAILED);
	log_info("job %llu %s failed (%s) on attempt %u, reported by %s",
	    (unsigned long long)j->id, j->path, j->fail_status, j->attempt,
	    c->name ? c->name : c->peer);
	conn_journal_failed(j);
}

/* The payload ended: check it and store the result or the failure. */
static void
conn_rx_end(struct conn *c, const struct proto_frame *f)
{
	struct job	*j = c->rx_job;

	if (c->rx_err == NULL && (f->len != c->rx_total || f->crc != c->rx_crc))
		conn_rx_refuse(c, ERR_CHECKSUM, xprintf("payload damaged: "
		    "received %llu bytes with CRC-32C %08x, END says %llu "
		    "with %08x; nothing stored", (unsigned long long)c->rx_total,
		    c->rx_crc, (unsigned long long)f->len, f->crc));
	if (c->rx_err == NULL && (j->state == JOB_DONE || j->state == JOB_FAILED))
		conn_rx_refuse(c, ERR_DONE, xprintf("job %llu already %s; "
		    "this result was not stored", (unsigned long long)j->id,
		    j->state == JOB_DONE ? "has a result" : "failed"));
	if (c->rx_err == NULL && j->committing)
		conn_rx_refuse(c, ERR_DONE, xprintf("job %llu: another result "
		    "is being stored; this one was not", (unsigned long long)j->id));
	if (c->rx_err != NULL) {
		if (strcmp(c->rx_err, ERR_IO) == 0)
			conn_job_reopen(j);
		conn_reply(c, "ERR %s %s", c->rx_err, c->rx_errmsg);
		conn_rx_reset(c);
		return;
	}
	if (c->rx_cmd == CMD_PUT) {
		/* the store passes to commit.c; we answer when it is done */
		c->commit = xcalloc(1, sizeof *c->commit);
		c->commit->st = c->rx_store;
		c->commit->job = j;
		c->commit->size = c->rx_total;
		c->commit->arg = c;
		c->rx_storing = 0;
		c->rx_store.fd = c->rx_store.dirfd = -1;
		j->committing = 1;
		conn_rx_reset(c);
		c->state = CONN_COMMIT;
		commit_submit(c->commit);
		return;
	}
	conn_rx_fail_commit(c, j);
	conn_reply(c, "OK %llu", (unsigned long long)j->id);
	conn_rx_reset(c);
	server_job_finished();
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

	j->committing = 0;
	if (c != NULL) {
		c->commit = NULL;
		c->state = CONN_LINE;
		conn_kick(c);
	}
	if (cm->rc != 0) {
		log_warnx("job %llu %s: cannot store result: %s",
		    (unsigned long long)j->id, j->path, cm->cause);
		conn_job_reopen(j);
		if (c != NULL)
			conn_reply(c, "ERR %s cannot store the result: %s; the "
			    "job waits for another try", ERR_IO, cm->cause);
	} else {
		conn_job_leave(j);
		joblog_end(j, "0", cm->size);
		queue_finish(&server.queue, j, JOB_DONE);
		log_info("job %llu %s done by %s: %llu bytes to %s",
		    (unsigned long long)j->id, j->path, c == NULL ? "a worker "
		    "that left" : c->name ? c->name : c->peer,
		    (unsigned long long)cm->size, j->result);
		if (c != NULL) {
			c->ndone++;
			conn_reply(c, "OK %llu", (unsigned long long)j->id);
		}
		server_job_finished();
	}
	free(cm->cause);
	free(cm);
}

/* Handle one frame line inside a payload. */
static void
conn_frame(struct conn *c, const char *line)
{
	struct proto_frame	 f;

	if (proto_parse_frame(line, &f) != 0) {
		conn_reply(c, "ERR %s expected DATA, END or ABORT inside a "
		    "payload; closing", ERR_FRAMING);
		conn_rx_reset(c);
		conn_close(c);
		return;
	}
	switch (f.kind) {
	case FRAME_DATA:
		if (f.len > c->rx_limit - c->rx_total)
			conn_rx_refuse(c, ERR_TOOBIG, xprintf("payload over the "
			    "limit of %llu bytes; nothing stored",
			    (unsigned long long)c->rx_limit));
		c->rx_left = f.len;
		if (f.len > 0)		/* DATA 0 is a keep-alive */
			c->state = CONN_DATA;
		break;
	case FRAME_END:
		conn_rx_end(c, &f);
		break;
	case FRAME_ABORT:
		conn_reply(c, "ERR %s payload abandoned by the sender; nothing "
		    "stored", ERR_ABORTED);
		conn_rx_reset(c);
		break;
	}
}

/* Find the job named by a request, or explain why not in *err. */
static struct job *
conn_job(struct proto_req *r, const char **err, char **errmsg)
{
	struct job	*j;

	if ((j = queue_find(&server.queue, r->argv[0])) == NULL) {
		*err = ERR_NOSUCHJOB;
		*errmsg = xprintf("no job with id \"%.40s\"", r->argv[0]);
		return NULL;
	}
	return j;
}

/* Find the job named by a request, or answer why there is none. */
static struct job *
conn_job_or_reply(struct conn *c, struct proto_req *r)
{
	const char	*err = NULL;
	char		*errmsg = NULL;
	struct job	*j;

	if ((j = conn_job(r, &err, &errmsg)) == NULL) {
		conn_reply(c, "ERR %s %s", err, errmsg);
		free(errmsg);
	}
	return j;
}

/*
 * Check HELLO's auth=CN:MAC against our nonce; 0 if it proves the token.
 * Anything else refuses and closes the connection.
 */
static int
conn_hello_auth(struct conn *c, struct proto_req *r)
{
	const char	*v;
	char		 cn[AUTH_HEX_LEN + 1], mac[AUTH_HEX_LEN + 1];

	if ((v = proto_kv(r, "auth")) == NULL) {
		conn_auth_refuse(c, "this server needs a token (auth=)");
		return -1;
	}
	if (strlen(v) != 2 * AUTH_HEX_LEN + 1 || v[AUTH_HEX_LEN] != ':') {
		conn_auth_refuse(c, "malformed auth=");
		return -1;
	}
	memcpy(cn, v, AUTH_HEX_LEN);
	cn[AUTH_HEX_LEN] = '\0';
	memcpy(mac, v + AUTH_HEX_LEN + 1, AUTH_HEX_LEN + 1);
	if (auth_check(server.cfg.key, "client", c->nonce, cn, mac) != 0) {
		conn_auth_refuse(c, "wrong token");
		return -1;
	}
	memcpy(c->cn, cn, sizeof c->cn);
	c->authed = 1;
	return 0;
}

/* HELLO <version> [name=<worker>] [auth=<cnonce>:<mac>] */
static void
cmd_hello(struct conn *c, struct proto_req *r)
{
	const char	*name;
	uint64_t	 v;
	ssize_t		 n;
	char		*dup;
	int		 first = !c->authed;	/* the proof is good once */

	if (first && conn_hello_auth(c, r) != 0)
		return;
	if (c->hello) {
		conn_reply(c, "ERR %s HELLO was already said", ERR_HELLO);
		return;
	}
	if (parse_u64(r->argv[0], 0, UINT64_MAX, &v) != 0) {
		conn_reply(c, "ERR %s bad version \"%.20s\"%s", ERR_PROTO,
		    r->argv[0], first ? "; closing" : "");
		if (first)
			conn_close(c);
		return;
	}
	if (v < JQ_PROTO_MIN) {
		conn_reply(c, "ERR %s this server speaks versions %d to %d; "
		    "closing", ERR_VERSION, JQ_PROTO_MIN, JQ_PROTO_VERSION);
		conn_close(c);
		return;
	}
	if ((name = proto_kv(r, "name")) != NULL) {
		dup = xstrdup(name);
		if ((n = proto_decode(dup)) < 0 || n > JQ_WORKER_MAX ||
		    memchr(dup, '\0', (size_t)n) != NULL) {
			free(dup);
			conn_reply(c, "ERR %s bad worker name (at most %d bytes, "
			    "percent-encoded)%s", ERR_PROTO, JQ_WORKER_MAX,
			    first ? "; closing" : "");
			if (first)
				conn_close(c);
			return;
		}
		free(c->name);
		c->name = dup;
	}
	c->hello = 1;
	if (c->nonce[0] != '\0') {
		char	 mac[AUTH_HEX_LEN + 1];

		auth_mac(server.cfg.key, "server", c->nonce, c->cn, mac);
		conn_reply(c, "OK %u auth=%s", v < JQ_PROTO_VERSION ?
		    (unsigned)v : JQ_PROTO_VERSION, mac);
		return;
	}
	conn_reply(c, "OK %u", v < JQ_PROTO_VERSION ? (unsigned)v :
	    JQ_PROTO_VERSION);
}

/* TAKE [match=<glob>] [wait=<seconds>] [hold=conn|lease] */
static void
cmd_take(struct conn *c, struct proto_req *r)
{
	const char	*match = proto_kv(r, "match"), *wait = proto_kv(r, "wait");
	const char	*hold = proto_kv(r, "hold"), *lease = proto_kv(r, "lease");
	unsigned	 secs = 0, lease_s = 0;
	ssize_t		 n;
	char		*dup = NULL;
	struct timeval	 tv;

	if (hold != NULL && strcmp(hold, "conn") != 0 && strcmp(hold, "lease") != 0) {
		conn_reply(c, "ERR %s hold= must be conn or lease", ERR_PROTO);
		return;
	}
	if (wait != NULL && parse_uint(wait, 0, JQ_SECONDS_MAX, &secs) != 0) {
		conn_reply(c, "ERR %s wait= must be 0 to %d seconds", ERR_PROTO,
		    JQ_SECONDS_MAX);
		return;
	}
	if (lease != NULL && parse_uint(lease, 1, JQ_SECONDS_MAX, &lease_s)
	    != 0) {
		conn_reply(c, "ERR %s lease= must be 1 to %d seconds", ERR_PROTO,
		    JQ_SECONDS_MAX);
		return;
	}
	if (match != NULL) {
		dup = xstrdup(match);
		if ((n = proto_decode(dup)) <= 0 || n > JQ_GLOB_MAX ||
		    memchr(dup, '\0', (size_t)n) != NULL) {
			free(dup);
			conn_reply(c, "ERR %s bad match= pattern (1 to %d bytes, "
			    "percent-encoded)", ERR_PROTO, JQ_GLOB_MAX);
			return;
		}
	}
	c->worker = 1;
	c->take_match = dup;
	c->take_hold_conn = hold != NULL && strcmp(hold, "conn") == 0;
	c->take_nowait = wait != NULL && secs == 0;
	c->take_lease_ms = (uint64_t)lease_s * 1000;
	c->state = CONN_WAIT;
	if (wait != NULL && secs > 0) {
		tv.tv_sec = secs;
		tv.tv_usec = 0;
		evtimer_add(c->take_timer, &tv);
	}
	conn_retake(c);
}

/* PUT <id> [size=<n>], then a payload. */
static void
cmd_put(struct conn *c, struct proto_req *r)
{
	const char	*err = NULL, *size = proto_kv(r, "size");
	char		*errmsg = NULL;
	struct job	*j;
	uint64_t	 n;

	if ((j = conn_job(r, &err, &errmsg)) != NULL) {
		if (j->state == JOB_DONE || j->state == JOB_FAILED) {
			err = ERR_DONE;
			errmsg = xprintf("job %llu already %s; this result was "
			    "not stored", (unsigned long long)j->id,
			    j->state == JOB_DONE ? "has a result" : "failed");
		} else if (size != NULL && parse_u64(size, 0, UINT64_MAX, &n)
		    != 0) {
			err = ERR_PROTO;
			errmsg = xprintf("size=%.24s is not a number; nothing "
			    "stored", size);
		} else if (size != NULL && n > server.cfg.max_result) {
			err = ERR_TOOBIG;
			errmsg = xprintf("size=%.24s is over the limit of %llu "
			    "bytes; nothing stored", size,
			    (unsigned long long)server.cfg.max_result);
		}
	}
	conn_rx_begin(c, CMD_PUT, j, err, errmsg);
}

/* FAIL <id> [exit=<n>] [signal=<n>] [timeout=1], then the message. */
static void
cmd_fail(struct conn *c, struct proto_req *r)
{
	const char	*err = NULL, *v;
	char		*errmsg = NULL;
	struct job	*j;
	unsigned	 n;

	if ((j = conn_job(r, &err, &errmsg)) != NULL &&
	    (j->state == JOB_DONE || j->state == JOB_FAILED)) {
		err = ERR_DONE;
		errmsg = xprintf("job %llu already %s", (unsigned long long)j->id,
		    j->state == JOB_DONE ? "has a result" : "failed");
	}
	if (err == NULL && (v = proto_kv(r, "exit")) != NULL &&
	    parse_uint(v, 0, 255, &n) != 0) {
		err = ERR_PROTO;
		errmsg = xprintf("exit=%.24s is not a number from 0 to 255", v);
	}
	if (err == NULL && (v = proto_kv(r, "signal")) != NULL &&
	    parse_uint(v, 1, 128, &n) != 0) {
		err = ERR_PROTO;
		errmsg = xprintf("signal=%.24s is not a number from 1 to 128", v);
	}
	conn_rx_begin(c, CMD_FAIL, j, err, errmsg);
	if ((v = proto_kv(r, "exit")) != NULL && parse_uint(v, 0, 255, &n) == 0)
		c->rx_status = xprintf("exit:%u", n);
	else if ((v = proto_kv(r, "signal")) != NULL &&
	    parse_uint(v, 1, 128, &n) == 0)
		c->rx_status = xprintf("signal:%u", n);
	else if (proto_kv(r, "timeout") != NULL)
		c->rx_status = xstrdup("timeout");
}

/* RELEASE <id>: a running job goes back to the queue. */
static void
cmd_release(struct conn *c, struct proto_req *r)
{
	struct job	*j;

	if ((j = conn_job_or_reply(c, r)) == NULL)
		return;
	if (j->state != JOB_RUNNING) {
		conn_reply(c, "ERR %s job %llu is not running", ERR_NOTHELD,
		    (unsigned long long)j->id);
		return;
	}
	joblog_end(j, "lost", 0);
	conn_job_leave(j);
	queue_release(&server.queue, j);
	log_info("job %llu %s released by %s", (unsigned long long)j->id,
	    j->path, c->name ? c->name : c->peer);
	conn_reply(c, "OK %llu", (unsigned long long)j->id);
	server_wake();
}

/* TOUCH <id> [lease=<seconds>]: renew the lease of a running job. */
static void
cmd_touch(struct conn *c, struct proto_req *r)
{
	const char	*v;
	struct job	*j;
	unsigned	 secs = 0;

	if ((j = conn_job_or_reply(c, r)) == NULL)
		return;
	if ((v = proto_kv(r, "lease")) != NULL &&
	    parse_uint(v, 1, JQ_SECONDS_MAX, &secs) != 0) {
		conn_reply(c, "ERR %s lease= must be 1 to %d seconds", ERR_PROTO,
		    JQ_SECONDS_MAX);
		return;
	}
	if (j->state != JOB_RUNNING) {
		conn_reply(c, "ERR %s job %llu is not running", ERR_NOTHELD,
		    (unsigned long long)j->id);
		return;
	}
	if (v != NULL)
		j->lease_ms = (uint64_t)secs * 1000;
	conn_lease_renew(j);
	conn_reply(c, "OK %llu lease=%llu", (unsigned long long)j->id,
	    (unsigned long long)(j->lease_ms + 999) / 1000);
}

/* RETRY <id>: a failed job waits again, its attempts counted afresh. */
static void
cmd_retry(struct conn *c, struct proto_req *r)
{
	char		*errmsg = NULL;
	struct job	*j;
	int		 ended;

	if ((j = conn_job_or_reply(c, r)) == NULL)
		return;
	/*
	 * The run ends the moment every job has finished, not when the
	 * deferred server_check notices: a RETRY read in the same batch as
	 * the last PUT must not revive it.
	 */
	ended = server.finishing || queue_all_finished(&server.queue);
	if (j->state != JOB_FAILED || ended) {
		conn_reply(c, "ERR %s job %llu %s", ERR_NOTHELD,
		    (unsigned long long)j->id, ended ?
		    "cannot run again: the run has ended" : "has not failed");
		return;
	}
	if (journal_retry(j, &errmsg) != 0) {
		conn_reply(c, "ERR %s %s", ERR_IO, errmsg);
		free(errmsg);
		return;
	}
	j->failures = 0;
	queue_requeue(&server.queue, j);
	log_info("job %llu %s: retry asked by %s", (unsigned long long)j->id,
	    j->path, c->name ? c->name : c->peer);
	conn_reply(c, "OK %llu", (unsigned long long)j->id);
	server_wake();
}

/* Append one WORKER line for c, if it is a worker. */
static void
conn_stat_line(struct conn *c, struct evbuffer *out)
{
	struct job	*j;
	unsigned	 running = 0;
	char		*name, *peer;

	LIST_FOREACH(j, &c->held, hold_entry)
		running++;
	name = c->name ? proto_encode_dup(c->name, strlen(c->name)) :
	    proto_encode_dup(c->peer, strlen(c->peer));
	peer = proto_encode_dup(c->peer, strlen(c->peer));
	evbuffer_add_printf(out, "WORKER %s peer=%s running=%u done=%u "
	    "failed=%u\n", name, peer, running, c->ndone, c->nfailed);
	free(name);
	free(peer);
}

/* Encode the tail of a job's failure message in at most room bytes. */
static char *
conn_stat_msg(const struct job *j, size_t room)
{
	const char	*m = j->fail_msg ? j->fail_msg : "";
	size_t		 len = j->fail_msg ? j->fail_len : 0, skip = 0;

	/* a byte encodes to 1 or 3 characters: drop from the front */
	while (proto_encoded_len(m + skip, len - skip) >= room)
		skip += (proto_encoded_len(m + skip, len - skip) - room) / 3 + 1;
	return proto_encode_dup(m + skip, len - skip);
}

/* STAT: counts, workers, failed jobs, END. */
static void
cmd_stat(struct conn *c, struct proto_req *r)
{
	struct queue	*q = &server.queue;
	struct evbuffer	*out;
	struct conn	*w;
	struct job	*j;
	unsigned	 nworkers = 0, nfailed = 0;
	size_t		 i;
	char		*name, *msg;

	(void)r;
	out = c->send_fd >= 0 ? c->pending : bufferevent_get_output(c->bev);
	TAILQ_FOREACH(w, &server.conns, entry)
		nworkers += w->worker;
	nfailed = q->count[JOB_FAILED] < JQ_STAT_FAILED_MAX ?
	    (unsigned)q->count[JOB_FAILED] : JQ_STAT_FAILED_MAX;
	evbuffer_add_printf(out, "STAT total=%zu waiting=%zu running=%zu "
	    "done=%zu failed=%zu workers=%u failed_listed=%u version=%s "
	    "protocol=%d\n", q->njobs, q->count[JOB_WAITING],
	    q->count[JOB_RUNNING], q->count[JOB_DONE], q->count[JOB_FAILED],
	    nworkers, nfailed, JQ_VERSION, JQ_PROTO_VERSION);
	TAILQ_FOREACH(w, &server.conns, entry)
		if (w->worker)
			conn_stat_line(w, out);
	for (i = 0; i < q->njobs && nfailed > 0; i++) {
		j = &q->jobs[i];
		if (j->state != JOB_FAILED)
			continue;
		nfailed--;
		name = proto_encode_dup(j->path, strlen(j->path));
		msg = conn_stat_msg(j, JQ_LINE_MAX - 128 - strlen(name));
		evbuffer_add_printf(out, "FAILED %llu %s status=%s msg=%s\n",
		    (unsigned long long)j->id, name,
		    j->fail_status ? j->fail_status : "failed", msg);
		free(name);
		free(msg);
	}
	evbuffer_add_printf(out, "END\n");
}

/* QUIT */
static void
cmd_quit(struct conn *c, struct proto_req *r)
{
	(void)r;
	conn_reply(c, "OK bye");
	conn_close(c);
}

/* Handlers, indexed by enum proto_cmd. */
static void (*const conn_cmds[CMD_COUNT])(struct conn *, struct proto_req *) = {
	[CMD_HELLO] = cmd_hello,
	[CMD_TAKE] = cmd_take,
	[CMD_PUT] = cmd_put,
	[CMD_FAIL] = cmd_fail,
	[CMD_RELEASE] = cmd_release,
	[CMD_TOUCH] = cmd_touch,
	[CMD_RETRY] = cmd_retry,
	[CMD_STAT] = cmd_stat,
	[CMD_QUIT] = cmd_quit,
};

/* Handle one request line. */
static void
conn_request(struct conn *c, char *line)
{
	struct proto_req	 r;
	char			*cause;

	if (!c->authed) {
		if (proto_parse_request(line, &r, &cause) != 0) {
			free(cause);
			conn_auth_refuse(c, "authenticate first");
		} else if (r.cmd != CMD_HELLO)
			conn_auth_refuse(c, "authenticate first");
		else
			cmd_hello(c, &r);
		return;
	}
	if (proto_parse_request(line, &r, &cause) != 0) {
		if (r.flags & PROTO_PAYLOAD) {
			/* its payload follows all the same: drop it, then answer */
			conn_rx_begin(c, r.cmd, NULL, ERR_PROTO, cause);
			return;
		}
		conn_reply(c, "ERR %s %s", ERR_PROTO, cause);
		free(cause);
		return;
	}
	if (!c->hello && !(r.flags & PROTO_PREHELLO)) {
		if (r.flags & PROTO_PAYLOAD)
			conn_rx_begin(c, r.cmd, NULL, ERR_HELLO,
			    xstrdup("say HELLO first"));
		else
			conn_reply(c, "ERR %s say HELLO first", ERR_HELLO);
		return;
	}
	conn_cmds[r.cmd](c, &r);
}

/*
 * Handle whatever complete input there is, as far as the state allows.
 * Returns when more input is needed or the connection must wait.
 */
static void
conn_process(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr	 eol;
	size_t			 len, eol_len, n;
	char			*p;

	for (;;) {
		len = evbuffer_get_length(in);
		if (c->state == CONN_CLOSING) {
			evbuffer_drain(in, len);
			return;
		}
		if (c->state == CONN_WAIT || c->state == CONN_COMMIT)
			return;
		if (c->send_fd >= 0 &&
		    evbuffer_get_length(c->pending) > CONN_PENDING_MAX)
			return;		/* resumed when the job is sent */
		if (c->send_fd < 0 && evbuffer_get_length(
		    bufferevent_get_output(c->bev)) > JQ_REPLY_BACKLOG)
			return;		/* resumed by conn_write_cb */
		if (c->state == CONN_DATA) {
			if (len == 0)
				return;
			n = len < c->rx_left ? len : (size_t)c->rx_left;
			conn_rx_data(c, in, n);
			if (c->rx_left == 0)
				c->state = CONN_FRAME;
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (!c->authed && (eol.pos >= JQ_AUTH_LINE_MAX ||
		    (eol.pos < 0 && len >= JQ_AUTH_LINE_MAX))) {
			conn_auth_refuse(c, "line too long before "
			    "authentication");
			continue;
		}
		if (eol.pos < 0) {
			if (len == 0 && c->finish && c->state == CONN_LINE &&
			    c->send_fd < 0) {
				conn_close(c);
				continue;
			}
			if (len <= JQ_LINE_MAX && c->state != CONN_SKIPLINE)
				return;
			evbuffer_drain(in, len);
			if (c->state == CONN_FRAME) {
				conn_reply(c, "ERR %s frame line too long; closing",
				    ERR_FRAMING);
				conn_rx_reset(c);
				conn_close(c);
			} else
				c->state = CONN_SKIPLINE;
			return;
		}
		if (c->state == CONN_SKIPLINE || (size_t)eol.pos >= JQ_LINE_MAX) {
			evbuffer_drain(in, (size_t)eol.pos + 1);
			if (c->state == CONN_FRAME) {
				conn_reply(c, "ERR %s frame line too long; closing",
				    ERR_FRAMING);
				conn_rx_reset(c);
				conn_close(c);
				continue;
			}
			c->state = CONN_LINE;
			conn_reply(c, "ERR %s request longer than %d bytes; "
			    "skipped", ERR_TOOLONG, JQ_LINE_MAX);
			continue;
		}
		evbuffer_remove(in, conn_linebuf, (size_t)eol.pos + 1);
		conn_linebuf[eol.pos] = '\0';
		/* a NUL must not cut the line short: make it a byte the
		 * parsers refuse */
		for (p = conn_linebuf; (p = memchr(p, '\0', (size_t)
		    (conn_linebuf + eol.pos - p))) != NULL; p++)
			*p = '\x01';
		if (c->state == CONN_FRAME)
			conn_frame(c, conn_linebuf);
		else
			conn_request(c, conn_linebuf);
	}
}

/* Free c if it is closing and its output has drained; 1 if freed. */
static int
conn_reap(struct conn *c)
{
	if (c->state == CONN_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_free(c);
		return 1;
	}
	return 0;
}

/* Input arrived: a sign of life that renews the leases of held jobs. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct job	*j;
	uint64_t	 now;

	(void)bev;
	c->last_rx_ms = now = util_now_ms();
	if (!LIST_EMPTY(&c->held)) {
		LIST_FOREACH(j, &c->held, hold_entry)
			/* renewing re-arms a timer: do it at most 4 times a lease */
			if (j->hold_conn && now - j->renewed_ms >= j->lease_ms / 4)
				conn_lease_renew(j);
	}
	conn_process(c);
	conn_reap(c);
}

/* The output fell below its low watermark: send more of the job. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	(void)bev;
	if (conn_reap(c))
		return;
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
	conn_process(c);
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
		    c->peer);
		conn_free(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("connection from %s closed%s", c->peer,
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
	log_info("connection from %s: %s; closed", c->peer, why);
	if (c->state == CONN_FRAME || c->state == CONN_DATA)
		conn_rx_reset(c);
	if (!c->authed)
		conn_reply(c, "ERR %s %s; closing", ERR_AUTH, why);
	else
		conn_reply(c, "ERR %s %s; closing", ERR_TIMEOUT, why);
	conn_close(c);
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
	hs = server.cfg.stall_ms < JQ_HANDSHAKE_MS ? server.cfg.stall_ms :
	    JQ_HANDSHAKE_MS;
	for (c = TAILQ_FIRST(&server.conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);	/* c may be freed */
		if (c->state == CONN_CLOSING)
			continue;
		quiet = now - c->last_rx_ms;
		if (!c->authed) {
			if (now - c->born_ms >= hs)
				conn_time_out(c, "authentication took too long");
			continue;
		}
		if (c->state == CONN_WAIT || c->state == CONN_COMMIT)
			continue;
		inlen = evbuffer_get_length(bufferevent_get_input(c->bev));
		half = c->state == CONN_DATA || c->state == CONN_SKIPLINE ||
		    inlen > 0;
		if (half && quiet >= server.cfg.stall_ms)
			conn_time_out(c, "stalled in the middle of a request");
		else if (!half && LIST_EMPTY(&c->held) && c->send_fd < 0 &&
		    quiet >= server.cfg.idle_ms)
			conn_time_out(c, "idle");
	}
}
