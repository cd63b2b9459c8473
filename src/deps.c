/*
 * deps.c: dependencies between jobs (ADD after= and before=): the edges,
 * the checks an ADD passes before it is taken, and the prerequisites met.
 *
 * An edge "j after p" makes p a prerequisite of j: j runs only once p is
 * DONE.  A job with edges keeps, in j->deps, its prerequisites (prereq)
 * and the jobs that wait for it (dependent) as arrays of ids (a job without
 * has no record: deps_peek reads an empty one), and j->unmet counts the
 * prerequisites that are not DONE.  A job with unmet > 0 is BLOCKED
 * whenever it would wait (queue.c: queue_wait_tail, queue_release);
 * deps_met lets its dependents wait as a job becomes DONE.  What a failed
 * prerequisite does to its dependents (they fail, "dependency") is jobs.c's
 * (jobs_cascade); deps_failed_prereq finds one.
 *
 * Invariant: no job stays BLOCKED for ever while the server runs.  Every
 * unfinished prerequisite of a blocked job is unfinished itself only
 * while it waits, runs or is blocked on jobs that are not its dependents,
 * since deps_check refuses an edge that would close a cycle among
 * unfinished jobs (ERR CYCLE), and a prerequisite that fails takes its
 * blocked dependents with it.  Only before= can close a cycle (after=
 * points from a new job to older ones); the walk also follows the edges of
 * ADDs in flight (spool.c holds them while their data is made durable),
 * since two of them could close a cycle between them.
 *
 * Caps: JQ_AFTER_MAX prerequisites per ADD and per job (an edge past it is
 * refused, ERR FULL); dependents are not capped but each is another job's
 * prerequisite, so the edges stay below JQ_AFTER_MAX times the jobs.
 *
 * At start (deps_settle, after the journal is read: A records' after= and
 * E records) the counts are made from the states, the jobs whose
 * prerequisites are not all done are BLOCKED, and a job whose
 * prerequisite failed fails too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

static uint32_t	 deps_generation;	/* deps_check's visit mark */

static const struct job_deps deps_none;	/* a job without edges */

/* Job j's edges, to read: an empty set when it has none. */
const struct job_deps *
deps_peek(const struct job *j)
{
	return j->deps != NULL ? j->deps : &deps_none;
}

/* Job j's edges, to change: allocated (empty) the first time. */
static struct job_deps *
deps_get(struct job *j)
{
	if (j->deps == NULL)
		j->deps = xcalloc(1, sizeof *j->deps);
	return j->deps;
}

/* Append id to an array of ids (*v, *n of *cap); 0, or -1 with errno. */
static int
deps_push(uint32_t **v, uint32_t *n, uint32_t *cap, uint32_t id)
{
	uint32_t	*nv, ncap;

	if (*n == *cap) {
		ncap = *cap ? *cap * 2 : 4;
		if ((nv = reallocarray(*v, ncap, sizeof *nv)) == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = id;
	return 0;
}

/* Whether j runs after pre already. */
static int
deps_has(const struct job *j, const struct job *pre)
{
	uint32_t	 i;

	for (i = 0; i < deps_peek(j)->nprereq; i++)
		if (deps_peek(j)->prereq[i] == pre->id)
			return 1;
	return 0;
}

/*
 * Record the edge "j after pre" (both arrays), counting nothing: 1 if it
 * was there already, 0, or -1 with *cause (the cap, or memory).
 */
int
deps_link(struct job *j, struct job *pre, char **cause)
{
	struct job_deps	*jd, *pd;

	if (deps_has(j, pre))
		return 1;
	if (deps_peek(j)->nprereq >= JQ_AFTER_MAX) {
		*cause = xprintf("job %llu has %d prerequisites, the most it "
		    "may have", (unsigned long long)j->id, JQ_AFTER_MAX);
		return -1;
	}
	jd = deps_get(j);
	pd = deps_get(pre);
	if (deps_push(&jd->prereq, &jd->nprereq, &jd->prereq_cap,
	    (uint32_t)pre->id) != 0) {
		*cause = xprintf("cannot record a dependency: %s",
		    strerror(errno));
		return -1;
	}
	if (deps_push(&pd->dependent, &pd->ndependent, &pd->dependent_cap,
	    (uint32_t)j->id) != 0) {
		jd->nprereq--;
		*cause = xprintf("cannot record a dependency: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The edge "j after pre" while the server runs: recorded and counted; a
 * waiting job becomes BLOCKED at once, a running one when it stops.  An
 * edge to a job that is DONE is met already.  0, or -1 with *cause.
 */
int
deps_attach(struct queue *q, struct job *j, struct job *pre, char **cause)
{
	int	 rc;

	if ((rc = deps_link(j, pre, cause)) != 0)
		return rc < 0 ? -1 : 0;
	/* a result not in its file yet (committing) is not met yet */
	if (pre->state != JOB_DONE || pre->committing) {
		j->unmet++;
		queue_block(q, j);
	}
	return 0;
}

/* A prerequisite of j that has FAILED, or NULL. */
struct job *
deps_failed_prereq(const struct queue *q, const struct job *j)
{
	struct job	*p;
	uint32_t	 i;

	for (i = 0; i < deps_peek(j)->nprereq; i++)
		if ((p = queue_get(q, deps_peek(j)->prereq[i])) != NULL &&
		    p->state == JOB_FAILED)
			return p;
	return NULL;
}

/* Whether a job has not finished (a cycle through it would hold). */
static int
deps_unfinished(const struct job *j)
{
	return j->state != JOB_DONE && j->state != JOB_FAILED;
}

/*
 * Whether target is reachable from start by following prerequisites of
 * unfinished jobs (and the edges of the adds in flight: an add with
 * before=X and after=P1,... makes X run after P1,...).  An iterative walk;
 * -1 with errno if memory runs out.
 */
static int
deps_reaches(struct queue *q, struct job *start, const struct job *target)
{
	struct job		**stack = NULL, **ns, *j, *p;
	const struct spool_add	*a;
	size_t			 n = 0, cap = 0;
	uint32_t		 i, k;
	int			 found = 0;

	if (++deps_generation == 0)
		deps_generation = 1;
	for (j = start; j != NULL; j = n > 0 ? stack[--n] : NULL) {
		if (j == target) {
			found = 1;
			break;
		}
		if (deps_peek(j)->dep_mark == deps_generation ||
		    !deps_unfinished(j))
			continue;
		deps_get(j)->dep_mark = deps_generation;
		/* room for the prerequisites and the adds' after lists */
		k = deps_peek(j)->nprereq;
		for (a = spool_pending_next(NULL); a != NULL;
		    a = spool_pending_next(a))
			if (a->before == j->id)
				k += a->nafter;
		if (stack == NULL || n + k > cap) {
			cap = n + k + 16;
			if ((ns = reallocarray(stack, cap, sizeof *ns)) == NULL) {
				free(stack);
				return -1;
			}
			stack = ns;
		}
		for (i = 0; i < deps_peek(j)->nprereq; i++)
			if ((p = queue_get(q, deps_peek(j)->prereq[i])) !=
			    NULL)
				stack[n++] = p;
		for (a = spool_pending_next(NULL); a != NULL;
		    a = spool_pending_next(a))
			for (i = 0; a->before == j->id && i < a->nafter; i++)
				if ((p = queue_get(q, a->after[i])) != NULL)
					stack[n++] = p;
	}
	free(stack);
	return found;
}

/*
 * May an ADD with these n prerequisites (after=) and before= (0: none) be
 * made?  0, or -1 with *err (an ERR_* code) and *errmsg: too many, a job
 * that does not exist, a prerequisite that failed, a before= job that has
 * ended, or a cycle.  Asked when the ADD comes and again when its data is
 * in.
 */
int
deps_check(struct queue *q, const uint32_t *after, size_t n, uint64_t before,
    const char **err, char **errmsg)
{
	struct job	*p, *t = NULL;
	size_t		 i;
	int		 r;

	if (n > JQ_AFTER_MAX) {
		*err = ERR_FULL;
		*errmsg = xprintf("%zu prerequisites; at most %d; nothing added",
		    n, JQ_AFTER_MAX);
		return -1;
	}
	if (before != 0) {
		if ((t = queue_get(q, before)) == NULL) {
			*err = ERR_NOSUCHJOB;
			*errmsg = xprintf(KEY_BEFORE "=%llu: no such job; "
			    "nothing added", (unsigned long long)before);
			return -1;
		}
		if (!deps_unfinished(t)) {
			*err = ERR_DONE;
			*errmsg = xprintf(KEY_BEFORE "=%llu: job %s %s; "
			    "nothing added", (unsigned long long)before, t->path,
			    t->state == JOB_DONE ? "has a result" : "has failed");
			return -1;
		}
		if (deps_peek(t)->nprereq >= JQ_AFTER_MAX) {
			*err = ERR_FULL;
			*errmsg = xprintf(KEY_BEFORE "=%llu: job %s has %d "
			    "prerequisites, the most it may have; nothing added",
			    (unsigned long long)before, t->path, JQ_AFTER_MAX);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if ((p = queue_get(q, after[i])) == NULL) {
			*err = ERR_NOSUCHJOB;
			*errmsg = xprintf(KEY_AFTER "=%lu: no such job; nothing "
			    "added", (unsigned long)after[i]);
			return -1;
		}
		if (p->state == JOB_FAILED) {
			*err = ERR_DONE;
			*errmsg = xprintf(KEY_AFTER "=%lu: job %s has failed "
			    "(%s); nothing added", (unsigned long)after[i],
			    p->path, p->fail_status ? p->fail_status :
			    STATUS_FAILED);
			return -1;
		}
		if (t == NULL)
			continue;
		if ((r = deps_reaches(q, p, t)) < 0) {
			*err = ERR_IO;
			*errmsg = xprintf("cannot check for a cycle: %s; "
			    "nothing added", strerror(errno));
			return -1;
		}
		if (r && p == t) {
			*err = ERR_CYCLE;
			*errmsg = xprintf("job %llu %s would wait for itself: "
			    "the new job cannot run both after it and before "
			    "it; nothing added", (unsigned long long)t->id,
			    t->path);
			return -1;
		}
		if (r) {
			*err = ERR_CYCLE;
			*errmsg = xprintf("job %llu %s would wait for itself: "
			    "job %lu %s runs after it already (" KEY_AFTER
			    "=, " KEY_BEFORE "=); nothing added",
			    (unsigned long long)t->id, t->path,
			    (unsigned long)p->id, p->path);
			return -1;
		}
	}
	return 0;
}

/*
 * pre is DONE: each of its dependents has one unmet prerequisite less,
 * and a blocked one whose prerequisites are all done waits.  Returns how
 * many began to wait.
 */
size_t
deps_met(struct queue *q, struct job *pre)
{
	struct job	*d;
	uint32_t	 i;
	size_t		 woke = 0;

	for (i = 0; i < deps_peek(pre)->ndependent; i++) {
		if ((d = queue_get(q, deps_peek(pre)->dependent[i])) == NULL ||
		    d->unmet == 0)
			continue;
		if (--d->unmet == 0 && d->state == JOB_BLOCKED) {
			queue_unblock(q, d);
			woke++;
		}
	}
	return woke;
}

/*
 * Parse a list of ids "3,4,9" (at most JQ_AFTER_MAX, each 1 to
 * QUEUE_JOBS_MAX) into *v (malloc'd) and *n: 0, or -1 with *errmsg.
 */
int
deps_parse_ids(const char *s, uint32_t **v, uint32_t *n, char **errmsg)
{
	const char	*p = s, *end;
	char		 word[PROTO_U64_LEN];
	unsigned	 id;
	size_t		 len;

	*v = NULL;
	*n = 0;
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= sizeof word)
			goto bad;
		memcpy(word, p, len);
		word[len] = '\0';
		if (parse_uint(word, 1, QUEUE_JOBS_MAX, &id) != 0)
			goto bad;
		if (*n >= JQ_AFTER_MAX) {
			*errmsg = xprintf("more than %d prerequisites; nothing "
			    "added", JQ_AFTER_MAX);
			free(*v);
			*v = NULL;
			*n = 0;
			return -1;
		}
		if (*n % 16 == 0)
			*v = xreallocarray(*v, *n + 16, sizeof **v);
		(*v)[(*n)++] = id;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
bad:
	*errmsg = xprintf("\"%.40s\" is not a list of job ids (1,2,...)", s);
	free(*v);
	*v = NULL;
	*n = 0;
	return -1;
}

/*
 * At start, once the journal is read: count each job's unmet
 * prerequisites, make BLOCKED the unfinished jobs that have some, and fail
 * (status "dependency") those whose prerequisite failed, and theirs in
 * turn.  Returns how many failed here (the journal must record them).
 */
size_t
deps_settle(struct queue *q)
{
	struct job	*j, *p, *d;
	uint64_t	 id;
	uint32_t	 i, *stack = NULL;
	size_t		 n = 0, failed = 0;

	for (id = 1; id <= q->njobs; id++) {
		j = queue_get(q, id);
		j->unmet = 0;
		for (i = 0; i < deps_peek(j)->nprereq; i++)
			if ((p = queue_get(q, deps_peek(j)->prereq[i])) !=
			    NULL && p->state != JOB_DONE)
				j->unmet++;
		if (j->unmet > 0 && j->state == JOB_WAITING)
			queue_block(q, j);
	}
	if (q->njobs > 0)
		stack = xreallocarray(NULL, q->njobs, sizeof *stack);
	for (id = 1; id <= q->njobs; id++)
		if (queue_get(q, id)->state == JOB_FAILED)
			stack[n++] = (uint32_t)id;
	while (n > 0) {		/* each job is pushed once: when it fails */
		p = queue_get(q, stack[--n]);
		for (i = 0; i < deps_peek(p)->ndependent; i++) {
			d = queue_get(q, deps_peek(p)->dependent[i]);
			if (d == NULL || !deps_unfinished(d))
				continue;
			free(d->fail_status);
			free(d->fail_msg);
			d->fail_status = xstrdup(STATUS_DEPENDENCY);
			d->fail_msg = deps_fail_msg(p);
			d->fail_len = strlen(d->fail_msg);
			log_warnx("job %llu %s: %s; it fails",
			    (unsigned long long)d->id, d->path, d->fail_msg);
			queue_recover(q, d, JOB_FAILED);
			stack[n++] = (uint32_t)d->id;
			failed++;
		}
	}
	free(stack);
	return failed;
}

/*
 * The message of a job that fails because its prerequisite p failed:
 * p's id, name and reason (a new string).
 */
char *
deps_fail_msg(const struct job *p)
{
	size_t	 len = p->fail_msg ? strnlen(p->fail_msg, 200) : 0;

	while (len > 0 && (p->fail_msg[len - 1] == '\n' ||
	    p->fail_msg[len - 1] == ' '))
		len--;	/* a stderr tail ends in a newline */

	return xprintf("prerequisite job %llu %s failed (%s)%s%.*s",
	    (unsigned long long)p->id, p->path, p->fail_status ?
	    p->fail_status : STATUS_FAILED, len ? ": " : "", (int)len,
	    p->fail_msg ? p->fail_msg : "");
}
