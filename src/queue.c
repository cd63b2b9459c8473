/*
 * queue.c: the server's jobs and their states.
 *
 * Jobs live in one array in the order given; ids are positions from 1.  A job
 * is WAITING (in the waiting list), RUNNING (taken, maybe held by a
 * connection), DONE (its result is stored) or FAILED.  DONE and FAILED are
 * final.  Released jobs go to the front of the waiting list, so a job that
 * lost its worker runs next.
 *
 * A job that failed and waits to run again is given to another node first.
 * A node is a worker name less a trailing "/<digits>" (jq-run names its
 * slots NAME/1 ... NAME/N, and they are one node); a session with no name
 * is on no node.  The job remembers only the node that took its latest
 * failed attempt (failed_node); a TAKE from that node passes the job over
 * while another matching job may be taken, and gets it when none may, so a
 * lone worker still tries again.  A take from any other session forgets
 * the node, and so does the job's end.
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
		free(q->jobs[i].taken_node);
		free(q->jobs[i].failed_node);
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
 * The length of the node part of a worker name: all of it but a trailing
 * "/<digits>" ("w1/2" and "w1" are node "w1", "w1/x" is node "w1/x").
 */
size_t
queue_node_len(const char *worker)
{
	size_t	 n = strlen(worker), i = n;

	while (i > 0 && worker[i - 1] >= '0' && worker[i - 1] <= '9')
		i--;
	if (i > 0 && i < n && worker[i - 1] == '/')
		return i - 1;
	return n;
}

/* Whether worker (a HELLO name, or NULL) is on node (or NULL: none). */
static int
queue_on_node(const char *worker, const char *node)
{
	size_t	 n;

	if (worker == NULL || node == NULL)
		return 0;
	n = queue_node_len(worker);
	return strlen(node) == n && memcmp(worker, node, n) == 0;
}

/*
 * Take the first waiting job whose name matches and whose not-before time
 * (a backoff after a failed try) has come, for worker (its HELLO name, or
 * NULL); NULL if none.  A job that worker's node failed last is taken only
 * when no other job may be.
 */
struct job *
queue_take(struct queue *q, const char *match, const char *worker)
{
	struct job	*j, *own = NULL;
	uint64_t	 now = 0;

	TAILQ_FOREACH(j, &q->waiting, wait_entry) {
		if (j->not_before_ms != 0) {
			if (now == 0)
				now = util_now_ms();
			if (now < j->not_before_ms)
				continue;
			j->not_before_ms = 0;
		}
		if (!queue_name_matches(j, match))
			continue;
		if (!queue_on_node(worker, j->failed_node))
			break;
		if (own == NULL)
			own = j;	/* if nothing else may be taken */
	}
	if (j == NULL && (j = own) == NULL)
		return NULL;
	TAILQ_REMOVE(&q->waiting, j, wait_entry);
	queue_set_state(q, j, JOB_RUNNING);
	j->attempt++;
	if (!queue_on_node(worker, j->failed_node)) {
		free(j->failed_node);
		j->failed_node = NULL;
	}
	free(j->taken_node);
	j->taken_node = worker ? xstrndup(worker, queue_node_len(worker)) :
	    NULL;
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

/*
 * The running job's attempt failed and it runs again: it waits at the end
 * of the list, to be given to another node than the one that took it first.
 */
void
queue_fail_again(struct queue *q, struct job *j)
{
	if (j->state != JOB_RUNNING)
		return;
	free(j->failed_node);
	j->failed_node = j->taken_node;
	j->taken_node = NULL;
	queue_requeue(q, j);
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

/* Make a job DONE or FAILED, from waiting or running; it forgets its nodes. */
void
queue_finish(struct queue *q, struct job *j, enum job_state state)
{
	if (j->state == JOB_WAITING)
		TAILQ_REMOVE(&q->waiting, j, wait_entry);
	queue_set_state(q, j, state);
	free(j->taken_node);
	free(j->failed_node);
	j->taken_node = j->failed_node = NULL;
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
