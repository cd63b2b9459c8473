/*
 * queue.c: the server's jobs and their states.
 *
 * Jobs live in fixed chunks of QUEUE_CHUNK, allocated as the queue grows
 * and never moved, so a pointer to a job (in a list, a lease timer, a
 * commit) stays good for the queue's life, and jobs may be added while the
 * server runs.  Ids are 1-based and dense, given in the order jobs are
 * added: the files of the command line first, then the jobs added at run
 * time (spool.c); job id is chunk[(id-1)/QUEUE_CHUNK][(id-1)%QUEUE_CHUNK].
 *
 * A job is WAITING (in a waiting list), RUNNING (taken, maybe held by a
 * connection), DONE (its result is stored), FAILED, or BLOCKED (in no
 * waiting list: some of its prerequisites are not DONE yet; deps.c keeps
 * the edges and j->unmet).  DONE and FAILED are final.  A job waits from
 * the moment it is added, at the end of its list (queue_wait_tail).
 * Released jobs go to the front of their list, so a job that lost its
 * worker runs next.  A job with unmet prerequisites never waits: every way
 * back to a waiting list makes it BLOCKED instead, and queue_unblock lets
 * it wait once they are met.  queue_set_state is the one place a job
 * changes state.
 *
 * Named queues: every job is in one named queue (struct queue_named, in
 * q->named; [0] is QUEUE_DEFAULT, the queue of files and of ADDs naming
 * none), and has a priority, JQ_PRIORITY_MIN..JQ_PRIORITY_MAX.  A queue
 * keeps one waiting list per priority it has seen (struct queue_level),
 * the levels sorted highest first and kept, empty or not, for the queue's
 * life: at most 2001 of them.  So a plain take is the head of the first
 * non-empty level, O(levels), whatever the number of jobs; a take with a
 * glob, or past jobs in backoff, looks further down as before.  A take
 * over several queues walks their levels together, highest first, and at
 * one priority takes the job with the lowest id among the queues' first
 * candidates.  queue_wait_tail is the one way a job joins the end of its
 * list.  Queues are never removed; there are at most JQ_QUEUES_MAX.
 *
 * A job that failed and waits to run again is given to another node first.
 * A node is a worker name less a trailing "/<digits>" (jq-run names its
 * slots NAME/1 ... NAME/N, and they are one node); a session with no name
 * is on no node.  The job remembers only the node that took its latest
 * failed attempt (failed_node); a TAKE from that node passes the job over
 * while another matching job may be taken, and gets it when none may, so a
 * lone worker still tries again.  A take from any other session forgets
 * the node, and so does the job's end.
 *
 * Names are looked up through an index (struct queue_index: open
 * addressing over ids) built at the first queue_find_name, so a server
 * that is never asked pays nothing for it.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* A job's state before queue_add gives it its first one. */
#define JOB_NEW		JOB_NSTATES

/* What queue_find_name and queue_named_find compare: a name and its length. */
struct queue_name_key {
	const char	*name;
	size_t		 len;
};

static void	queue_set_state(struct queue *, struct job *, enum job_state);
static int	queue_named_eq(void *, uint32_t, const void *);

/* Job id, which exists (1 <= id <= njobs). */
static struct job *
queue_at(const struct queue *q, uint64_t id)
{
	id--;
	return &q->chunk[id / QUEUE_CHUNK][id % QUEUE_CHUNK];
}

/* Start an empty queue (its default named queue comes with its first job). */
void
queue_init(struct queue *q)
{
	memset(q, 0, sizeof *q);
}

/* Free the named queues and their levels (not the jobs in them). */
static void
queue_named_free(struct queue *q)
{
	struct queue_named	*n;
	size_t			 i, k;

	for (i = 0; i < q->nnamed; i++) {
		n = q->named[i];
		for (k = 0; k < n->nlevels; k++)
			free(n->level[k]);
		free(n->level);
		free(n);
	}
	free(q->named);
	q->named = NULL;
	q->nnamed = 0;
	queue_index_free(&q->qnames);
}

/* Free every job, the chunks and the name index. */
void
queue_free(struct queue *q)
{
	struct job	*j;
	uint64_t	 id;
	size_t		 i;

	for (id = 1; id <= q->njobs; id++) {
		j = queue_at(q, id);
		if (!j->in_name_borrowed)
			free(j->in_name);
		free(j->path);
		free(j->result);
		free(j->fail_status);
		free(j->fail_msg);
		if (j->run != NULL) {
			free(j->run->worker);
			free(j->run->taken_node);
			free(j->run->failed_node);
			free(j->run);
		}
		if (j->deps != NULL) {
			free(j->deps->prereq);
			free(j->deps->dependent);
			free(j->deps);
		}
	}
	for (i = 0; i < q->nchunks; i++)
		free(q->chunk[i]);
	free(q->chunk);
	queue_index_free(&q->names);
	queue_named_free(q);
	memset(q, 0, sizeof *q);
}

/*
 * Free the chunks and the index of a queue whose jobs (and their strings)
 * were all moved to another one.
 */
void
queue_forget(struct queue *q)
{
	size_t	 i;

	for (i = 0; i < q->nchunks; i++)
		free(q->chunk[i]);
	free(q->chunk);
	queue_index_free(&q->names);
	queue_named_free(q);
	memset(q, 0, sizeof *q);
}

/*
 * Make room for n more jobs (chunks and, once built, the name index), so
 * that the next n queue_adds cannot fail: 0, or -1 with errno (ENOMEM, or
 * EOVERFLOW past QUEUE_JOBS_MAX jobs).  For the server's run time, where
 * running out of memory must refuse a request, not end the server.
 */
int
queue_reserve(struct queue *q, size_t n)
{
	struct job	**v;
	size_t		  want;

	if (n > QUEUE_JOBS_MAX || q->njobs > QUEUE_JOBS_MAX - n) {
		errno = EOVERFLOW;
		return -1;
	}
	want = (q->njobs + n + QUEUE_CHUNK - 1) / QUEUE_CHUNK;
	while (q->nchunks < want) {
		if ((q->nchunks & (q->nchunks - 1)) == 0) {	/* 0, 1, 2, 4... */
			v = reallocarray(q->chunk, q->nchunks ? q->nchunks * 2 : 1,
			    sizeof *v);
			if (v == NULL)
				return -1;
			q->chunk = v;
		}
		if ((q->chunk[q->nchunks] = calloc(QUEUE_CHUNK,
		    sizeof **q->chunk)) == NULL)
			return -1;
		q->nchunks++;
	}
	if (q->names.slot != NULL && queue_index_reserve(&q->names, n) != 0)
		return -1;
	return 0;
}

/* The name index's hash of a job name. */
static uint32_t
queue_name_hash(const char *name, size_t len)
{
	return queue_hash(name, len);
}

/* The index of the named queue called name (len bytes), or -1. */
int
queue_named_find(const struct queue *q, const char *name, size_t len)
{
	struct queue_name_key	 key = { name, len };
	uint32_t		 found;

	found = queue_index_find(&q->qnames, queue_hash(name, len),
	    queue_named_eq, (void *)(uintptr_t)q, &key);
	return found ? (int)found - 1 : -1;
}

/*
 * The index of the named queue called name (len bytes, checked with
 * proto_queue_valid), made if there is none yet; or -1 with *cause when
 * JQ_QUEUES_MAX queues exist or memory runs out.
 */
int
queue_named_get(struct queue *q, const char *name, size_t len, char **cause)
{
	struct queue_named	**v, *n;
	int			 ix;

	if ((ix = queue_named_find(q, name, len)) >= 0)
		return ix;
	/* the default queue is always [0] */
	if (q->nnamed == 0 && (len != strlen(QUEUE_DEFAULT) ||
	    memcmp(name, QUEUE_DEFAULT, len) != 0) && queue_named_get(q,
	    QUEUE_DEFAULT, strlen(QUEUE_DEFAULT), cause) != 0)
		return -1;
	if (q->nnamed >= JQ_QUEUES_MAX) {
		*cause = xprintf("too many queues: at most %d", JQ_QUEUES_MAX);
		return -1;
	}
	if ((v = reallocarray(q->named, q->nnamed + 1, sizeof *v)) == NULL) {
		*cause = xprintf("cannot make queue %.*s: %s", (int)len, name,
		    strerror(errno));
		return -1;
	}
	q->named = v;
	if ((n = calloc(1, sizeof *n)) == NULL ||
	    queue_index_reserve(&q->qnames, 1) != 0) {
		free(n);
		*cause = xprintf("cannot make queue %.*s: %s", (int)len, name,
		    strerror(errno));
		return -1;
	}
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	q->named[q->nnamed++] = n;
	queue_index_put(&q->qnames, queue_hash(name, len),
	    (uint32_t)q->nnamed);
	return (int)q->nnamed - 1;
}

/*
 * The indexes of the named queues called names[0..n-1] that exist, into
 * ix (room for n), each once; how many.  Names of no queue are skipped: a
 * queue exists once a job is added to it.
 */
size_t
queue_named_resolve(const struct queue *q, char *const *names, size_t n,
    uint16_t *ix)
{
	size_t	 i, k, got = 0;
	int	 x;

	for (i = 0; i < n; i++) {
		if ((x = queue_named_find(q, names[i], strlen(names[i]))) < 0)
			continue;
		for (k = 0; k < got && ix[k] != (uint16_t)x; k++)
			;
		if (k == got)
			ix[got++] = (uint16_t)x;
	}
	return got;
}

/* The name of the queue job j is in. */
const char *
queue_named_name(const struct queue *q, const struct job *j)
{
	return q->named[j->queue_ix]->name;
}

/*
 * The waiting list of priority prio in named queue n, made if need be
 * (kept sorted, highest first); exits if memory runs out.
 */
static struct queue_level *
queue_level_get(struct queue_named *n, int prio)
{
	struct queue_level	**v, *l;
	size_t			 lo = 0, hi = n->nlevels, mid;

	while (lo < hi) {		/* the first level not above prio */
		mid = lo + (hi - lo) / 2;
		if (n->level[mid]->priority > prio)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n->nlevels && n->level[lo]->priority == prio)
		return n->level[lo];
	if ((v = reallocarray(n->level, n->nlevels + 1, sizeof *v)) == NULL ||
	    (n->level = v, l = malloc(sizeof *l)) == NULL) {
		log_warn("cannot make priority %d of queue %s", prio, n->name);
		exit(JQ_EXIT_IO);
	}
	l->priority = prio;
	TAILQ_INIT(&l->jobs);
	memmove(&v[lo + 1], &v[lo], (n->nlevels - lo) * sizeof *v);
	v[lo] = l;
	n->nlevels++;
	return l;
}

/*
 * Put a job that is not waiting (new, running, failed or blocked) at the
 * end of its queue's list of its priority; one with unmet prerequisites is
 * BLOCKED instead.  The one way a job joins the end of a waiting list.
 */
void
queue_wait_tail(struct queue *q, struct job *j)
{
	struct queue_level	*l;

	if (j->state == JOB_WAITING)
		return;
	if (j->unmet > 0) {
		queue_set_state(q, j, JOB_BLOCKED);
		return;
	}
	queue_set_state(q, j, JOB_WAITING);
	l = queue_level_get(q->named[j->queue_ix], j->priority);
	TAILQ_INSERT_TAIL(&l->jobs, j, wait_entry);
}

/* Put waiting job j at the front of its queue's list of its priority. */
static void
queue_wait_head(struct queue *q, struct job *j)
{
	struct queue_level	*l;

	l = queue_level_get(q->named[j->queue_ix], j->priority);
	TAILQ_INSERT_HEAD(&l->jobs, j, wait_entry);
}

/* Take waiting job j out of its list. */
static void
queue_wait_remove(struct queue *q, struct job *j)
{
	struct queue_level	*l;

	l = queue_level_get(q->named[j->queue_ix], j->priority);
	TAILQ_REMOVE(&l->jobs, j, wait_entry);
}

/*
 * Add a job for input path with result path (both now owned by the
 * queue): it gets the next id and waits, last in line.  Exits if memory
 * runs out, unless queue_reserve made room first.
 */
struct job *
queue_add(struct queue *q, char *path, char *result)
{
	return queue_add_in(q, path, result, 0, 0);
}

/*
 * queue_add, into named queue qix (an index queue_named_get gave) with
 * priority prio (JQ_PRIORITY_MIN..JQ_PRIORITY_MAX).
 */
struct job *
queue_add_in(struct queue *q, char *path, char *result, uint16_t qix,
    int prio)
{
	struct job	*j;
	char		*cause = NULL;

	if (queue_reserve(q, 1) != 0) {
		log_warn("cannot add a job");
		exit(JQ_EXIT_IO);
	}
	if (q->nnamed == 0 && queue_named_get(q, QUEUE_DEFAULT,
	    strlen(QUEUE_DEFAULT), &cause) != 0) {
		log_warnx("cannot add a job: %s", cause);
		exit(JQ_EXIT_IO);
	}
	j = &q->chunk[q->njobs / QUEUE_CHUNK][q->njobs % QUEUE_CHUNK];
	memset(j, 0, sizeof *j);
	j->id = ++q->njobs;
	j->path = path;
	j->result = result;
	j->in_dirfd = -1;
	j->queue_ix = qix;
	j->priority = (int16_t)prio;
	j->tree_fd = -1;
	j->state = JOB_NEW;
	queue_wait_tail(q, j);
	if (q->names.slot != NULL)
		queue_index_put(&q->names, queue_name_hash(path, strlen(path)),
		    (uint32_t)j->id);
	return j;
}

/* The job with id (1-based), or NULL if there is none. */
struct job *
queue_get(const struct queue *q, uint64_t id)
{
	if (id == 0 || id > q->njobs)
		return NULL;
	return queue_at(q, id);
}

/* Job j's run record, allocated (zeroed) the first time it is asked for. */
struct job_run *
queue_run(struct job *j)
{
	if (j->run == NULL)
		j->run = xcalloc(1, sizeof *j->run);
	return j->run;
}

/* Find a job by its id as sent on the wire, or NULL. */
struct job *
queue_find(struct queue *q, const char *id)
{
	uint64_t	 n;

	if (q->njobs == 0 || parse_u64(id, 1, q->njobs, &n) != 0)
		return NULL;
	return queue_at(q, n);
}

/* Whether job id of queue arg is named key. */
static int
queue_name_eq(void *arg, uint32_t id, const void *key)
{
	const struct queue_name_key	*k = key;
	const struct job		*j = queue_get(arg, id);

	return j != NULL && strlen(j->path) == k->len &&
	    memcmp(j->path, k->name, k->len) == 0;
}

/*
 * Find a job by its name (len bytes), or NULL.  The first call builds the
 * index (-1 with errno, *err set, if memory runs out); then it is kept up
 * to date by queue_add.
 */
struct job *
queue_find_name(struct queue *q, const char *name, size_t len, int *err)
{
	struct queue_name_key	 key = { name, len };
	struct job		*j;
	uint64_t		 id;
	uint32_t		 found;

	*err = 0;
	if (q->names.slot == NULL) {
		if (queue_index_reserve(&q->names, q->njobs + 1) != 0) {
			*err = errno;
			return NULL;
		}
		for (id = 1; id <= q->njobs; id++) {
			j = queue_at(q, id);
			queue_index_put(&q->names, queue_name_hash(j->path,
			    strlen(j->path)), (uint32_t)id);
		}
	}
	found = queue_index_find(&q->names, queue_name_hash(name, len),
	    queue_name_eq, q, &key);
	return found ? queue_get(q, found) : NULL;
}

/* FNV-1a over a byte range, folded to 32 bits: the indexes' hash. */
uint32_t
queue_hash(const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	uint64_t		 h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return (uint32_t)(h ^ (h >> 32));
}

/*
 * Make room for n more entries in an index (at most half full): 0, or -1
 * with errno.  An index maps a 32-bit hash to nonzero 32-bit values; each
 * slot holds both, so it grows without the keys.
 */
int
queue_index_reserve(struct queue_index *x, size_t n)
{
	uint64_t	*old = x->slot, *v, e;
	size_t		 cap = x->cap ? x->cap : 64, i, k, oldcap = x->cap;

	if (n > SIZE_MAX / 4 - x->n) {
		errno = EOVERFLOW;
		return -1;
	}
	while (cap < 2 * (x->n + n))
		cap *= 2;
	if (cap == x->cap)
		return 0;
	if ((v = calloc(cap, sizeof *v)) == NULL)
		return -1;
	for (i = 0; old != NULL && i < oldcap; i++) {
		if ((e = old[i]) == 0)
			continue;
		for (k = (size_t)(e >> 32) & (cap - 1); v[k] != 0;
		    k = (k + 1) & (cap - 1))
			;
		v[k] = e;
	}
	free(old);
	x->slot = v;
	x->cap = cap;
	return 0;
}

/* Put value val (not 0) under hash h; queue_index_reserve made room. */
void
queue_index_put(struct queue_index *x, uint32_t h, uint32_t val)
{
	size_t	 k;

	if (2 * (x->n + 1) > x->cap && queue_index_reserve(x, 1) != 0) {
		log_warn("index");
		exit(JQ_EXIT_IO);
	}
	for (k = h & (x->cap - 1); x->slot[k] != 0; k = (k + 1) & (x->cap - 1))
		;
	x->slot[k] = (uint64_t)h << 32 | val;
	x->n++;
}

/*
 * The first value under hash h for which eq(arg, value, key) holds, or 0.
 */
uint32_t
queue_index_find(const struct queue_index *x, uint32_t h,
    int (*eq)(void *, uint32_t, const void *), void *arg, const void *key)
{
	size_t	 k;
	uint64_t e;

	if (x->slot == NULL || x->cap == 0)
		return 0;
	for (k = h & (x->cap - 1); (e = x->slot[k]) != 0;
	    k = (k + 1) & (x->cap - 1))
		if ((uint32_t)(e >> 32) == h && eq(arg, (uint32_t)e, key))
			return (uint32_t)e;
	return 0;
}

/* Free an index. */
void
queue_index_free(struct queue_index *x)
{
	free(x->slot);
	memset(x, 0, sizeof *x);
}

/* Whether named queue id - 1 of queue arg is called key. */
static int
queue_named_eq(void *arg, uint32_t id, const void *key)
{
	const struct queue_name_key	*k = key;
	const struct queue		*q = arg;
	const struct queue_named	*n;

	if (id == 0 || id > q->nnamed)
		return 0;
	n = q->named[id - 1];
	return strlen(n->name) == k->len && memcmp(n->name, k->name,
	    k->len) == 0;
}

/* Whether a job's name matches a glob (NULL matches everything). */
int
queue_name_matches(const struct job *j, const char *match)
{
	return match == NULL || fnmatch(match, j->path, 0) == 0;
}

/*
 * Move a job to another state, keeping the counts: the one place a job's
 * state changes (a new job comes from JOB_NEW, which is not counted).
 */
static void
queue_set_state(struct queue *q, struct job *j, enum job_state state)
{
	struct queue_named	*n = q->named[j->queue_ix];

	if (j->state != JOB_NEW) {
		q->count[j->state]--;
		n->count[j->state]--;
	}
	j->state = state;
	q->count[state]++;
	n->count[state]++;
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
 * The first job of level l that may be taken now: its not-before time (a
 * backoff after a failed try) has come and its name matches.  One that
 * worker's node failed last is passed over, the first such kept in *own
 * (if nothing else may be taken).  NULL if none.  *now is 0 or the time.
 */
static struct job *
queue_level_first(struct queue_level *l, const char *match,
    const char *worker, uint64_t *now, struct job **own)
{
	struct job	*j;

	TAILQ_FOREACH(j, &l->jobs, wait_entry) {
		if (j->run != NULL && j->run->not_before_ms != 0) {
			if (*now == 0)
				*now = util_now_ms();
			if (*now < j->run->not_before_ms)
				continue;
			j->run->not_before_ms = 0;
		}
		if (!queue_name_matches(j, match))
			continue;
		if (j->run == NULL || !queue_on_node(worker,
		    j->run->failed_node))
			return j;
		if (*own == NULL)
			*own = j;
	}
	return NULL;
}

/*
 * Take a waiting job of the named queues qix[0..nq-1] (NULL or none: the
 * default queue) whose name matches, for worker (its HELLO name, or
 * NULL); NULL if none.  The highest priority among the queues first; at
 * one priority, the lowest id among each queue's first candidate.  A job
 * that worker's node failed last is taken only when no other job may be.
 */
struct job *
queue_take(struct queue *q, const uint16_t *qix, size_t nq,
    const char *match, const char *worker)
{
	static const uint16_t	 dflt = 0;
	struct queue_named	*n;
	struct job		*j = NULL, *k, *own = NULL;
	size_t			 pos[JQ_TAKE_QUEUES_MAX] = { 0 }, i;
	uint64_t		 now = 0;
	int			 top, found;

	if (q->nnamed == 0)
		return NULL;
	if (qix == NULL || nq == 0) {
		qix = &dflt;
		nq = 1;
	}
	if (nq > JQ_TAKE_QUEUES_MAX)
		nq = JQ_TAKE_QUEUES_MAX;
	while (j == NULL) {
		/* the highest priority the queues have left to look at */
		top = 0;
		found = 0;
		for (i = 0; i < nq; i++) {
			n = q->named[qix[i]];
			if (pos[i] < n->nlevels && (!found ||
			    n->level[pos[i]]->priority > top)) {
				top = n->level[pos[i]]->priority;
				found = 1;
			}
		}
		if (!found)
			break;
		for (i = 0; i < nq; i++) {
			n = q->named[qix[i]];
			if (pos[i] >= n->nlevels ||
			    n->level[pos[i]]->priority != top)
				continue;
			k = queue_level_first(n->level[pos[i]++], match,
			    worker, &now, &own);
			if (k != NULL && (j == NULL || k->id < j->id))
				j = k;
		}
	}
	if (j == NULL && (j = own) == NULL)
		return NULL;
	queue_wait_remove(q, j);
	queue_set_state(q, j, JOB_RUNNING);
	(void)queue_run(j);
	j->attempt++;
	if (!queue_on_node(worker, j->run->failed_node)) {
		free(j->run->failed_node);
		j->run->failed_node = NULL;
	}
	free(j->run->taken_node);
	j->run->taken_node = worker ? xstrndup(worker, queue_node_len(worker)) :
	    NULL;
	return j;
}

/*
 * The earliest not-before time after now among the waiting jobs, or 0:
 * when the backoff timer fires next.
 */
uint64_t
queue_next_not_before(const struct queue *q, uint64_t now)
{
	const struct queue_named	*n;
	const struct job		*j;
	uint64_t			 next = 0;
	size_t				 i, k;

	for (i = 0; i < q->nnamed; i++) {
		n = q->named[i];
		if (n->count[JOB_WAITING] == 0)
			continue;
		for (k = 0; k < n->nlevels; k++)
			TAILQ_FOREACH(j, &n->level[k]->jobs, wait_entry)
				if (j->run != NULL &&
				    j->run->not_before_ms > now && (next == 0 ||
				    j->run->not_before_ms < next))
					next = j->run->not_before_ms;
	}
	return next;
}

/*
 * A waiting job has an unmet prerequisite: it is BLOCKED.  (A running one
 * runs on: it is BLOCKED when it comes back, queue_release.)
 */
void
queue_block(struct queue *q, struct job *j)
{
	if (j->state != JOB_WAITING || j->unmet == 0)
		return;
	queue_wait_remove(q, j);
	queue_set_state(q, j, JOB_BLOCKED);
}

/* A blocked job whose prerequisites are all met waits, last in line. */
void
queue_unblock(struct queue *q, struct job *j)
{
	if (j->state != JOB_BLOCKED || j->unmet > 0)
		return;
	queue_wait_tail(q, j);
}

/*
 * Hand a running job back: it waits at the front of its priority's list
 * (or is BLOCKED, if it has unmet prerequisites).
 */
void
queue_release(struct queue *q, struct job *j)
{
	if (j->state != JOB_RUNNING)
		return;
	if (j->unmet > 0) {
		queue_set_state(q, j, JOB_BLOCKED);
		return;
	}
	queue_set_state(q, j, JOB_WAITING);
	queue_wait_head(q, j);
}

/* Put a running job that failed back at the end of its list, to run again. */
void
queue_requeue(struct queue *q, struct job *j)
{
	queue_wait_tail(q, j);
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
	free(j->run->failed_node);		/* running: j->run is set */
	j->run->failed_node = j->run->taken_node;
	j->run->taken_node = NULL;
	queue_requeue(q, j);
}

/*
 * Set a job's state from the journal at start-up (jobs are not running).
 * WAITING and BLOCKED are one: a job waits, or is BLOCKED if it has unmet
 * prerequisites (deps_settle counts them once the journal is read).
 */
void
queue_recover(struct queue *q, struct job *j, enum job_state state)
{
	if (j->state == state)
		return;
	if (state == JOB_WAITING || state == JOB_BLOCKED) {
		queue_wait_tail(q, j);
		return;
	}
	if (j->state == JOB_WAITING)
		queue_wait_remove(q, j);
	queue_set_state(q, j, state);
}

/*
 * Make a job DONE or FAILED, from waiting, blocked or running; it forgets
 * its nodes.
 */
void
queue_finish(struct queue *q, struct job *j, enum job_state state)
{
	if (j->state == JOB_WAITING)
		queue_wait_remove(q, j);
	queue_set_state(q, j, state);
	if (j->run != NULL) {
		free(j->run->taken_node);
		free(j->run->failed_node);
		j->run->taken_node = j->run->failed_node = NULL;
	}
}

/* Whether job j is in one of the named queues qix[0..nq-1]. */
static int
queue_in(const struct job *j, const uint16_t *qix, size_t nq)
{
	size_t	 i;

	for (i = 0; i < nq; i++)
		if (j->queue_ix == qix[i])
			return 1;
	return 0;
}

/*
 * Whether a job of the named queues qix[0..nq-1] (NULL or none: the
 * default queue) matching the glob may still be taken, now or later.
 */
int
queue_can_match(struct queue *q, const uint16_t *qix, size_t nq,
    const char *match)
{
	static const uint16_t	 dflt = 0;
	const struct queue_named *n;
	struct job		*j;
	uint64_t		 id;
	size_t			 i, live = 0;

	if (q->nnamed == 0)
		return 0;
	if (qix == NULL || nq == 0) {
		qix = &dflt;
		nq = 1;
	}
	for (i = 0; i < nq; i++) {
		n = q->named[qix[i]];
		live += n->count[JOB_WAITING] + n->count[JOB_RUNNING] +
		    n->count[JOB_BLOCKED];
	}
	if (live == 0)
		return 0;
	if (match == NULL)
		return 1;
	for (id = 1; id <= q->njobs; id++) {
		j = queue_at(q, id);
		if ((j->state == JOB_WAITING || j->state == JOB_RUNNING ||
		    j->state == JOB_BLOCKED) && queue_in(j, qix, nq) &&
		    queue_name_matches(j, match))
			return 1;
	}
	return 0;
}

/*
 * Whether every job is DONE or FAILED (a BLOCKED one is not finished: it
 * runs once its prerequisites are done, and deps.c refuses the cycles that
 * could keep it blocked for ever).
 */
int
queue_all_finished(const struct queue *q)
{
	return q->count[JOB_DONE] + q->count[JOB_FAILED] == q->njobs;
}
