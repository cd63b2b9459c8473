/*
 * listing.c: what jq-serve tells about its jobs one by one: the JOBS
 * request, and the QUEUE lines of the STAT reply (jq-protocol(7)).
 *
 * JOBS answers one JOBINFO line per job, in id order, then END.  A server
 * may hold millions of jobs, and the loop must not stall on one request
 * nor build one giant reply, so a reply stops at whichever comes first:
 * limit= lines (at most JQ_JOBS_MAX), JQ_JOBS_SCAN_MAX jobs looked at, or
 * JQ_JOBS_REPLY_MAX bytes of lines.  It then ends "END next=<id>", the id
 * of the last job looked at, and the client asks again with after=<id>.
 * A plain "END" says no job is left to look at.  So a reply may hold
 * fewer lines than limit=, even none, and still have more to come.
 *
 * Queues: listing_queue_of is the one place that says which named queue a
 * job is in (queue.c keeps them), and listing_queues the one place that
 * lists the queues, in the order they were made, QUEUE_DEFAULT first.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "jq.h"

#define LISTING_STATUS_MAX	64	/* a status= longer is no status: "failed" */

/* What a JOBS request asks for, parsed. */
struct listing_filter {
	unsigned	 states;	/* bit per enum job_state; 0: all */
	char		*queue;		/* decoded, or NULL: any */
	char		*match;		/* decoded glob, or NULL: any */
	uint64_t	 after;		/* jobs with a greater id */
	uint64_t	 limit;		/* JOBINFO lines at most */
};

/* The words of state=, by enum job_state. */
static const char *const listing_state_words[JOB_NSTATES] = {
	[JOB_WAITING] = JOBSTATE_WAITING,
	[JOB_RUNNING] = JOBSTATE_RUNNING,
	[JOB_DONE] = JOBSTATE_DONE,
	[JOB_FAILED] = JOBSTATE_FAILED,
	[JOB_BLOCKED] = JOBSTATE_BLOCKED,
};

#define LISTING_PREREQ_ROOM	2048	/* bytes of a JOBINFO's after= list, at most */

/* The name of the queue j is in. */
static const char *
listing_queue_of(const struct job *j)
{
	return queue_named_name(&server.queue, j);
}

/*
 * Append the QUEUE lines of the STAT reply: each queue's name and its jobs
 * in each state.
 */
void
listing_queues(const struct queue *q, struct evbuffer *out)
{
	const struct queue_named	*n;
	size_t				 i, k, total;

	if (q->nnamed == 0)		/* no job yet: the default is empty */
		evbuffer_add_printf(out, REPLY_QUEUE " " QUEUE_DEFAULT " "
		    STAT_TOTAL "=0 " STAT_WAITING "=0 " STAT_RUNNING "=0 "
		    STAT_DONE "=0 " STAT_FAILED "=0 " STAT_BLOCKED "=0\n");
	for (i = 0; i < q->nnamed; i++) {
		n = q->named[i];
		for (k = 0, total = 0; k < JOB_NSTATES; k++)
			total += n->count[k];
		/* a queue name is never encoded: proto_queue_valid */
		evbuffer_add_printf(out, REPLY_QUEUE " %s " STAT_TOTAL "=%zu "
		    STAT_WAITING "=%zu " STAT_RUNNING "=%zu " STAT_DONE "=%zu "
		    STAT_FAILED "=%zu " STAT_BLOCKED "=%zu\n", n->name, total,
		    n->count[JOB_WAITING], n->count[JOB_RUNNING],
		    n->count[JOB_DONE], n->count[JOB_FAILED],
		    n->count[JOB_BLOCKED]);
	}
}

/* Parse state=w1,w2 into a bit per state; 0, or -1 for an unknown word. */
static int
listing_states(const char *v, unsigned *bits)
{
	const char	*p = v, *end;
	size_t		 len;
	int		 i, found;

	*bits = 0;
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		found = 0;
		for (i = 0; i < JOB_NSTATES; i++) {
			if (strlen(listing_state_words[i]) == len &&
			    memcmp(p, listing_state_words[i], len) == 0) {
				*bits |= 1U << i;
				found = 1;
			}
		}
		if (!found)
			return -1;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

/*
 * Decode a text key's value into *out: 1 to max bytes, no NUL; 0, or -1
 * when it is not that.
 */
static int
listing_text(const char *v, size_t max, char **out)
{
	char	*dup = xstrdup(v);
	ssize_t	 n;

	if ((n = proto_decode(dup)) <= 0 || (size_t)n > max ||
	    memchr(dup, '\0', (size_t)n) != NULL) {
		free(dup);
		return -1;
	}
	*out = dup;
	return 0;
}

/* Parse the keys of a JOBS request into f: NULL, or what is wrong (static). */
static const char *
listing_parse(const struct proto_req *r, struct listing_filter *f)
{
	const char	*v;

	memset(f, 0, sizeof *f);
	f->limit = JQ_JOBS_MAX;
	if ((v = proto_kv(r, JOBS_STATE)) != NULL &&
	    listing_states(v, &f->states) != 0)
		return JOBS_STATE "= takes " JOBSTATE_WAITING ", "
		    JOBSTATE_RUNNING ", " JOBSTATE_DONE ", " JOBSTATE_FAILED
		    " or " JOBSTATE_BLOCKED ", comma-separated";
	if ((v = proto_kv(r, JOBS_QUEUE)) != NULL &&
	    listing_text(v, JQ_NAME_MAX, &f->queue) != 0)
		return "bad " JOBS_QUEUE "= name (1 to 4096 bytes, "
		    "percent-encoded)";
	if ((v = proto_kv(r, KEY_MATCH)) != NULL &&
	    listing_text(v, JQ_GLOB_MAX, &f->match) != 0)
		return "bad " KEY_MATCH "= pattern (1 to 1024 bytes, "
		    "percent-encoded)";
	if ((v = proto_kv(r, JOBS_AFTER)) != NULL &&
	    parse_u64(v, 0, UINT64_MAX, &f->after) != 0)
		return JOBS_AFTER "= is not a job id";
	/* more than the cap is the cap: the reply says whether more follow */
	if ((v = proto_kv(r, JOBS_LIMIT)) != NULL) {
		if (parse_u64(v, 1, UINT64_MAX, &f->limit) != 0)
			return JOBS_LIMIT "= must be a number from 1";
		if (f->limit > JQ_JOBS_MAX)
			f->limit = JQ_JOBS_MAX;
	}
	return NULL;
}

/* Whether job j passes the filter f. */
static int
listing_wanted(const struct job *j, const struct listing_filter *f)
{
	if (f->states != 0 && !(f->states & 1U << j->state))
		return 0;
	if (f->queue != NULL && strcmp(f->queue, listing_queue_of(j)) != 0)
		return 0;
	return queue_name_matches(j, f->match);
}

/* The index of the first job whose id is greater than after (ids are dense). */
static size_t
listing_first(const struct queue *q, uint64_t after)
{
	return after < q->njobs ? (size_t)after : q->njobs;
}

/*
 * Append " after=<id>,..." of blocked job j: its prerequisites not done
 * yet, as many as LISTING_PREREQ_ROOM bytes hold.
 */
static void
listing_prereqs(const struct job *j, struct evbuffer *out)
{
	const struct job_deps	*jd = deps_peek(j);
	const struct job	*p;
	size_t			 used = 0;
	uint32_t		 i;
	int			 n;

	for (i = 0; i < jd->nprereq; i++) {
		if ((p = queue_get(&server.queue, jd->prereq[i])) == NULL ||
		    p->state == JOB_DONE)
			continue;
		if (used + PROTO_U64_LEN + sizeof JOBS_PREREQ + 1 >
		    LISTING_PREREQ_ROOM)
			break;
		n = evbuffer_add_printf(out, "%s%lu", used ? "," :
		    " " JOBS_PREREQ "=", (unsigned long)p->id);
		used += n > 0 ? (size_t)n : 0;
	}
}

/*
 * Append the JOBINFO line of job j at monotonic time now.  The times are
 * those of its last attempt; status= and msg= tell its last failure, for
 * a failed job and for one waiting after a failed attempt.  The message is
 * cut from the front to fit the line.
 */
static void
listing_job(const struct job *j, uint64_t now, struct evbuffer *out)
{
	const char	*queue = listing_queue_of(j);
	char		*name, *qname, *worker = NULL, *status, *msg;
	size_t		 before = evbuffer_get_length(out), used;

	name = proto_encode_dup(j->path, strlen(j->path));
	qname = proto_encode_dup(queue, strlen(queue));
	evbuffer_add_printf(out, REPLY_JOBINFO " %llu %s " JOBS_QUEUE "=%s "
	    JOBS_STATE "=%s " JOBS_ATTEMPTS "=%u", (unsigned long long)j->id,
	    name, qname, listing_state_words[j->state], j->attempt);
	if (j->priority != 0)		/* none: 0, and the lines stay short */
		evbuffer_add_printf(out, " " KEY_PRIORITY "=%d", j->priority);
	free(name);
	free(qname);
	if (j->run != NULL && j->run->worker != NULL) {
		worker = proto_encode_dup(j->run->worker,
		    strlen(j->run->worker));
		evbuffer_add_printf(out, " " JOBS_WORKER "=%s", worker);
		free(worker);
	}
	if (j->run != NULL && j->run->start_ms != 0) {
		evbuffer_add_printf(out, " " JOBS_STARTED "=%llu",
		    (unsigned long long)j->run->start_wall_ms);
		if (j->run->end_ms != 0)
			evbuffer_add_printf(out, " " JOBS_ENDED "=%llu "
			    JOBS_RUNTIME "=%llu", (unsigned long long)
			    (j->run->start_wall_ms + (j->run->end_ms -
			    j->run->start_ms)), (unsigned long long)
			    (j->run->end_ms - j->run->start_ms));
		else if (j->state == JOB_RUNNING)
			evbuffer_add_printf(out, " " JOBS_RUNTIME "=%llu",
			    (unsigned long long)(now - j->run->start_ms));
	}
	if (j->state == JOB_BLOCKED)
		listing_prereqs(j, out);
	if (j->fail_status != NULL && (j->state == JOB_FAILED ||
	    j->state == JOB_WAITING || j->state == JOB_BLOCKED)) {
		/* "exit:1" and its kin; encoded all the same, and bounded,
		 * as it may come back from a journal */
		status = proto_encode_dup(j->fail_status,
		    strlen(j->fail_status));
		if (strlen(status) > LISTING_STATUS_MAX) {
			free(status);
			status = xstrdup(STATUS_FAILED);
		}
		used = evbuffer_get_length(out) - before;
		/* status, " status= msg=", the LF and some room to spare */
		msg = cmd_stat_msg(j, JQ_LINE_MAX - used - LISTING_STATUS_MAX -
		    64);
		evbuffer_add_printf(out, " " STAT_STATUS "=%s " STAT_MSG "=%s",
		    status, msg);
		free(status);
		free(msg);
	}
	evbuffer_add(out, "\n", 1);
}

/*
 * JOBS [state=<s>[,<s>]...] [queue=<q>] [match=<glob>] [after=<id>]
 * [limit=<n>]: a JOBINFO line per job that passes, in id order, then END,
 * with next=<id> when the reply stopped before the last job.
 */
enum cmd_next
listing_jobs(struct session *s, struct proto_req *r, struct evbuffer *out)
{
	struct queue		*q = &server.queue;
	struct listing_filter	 f;
	const char		*bad;
	size_t			 i, start = evbuffer_get_length(out);
	uint64_t		 lines = 0, scanned = 0, now = util_now_ms();

	(void)s;
	if ((bad = listing_parse(r, &f)) != NULL) {
		evbuffer_add_printf(out, REPLY_ERR " %s %s\n", ERR_PROTO, bad);
		goto done;
	}
	for (i = listing_first(q, f.after); i < q->njobs; i++) {
		if (lines == f.limit || scanned == JQ_JOBS_SCAN_MAX ||
		    evbuffer_get_length(out) - start >= JQ_JOBS_REPLY_MAX) {
			evbuffer_add_printf(out, REPLY_END " " JOBS_NEXT
			    "=%llu\n", (unsigned long long)queue_get(q, i)->id);
			goto done;
		}
		scanned++;
		if (!listing_wanted(queue_get(q, i + 1), &f))
			continue;
		listing_job(queue_get(q, i + 1), now, out);
		lines++;
	}
	evbuffer_add_printf(out, REPLY_END "\n");
done:
	free(f.queue);
	free(f.match);
	return NEXT_LINE;
}
