/*
 * client.c: a blocking connection to jq-serve, shared by jq-take, jq-put,
 * jq-stat and jq-run.
 *
 * Input is read into a fixed buffer; lines and payload bytes are handed out
 * from it without copying.  Output is buffered and flushed before every read
 * (and when full), so pipelined requests leave in as few writes as possible.
 *
 * Size: about 850 lines, past the 800 we aim for, since issue 9 added the
 * server's proof (client_hello and its checks) and the job handles.  The
 * handshake is the next piece to move out, once the line reader it uses
 * is a module of its own below both (else the two would call each other).
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define CLIENT_IN_SIZE	(256U << 10)	/* must exceed JQ_LINE_MAX */
#define CLIENT_TOKEN_HINT "copy the token file from the server's host (mode 0600), or name it with --token-file or JQ_TOKEN_FILE"
#define CLIENT_OUT_SIZE	(64U << 10)
#define CLIENT_NO_AUTH_HINT "--no-auth or JQ_NO_AUTH=1 talks to it anyway"

struct client {
	int	 fd;
	char	*server;
	int	 status;		/* JQ_EXIT_* fitting the last failure */
	char	*in;
	size_t	 in_off, in_len;	/* unread bytes: in[in_off .. in_len) */
	char	*out;
	size_t	 out_len;
	char	*chunk;			/* JQ_CHUNK bytes for client_tx_fd */
};

/* Record a failure: its exit status and message. */
static int
client_fail_with(struct client *c, int status, char **cause, char *msg)
{
	c->status = status;
	*cause = msg;
	return -1;
}

/* Send len bytes on the socket, whole; SIGPIPE never fires. */
static int
client_send_raw(struct client *c, const void *buf, size_t len, char **cause)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return client_fail_with(c, JQ_EXIT_CONNECT, cause,
			    xprintf("%s did not answer within %d s", c->server,
			    NET_HANDSHAKE_S));
		if (n < 0)
			return client_fail_with(c, JQ_EXIT_CONNECT, cause,
			    xprintf("connection to %s lost: %s", c->server,
			    strerror(errno)));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write out everything buffered for the server. */
int
client_flush(struct client *c, char **cause)
{
	size_t	 len = c->out_len;

	c->out_len = 0;
	return len == 0 ? 0 : client_send_raw(c, c->out, len, cause);
}

/* Queue bytes for the server; large ones go straight out. */
int
client_write(struct client *c, const void *buf, size_t len, char **cause)
{
	if ((c->out_len + len > CLIENT_OUT_SIZE || len >= CLIENT_OUT_SIZE / 2) &&
	    client_flush(c, cause) != 0)
		return -1;
	if (len >= CLIENT_OUT_SIZE / 2)		/* whatever was queued is out */
		return client_send_raw(c, buf, len, cause);
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	return 0;
}

/* Queue one request line; the LF is added here. */
static int JQ_PRINTF(3, 0)
client_vsend(struct client *c, char **cause, const char *fmt, va_list ap)
{
	char	 line[JQ_LINE_MAX + 1];
	int	 n;

	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof line - 1)
		return client_fail_with(c, JQ_EXIT_USAGE, cause,
		    xprintf("request longer than %d bytes", JQ_LINE_MAX));
	line[n++] = '\n';
	return client_write(c, line, (size_t)n, cause);
}

/* Queue one request line, printf-style. */
int
client_send(struct client *c, char **cause, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = client_vsend(c, cause, fmt, ap);
	va_end(ap);
	return rc;
}

/* Read more from the server into the input buffer (flushing first). */
static int
client_fill(struct client *c, char **cause)
{
	ssize_t	 n;

	if (client_flush(c, cause) != 0)
		return -1;
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	for (;;) {
		n = read(c->fd, c->in + c->in_len, CLIENT_IN_SIZE - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return client_fail_with(c, JQ_EXIT_CONNECT, cause,
			    xprintf("%s did not answer within %d s", c->server,
			    NET_HANDSHAKE_S));
		if (n < 0)
			return client_fail_with(c, JQ_EXIT_CONNECT, cause,
			    xprintf("connection to %s lost: %s", c->server,
			    strerror(errno)));
		if (n == 0)
			return client_fail_with(c, JQ_EXIT_CONNECT, cause,
			    xprintf("%s closed the connection", c->server));
		c->in_len += (size_t)n;
		return 0;
	}
}

/* Return the next line from the server, without LF or CR. */
char *
client_line(struct client *c, char **cause)
{
	char	*start, *nl;

	for (;;) {
		start = c->in + c->in_off;
		nl = memchr(start, '\n', c->in_len - c->in_off);
		if (nl != NULL && nl - start >= JQ_LINE_MAX) {
			client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
			    xprintf("%s sent a line longer than %d bytes",
			    c->server, JQ_LINE_MAX));
			return NULL;
		}
		if (nl != NULL) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			c->in_off = (size_t)(nl + 1 - c->in);
			return start;
		}
		if (c->in_len - c->in_off > JQ_LINE_MAX) {
			client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
			    xprintf("%s sent a line longer than %d bytes",
			    c->server, JQ_LINE_MAX));
			return NULL;
		}
		if (client_fill(c, cause) != 0)
			return NULL;
	}
}

/* If line begins with prefix, return what follows it; else NULL. */
static char *
client_prefix(char *line, const char *prefix)
{
	size_t	 n = strlen(prefix);

	return strncmp(line, prefix, n) == 0 ? line + n : NULL;
}

/* Map an error code from the server to an exit status. */
static int
client_err_status(const char *code)
{
	if (strcmp(code, ERR_DONE) == 0 || strcmp(code, ERR_NOSUCHJOB) == 0 ||
	    strcmp(code, ERR_NOTHELD) == 0 || strcmp(code, ERR_STALE) == 0 ||
	    strcmp(code, ERR_EXISTS) == 0 || strcmp(code, ERR_BADNAME) == 0 ||
	    strcmp(code, ERR_RUNNING) == 0 || strcmp(code, ERR_CYCLE) == 0)
		return JQ_EXIT_REFUSED;
	if (strcmp(code, ERR_CLOSED) == 0)	/* the next server may take it */
		return JQ_EXIT_CONNECT;
	if (strcmp(code, ERR_AUTH) == 0)
		return JQ_EXIT_AUTH;
	return JQ_EXIT_PROTOCOL;
}

/* Turn an "ERR CODE text" line (or any unexpected line) into a failure. */
int
client_bad_reply(struct client *c, char *line, char **cause)
{
	char	*p, *code;

	if ((p = client_prefix(line, REPLY_ERR " ")) != NULL) {
		code = proto_word(&p);
		return client_fail_with(c, client_err_status(code ? code : ""),
		    cause, xprintf("server refused: %s (%s)", *p ? p :
		    "no reason given", code ? code : "?"));
	}
	return client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
	    xprintf("unexpected reply from %s: \"%.80s\"", c->server, line));
}

/* Read an OK/ERR reply; on OK, *rest (if wanted) is the text after "OK". */
int
client_reply(struct client *c, char **rest, char **cause)
{
	char	*line, *after;

	if ((line = client_line(c, cause)) == NULL)
		return -1;
	if ((after = client_prefix(line, REPLY_OK " ")) != NULL ||
	    strcmp(line, REPLY_OK) == 0) {
		if (rest != NULL)
			*rest = after ? after : line + strlen(line);
		return 0;
	}
	return client_bad_reply(c, line, cause);
}

/* Send one request line and read its OK/ERR reply. */
int
client_simple(struct client *c, char **cause, const char *fmt, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	rc = client_vsend(c, cause, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return -1;
	return client_reply(c, NULL, cause);
}

/* Fail with JQ_EXIT_AUTH: why, and the token file concerned. */
static int
client_auth_fail(struct client *c, char **cause, const char *why,
    const char *path)
{
	return client_fail_with(c, JQ_EXIT_AUTH, cause, xprintf("%s: %s %s; "
	    "%s", c->server, why, path, CLIENT_TOKEN_HINT));
}

/*
 * Return 1 if the user lets us talk to a server that does not prove itself:
 * --no-auth, or JQ_NO_AUTH set to anything but "" and "0".
 */
static int
client_no_auth(void)
{
	const char	*env;

	if (cli_no_auth)
		return 1;
	env = getenv("JQ_NO_AUTH");
	return env != NULL && *env != '\0' && strcmp(env, "0") != 0;
}

/*
 * May root trust a UNIX server run by another user, uid?  Only where nobody
 * else could have put it: the socket file we named is uid's, in a directory
 * of uid's or root's that nobody else may write (systemd's RuntimeDirectory
 * of a service run as jq, say).  Root could read that user's token anyway.
 */
static int
client_root_trusts(const char *addr, uid_t uid)
{
	struct net_addr	 a;
	struct stat	 st;
	char		*cause = NULL, *slash;

	if (net_parse_addr(addr, 0, &a, &cause) != 0) {
		free(cause);
		return 0;
	}
	if (!a.unix_path || lstat(a.host, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != uid)
		return 0;
	if ((slash = strrchr(a.host, '/')) == NULL)
		strcpy(a.host, ".");
	else
		slash[slash == a.host] = '\0';
	return stat(a.host, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_uid == uid || st.st_uid == 0) &&
	    (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/*
 * On a UNIX socket, ask the kernel (SO_PEERCRED) who runs the server: 1 if
 * it is our own user or root, which proves it as well as the token would,
 * or when we are root, another user whose own place the socket is.  0 on
 * TCP, or with --no-auth when it is another user; -1 (refused, with
 * JQ_EXIT_AUTH) for another user without --no-auth.
 */
static int
client_check_peer(struct client *c, char **cause)
{
	struct sockaddr_storage	 ss;
	struct ucred		 cred;
	socklen_t		 len = sizeof ss;

	memset(&ss, 0, sizeof ss);	/* getsockname may fill less of it */
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0 ||
	    ss.ss_family != AF_UNIX)
		return 0;
	len = sizeof cred;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return client_fail_with(c, JQ_EXIT_AUTH, cause, xprintf(
		    "%s: cannot learn which user runs the server: %s",
		    c->server, strerror(errno)));
	if (cred.uid == geteuid() || cred.uid == 0 ||
	    (geteuid() == 0 && client_root_trusts(c->server, cred.uid)))
		return 1;
	if (client_no_auth())
		return 0;
	return client_fail_with(c, JQ_EXIT_AUTH, cause, xprintf("%s: the "
	    "server runs as uid %u, neither our own (uid %u) nor root, so it "
	    "may be another user posing as jq-serve; refusing it (%s)",
	    c->server, (unsigned)cred.uid, (unsigned)geteuid(),
	    CLIENT_NO_AUTH_HINT));
}

/*
 * Say HELLO to a server that authenticates nobody (auth=none, or auth=peer
 * on a UNIX socket), if it proved itself by its uid or the user allows it.
 */
static int
client_hello_plain(struct client *c, const char *mode, int proven,
    const char *enc, char **cause)
{
	if (!proven && !client_no_auth())
		return client_fail_with(c, JQ_EXIT_AUTH, cause, xprintf("%s: "
		    "the server does not prove that it holds the token "
		    "(auth=%.40s), so it may be anyone posing as jq-serve; "
		    "refusing it (%s)", c->server, mode ? mode : AUTH_MODE_NONE,
		    CLIENT_NO_AUTH_HINT));
	if (client_send(c, cause, "HELLO %d name=%s", JQ_PROTO_VERSION,
	    enc) != 0)
		return -1;
	return client_reply(c, NULL, cause);
}

/*
 * Say HELLO, proving we hold the token when the greeting (its fields in
 * greet) asks for it, and check that the server proves itself: by the
 * token, or on a UNIX socket by running as our user.  Nothing about a job
 * is sent to a server that has not.
 */
static int
client_hello(struct client *c, char *greet, const char *enc, char **cause)
{
	struct auth_key	 key;
	char		*w, *v, *path, *rest, *proof, *sn = NULL, *mode = NULL;
	char		 cn[AUTH_HEX_LEN + 1], mac[AUTH_HEX_LEN + 1];
	int		 rc, proven;

	while ((w = proto_word(&greet)) != NULL) {
		if ((v = strchr(w, '=')) == NULL)
			continue;
		*v++ = '\0';
		if (strcmp(w, KEY_AUTH) == 0)
			mode = v;
		else if (strcmp(w, KEY_NONCE) == 0)
			sn = v;
	}
	if ((proven = client_check_peer(c, cause)) < 0)
		return -1;
	if (mode == NULL || strcmp(mode, AUTH_MODE_NONE) == 0 ||
	    strcmp(mode, AUTH_MODE_PEER) == 0)
		return client_hello_plain(c, mode, proven, enc, cause);
	if (strcmp(mode, AUTH_MODE_HMAC) != 0 || sn == NULL || !auth_is_hex(sn))
		return client_fail_with(c, JQ_EXIT_PROTOCOL, cause, xprintf(
		    "%s asks for an authentication this client does not know "
		    "(auth=%.40s)", c->server, mode));
	if ((path = auth_path(cli_token_file, cause)) == NULL) {
		c->status = JQ_EXIT_AUTH;
		return -1;
	}
	if ((rc = auth_load(path, 0, &key, cause)) != 0) {
		if (rc == AUTH_MISSING) {
			free(*cause);
			rc = client_auth_fail(c, cause, "the server needs a token "
			    "and there is no token file", path);
		} else {
			c->status = JQ_EXIT_AUTH;
			rc = -1;
		}
		free(path);
		return rc;
	}
	if (auth_init() != 0) {
		free(path);
		return client_fail_with(c, JQ_EXIT_IO, cause,
		    xstrdup("libsodium cannot start"));
	}
	sn = xstrdup(sn);	/* the greeting's buffer is reused */
	auth_nonce(cn);
	auth_mac(&key, "client", sn, cn, mac);
	rc = client_send(c, cause, "HELLO %d name=%s auth=%s:%s",
	    JQ_PROTO_VERSION, enc, cn, mac);
	if (rc == 0 && (rc = client_reply(c, &rest, cause)) != 0 &&
	    c->status == JQ_EXIT_AUTH) {
		free(*cause);
		rc = client_auth_fail(c, cause, "the server refused the token "
		    "in", path);
	}
	if (rc == 0) {
		v = NULL;
		while ((w = proto_word(&rest)) != NULL)
			if ((proof = client_prefix(w, KEY_AUTH "=")) != NULL)
				v = proof;	/* the last one counts */
		if (v == NULL || auth_check(&key, "server", sn, cn, v) != 0)
			rc = client_auth_fail(c, cause, "the server did not "
			    "prove it holds our token (a different server, or "
			    "a different token?)", path);
	}
	explicit_bzero(&key, sizeof key);
	free(sn);
	free(path);
	return rc;
}

/*
 * Connect to a server (addr NULL: $JQ_SERVER), read its greeting and say
 * HELLO as worker (NULL: HOSTNAME:PID).  On failure return NULL with *status
 * and *cause set.
 */
struct client *
client_open(const char *addr, const char *worker, int *status, char **cause)
{
	struct client	*c;
	char		*line, *greet, *name, *enc;
	int		 fd;

	if ((addr = net_default_server(addr)) == NULL) {
		*status = JQ_EXIT_USAGE;
		*cause = xstrdup("no server given and JQ_SERVER is not set");
		return NULL;
	}
	if ((fd = net_connect(addr, cause)) < 0) {
		*status = strncmp(*cause, "cannot", 6) == 0 ? JQ_EXIT_CONNECT :
		    JQ_EXIT_USAGE;
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->server = xstrdup(addr);
	c->in = xmalloc(CLIENT_IN_SIZE);
	c->out = xmalloc(CLIENT_OUT_SIZE);
	if ((line = client_line(c, cause)) == NULL)
		goto fail;
	if ((greet = client_prefix(line, REPLY_GREETING " ")) == NULL) {
		if (client_prefix(line, REPLY_ERR " ") != NULL)
			client_bad_reply(c, line, cause);
		else
			client_fail_with(c, JQ_EXIT_PROTOCOL, cause, xprintf(
			    "%s is not a jq server (it said \"%.60s\")", addr, line));
		goto fail;
	}
	name = worker != NULL ? xstrdup(worker) : util_worker_name();
	enc = proto_encode_dup(name, strnlen(name, JQ_WORKER_MAX));
	free(name);
	if (client_hello(c, greet, enc, cause) != 0) {
		free(enc);
		goto fail;
	}
	free(enc);
	net_unbound(fd);		/* greeted: replies may take their time */
	return c;
fail:
	*status = c->status ? c->status : JQ_EXIT_PROTOCOL;
	client_close(c);
	return NULL;
}

/* Close the connection and free the client. */
void
client_close(struct client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->server);
	free(c->in);
	free(c->out);
	free(c->chunk);
	free(c);
}

/* Return the socket. */
int
client_fd(const struct client *c)
{
	return c->fd;
}

/* Return the exit status fitting the last failure. */
int
client_status(const struct client *c)
{
	return c->status ? c->status : JQ_EXIT_PROTOCOL;
}

/* Return how many received bytes wait in the buffer. */
size_t
client_buffered(const struct client *c)
{
	return c->in_len - c->in_off;
}

/* Return the server's address as given. */
const char *
client_server(const struct client *c)
{
	return c->server;
}

/* Ask for a job; see client_take_reply for the result. */
int
client_take(struct client *c, const char *extra, struct client_job *job,
    char **cause)
{
	if (client_send(c, cause, "TAKE%s%s", extra ? " " : "",
	    extra ? extra : "") != 0)
		return -1;
	return client_take_reply(c, job, cause);
}

/*
 * Read the reply to TAKE: 1 with a job (whose payload follows and must be
 * consumed), 0 for NOJOB (status NOWORK or TIMEOUT), -1 on error.
 */
int
client_take_reply(struct client *c, struct client_job *job, char **cause)
{
	char		*line, *p, *id, *name, *result = NULL;
	const char	*v;
	size_t		 vlen;
	ssize_t		 n;
	char		 num[PROTO_U64_LEN];
	uint64_t	 u;
	struct proto_token tok;

	memset(job, 0, sizeof *job);
	if ((line = client_line(c, cause)) == NULL)
		return -1;
	if ((p = client_prefix(line, REPLY_NOJOB)) != NULL &&
	    (*p == '\0' || *p == ' ')) {
		c->status = strstr(line, NOJOB_TIMEOUT) ? JQ_EXIT_TIMEOUT :
		    JQ_EXIT_NOWORK;
		p += *p == ' ';
		job->drained = strncmp(p, NOJOB_DRAINED,
		    strlen(NOJOB_DRAINED)) == 0 &&
		    (p[strlen(NOJOB_DRAINED)] == '\0' ||
		    p[strlen(NOJOB_DRAINED)] == ' ');
		*cause = xstrdup(c->status == JQ_EXIT_TIMEOUT ?
		    "no job became free in time" : job->drained ? "this "
		    "worker is drained (jq-put --drain); it gets no job" :
		    "no work remains");
		return 0;
	}
	if ((p = client_prefix(line, REPLY_JOB " ")) == NULL)
		return client_bad_reply(c, line, cause);
	job->size = UINT64_MAX;
	job->attempt = 1;
	if ((v = proto_word_kv(line, KEY_SIZE, &vlen)) != NULL && vlen < sizeof num) {
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (parse_u64(num, 0, UINT64_MAX, &u) == 0)
			job->size = u;
	}
	if ((v = proto_word_kv(line, KEY_LEASE, &vlen)) != NULL && vlen < sizeof num) {
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (parse_u64(num, 1, UINT32_MAX, &u) == 0)
			job->lease = (unsigned)u;
	}
	if ((v = proto_word_kv(line, KEY_ATTEMPT, &vlen)) != NULL && vlen < sizeof num) {
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		if (parse_u64(num, 1, UINT32_MAX, &u) == 0)
			job->attempt = (unsigned)u;
	}
	if ((v = proto_word_kv(line, KEY_TOKEN, &vlen)) == NULL ||
	    vlen != PROTO_TOKEN_LEN) {
		*cause = xprintf("malformed JOB line from %s: no " KEY_TOKEN "=",
		    c->server);
		c->status = JQ_EXIT_PROTOCOL;
		return -1;
	}
	memcpy(job->token, v, PROTO_TOKEN_LEN);
	job->token[PROTO_TOKEN_LEN] = '\0';
	/* result=: a plain file name, or ignored (read before proto_word
	 * cuts the line into words) */
	if ((v = proto_word_kv(line, KEY_RESULT, &vlen)) != NULL && vlen > 0) {
		result = xstrndup(v, vlen);
		if ((n = proto_decode(result)) <= 0 ||
		    memchr(result, '/', (size_t)n) != NULL ||
		    memchr(result, '\0', (size_t)n) != NULL) {
			free(result);
			result = NULL;
		}
	}
	/* kind=tree: the data is a tree (read before the line is cut) */
	job->tree = (v = proto_word_kv(line, KEY_KIND, &vlen)) != NULL &&
	    vlen == strlen(KIND_TREE) && memcmp(v, KIND_TREE, vlen) == 0;
	id = proto_word(&p);
	name = proto_word(&p);
	if (id == NULL || name == NULL || (n = proto_decode(name)) <= 0 ||
	    proto_token_parse(job->token, &tok) != 0) {
		*cause = xprintf("malformed JOB line from %s", c->server);
		c->status = JQ_EXIT_PROTOCOL;
		free(result);
		return -1;
	}
	job->result = result;
	job->id = xstrdup(id);
	job->name = xmalloc((size_t)n + 1);
	memcpy(job->name, name, (size_t)n + 1);
	job->namelen = (size_t)n;
	return 1;
}

/* The handle of a job, "ID:TOKEN", that jq-take gives and jq-put takes. */
char *
client_handle(const struct client_job *job)
{
	return xprintf("%s%c%s", job->id, CLIENT_HANDLE_SEP, job->token);
}

/*
 * Split a handle "ID:TOKEN" into *id and token (the caller's, of
 * PROTO_TOKEN_LEN + 1 bytes); 0, or -1 if it is not one.
 */
int
client_parse_handle(const char *handle, char **id, char *token)
{
	const char		*sep = strchr(handle, CLIENT_HANDLE_SEP);
	struct proto_token	 t;
	uint64_t		 n;
	char			*num;

	if (sep == NULL || proto_token_parse(sep + 1, &t) != 0)
		return -1;
	num = xstrndup(handle, (size_t)(sep - handle));
	if (parse_u64(num, 1, UINT64_MAX, &n) != 0) {
		free(num);
		return -1;
	}
	*id = num;
	memcpy(token, sep + 1, PROTO_TOKEN_LEN + 1);
	return 0;
}

/* Free the strings of a job. */
void
client_job_free(struct client_job *job)
{
	free(job->id);
	free(job->name);
	free(job->result);
	memset(job, 0, sizeof *job);
}

/* Start receiving a payload. */
void
client_rx_init(struct client_rx *rx)
{
	memset(rx, 0, sizeof *rx);
}

/*
 * Return the next span of payload bytes: >0 bytes at *data, valid until the
 * next call on c; 0 when the payload ended with a matching size and CRC;
 * -1 on error.  Blocks only when nothing is buffered.
 */
ssize_t
client_rx_next(struct client *c, struct client_rx *rx, const char **data,
    char **cause)
{
	struct proto_frame	 f;
	char			*line;
	size_t			 n;

	while (!rx->done) {
		if (rx->left == 0) {
			if ((line = client_line(c, cause)) == NULL)
				return -1;
			if (proto_parse_frame(line, &f) != 0)
				return client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
				    xprintf("bad payload frame from %s: \"%.40s\"",
				    c->server, line));
			if (f.kind == FRAME_DATA) {
				rx->left = f.len;
				continue;
			}
			rx->done = 1;
			if (f.kind == FRAME_ABORT)
				return client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
				    xprintf("%s abandoned the payload", c->server));
			if (f.len != rx->total || f.crc != rx->crc)
				return client_fail_with(c, JQ_EXIT_PROTOCOL, cause,
				    xprintf("payload from %s is damaged: got %llu "
				    "bytes with CRC-32C %08x, expected %llu with %08x",
				    c->server, (unsigned long long)rx->total, rx->crc,
				    (unsigned long long)f.len, f.crc));
			return 0;
		}
		if (client_buffered(c) == 0 && client_fill(c, cause) != 0)
			return -1;
		n = client_buffered(c);
		if (n > rx->left)
			n = (size_t)rx->left;
		*data = c->in + c->in_off;
		c->in_off += n;
		rx->left -= n;
		rx->total += n;
		rx->crc = crc32c_update(rx->crc, *data, n);
		return (ssize_t)n;
	}
	return 0;
}

/* Receive a whole payload into fd; its size goes to *size. */
int
client_rx_to_fd(struct client *c, int fd, uint64_t *size, char **cause)
{
	struct client_rx	 rx;
	const char		*data;
	ssize_t			 n;

	client_rx_init(&rx);
	while ((n = client_rx_next(c, &rx, &data, cause)) > 0) {
		if (util_write_all(fd, data, (size_t)n) != 0) {
			int saved = errno;
			struct client_rx skip = rx;
			/* keep the stream in sync for the caller's next request */
			while (client_rx_next(c, &skip, &data, cause) > 0)
				;
			return client_fail_with(c, JQ_EXIT_IO, cause,
			    xprintf("write: %s", strerror(saved)));
		}
	}
	if (n < 0)
		return -1;
	if (size != NULL)
		*size = rx.total;
	return 0;
}

/* Read and drop a payload. */
int
client_rx_skip(struct client *c, char **cause)
{
	struct client_rx	 rx;
	const char		*data;
	ssize_t			 n;

	client_rx_init(&rx);
	while ((n = client_rx_next(c, &rx, &data, cause)) > 0)
		;
	return n < 0 ? -1 : 0;
}

/* Start sending a payload. */
void
client_tx_init(struct client_tx *tx)
{
	memset(tx, 0, sizeof *tx);
}

/* Send one DATA chunk. */
int
client_tx_data(struct client *c, struct client_tx *tx, const void *buf,
    size_t len, char **cause)
{
	if (len == 0)
		return 0;
	if (client_send(c, cause, FRAME_WORD_DATA " %zu", len) != 0 ||
	    client_write(c, buf, len, cause) != 0)
		return -1;
	tx->total += len;
	tx->crc = crc32c_update(tx->crc, buf, len);
	return 0;
}

/* End a payload with its size and CRC. */
int
client_tx_end(struct client *c, struct client_tx *tx, char **cause)
{
	return client_send(c, cause, FRAME_WORD_END " %llu %08x",
	    (unsigned long long)tx->total, tx->crc);
}

/* Abandon a payload being sent; the server answers ERR ABORTED. */
int
client_tx_abort(struct client *c, char **cause)
{
	return client_send(c, cause, FRAME_WORD_ABORT);
}

/* Send everything readable from fd as DATA chunks (no END). */
int
client_tx_fd(struct client *c, struct client_tx *tx, int fd, char **cause)
{
	ssize_t	 n;

	if (c->chunk == NULL)
		c->chunk = xmalloc(JQ_CHUNK);
	for (;;) {
		n = read(fd, c->chunk, JQ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return client_fail_with(c, JQ_EXIT_IO, cause,
			    xprintf("read: %s", strerror(errno)));
		if (n == 0)
			return 0;
		if (client_tx_data(c, tx, c->chunk, (size_t)n, cause) != 0)
			return -1;
	}
}

/*
 * Send fd as the result of job id, attempt token, and read the answer.  A local read error
 * after the PUT line went out abandons the payload, so nothing is stored.
 */
int
client_put_fd(struct client *c, const char *id, const char *token, int fd,
    char **cause)
{
	struct client_tx	 tx;
	char			*ignored;
	int			 status;

	client_tx_init(&tx);
	if (client_send(c, cause, "PUT %s " KEY_TOKEN "=%s", id, token) != 0)
		return -1;
	if (client_tx_fd(c, &tx, fd, cause) != 0) {
		if (c->status != JQ_EXIT_IO)
			return -1;
		status = c->status;
		ignored = NULL;
		if (client_tx_abort(c, &ignored) == 0)
			client_reply(c, NULL, &ignored);	/* ERR ABORTED */
		free(ignored);
		c->status = status;
		return -1;
	}
	if (client_tx_end(c, &tx, cause) != 0)
		return -1;
	return client_reply(c, NULL, cause);
}

/* Report job id (attempt token) failed, with extra key=value words and a message. */
int
client_fail(struct client *c, const char *id, const char *token,
    const char *extra, const void *msg, size_t len, char **cause)
{
	struct client_tx	 tx;

	if (len > JQ_MSG_MAX) {		/* keep the tail: it says the most */
		msg = (const char *)msg + (len - JQ_MSG_MAX);
		len = JQ_MSG_MAX;
	}
	client_tx_init(&tx);
	if (client_send(c, cause, "FAIL %s " KEY_TOKEN "=%s%s%s", id, token,
	    extra ? " " : "", extra ? extra : "") != 0 ||
	    client_tx_data(c, &tx, msg, len, cause) != 0 ||
	    client_tx_end(c, &tx, cause) != 0)
		return -1;
	return client_reply(c, NULL, cause);
}
