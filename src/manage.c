/*
 * manage.c: the requests that change the queue by hand (jq-put's verbs):
 * CANCEL a waiting job, DRAIN and UNDRAIN workers; and manage_job, the
 * lookup of the job a WAIT or CANCEL names.
 *
 * Like the handlers of cmd.c, each writes its replies to the evbuffer it
 * is given and returns what the connection does next; what a request does
 * to a job or to the drains is jobs.c's (jobs_cancel, jobs_drain), which
 * journals it before the answer.
 *
 * CANCEL applies to a waiting job only.  A running job is refused
 * (ERR RUNNING): its worker holds it, and what it delivers decides; a
 * finished one is refused too (ERR DONE).  A cancelled job is a failed
 * one, status "cancelled": RETRY runs it again.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "jq.h"

/* Room left for the drains an UNDRAIN refusal lists. */
#define MANAGE_LIST_ROOM	(JQ_LINE_MAX / 2)

/* Append a reply line to out, printf-style. */
JQ_PRINTF(2, 3)
static void
manage_reply(struct evbuffer *out, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	cmd_vreply(out, fmt, ap);
	va_end(ap);
}

/*
 * The job a WAIT or CANCEL names: "<id>", or with name= the job of that
 * name.  The name decides, as everywhere a job is named: an id that names
 * another job (a restarted server numbered its list anew) or id 0 still
 * finds it.  NULL with *err and *errmsg (ours to free) saying why not.
 */
struct job *
manage_job(struct proto_req *r, const char **err, char **errmsg)
{
	const char	*v = proto_kv(r, KEY_NAME), *verb = proto_cmd_name(r->cmd);
	struct job	*j;
	uint64_t	 id;
	ssize_t		 n;
	char		*name;
	int		 e = 0;

	if (parse_u64(r->argv[0], 0, UINT64_MAX, &id) != 0 ||
	    (id == 0 && v == NULL)) {
		*err = ERR_PROTO;
		*errmsg = xprintf("%s: \"%.40s\" is not a job id (0 only with "
		    KEY_NAME "=)", verb, r->argv[0]);
		return NULL;
	}
	j = queue_get(&server.queue, id);
	if (v == NULL) {
		if (j == NULL) {
			*err = ERR_NOSUCHJOB;
			*errmsg = xprintf("no job with id \"%.40s\"", r->argv[0]);
		}
		return j;
	}
	name = xstrdup(v);
	if ((n = proto_decode(name)) <= 0 || n > JQ_NAME_MAX ||
	    memchr(name, '\0', (size_t)n) != NULL) {
		free(name);
		*err = ERR_PROTO;
		*errmsg = xprintf("%s: bad " KEY_NAME "= (1 to %d bytes, "
		    "percent-encoded, no NUL)", verb, JQ_NAME_MAX);
		return NULL;
	}
	if (j == NULL || strlen(j->path) != (size_t)n ||
	    memcmp(j->path, name, (size_t)n) != 0)
		j = queue_find_name(&server.queue, name, (size_t)n, &e);
	free(name);
	if (j == NULL && e != 0) {
		*err = ERR_IO;
		*errmsg = xprintf("cannot look the name up: %s", strerror(e));
	} else if (j == NULL) {
		*err = ERR_NOSUCHJOB;
		*errmsg = xprintf("no job named \"%.200s\"", v);
	}
	return j;
}

/*
 * CANCEL <id> [name=<enc>]: a waiting job fails for good, status
 * "cancelled"; OK <id> once the journal has it.
 */
enum cmd_next
manage_cancel(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	const char	*err = NULL;
	char		*errmsg = NULL, *who;
	struct job	*j;
	unsigned long long id;

	if ((j = manage_job(r, &err, &errmsg)) == NULL) {
		manage_reply(out, REPLY_ERR " %s %s", err, errmsg);
		free(errmsg);
		return NEXT_LINE;
	}
	id = (unsigned long long)j->id;
	switch (j->state) {
	case JOB_WAITING:
	case JOB_BLOCKED:
		if (jobs_cancel(j, cmd_who(s), &errmsg) != 0) {
			manage_reply(out, REPLY_ERR " %s %s; job %llu waits on",
			    ERR_IO, errmsg, id);
			free(errmsg);
		} else
			manage_reply(out, REPLY_OK " %llu", id);
		break;
	case JOB_RUNNING:
		who = proto_encode_dup(j->run->worker ? j->run->worker : "?",
		    j->run->worker ? strnlen(j->run->worker, JQ_WORKER_MAX) :
		    1);
		manage_reply(out, REPLY_ERR " %s job %llu is running (taken by "
		    "%s); only a waiting job can be cancelled", ERR_RUNNING, id,
		    who);
		free(who);
		break;
	default:
		manage_reply(out, REPLY_ERR " %s job %llu already %s", ERR_DONE,
		    id, jobs_outcome(j));
		break;
	}
	return NEXT_LINE;
}

/*
 * Decode a DRAIN or UNDRAIN pattern (1 to JQ_WORKER_MAX bytes, no NUL)
 * into a new string, or answer ERR PROTO and return NULL.
 */
static char *
manage_pattern(struct proto_req *r, struct evbuffer *out)
{
	char	*p = xstrdup(r->argv[0]);
	ssize_t	 n;

	if ((n = proto_decode(p)) <= 0 || n > JQ_WORKER_MAX ||
	    memchr(p, '\0', (size_t)n) != NULL) {
		free(p);
		manage_reply(out, REPLY_ERR " %s %s: bad pattern (1 to %d bytes, "
		    "percent-encoded, no NUL)", ERR_PROTO, proto_cmd_name(r->cmd),
		    JQ_WORKER_MAX);
		return NULL;
	}
	return p;
}

/*
 * DRAIN <enc-glob>: the workers matching it get no job from now on
 * (NOJOB drained), until UNDRAIN.  OK tells how many connected workers it
 * matches and the jobs they run, which finish as usual.
 */
enum cmd_next
manage_drain(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct session	*w;
	struct job	*j;
	unsigned	 workers = 0, running = 0;
	char		*p, *cause = NULL;

	if ((p = manage_pattern(r, out)) == NULL)
		return NEXT_LINE;
	if (!drain_has(p) && drain_count() >= JQ_DRAIN_MAX) {
		manage_reply(out, REPLY_ERR " %s %d patterns are drained, the "
		    "most there may be; UNDRAIN one first", ERR_FULL,
		    JQ_DRAIN_MAX);
		free(p);
		return NEXT_LINE;
	}
	if (!drain_has(p) && jobs_drain(p, 1, cmd_who(s), &cause) != 0) {
		manage_reply(out, REPLY_ERR " %s %s; nothing drained", ERR_IO,
		    cause);
		free(cause);
		free(p);
		return NEXT_LINE;
	}
	for (w = cmd_session_next(NULL); w != NULL; w = cmd_session_next(w)) {
		if (!w->worker || !drain_match(p, w->name))
			continue;
		workers++;
		LIST_FOREACH(j, &w->held, run->hold_entry)
			running++;
	}
	manage_reply(out, REPLY_OK " " KEY_WORKERS "=%u " KEY_RUNNING "=%u",
	    workers, running);
	free(p);
	return NEXT_LINE;
}

/*
 * UNDRAIN <enc-glob>: the workers it drained may take jobs again.  A
 * pattern that is not drained is refused (ERR NOTHELD), naming those that
 * are, as many as fit.
 */
enum cmd_next
manage_undrain(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct evbuffer	*list;
	char		*p, *cause = NULL, *enc;
	size_t		 i;

	if ((p = manage_pattern(r, out)) == NULL)
		return NEXT_LINE;
	if (!drain_has(p)) {
		list = evbuffer_new();
		for (i = 0; list != NULL && i < drain_count(); i++) {
			enc = proto_encode_dup(drain_get(i), strlen(drain_get(i)));
			if (evbuffer_get_length(list) + strlen(enc) + 8 >
			    MANAGE_LIST_ROOM) {
				evbuffer_add_printf(list, " ...");
				free(enc);
				break;
			}
			evbuffer_add_printf(list, " %s", enc);
			free(enc);
		}
		if (list == NULL || evbuffer_get_length(list) == 0)
			manage_reply(out, REPLY_ERR " %s %s is not drained; "
			    "nothing is", ERR_NOTHELD, r->argv[0]);
		else {
			evbuffer_add(list, "", 1);
			manage_reply(out, REPLY_ERR " %s %s is not drained; "
			    "drained:%s", ERR_NOTHELD, r->argv[0],
			    (const char *)evbuffer_pullup(list, -1));
		}
		if (list != NULL)
			evbuffer_free(list);
		free(p);
		return NEXT_LINE;
	}
	if (jobs_drain(p, 0, cmd_who(s), &cause) != 0) {
		manage_reply(out, REPLY_ERR " %s %s; still drained", ERR_IO,
		    cause);
		free(cause);
	} else
		manage_reply(out, REPLY_OK);
	free(p);
	return NEXT_LINE;
}
