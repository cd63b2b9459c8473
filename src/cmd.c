/*
 * cmd.c: the requests of jq-serve: the greeting and authentication, the
 * dispatch table, one handler per verb, and the STAT reply.
 *
 * A handler sees a connection only as its session (struct session: who
 * the peer is, what it has proved, the jobs it holds, the TAKE or payload
 * it asked for).  It writes its replies to the evbuffer it is given and
 * returns what the connection does next (enum cmd_next); conn.c does that.
 * So cmd.c never calls conn.c, and the requests can be read without the
 * state machine.  What a request does to a job is jobs.c's.
 *
 * ADD and SHUTDOWN (cmd_add, cmd_shutdown) make the queue a living one:
 * jobs added while the server runs (spool.c keeps their data), and an end
 * asked for rather than reached.  WAIT (wait.c) and CANCEL, DRAIN and
 * UNDRAIN (manage.c) have handlers of their own files, in the table below.
 *
 * Authentication (auth.c) comes first: until HELLO proves the peer holds
 * the token (or cmd_greet finds, by SO_PEERCRED, that a UNIX peer is our
 * own user), anything but HELLO is refused and the connection closes
 * (cmd_auth_refuse).  conn.c caps lines at JQ_AUTH_LINE_MAX meanwhile and
 * ends the handshake after JQ_HANDSHAKE_MS.  The peer learns nothing
 * before that but the greeting.  --max-conns counts authenticated
 * connections only: server.c refuses a peer at once when they are all
 * taken, and a HELLO that proves the token is still refused (ERR LIMIT)
 * if they were taken while it came.
 */
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "jq.h"

/* Every session, in the order connections came: the WORKER lines of STAT. */
static TAILQ_HEAD(, session)	 cmd_sessions =
    TAILQ_HEAD_INITIALIZER(cmd_sessions);

/* Start the session of a new connection from peer (now the session's). */
void
cmd_session_start(struct session *s, char *peer)
{
	memset(s, 0, sizeof *s);
	s->peer = peer;
	LIST_INIT(&s->held);
	payload_init(&s->rx);
	TAILQ_INSERT_TAIL(&cmd_sessions, s, entry);
}

/* End a session: free what it holds (its jobs must be let go first). */
void
cmd_session_end(struct session *s)
{
	TAILQ_REMOVE(&cmd_sessions, s, entry);
	payload_free(&s->rx);
	cmd_take_forget(s);
	free(s->name);
	free(s->peer);
}

/* The session after s in the order connections came (s NULL: the first). */
struct session *
cmd_session_next(const struct session *s)
{
	return s == NULL ? TAILQ_FIRST(&cmd_sessions) : TAILQ_NEXT(s, entry);
}

/* The name a session goes by in logs: its worker name, else its address. */
const char *
cmd_who(const struct session *s)
{
	return s->name ? s->name : s->peer;
}

/* Append a reply line to out; the LF is added here. */
void
cmd_vreply(struct evbuffer *out, const char *fmt, va_list ap)
{
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\n", 1);
}

/* Append a reply line to out, printf-style. */
JQ_PRINTF(2, 3)
static void
cmd_reply(struct evbuffer *out, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	cmd_vreply(out, fmt, ap);
	va_end(ap);
}

/*
 * Refuse the peer: ERR AUTH with a reason, logged (a flood of them as a
 * summary, server.failed_auth); the connection closes.
 */
enum cmd_next
cmd_auth_refuse(struct session *s, const char *why, struct evbuffer *out)
{
	log_tally(&server.failed_auth, "refused", "%s: authentication "
	    "refused: %s", s->peer, why);
	cmd_reply(out, REPLY_ERR " %s %s; closing", ERR_AUTH, why);
	return NEXT_CLOSE;
}

/*
 * Decide how the peer on socket fd authenticates, and greet it.  A UNIX
 * peer running as our own user or as root is trusted (unless --unix-auth
 * token): root can read our token anyway.  One running as anybody else is
 * refused outright, told how to get in.
 */
enum cmd_next
cmd_greet(struct session *s, int fd, struct evbuffer *out)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof ss;
	struct ucred		 cred;
	socklen_t		 clen = sizeof cred;
	char			 why[320], as[160];

	if (server.cfg.key == NULL) {
		s->authed = 1;
		cmd_reply(out, REPLY_GREETING " %d jq-serve/%s " KEY_AUTH "="
		    AUTH_MODE_NONE, JQ_PROTO_VERSION, JQ_VERSION);
		return NEXT_LINE;
	}
	memset(&ss, 0, sizeof ss);	/* getsockname may fill less of it */
	if (!server.cfg.unix_token &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
			return cmd_auth_refuse(s, "cannot tell who the peer is",
			    out);
		if (cred.uid != geteuid() && cred.uid != 0) {
			if (server.cfg.user[0] != '\0')
				snprintf(as, sizeof as, "%s (runuser -u %s -- "
				    "jq-put ...)", server.cfg.user,
				    server.cfg.user);
			else
				snprintf(as, sizeof as, "uid %u",
				    (unsigned)geteuid());
			snprintf(why, sizeof why, "peer uid %u is not the "
			    "server's uid %u (nor root): run the client as %s, "
			    "or use the token over TCP", (unsigned)cred.uid,
			    (unsigned)geteuid(), as);
			return cmd_auth_refuse(s, why, out);
		}
		s->authed = 1;
		cmd_reply(out, REPLY_GREETING " %d jq-serve/%s " KEY_AUTH "="
		    AUTH_MODE_PEER, JQ_PROTO_VERSION, JQ_VERSION);
		return NEXT_LINE;
	}
	auth_nonce(s->nonce);
	cmd_reply(out, REPLY_GREETING " %d jq-serve/%s " KEY_AUTH "="
	    AUTH_MODE_HMAC " " KEY_NONCE "=%s", JQ_PROTO_VERSION, JQ_VERSION,
	    s->nonce);
	return NEXT_LINE;
}

/* Find the job named by a request, or say why not in *err and *errmsg. */
static struct job *
cmd_job(struct proto_req *r, const char **err, char **errmsg)
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
cmd_job_or_reply(struct proto_req *r, struct evbuffer *out)
{
	const char	*err = NULL;
	char		*errmsg = NULL;
	struct job	*j;

	if ((j = cmd_job(r, &err, &errmsg)) == NULL) {
		cmd_reply(out, REPLY_ERR " %s %s", err, errmsg);
		free(errmsg);
	}
	return j;
}

/*
 * Read the token= of a request about a job into *t: 0, or -1 with *errmsg
 * (ours to free) saying what is wrong, for ERR PROTO.
 */
static int
cmd_token(struct proto_req *r, struct proto_token *t, char **errmsg)
{
	const char	*v;

	if ((v = proto_kv(r, KEY_TOKEN)) == NULL) {
		*errmsg = xprintf("%s needs " KEY_TOKEN "= (the token of the "
		    "JOB line)", proto_cmd_name(r->cmd));
		return -1;
	}
	if (proto_token_parse(v, t) != 0) {
		*errmsg = xprintf(KEY_TOKEN "=%.40s is not a token (%d "
		    "lowercase hex digits)", v, PROTO_TOKEN_LEN);
		return -1;
	}
	return 0;
}

/*
 * Find the job a FAIL, RELEASE or TOUCH names and check that its sender
 * holds the job's current attempt; if not, say why in *err and *errmsg.
 */
static struct job *
cmd_held_job(struct proto_req *r, const char **err, char **errmsg)
{
	struct proto_token	 t;
	struct job		*j;

	if ((j = cmd_job(r, err, errmsg)) == NULL)
		return NULL;
	if (cmd_token(r, &t, errmsg) != 0) {
		*err = ERR_PROTO;
		return NULL;
	}
	/* "already done" only to a worker that ran this job: another
	 * attempt's token (say, from before a restart with a changed list)
	 * gets the holder check's reason instead */
	if (r->cmd == CMD_FAIL && jobs_outcome(j) != NULL &&
	    jobs_is_attempt(j, &t)) {
		*err = ERR_DONE;
		*errmsg = xprintf("job %llu already %s", (unsigned long long)
		    j->id, jobs_outcome(j));
		return NULL;
	}
	if (jobs_holder_check(j, &t, errmsg) != 0) {
		*err = ERR_NOTHELD;
		return NULL;
	}
	return j;
}

/* Find the job of a FAIL, RELEASE or TOUCH held by its sender, or answer why not. */
static struct job *
cmd_held_job_or_reply(struct proto_req *r, struct evbuffer *out)
{
	const char	*err = NULL;
	char		*errmsg = NULL;
	struct job	*j;

	if ((j = cmd_held_job(r, &err, &errmsg)) == NULL) {
		cmd_reply(out, REPLY_ERR " %s %s", err, errmsg);
		free(errmsg);
	}
	return j;
}

/* A payload follows the request: begin receiving it (refused if err). */
static enum cmd_next
cmd_receive(struct session *s, enum proto_cmd cmd, struct job *j,
    const char *err, char *errmsg)
{
	payload_begin(&s->rx, cmd, j, cmd == CMD_PUT ? server.cfg.max_result :
	    JQ_MSG_MAX, err, errmsg);
	return NEXT_PAYLOAD;
}

/*
 * Check HELLO's auth=CN:MAC against our nonce; 0 if it proves the token.
 * Anything else refuses (and the connection closes).
 */
static int
cmd_hello_auth(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*v;
	char		 cn[AUTH_HEX_LEN + 1], mac[AUTH_HEX_LEN + 1];

	if ((v = proto_kv(r, KEY_AUTH)) == NULL) {
		cmd_auth_refuse(s, "this server needs a token (auth=)",
		    out);
		return -1;
	}
	if (strlen(v) != 2 * AUTH_HEX_LEN + 1 || v[AUTH_HEX_LEN] != ':') {
		cmd_auth_refuse(s, "malformed auth=", out);
		return -1;
	}
	memcpy(cn, v, AUTH_HEX_LEN);
	cn[AUTH_HEX_LEN] = '\0';
	memcpy(mac, v + AUTH_HEX_LEN + 1, AUTH_HEX_LEN + 1);
	if (auth_check(server.cfg.key, "client", s->nonce, cn, mac) != 0) {
		cmd_auth_refuse(s, "wrong token", out);
		return -1;
	}
	if (server.nauthed >= server.cfg.max_conns) {
		log_tally(&server.turned_away, "over --max-conns", "%s: "
		    "refused after authenticating: %u connections (--max-conns)",
		    s->peer, server.nauthed);
		cmd_reply(out, REPLY_ERR " %s too many connections; closing",
		    ERR_LIMIT);
		return -1;
	}
	memcpy(s->cn, cn, sizeof s->cn);
	s->authed = 1;
	return 0;
}

/* HELLO <version> [name=<worker>] [auth=<cnonce>:<mac>] */
static enum cmd_next
cmd_hello(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*name;
	uint64_t	 v;
	ssize_t		 n;
	char		*dup, mac[AUTH_HEX_LEN + 1];
	int		 first = !s->authed;	/* the proof is good once */

	if (first && cmd_hello_auth(s, r, out) != 0)
		return NEXT_CLOSE;
	if (s->hello) {
		cmd_reply(out, REPLY_ERR " %s HELLO was already said", ERR_HELLO);
		return NEXT_LINE;
	}
	if (parse_u64(r->argv[0], 0, UINT64_MAX, &v) != 0) {
		cmd_reply(out, REPLY_ERR " %s bad version \"%.20s\"%s",
		    ERR_PROTO, r->argv[0], first ? "; closing" : "");
		return first ? NEXT_CLOSE : NEXT_LINE;
	}
	if (v < JQ_PROTO_MIN) {
		cmd_reply(out, REPLY_ERR " %s this server speaks versions %d to "
		    "%d; closing", ERR_VERSION, JQ_PROTO_MIN, JQ_PROTO_VERSION);
		return NEXT_CLOSE;
	}
	if ((name = proto_kv(r, KEY_NAME)) != NULL) {
		dup = xstrdup(name);
		if ((n = proto_decode(dup)) < 0 || n > JQ_WORKER_MAX ||
		    memchr(dup, '\0', (size_t)n) != NULL) {
			free(dup);
			cmd_reply(out, REPLY_ERR " %s bad worker name (at most "
			    "%d bytes, percent-encoded)%s", ERR_PROTO,
			    JQ_WORKER_MAX, first ? "; closing" : "");
			return first ? NEXT_CLOSE : NEXT_LINE;
		}
		free(s->name);
		s->name = dup;
	}
	s->hello = 1;
	if (s->nonce[0] != '\0') {
		auth_mac(server.cfg.key, "server", s->nonce, s->cn, mac);
		cmd_reply(out, REPLY_OK " %u " KEY_AUTH "=%s", v < JQ_PROTO_VERSION ?
		    (unsigned)v : JQ_PROTO_VERSION, mac);
		return NEXT_LINE;
	}
	cmd_reply(out, REPLY_OK " %u", v < JQ_PROTO_VERSION ? (unsigned)v :
	    JQ_PROTO_VERSION);
	return NEXT_LINE;
}

/* Forget the TAKE being served: its glob and its queue names. */
void
cmd_take_forget(struct session *s)
{
	size_t	 i;

	free(s->take_match);
	s->take_match = NULL;
	for (i = 0; i < s->take_nqueue; i++)
		free(s->take_queue[i]);
	free(s->take_queue);
	s->take_queue = NULL;
	s->take_nqueue = 0;
}

/*
 * Split TAKE's queue=a,b,... into names (*v, *n: each once); 0, or -1 if a
 * name is bad or there are more than JQ_TAKE_QUEUES_MAX.
 */
static int
cmd_take_queues(const char *list, char ***v, size_t *n)
{
	const char	*p = list, *end;
	size_t		 len, i;

	*v = NULL;
	*n = 0;
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (!proto_queue_valid(p, len) || *n >= JQ_TAKE_QUEUES_MAX)
			goto bad;
		for (i = 0; i < *n && (strlen((*v)[i]) != len ||
		    memcmp((*v)[i], p, len) != 0); i++)
			;
		if (i == *n) {
			*v = xreallocarray(*v, *n + 1, sizeof **v);
			(*v)[(*n)++] = xstrndup(p, len);
		}
		if (end == NULL)
			return 0;
		p = end + 1;
	}
bad:
	for (i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
	*n = 0;
	return -1;
}

/*
 * TAKE [match=<glob>] [wait=<seconds>] [hold=conn|lease] [lease=<seconds>]
 * [queue=<name>[,<name>]...]
 */
static enum cmd_next
cmd_take(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*match = proto_kv(r, KEY_MATCH);
	const char	*wait = proto_kv(r, KEY_WAIT);
	const char	*hold = proto_kv(r, KEY_HOLD);
	const char	*lease = proto_kv(r, KEY_LEASE);
	const char	*queues = proto_kv(r, KEY_QUEUE);
	unsigned	 secs = 0, lease_s = 0;
	ssize_t		 n;
	char		*dup = NULL, **qv = NULL;
	size_t		 nq = 0;

	if (hold != NULL && strcmp(hold, HOLD_CONN) != 0 &&
	    strcmp(hold, HOLD_LEASE) != 0) {
		cmd_reply(out, REPLY_ERR " %s hold= must be conn or lease",
		    ERR_PROTO);
		return NEXT_LINE;
	}
	if (wait != NULL && parse_uint(wait, 0, JQ_SECONDS_MAX, &secs) != 0) {
		cmd_reply(out, REPLY_ERR " %s wait= must be 0 to %d seconds",
		    ERR_PROTO, JQ_SECONDS_MAX);
		return NEXT_LINE;
	}
	if (lease != NULL && parse_uint(lease, 1, JQ_SECONDS_MAX, &lease_s)
	    != 0) {
		cmd_reply(out, REPLY_ERR " %s lease= must be 1 to %d seconds",
		    ERR_PROTO, JQ_SECONDS_MAX);
		return NEXT_LINE;
	}
	if (queues != NULL && cmd_take_queues(queues, &qv, &nq) != 0) {
		cmd_reply(out, REPLY_ERR " %s bad queue= (1 to %d names of 1 to "
		    "%d bytes of A-Za-z0-9._-, comma-separated)", ERR_PROTO,
		    JQ_TAKE_QUEUES_MAX, JQ_QUEUE_NAME_MAX);
		return NEXT_LINE;
	}
	if (match != NULL) {
		dup = xstrdup(match);
		if ((n = proto_decode(dup)) <= 0 || n > JQ_GLOB_MAX ||
		    memchr(dup, '\0', (size_t)n) != NULL) {
			free(dup);
			while (nq > 0)
				free(qv[--nq]);
			free(qv);
			cmd_reply(out, REPLY_ERR " %s bad match= pattern (1 to "
			    "%d bytes, percent-encoded)", ERR_PROTO, JQ_GLOB_MAX);
			return NEXT_LINE;
		}
	}
	s->worker = 1;
	cmd_take_forget(s);
	s->take_match = dup;
	s->take_queue = qv;
	s->take_nqueue = nq;
	s->take_hold_conn = hold != NULL && strcmp(hold, HOLD_CONN) == 0;
	s->take_nowait = wait != NULL && secs == 0;
	s->take_wait_s = wait != NULL ? secs : 0;
	s->take_lease_ms = (uint64_t)lease_s * 1000;
	return NEXT_TAKE;
}

/*
 * PUT <id> token=<t> [size=<n>], then a payload.  The job it is stored
 * under is the one the token names (jobs_put_target), which the reply
 * OK <id> tells.
 */
static enum cmd_next
cmd_put(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char		*err = NULL, *size = proto_kv(r, KEY_SIZE), *outcome;
	const char		*kind = proto_kv(r, KEY_KIND);
	char			*errmsg = NULL;
	struct job		*j = NULL;
	struct proto_token	 t;
	uint64_t		 n;
	enum cmd_next		 next;

	(void)out;
	if (cmd_token(r, &t, &errmsg) != 0)
		err = ERR_PROTO;
	else if (kind != NULL && strcmp(kind, KIND_TREE) != 0) {
		err = ERR_PROTO;
		errmsg = xprintf(KEY_KIND "=%.24s is not a kind of result "
		    "(only " KEY_KIND "=" KIND_TREE "); nothing stored", kind);
	}
	else if ((j = jobs_put_target(r->argv[0], &t, &err, &errmsg)) != NULL) {
		if ((outcome = jobs_outcome(j)) != NULL) {
			err = ERR_DONE;
			errmsg = xprintf("job %llu already %s; this result was "
			    "not stored", (unsigned long long)j->id, outcome);
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
	next = cmd_receive(s, CMD_PUT, j, err, errmsg);
	if (err == NULL) {
		s->rx.token = t;	/* which attempt an ERR IO reopens */
		s->rx.tree = kind != NULL;	/* unpacked when committed */
	}
	return next;
}

/*
 * FAIL <id> token=<t> [exit=<n>] [signal=<n>] [timeout=1] [tempfail=1],
 * then the message; only from the holder of the current attempt.
 * tempfail=1: a temporary failure (jobs.c, jobs_tempfail).
 */
static enum cmd_next
cmd_fail(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*err = NULL, *v;
	char		*errmsg = NULL;
	struct job	*j;
	unsigned	 n;
	enum cmd_next	 next;

	(void)out;
	j = cmd_held_job(r, &err, &errmsg);
	if (err == NULL && (v = proto_kv(r, KEY_EXIT)) != NULL &&
	    parse_uint(v, 0, 255, &n) != 0) {
		err = ERR_PROTO;
		errmsg = xprintf("exit=%.24s is not a number from 0 to 255", v);
	}
	if (err == NULL && (v = proto_kv(r, KEY_SIGNAL)) != NULL &&
	    parse_uint(v, 1, 128, &n) != 0) {
		err = ERR_PROTO;
		errmsg = xprintf("signal=%.24s is not a number from 1 to 128", v);
	}
	next = cmd_receive(s, CMD_FAIL, j, err, errmsg);
	if ((v = proto_kv(r, KEY_EXIT)) != NULL && parse_uint(v, 0, 255, &n) == 0)
		s->rx.status = xprintf(STATUS_EXIT ":%u", n);
	else if ((v = proto_kv(r, KEY_SIGNAL)) != NULL &&
	    parse_uint(v, 1, 128, &n) == 0)
		s->rx.status = xprintf(STATUS_SIGNAL ":%u", n);
	else if (proto_kv(r, KEY_TIMEOUT) != NULL)
		s->rx.status = xstrdup(STATUS_TIMEOUT);
	if ((v = proto_kv(r, KEY_TEMPFAIL)) != NULL && strcmp(v, "1") == 0)
		s->rx.tempfail = 1;
	return next;
}

/* RELEASE <id> token=<t>: the holder hands its job back to the queue. */
static enum cmd_next
cmd_release(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct job	*j;

	if ((j = cmd_held_job_or_reply(r, out)) == NULL)
		return NEXT_LINE;
	jobs_release(j);
	log_info("job %llu %s released by %s", (unsigned long long)j->id,
	    j->path, cmd_who(s));
	cmd_reply(out, REPLY_OK " %llu", (unsigned long long)j->id);
	return NEXT_LINE;
}

/*
 * TOUCH <id> token=<t> [lease=<seconds>]: the holder renews its lease,
 * capped as jobs_touch says.
 */
static enum cmd_next
cmd_touch(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*v;
	struct job	*j;
	unsigned	 secs = 0;

	(void)s;
	if ((j = cmd_held_job_or_reply(r, out)) == NULL)
		return NEXT_LINE;
	if ((v = proto_kv(r, KEY_LEASE)) != NULL &&
	    parse_uint(v, 1, JQ_SECONDS_MAX, &secs) != 0) {
		cmd_reply(out, REPLY_ERR " %s lease= must be 1 to %d seconds",
		    ERR_PROTO, JQ_SECONDS_MAX);
		return NEXT_LINE;
	}
	jobs_touch(j, (uint64_t)secs * 1000);
	cmd_reply(out, REPLY_OK " %llu " KEY_LEASE "=%llu",
	    (unsigned long long)j->id,
	    (unsigned long long)(j->run->lease_ms + 999) /
	    1000);
	return NEXT_LINE;
}

/* RETRY <id>: a failed job waits again, its attempts counted afresh. */
static enum cmd_next
cmd_retry(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	char		*errmsg = NULL;
	struct job	*j, *p;
	int		 ended;

	if ((j = cmd_job_or_reply(r, out)) == NULL)
		return NEXT_LINE;
	/*
	 * The run ends the moment every job has finished, not when the
	 * deferred server_check notices: a RETRY read in the same batch as
	 * the last PUT must not revive it.
	 */
	if (jobs_stopping()) {
		cmd_reply(out, REPLY_ERR " %s job %llu cannot run again: the "
		    "server is shutting down", ERR_CLOSED,
		    (unsigned long long)j->id);
		return NEXT_LINE;
	}
	if (j->origin == JOB_SPOOL && j->in_name == NULL) {
		cmd_reply(out, REPLY_ERR " %s job %llu cannot run again: its "
		    "data is gone", ERR_NOTHELD, (unsigned long long)j->id);
		return NEXT_LINE;
	}
	ended = (server.finishing || queue_all_finished(&server.queue)) &&
	    !server.cfg.keep;
	if (j->state != JOB_FAILED || ended) {
		cmd_reply(out, REPLY_ERR " %s job %llu %s", ERR_NOTHELD,
		    (unsigned long long)j->id, ended ?
		    "cannot run again: the run has ended" : "has not failed");
		return NEXT_LINE;
	}
	if ((p = deps_failed_prereq(&server.queue, j)) != NULL) {
		cmd_reply(out, REPLY_ERR " %s job %llu cannot run again: its "
		    "prerequisite job %llu has failed; retry that one first",
		    ERR_NOTHELD, (unsigned long long)j->id,
		    (unsigned long long)p->id);
		return NEXT_LINE;
	}
	if (jobs_retry(j, cmd_who(s), &errmsg) != 0) {
		cmd_reply(out, REPLY_ERR " %s %s", ERR_IO, errmsg);
		free(errmsg);
		return NEXT_LINE;
	}
	cmd_reply(out, REPLY_OK " %llu", (unsigned long long)j->id);
	return NEXT_LINE;
}

/* Append one WORKER line for session w. */
static void
cmd_stat_worker(const struct session *w, struct evbuffer *out)
{
	struct job	*j;
	unsigned	 running = 0;
	char		*name, *peer;

	LIST_FOREACH(j, &w->held, run->hold_entry)
		running++;
	name = w->name ? proto_encode_dup(w->name, strlen(w->name)) :
	    proto_encode_dup(w->peer, strlen(w->peer));
	peer = proto_encode_dup(w->peer, strlen(w->peer));
	cmd_reply(out, REPLY_WORKER " %s " STAT_PEER "=%s " STAT_RUNNING "=%u "
	    STAT_DONE "=%u " STAT_FAILED "=%u", name, peer, running, w->ndone,
	    w->nfailed);
	free(name);
	free(peer);
}

/* Encode the tail of a job's failure message in at most room bytes. */
char *
cmd_stat_msg(const struct job *j, size_t room)
{
	const char	*m = j->fail_msg ? j->fail_msg : "";
	size_t		 len = j->fail_msg ? j->fail_len : 0, skip = 0;

	/* a byte encodes to 1 or 3 characters: drop from the front */
	while (proto_encoded_len(m + skip, len - skip) >= room)
		skip += (proto_encoded_len(m + skip, len - skip) - room) / 3 + 1;
	return proto_encode_dup(m + skip, len - skip);
}

/* STAT: counts, workers, failed jobs, END. */
static enum cmd_next
cmd_stat(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct queue	*q = &server.queue;
	struct session	*w;
	struct job	*j;
	struct progress	 p;
	unsigned	 nworkers = 0, nfailed = 0;
	size_t		 i;
	char		*name, *msg;

	(void)s;
	(void)r;
	TAILQ_FOREACH(w, &cmd_sessions, entry)
		nworkers += w->worker;
	nfailed = q->count[JOB_FAILED] < JQ_STAT_FAILED_MAX ?
	    (unsigned)q->count[JOB_FAILED] : JQ_STAT_FAILED_MAX;
	status_get(&p);
	cmd_reply(out, REPLY_STAT " " STAT_TOTAL "=%zu " STAT_WAITING "=%zu "
	    STAT_RUNNING "=%zu " STAT_DONE "=%zu " STAT_FAILED "=%zu "
	    STAT_WORKERS "=%u " STAT_FAILED_LISTED "=%u " STAT_VERSION "=%s "
	    STAT_PROTOCOL "=%d " STAT_ELAPSED "=%llu " STAT_RESUMED "=%llu "
	    STAT_BLOCKED "=%zu " STAT_WINDOW_MS "=%llu " STAT_WINDOW_FINISHED
	    "=%llu " STAT_IDLE "=%d",
	    q->njobs, q->count[JOB_WAITING],
	    q->count[JOB_RUNNING], q->count[JOB_DONE], q->count[JOB_FAILED],
	    nworkers, nfailed, JQ_VERSION, JQ_PROTO_VERSION,
	    (unsigned long long)p.elapsed_ms, (unsigned long long)p.resumed,
	    q->count[JOB_BLOCKED], (unsigned long long)p.window_ms,
	    (unsigned long long)p.window_finished, p.idle);
	TAILQ_FOREACH(w, &cmd_sessions, entry)
		if (w->worker)
			cmd_stat_worker(w, out);
	for (i = 1; i <= q->njobs && nfailed > 0; i++) {
		j = queue_get(q, i);
		if (j->state != JOB_FAILED)
			continue;
		nfailed--;
		name = proto_encode_dup(j->path, strlen(j->path));
		msg = cmd_stat_msg(j, JQ_LINE_MAX - 128 - strlen(name));
		cmd_reply(out, REPLY_FAILED " %llu %s " STAT_STATUS "=%s "
		    STAT_MSG "=%s", (unsigned long long)j->id, name,
		    j->fail_status ? j->fail_status : STATUS_FAILED, msg);
		free(name);
		free(msg);
	}
	listing_queues(q, out);
	cmd_reply(out, REPLY_END);
	return NEXT_LINE;
}

/*
 * Read ADD's queue= and priority= into *qix (the queue, made if it is
 * new) and *prio; or say what is wrong in *errmsg, for ERR PROTO (a bad
 * value) or, when JQ_QUEUES_MAX queues exist, ERR FULL (*full set).
 */
static int
cmd_add_queue(struct proto_req *r, uint16_t *qix, int *prio, int *full,
    char **errmsg)
{
	const char	*qn = proto_kv(r, KEY_QUEUE);
	const char	*pr = proto_kv(r, KEY_PRIORITY);
	char		*cause = NULL;
	int		 ix;

	*prio = 0;
	*full = 0;
	if (pr != NULL && parse_int(pr, JQ_PRIORITY_MIN, JQ_PRIORITY_MAX,
	    prio) != 0) {
		*errmsg = xprintf(KEY_PRIORITY "= must be %d to %d; nothing "
		    "added", JQ_PRIORITY_MIN, JQ_PRIORITY_MAX);
		return -1;
	}
	if (qn != NULL && !proto_queue_valid(qn, strlen(qn))) {
		*errmsg = xprintf("bad " KEY_QUEUE "= (1 to %d bytes of "
		    "A-Za-z0-9._-); nothing added", JQ_QUEUE_NAME_MAX);
		return -1;
	}
	if (qn == NULL)
		qn = QUEUE_DEFAULT;	/* made with the first job, maybe this */
	if ((ix = queue_named_get(&server.queue, qn, strlen(qn),
	    &cause)) < 0) {
		*errmsg = xprintf("%s; nothing added", cause);
		free(cause);
		*full = 1;
		return -1;
	}
	*qix = (uint16_t)ix;
	return 0;
}

/*
 * The ids of the jobs named in list, comma-separated percent-encoded
 * names (a comma in a name is %2C), appended to *v (*n of them, at most
 * JQ_AFTER_MAX); 0, or -1 with *err and *errmsg.  A name is resolved once:
 * a job keeps its id.
 */
static int
cmd_add_names(const char *list, uint32_t **v, uint32_t *n, const char **err,
    char **errmsg)
{
	char		*copy = xstrdup(list), *p = copy, *word;
	struct job	*j;
	ssize_t		 len;
	int		 e;

	while ((word = strsep(&p, ",")) != NULL) {
		if ((len = proto_decode(word)) <= 0 || len > JQ_NAME_MAX ||
		    memchr(word, '\0', (size_t)len) != NULL) {
			*err = ERR_PROTO;
			*errmsg = xstrdup("bad job name in a list of names "
			    "(percent-encoded, commas as %2C)");
			break;
		}
		if ((j = queue_find_name(&server.queue, word, (size_t)len,
		    &e)) == NULL) {
			*err = e ? ERR_IO : ERR_NOSUCHJOB;
			*errmsg = e ? xprintf("cannot look the name up: %s",
			    strerror(e)) : xprintf("no job named \"%.200s\"; "
			    "nothing added", word);
			break;
		}
		if (*n >= JQ_AFTER_MAX) {
			*err = ERR_PROTO;
			*errmsg = xprintf("more than %d prerequisites; nothing "
			    "added", JQ_AFTER_MAX);
			break;
		}
		*v = xreallocarray(*v, *n + 1, sizeof **v);
		(*v)[(*n)++] = (uint32_t)j->id;
	}
	free(copy);
	return word == NULL ? 0 : -1;
}

/*
 * Read ADD's after=, after_name=, before= and before_name= into add a
 * (names resolved to ids); or say what is wrong in *err and *errmsg.
 */
static int
cmd_add_deps(struct proto_req *r, struct spool_add *a, const char **err,
    char **errmsg)
{
	const char	*v;
	uint32_t	*ids = NULL, n = 0;
	unsigned	 id;

	*err = ERR_PROTO;
	if ((v = proto_kv(r, KEY_AFTER)) != NULL &&
	    deps_parse_ids(v, &a->after, &a->nafter, errmsg) != 0)
		return -1;
	if ((v = proto_kv(r, KEY_AFTER_NAME)) != NULL &&
	    cmd_add_names(v, &a->after, &a->nafter, err, errmsg) != 0)
		return -1;
	if ((v = proto_kv(r, KEY_BEFORE)) != NULL) {
		if (parse_uint(v, 1, QUEUE_JOBS_MAX, &id) != 0) {
			*errmsg = xprintf(KEY_BEFORE "=%.24s is not a job id; "
			    "nothing added", v);
			return -1;
		}
		a->before = id;
	}
	if ((v = proto_kv(r, KEY_BEFORE_NAME)) != NULL) {
		if (cmd_add_names(v, &ids, &n, err, errmsg) != 0 || n != 1) {
			if (n > 1) {
				*err = ERR_PROTO;
				*errmsg = xstrdup(KEY_BEFORE_NAME "= names one "
				    "job; nothing added");
			}
			free(ids);
			return -1;
		}
		a->before = ids[0];
		free(ids);
	}
	return 0;
}

/*
 * Read ADD's name=, size=, if_new= and the dependencies into a new add
 * (*a) and *size; or say what is wrong in *err and *errmsg.
 */
static int
cmd_add_args(struct proto_req *r, struct spool_add **a, uint64_t *size,
    const char **err, char **errmsg)
{
	const char	*v, *sz = proto_kv(r, KEY_SIZE), *ifnew;
	char		*name;
	ssize_t		 len;

	*size = UINT64_MAX;
	*err = ERR_PROTO;
	ifnew = proto_kv(r, KEY_IF_NEW);
	if ((v = proto_kv(r, KEY_NAME)) == NULL) {
		*errmsg = xstrdup("ADD needs " KEY_NAME "= (the job's name)");
		return -1;
	}
	if (sz != NULL && parse_u64(sz, 0, UINT64_MAX, size) != 0) {
		*errmsg = xprintf(KEY_SIZE "=%.24s is not a number; nothing "
		    "added", sz);
		return -1;
	}
	if (ifnew != NULL && strcmp(ifnew, "0") != 0 && strcmp(ifnew, "1") != 0) {
		*errmsg = xstrdup(KEY_IF_NEW "= must be 0 or 1");
		return -1;
	}
	name = xstrdup(v);
	if ((len = proto_decode(name)) <= 0 || len > JQ_NAME_MAX ||
	    memchr(name, '\0', (size_t)len) != NULL) {
		free(name);
		*errmsg = xprintf("bad " KEY_NAME "= (1 to %d bytes, "
		    "percent-encoded, no NUL)", JQ_NAME_MAX);
		return -1;
	}
	*a = spool_add_new(name, (size_t)len, ifnew != NULL &&
	    strcmp(ifnew, "1") == 0);
	free(name);
	if (cmd_add_deps(r, *a, err, errmsg) != 0) {
		spool_add_free(*a);
		*a = NULL;
		return -1;
	}
	return 0;
}

/*
 * ADD name=<enc> [size=<n>] [if_new=1] [after=<ids>] [before=<id>], then
 * the job's data: a new job (running after the jobs after= names, and
 * before the one before= names: deps.c),
 * answered OK <id> (conn.c) once its data and its record are durable.  A
 * name that is a job already is refused (ERR EXISTS), or with if_new=1
 * answered OK <id> existing=1, the data dropped.  What is checked here is
 * checked again when the data is in (conn.c): meanwhile another ADD may
 * have taken the name.
 */
static enum cmd_next
cmd_add(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct spool_add	*a = NULL, *pending;
	struct job		*existing = NULL, *drop = NULL;
	const char		*err = NULL;
	char			*errmsg = NULL;
	uint64_t		 size;
	uint16_t		 qix = 0;
	int			 prio = 0, full;

	(void)out;
	if (cmd_add_args(r, &a, &size, &err, &errmsg) != 0)
		;	/* err and errmsg say why */
	else if (!server.finishing && !jobs_stopping() &&
	    cmd_add_queue(r, &qix, &prio, &full, &errmsg) != 0)
		err = full ? ERR_FULL : ERR_PROTO;
	else if (server.finishing || jobs_stopping()) {
		err = ERR_CLOSED;
		errmsg = xstrdup(server.finishing ? "the run has ended; nothing "
		    "added" : "the server is shutting down; nothing added");
	} else if (deps_check(&server.queue, a->after, a->nafter, a->before,
	    &err, &errmsg) != 0) {
		;	/* refused: the data is dropped, then answered */
	} else {
		switch (spool_check(&server.queue, a, size, &existing, &pending,
		    &err, &errmsg)) {
		case SPOOL_OK:
			break;
		case SPOOL_PENDING:
			if (a->if_new)
				break;	/* conn.c waits for the other one */
			err = ERR_EXISTS;
			errmsg = xstrdup("a job of that name is being added");
			break;
		case SPOOL_EXISTS:
			if (a->if_new) {
				drop = existing;
				break;
			}
			err = ERR_EXISTS;
			errmsg = xprintf("job %llu has that name; nothing added",
			    (unsigned long long)existing->id);
			break;
		case SPOOL_REFUSED:
			break;
		}
	}
	if (err != NULL || drop != NULL || a == NULL) {
		spool_add_free(a);
		a = NULL;
	} else {
		a->queue_ix = qix;
		snprintf(a->queue, sizeof a->queue, "%s",
		    server.queue.named[qix]->name);
		a->priority = prio;
	}
	s->rx.add = a;
	s->rx.drop = drop != NULL;
	payload_begin(&s->rx, CMD_ADD, drop, spool_max_add(), err, errmsg);
	return NEXT_PAYLOAD;
}

/*
 * SHUTDOWN: no job is added or handed out from now on; once the running
 * ones have finished (or their leases run out), the server ends.  OK tells
 * how many still run.
 */
static enum cmd_next
cmd_shutdown(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	(void)r;
	jobs_shutdown(cmd_who(s));
	cmd_reply(out, REPLY_OK " " KEY_RUNNING "=%zu",
	    server.queue.count[JOB_RUNNING]);
	return NEXT_LINE;
}

/* QUIT */
static enum cmd_next
cmd_quit(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	(void)s;
	(void)r;
	cmd_reply(out, REPLY_OK " " REPLY_BYE);
	return NEXT_CLOSE;
}

/* Handlers, indexed by enum proto_cmd. */
static enum cmd_next (*const cmd_handlers[CMD_COUNT])(struct session *,
    struct proto_req *, struct evbuffer *) = {
	[CMD_HELLO] = cmd_hello,
	[CMD_TAKE] = cmd_take,
	[CMD_PUT] = cmd_put,
	[CMD_FAIL] = cmd_fail,
	[CMD_RELEASE] = cmd_release,
	[CMD_TOUCH] = cmd_touch,
	[CMD_RETRY] = cmd_retry,
	[CMD_STAT] = cmd_stat,
	[CMD_JOBS] = listing_jobs,
	[CMD_QUIT] = cmd_quit,
	[CMD_ADD] = cmd_add,
	[CMD_SHUTDOWN] = cmd_shutdown,
	[CMD_WAIT] = wait_request,
	[CMD_CANCEL] = manage_cancel,
	[CMD_DRAIN] = manage_drain,
	[CMD_UNDRAIN] = manage_undrain,
};

/*
 * Handle one request line of session s, replies to out; return what the
 * connection does next.
 */
enum cmd_next
cmd_request(struct session *s, char *line, struct evbuffer *out)
{
	struct proto_req	 r;
	char			*cause;

	if (!s->authed) {
		if (proto_parse_request(line, &r, &cause) != 0) {
			free(cause);
			return cmd_auth_refuse(s, "authenticate first", out);
		}
		if (r.cmd != CMD_HELLO)
			return cmd_auth_refuse(s, "authenticate first", out);
		return cmd_hello(s, &r, out);
	}
	if (proto_parse_request(line, &r, &cause) != 0) {
		/* a payload follows all the same: drop it, then answer */
		if (r.flags & PROTO_PAYLOAD)
			return cmd_receive(s, r.cmd, NULL, ERR_PROTO, cause);
		cmd_reply(out, REPLY_ERR " %s %s", ERR_PROTO, cause);
		free(cause);
		return NEXT_LINE;
	}
	if (!s->hello && !(r.flags & PROTO_PREHELLO)) {
		if (r.flags & PROTO_PAYLOAD)
			return cmd_receive(s, r.cmd, NULL, ERR_HELLO,
			    xstrdup("say HELLO first"));
		cmd_reply(out, REPLY_ERR " %s say HELLO first", ERR_HELLO);
		return NEXT_LINE;
	}
	return cmd_handlers[r.cmd](s, &r, out);
}
