/*
 * queue.c: the server's jobs and their states.
 *
 * Jobs live in one array in the order given; ids are positions from 1.  A job
 * is WAITING (in the waiting list), RUNNING (taken, maybe held by a
 * connection), DONE (its result is stored) or FAILED.  DONE and FAILED are
 * final.  Released jobs go to the front of the waiting list, so a job that
 * lost its worker runs next.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* Start an empty queue. */
void
queue_init(struct queue *q)
{
	memset(q, 0, sizeof *q);
	TAILQ_INIT(&q->waiting);
}

/* Free every job and the array. */
void
queue_free(struct queue *q)
{
	size_t	 i;

	for (i = 0; i < q->njobs; i++) {
		free(q->jobs[i].path);
		free(q->jobs[i].in_name);
		free(q->jobs[i].result);
		free(q->jobs[i].fail_status);
		free(q->jobs[i].fail_msg);
		free(q->jobs[i].worker);
	}
	free(q->jobs);
	queue_init(q);
}

/*
 * Append a job for input path with result path (both now owned by the
 * queue).  Call queue_ready once every job is added.
 */
struct job *
queue_add(struct queue *q, char *path, char *result)
{
	struct job	*j;

	if (q->njobs == q->alloc) {
		q->alloc = q->alloc ? q->alloc * 2 : 64;
		q->jobs = xreallocarray(q->jobs, q->alloc, sizeof *q->jobs);
	}
	j = &q->jobs[q->njobs++];
	memset(j, 0, sizeof *j);
	j->id = q->njobs;
	j->path = path;
	j->result = result;
	j->in_dirfd = -1;
	return j;
}

/* Put every job in the waiting list; the array must not move after this. */
void
queue_ready(struct queue *q)
{
	size_t	 i;

	TAILQ_INIT(&q->waiting);
	for (i = 0; i < q->njobs; i++) {
		q->jobs[i].state = JOB_WAITING;
		TAILQ_INSERT_TAIL(&q->waiting, &q->jobs[i], wait_entry);
	}
	memset(q->count, 0, sizeof q->count);
	q->count[JOB_WAITING] = q->njobs;
}

/* Find a job by its id as sent on the wire, or NULL. */
struct job *
queue_find(struct queue *q, const char *id)
{
	uint64_t	 n;

	if (q->njobs == 0 || parse_u64(id, 1, q->njobs, &n) != 0)
		return NULL;
	return &q->jobs[n - 1];
}

/* Whether a job's name matches a glob (NULL matches everything). */
int
queue_name_matches(const struct job *j, const char *match)
{
	return match == NULL || fnmatch(match, j->path, 0) == 0;
}

/* Move a job to another state, keeping the counts. */
static void
queue_set_state(struct queue *q, struct job *j, enum job_state state)
{
	q->count[j->state]--;
	j->state = state;
	q->count[state]++;
}

/*
 * Take the first waiting job whose name matches and whose not-before time
 * (a backoff after a failed try) has come; NULL if none.
 */
struct job *
queue_take(struct queue *q, const char *match)
{
	struct job	*j;
	uint64_t	 now = 0;

	TAILQ_FOREACH(j, &q->waiting, wait_entry) {
		if (j->not_before_ms != 0) {
			if (now == 0)
				now = util_now_ms();
			if (now < j->not_before_ms)
				continue;
			j->not_before_ms = 0;
		}
		if (queue_name_matches(j, match))
			break;
	}
	if (j == NULL)
		return NULL;
	TAILQ_REMOVE(&q->waiting, j, wait_entry);
	queue_set_state(q, j, JOB_RUNNING);
	j->attempt++;
	return j;
}

/* Hand a running job back: it waits at the front of the list. */
void
queue_release(struct queue *q, struct job *j)
{
	if (j->state != JOB_RUNNING)
		return;
	queue_set_state(q, j, JOB_WAITING);
	TAILQ_INSERT_HEAD(&q->waiting, j, wait_entry);
}

/* Put a running job that failed back at the end of the list, to run again. */
void
queue_requeue(struct queue *q, struct job *j)
{
	if (j->state == JOB_WAITING)
		return;
	queue_set_state(q, j, JOB_WAITING);
	TAILQ_INSERT_TAIL(&q->waiting, j, wait_entry);
}

/* Set a job's state from the journal at start-up (jobs are not running). */
void
queue_recover(struct queue *q, struct job *j, enum job_state state)
{
	if (j->state == state)
		return;
	if (j->state == JOB_WAITING)
		TAILQ_REMOVE(&q->waiting, j, wait_entry);
	queue_set_state(q, j, state);
	if (state == JOB_WAITING)
		TAILQ_INSERT_TAIL(&q->waiting, j, wait_entry);
}

/* Make a job DONE or FAILED, from waiting or running. */
void
queue_finish(struct queue *q, struct job *j, enum job_state state)
{
	if (j->state == JOB_WAITING)
		TAILQ_REMOVE(&q->waiting, j, wait_entry);
	queue_set_state(q, j, state);
}

/* Whether a job matching the glob may still be taken, now or later. */
int
queue_can_match(struct queue *q, const char *match)
{
	size_t	 i;

	if (q->count[JOB_WAITING] + q->count[JOB_RUNNING] == 0)
		return 0;
	if (match == NULL)
		return 1;
	for (i = 0; i < q->njobs; i++) {
		if ((q->jobs[i].state == JOB_WAITING ||
		    q->jobs[i].state == JOB_RUNNING) &&
		    queue_name_matches(&q->jobs[i], match))
			return 1;
	}
	return 0;
}

/* Whether every job is DONE or FAILED. */
int
queue_all_finished(const struct queue *q)
{
	return q->count[JOB_DONE] + q->count[JOB_FAILED] == q->njobs;
}
