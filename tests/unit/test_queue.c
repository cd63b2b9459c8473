/*
 * test_queue.c: unit tests for queue.c (the jobs and their states): add,
 * ready, find, take with and without a glob, release, requeue, recover,
 * finish, can_match, all_finished, the preference of a failed job for
 * another node, and the counts that queue_set_state()
 * keeps, checked against the jobs themselves after every step of a long
 * pseudo-random walk.  Prints TAP; exits 1 when any test fails.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jq.h"

/* The job at 0-based index i of queue q (its id is i + 1). */
#define JOBAT(q, i)	(*queue_get((q), (uint64_t)(i) + 1))
#include "tap.h"

static const char *const state_names[] = { "WAITING", "RUNNING", "DONE", "FAILED",
    "BLOCKED" };

/*
 * Check what the queue claims against what its jobs say: the counts per
 * state, and a waiting list holding each WAITING job exactly once.  NULL if
 * all agree, else a static description of the first disagreement.
 */
static const char *
queue_bad(const struct queue *q)
{
	static char	 why[160];
	size_t		 tally[JOB_NSTATES] = { 0 }, inlist = 0, i;
	unsigned char	*seen = xcalloc(q->njobs + 1, 1);
	const struct job *j;
	size_t		 n, l;
	int		 s;

	why[0] = '\0';
	for (i = 0; i < q->njobs; i++) {
		if (JOBAT(q, i).state >= JOB_NSTATES) {
			snprintf(why, sizeof why, "job %zu has state %d", i + 1,
			    (int)JOBAT(q, i).state);
			goto out;
		}
		tally[JOBAT(q, i).state]++;
	}
	for (s = 0; s < JOB_NSTATES; s++)
		if (tally[s] != q->count[s]) {
			snprintf(why, sizeof why, "count[%s] is %zu, %zu jobs are",
			    state_names[s], q->count[s], tally[s]);
			goto out;
		}
	for (n = 0; n < q->nnamed; n++)
	for (l = 0; l < q->named[n]->nlevels; l++)
	TAILQ_FOREACH(j, &q->named[n]->level[l]->jobs, wait_entry) {
		if (j->queue_ix != n ||
		    j->priority != q->named[n]->level[l]->priority) {
			snprintf(why, sizeof why, "job %llu is in another "
			    "queue's or priority's list",
			    (unsigned long long)j->id);
			goto out;
		}
		if (j->id == 0 || j->id > q->njobs || queue_get(q, j->id) != j) {
			snprintf(why, sizeof why, "a stranger in the waiting list");
			goto out;
		}
		if (j->state != JOB_WAITING || seen[j->id]++ != 0) {
			snprintf(why, sizeof why, "job %llu is in the waiting list "
			    "as %s%s", (unsigned long long)j->id,
			    state_names[j->state], seen[j->id] > 1 ? ", twice" : "");
			goto out;
		}
		inlist++;
	}
	if (inlist != tally[JOB_WAITING])
		snprintf(why, sizeof why, "%zu jobs wait, %zu are in the list",
		    tally[JOB_WAITING], inlist);
out:
	free(seen);
	return why[0] != '\0' ? why : NULL;
}

/*
 * The ids in the default queue's waiting lists, in the order taken (the
 * highest priority first), as "1 2 3" (a static buffer).
 */
static const char *
queue_order(const struct queue *q)
{
	static char	 buf[512];
	const struct job *j;
	size_t		 n = 0, l;

	buf[0] = '\0';
	if (q->nnamed == 0)
		return buf;
	for (l = 0; l < q->named[0]->nlevels; l++)
	TAILQ_FOREACH(j, &q->named[0]->level[l]->jobs, wait_entry) {
		if (n + 24 >= sizeof buf)
			break;
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%llu",
		    n > 0 ? " " : "", (unsigned long long)j->id);
	}
	return buf;
}

/* Start q with the jobs named in names (a NULL-terminated list). */
static void
queue_with(struct queue *q, const char *const names[])
{
	size_t	 i;

	queue_init(q);
	for (i = 0; names[i] != NULL; i++)
		queue_add(q, xstrdup(names[i]), xprintf("out/%s.res", names[i]));
}

/* The id of j, or 0 for NULL, for messages. */
static unsigned long long
id_of(const struct job *j)
{
	return j == NULL ? 0 : (unsigned long long)j->id;
}

static const char *const three[] = { "a.wav", "dir/b.wav", "c.txt", NULL };

/* queue_add numbers and keeps jobs, and each waits, in the order added. */
static void
test_add_ready(void)
{
	struct queue	 q;
	struct job	*j;
	char		*path, *result;
	size_t		 i;
	int		 good = 1;

	queue_init(&q);
	OK(q.njobs == 0 && q.count[JOB_WAITING] == 0 && queue_all_finished(&q),
	    "an empty queue has no jobs and counts as finished");
	path = xstrdup("a.wav");
	result = xstrdup("out/a.res");
	j = queue_add(&q, path, result);
	OK(j != NULL && j->id == 1 && j->path == path && j->result == result &&
	    j->attempt == 0 && j->run == NULL && j->deps == NULL,
	    "queue_add keeps the given strings and numbers the job 1");
	OK(strcmp(queue_order(&q), "1") == 0 && j->state == JOB_WAITING &&
	    q.count[JOB_WAITING] == 1, "an added job waits at once");
	for (i = 2; i <= 200; i++)
		queue_add(&q, xprintf("job%zu", i), xprintf("out/job%zu", i));
	for (i = 1; i < q.njobs; i++) {
		char *want = xprintf("job%zu", i + 1);
		if (JOBAT(&q, i).id != i + 1 || strcmp(JOBAT(&q, i).path, want) != 0)
			good = 0;
		free(want);
	}
	OK(q.njobs == 200 && good && strcmp(JOBAT(&q, 0).path, "a.wav") == 0 &&
	    strcmp(JOBAT(&q, 199).path, "job200") == 0 &&
	    strcmp(JOBAT(&q, 199).result, "out/job200") == 0,
	    "200 jobs added: ids 1..200 in order, names kept");
	OK(queue_bad(&q) == NULL && q.count[JOB_WAITING] == 200 &&
	    q.count[JOB_RUNNING] == 0 && q.count[JOB_DONE] == 0 &&
	    q.count[JOB_FAILED] == 0, "all 200 wait (%s)",
	    queue_bad(&q) ? queue_bad(&q) : "consistent");
	OK(strncmp(queue_order(&q), "1 2 3 4 5 ", 10) == 0 &&
	    TAILQ_LAST(&q.named[0]->level[0]->jobs, job_tailq) ==
	    &JOBAT(&q, 199),
	    "they wait in the order given");
	OK(!queue_all_finished(&q), "a queue of waiting jobs is not finished");
	queue_free(&q);
	OK(q.njobs == 0 && q.chunk == NULL && q.count[JOB_WAITING] == 0 &&
	    q.nnamed == 0, "queue_free leaves an empty queue");
	queue_add(&q, xstrdup("again"), xstrdup("again.res"));
	OK(q.njobs == 1 && JOBAT(&q, 0).id == 1 && q.count[JOB_WAITING] == 1,
	    "a freed queue can be filled again");
	queue_free(&q);
}

/* queue_find takes a wire id, strictly. */
static void
test_find(void)
{
	struct queue	 q;

	queue_init(&q);
	OK(queue_find(&q, "1") == NULL, "queue_find in an empty queue: NULL");
	queue_free(&q);
	queue_with(&q, three);
	OK(queue_find(&q, "1") == &JOBAT(&q, 0) && queue_find(&q, "3") == &JOBAT(&q, 2),
	    "queue_find \"1\" and \"3\" give the first and the last job");
	OK(queue_find(&q, "0") == NULL && queue_find(&q, "4") == NULL,
	    "queue_find \"0\" and \"4\" (out of range): NULL");
	OK(queue_find(&q, "") == NULL && queue_find(&q, "-1") == NULL &&
	    queue_find(&q, "+1") == NULL && queue_find(&q, " 1") == NULL &&
	    queue_find(&q, "1 ") == NULL && queue_find(&q, "1x") == NULL &&
	    queue_find(&q, "0x1") == NULL,
	    "queue_find refuses \"\", \"-1\", \"+1\", blanks and trailing junk");
	OK(queue_find(&q, "18446744073709551617") == NULL &&
	    queue_find(&q, "18446744073709551616") == NULL,
	    "queue_find refuses ids past 2^64");
	queue_free(&q);
}

/* queue_take in order, with and without a glob. */
static void
test_take(void)
{
	struct queue	 q;
	struct job	*a, *b, *c, *d;

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, NULL, NULL);
	b = queue_take(&q, NULL, 0, NULL, NULL);
	c = queue_take(&q, NULL, 0, NULL, NULL);
	d = queue_take(&q, NULL, 0, NULL, NULL);
	OK(a == &JOBAT(&q, 0) && b == &JOBAT(&q, 1) && c == &JOBAT(&q, 2) && d == NULL,
	    "take without a glob: 1, 2, 3, then NULL (got %llu %llu %llu %llu)",
	    id_of(a), id_of(b), id_of(c), id_of(d));
	OK(a->state == JOB_RUNNING && b->state == JOB_RUNNING &&
	    c->state == JOB_RUNNING && a->attempt == 1 && c->attempt == 1,
	    "taken jobs run, on their first attempt");
	OK(queue_bad(&q) == NULL && q.count[JOB_RUNNING] == 3 &&
	    q.count[JOB_WAITING] == 0 && queue_order(&q)[0] == '\0',
	    "counts after three takes: 3 running, none waiting (%s)",
	    queue_bad(&q) ? queue_bad(&q) : "consistent");
	OK(!queue_all_finished(&q), "running jobs are not finished");
	queue_free(&q);

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, "*.wav", NULL);
	b = queue_take(&q, NULL, 0, "*.wav", NULL);
	c = queue_take(&q, NULL, 0, "*.wav", NULL);
	OK(a == &JOBAT(&q, 0) && b == &JOBAT(&q, 1) && c == NULL,
	    "take \"*.wav\": a.wav, then dir/b.wav ('*' matches '/'), then NULL "
	    "(got %llu %llu %llu)", id_of(a), id_of(b), id_of(c));
	OK(JOBAT(&q, 2).state == JOB_WAITING && JOBAT(&q, 2).attempt == 0 &&
	    q.count[JOB_WAITING] == 1 && q.count[JOB_RUNNING] == 2 &&
	    queue_bad(&q) == NULL, "a take that matches nothing changes nothing");
	OK(queue_take(&q, NULL, 0, "c.txt/", NULL) == NULL && queue_take(&q, NULL, 0, "C.TXT", NULL) == NULL &&
	    queue_take(&q, NULL, 0, "c", NULL) == NULL && queue_take(&q, NULL, 0, "*.tx", NULL) == NULL,
	    "the glob matches the whole name, case-sensitively");
	c = queue_take(&q, NULL, 0, "[a-c].t?t", NULL);
	OK(c == &JOBAT(&q, 2), "take \"[a-c].t?t\" finds c.txt (got %llu)", id_of(c));
	queue_free(&q);

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, "dir/*", NULL);
	b = queue_take(&q, NULL, 0, NULL, NULL);
	OK(a == &JOBAT(&q, 1) && b == &JOBAT(&q, 0),
	    "a glob may take a job from the middle; the rest keep their order "
	    "(got %llu then %llu)", id_of(a), id_of(b));
	OK(strcmp(queue_order(&q), "3") == 0 && queue_bad(&q) == NULL,
	    "the waiting list is then just job 3 (got \"%s\")", queue_order(&q));
	OK(queue_name_matches(a, NULL) && queue_name_matches(a, "*") &&
	    queue_name_matches(a, "dir/b.wav") && !queue_name_matches(a, "b.wav"),
	    "queue_name_matches: NULL and \"*\" match, a glob must match all of it");
	queue_free(&q);
}

/* release puts a job at the front, requeue at the end; both only when it makes sense. */
static void
test_release_requeue(void)
{
	struct queue	 q;
	struct job	*a, *b, *c;

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, NULL, NULL);
	b = queue_take(&q, NULL, 0, NULL, NULL);
	queue_release(&q, a);
	OK(a->state == JOB_WAITING && strcmp(queue_order(&q), "1 3") == 0 &&
	    queue_bad(&q) == NULL,
	    "release puts a running job back at the front (order \"%s\")",
	    queue_order(&q));
	queue_release(&q, b);
	OK(strcmp(queue_order(&q), "2 1 3") == 0 && queue_bad(&q) == NULL,
	    "the job released last runs first (order \"%s\")", queue_order(&q));
	c = queue_take(&q, NULL, 0, NULL, NULL);
	OK(c == b && c->attempt == 2, "the next take gets it again, attempt 2 "
	    "(got job %llu attempt %u)", id_of(c), c ? c->attempt : 0);
	queue_release(&q, a);
	OK(strcmp(queue_order(&q), "1 3") == 0 && queue_bad(&q) == NULL,
	    "releasing a waiting job changes nothing (order \"%s\"; %s)",
	    queue_order(&q), queue_bad(&q) ? queue_bad(&q) : "consistent");
	queue_finish(&q, b, JOB_DONE);
	queue_release(&q, b);
	OK(b->state == JOB_DONE && q.count[JOB_DONE] == 1 &&
	    strcmp(queue_order(&q), "1 3") == 0 && queue_bad(&q) == NULL,
	    "releasing a done job changes nothing");
	queue_free(&q);

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, NULL, NULL);
	queue_requeue(&q, a);
	OK(a->state == JOB_WAITING && strcmp(queue_order(&q), "2 3 1") == 0 &&
	    queue_bad(&q) == NULL,
	    "requeue puts a running job at the end (order \"%s\")",
	    queue_order(&q));
	queue_requeue(&q, a);
	OK(strcmp(queue_order(&q), "2 3 1") == 0 && queue_bad(&q) == NULL,
	    "requeueing a waiting job changes nothing (order \"%s\"; %s)",
	    queue_order(&q), queue_bad(&q) ? queue_bad(&q) : "consistent");
	b = queue_take(&q, NULL, 0, NULL, NULL);
	queue_finish(&q, b, JOB_FAILED);
	OK(b->state == JOB_FAILED && q.count[JOB_FAILED] == 1 &&
	    strcmp(queue_order(&q), "3 1") == 0 && queue_bad(&q) == NULL,
	    "a failed job leaves the list");
	queue_requeue(&q, b);
	OK(b->state == JOB_WAITING && q.count[JOB_FAILED] == 0 &&
	    strcmp(queue_order(&q), "3 1 2") == 0 && queue_bad(&q) == NULL,
	    "requeue of a failed job (RETRY) puts it at the end (order \"%s\")",
	    queue_order(&q));
	queue_free(&q);
}

/*
 * BLOCKED (deps.c sets unmet): a job with unmet prerequisites never waits;
 * block, unblock, release, requeue and recover keep it out of the list.
 */
static void
test_blocked(void)
{
	struct queue	 q;
	struct job	*a, *b, *c;

	queue_with(&q, three);
	a = queue_get(&q, 1);
	b = queue_get(&q, 2);
	c = queue_get(&q, 3);
	a->unmet = 1;
	queue_block(&q, a);
	OK(a->state == JOB_BLOCKED && q.count[JOB_BLOCKED] == 1 &&
	    strcmp(queue_order(&q), "2 3") == 0 && queue_bad(&q) == NULL,
	    "a waiting job with an unmet prerequisite is blocked, out of the "
	    "list (order \"%s\")", queue_order(&q));
	OK(queue_take(&q, NULL, 0, NULL, NULL) == b, "a take passes the blocked job by");
	OK(!queue_all_finished(&q) && queue_can_match(&q, NULL, 0, "a*"),
	    "a blocked job is not finished, and may still be taken later");
	b->unmet = 2;
	queue_release(&q, b);
	OK(b->state == JOB_BLOCKED && strcmp(queue_order(&q), "3") == 0 &&
	    queue_bad(&q) == NULL, "a running job released with unmet "
	    "prerequisites is blocked, not waiting");
	queue_unblock(&q, b);
	OK(b->state == JOB_BLOCKED, "unblock waits until unmet is 0");
	b->unmet = 0;
	queue_unblock(&q, b);
	a->unmet = 0;
	queue_unblock(&q, a);
	OK(a->state == JOB_WAITING && b->state == JOB_WAITING &&
	    strcmp(queue_order(&q), "3 2 1") == 0 && queue_bad(&q) == NULL,
	    "unblocked jobs wait at the end, in the order they were unblocked "
	    "(order \"%s\")", queue_order(&q));
	c->unmet = 1;
	queue_finish(&q, c, JOB_FAILED);
	queue_requeue(&q, c);
	OK(c->state == JOB_BLOCKED && queue_bad(&q) == NULL,
	    "requeue (RETRY) of a failed job with unmet prerequisites blocks it");
	queue_finish(&q, c, JOB_FAILED);
	queue_recover(&q, c, JOB_WAITING);
	OK(c->state == JOB_BLOCKED && queue_bad(&q) == NULL,
	    "recovering a job as waiting blocks it while unmet");
	queue_finish(&q, c, JOB_DONE);
	OK(c->state == JOB_DONE && q.count[JOB_BLOCKED] == 0 &&
	    queue_bad(&q) == NULL, "a blocked job may finish (cancelled, or "
	    "failed by its prerequisite)");
	queue_free(&q);
}

/* finish and recover, can_match and all_finished. */
static void
test_finish_recover(void)
{
	struct queue	 q;
	struct job	*a;

	queue_with(&q, three);
	queue_finish(&q, &JOBAT(&q, 1), JOB_FAILED);
	OK(JOBAT(&q, 1).state == JOB_FAILED && strcmp(queue_order(&q), "1 3") == 0 &&
	    q.count[JOB_FAILED] == 1 && q.count[JOB_WAITING] == 2 &&
	    queue_bad(&q) == NULL,
	    "finish from waiting takes the job out of the list (order \"%s\")",
	    queue_order(&q));
	a = queue_take(&q, NULL, 0, NULL, NULL);
	queue_finish(&q, a, JOB_DONE);
	OK(a == &JOBAT(&q, 0) && a->state == JOB_DONE && q.count[JOB_DONE] == 1 &&
	    q.count[JOB_RUNNING] == 0 && queue_bad(&q) == NULL,
	    "finish from running: done, counted once");
	OK(!queue_all_finished(&q), "one job still waits: not all finished");
	OK(queue_can_match(&q, NULL, 0, NULL) && queue_can_match(&q, NULL, 0, "c*") &&
	    !queue_can_match(&q, NULL, 0, "*.wav"),
	    "can_match: yes for any job or c*, no for *.wav (both finished)");
	a = queue_take(&q, NULL, 0, NULL, NULL);
	OK(queue_can_match(&q, NULL, 0, "c.txt") && !queue_can_match(&q, NULL, 0, "a.wav"),
	    "can_match counts a running job (it may come back), not a done one");
	queue_finish(&q, a, JOB_DONE);
	OK(queue_all_finished(&q) && !queue_can_match(&q, NULL, 0, NULL) &&
	    queue_bad(&q) == NULL, "all done or failed: finished, nothing to match");
	OK(queue_take(&q, NULL, 0, NULL, NULL) == NULL, "nothing to take once all are finished");
	queue_free(&q);

	queue_with(&q, three);
	queue_recover(&q, &JOBAT(&q, 0), JOB_DONE);
	queue_recover(&q, &JOBAT(&q, 1), JOB_FAILED);
	OK(q.count[JOB_DONE] == 1 && q.count[JOB_FAILED] == 1 &&
	    q.count[JOB_WAITING] == 1 && strcmp(queue_order(&q), "3") == 0 &&
	    queue_bad(&q) == NULL,
	    "recover to DONE and FAILED takes jobs out of the list (order \"%s\")",
	    queue_order(&q));
	queue_recover(&q, &JOBAT(&q, 0), JOB_WAITING);
	OK(JOBAT(&q, 0).state == JOB_WAITING && strcmp(queue_order(&q), "3 1") == 0 &&
	    queue_bad(&q) == NULL,
	    "recover DONE -> WAITING puts the job at the end (order \"%s\")",
	    queue_order(&q));
	queue_recover(&q, &JOBAT(&q, 0), JOB_WAITING);
	queue_recover(&q, &JOBAT(&q, 1), JOB_FAILED);
	OK(strcmp(queue_order(&q), "3 1") == 0 && q.count[JOB_FAILED] == 1 &&
	    queue_bad(&q) == NULL,
	    "recover to the state a job is in changes nothing (order \"%s\"; %s)",
	    queue_order(&q), queue_bad(&q) ? queue_bad(&q) : "consistent");
	queue_recover(&q, &JOBAT(&q, 1), JOB_WAITING);
	queue_recover(&q, &JOBAT(&q, 1), JOB_DONE);
	OK(JOBAT(&q, 1).state == JOB_DONE && strcmp(queue_order(&q), "3 1") == 0 &&
	    q.count[JOB_DONE] == 1 && q.count[JOB_FAILED] == 0 &&
	    queue_bad(&q) == NULL, "recover FAILED -> WAITING -> DONE");
	queue_free(&q);
}

/*
 * Every public transition, chosen by a fixed pseudo-random sequence on 20
 * jobs, 20000 times; after each step the counts and the waiting list must
 * agree with the jobs (queue_set_state is the only place states change).
 */
static void
test_walk(void)
{
	struct queue	 q;
	struct job	*j;
	uint32_t	 x = 12345;
	const char	*bad = NULL, *op = "";
	char		 name[16];
	int		 step, n, k, want;
	size_t		 takes = 0, finishes = 0, recovers = 0;

	queue_init(&q);
	for (k = 0; k < 20; k++) {
		snprintf(name, sizeof name, "%c/%02d", "ab"[k % 2], k);
		queue_add(&q, xstrdup(name), xprintf("%s.res", name));
	}
	for (step = 0; step < 20000 && bad == NULL; step++) {
		x = x * 1103515245 + 12345;
		n = (int)((x >> 16) % 8);
		j = &JOBAT(&q, (x >> 8) % 20);
		switch (n) {
		case 0:
			op = "take";
			takes += queue_take(&q, NULL, 0, NULL, NULL) != NULL;
			break;
		case 1:
			op = "take by a node";
			takes += queue_take(&q, NULL, 0, NULL, (x & 0x10) ? "n1/1" :
			    "n2") != NULL;
			break;
		case 2:
			op = "take a/*";
			takes += queue_take(&q, NULL, 0, "a/*", NULL) != NULL;
			break;
		case 3:
			op = "release";
			queue_release(&q, j);
			break;
		case 4:
			op = "requeue";
			if (j->state == JOB_RUNNING && (x & 0x20)) {
				op = "fail_again";
				queue_fail_again(&q, j);
			} else if (j->state == JOB_RUNNING ||
			    j->state == JOB_FAILED)
				queue_requeue(&q, j);
			break;
		case 5:
			op = "finish";
			if (j->state == JOB_RUNNING || j->state == JOB_WAITING) {
				queue_finish(&q, j, (x & 1) ? JOB_DONE : JOB_FAILED);
				finishes++;
			}
			break;
		case 6:
			op = "recover";
			if (j->state != JOB_RUNNING) {
				queue_recover(&q, j, (x >> 4) % 3 == 0 ?
				    JOB_WAITING : (x >> 4) % 3 == 1 ? JOB_DONE :
				    JOB_FAILED);
				recovers++;
			}
			break;
		case 7:
			op = "can_match";
			for (k = 0, want = 0; k < 20; k++)
				want |= (JOBAT(&q, k).state == JOB_WAITING ||
				    JOBAT(&q, k).state == JOB_RUNNING) &&
				    JOBAT(&q, k).path[0] == 'b';
			if (queue_can_match(&q, NULL, 0, "b/*") != want)
				bad = "can_match \"b/*\" disagrees with the jobs";
			break;
		}
		if (bad == NULL)
			bad = queue_bad(&q);
		if (bad == NULL && queue_all_finished(&q) !=
		    (q.count[JOB_DONE] + q.count[JOB_FAILED] == 20))
			bad = "all_finished disagrees with the counts";
	}
	OK(bad == NULL && takes > 1000 && finishes > 500 && recovers > 500,
	    "20000 random transitions keep counts and the waiting list right "
	    "(%zu takes, %zu finishes, %zu recovers)", takes, finishes,
	    recovers);
	if (bad != NULL)
		printf("#   step %d, after a %s: %s\n", step, op, bad);
	queue_free(&q);
}

/* A job whose not-before time has not come is passed over, then taken. */
static void
test_not_before(void)
{
	struct queue	 q;
	struct job	*j;

	queue_with(&q, three);
	queue_run(&JOBAT(&q, 0))->not_before_ms = util_now_ms() +
	    3600 * 1000;
	queue_run(&JOBAT(&q, 1))->not_before_ms = util_now_ms() - 1;
	j = queue_take(&q, NULL, 0, NULL, NULL);
	OK(id_of(j) == 2 && j->run->not_before_ms == 0,
	    "a job in its backoff is passed over; one whose time came is "
	    "taken (got %llu)", id_of(j));
	j = queue_take(&q, NULL, 0, NULL, NULL);
	OK(id_of(j) == 3, "then the next one (got %llu)", id_of(j));
	OK(queue_take(&q, NULL, 0, NULL, NULL) == NULL && q.count[JOB_WAITING] == 1 &&
	    queue_can_match(&q, NULL, 0, NULL),
	    "none to take now, but the job in its backoff still waits");
	queue_run(&JOBAT(&q, 0))->not_before_ms = util_now_ms();
	OK(id_of(queue_take(&q, NULL, 0, NULL, NULL)) == 1, "and is taken once its time came");
	queue_free(&q);
}

/* queue_node_len: a worker name less a trailing "/<digits>". */
static void
test_node_len(void)
{
	static const struct {
		const char	*worker;
		size_t		 len;
	} t[] = {
		{ "w1/1", 2 }, { "w1/12", 2 }, { "w1", 2 }, { "host:42/3", 7 },
		{ "w1/", 3 }, { "w1/x", 4 }, { "w1/2x", 5 }, { "a/1/2", 3 },
		{ "12", 2 }, { "/7", 0 }, { "", 0 },
	};
	size_t	 i, bad = 0;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (queue_node_len(t[i].worker) != t[i].len) {
			printf("#   \"%s\": %zu, want %zu\n", t[i].worker,
			    queue_node_len(t[i].worker), t[i].len);
			bad++;
		}
	}
	OK(bad == 0, "queue_node_len strips one trailing /<digits>, nothing "
	    "else (%zu wrong)", bad);
}

/*
 * A job that failed and runs again goes to another node first: the failing
 * node's TAKE passes it over while another job may be taken, and gets it
 * when none may; a take by another node makes the job forget.
 */
static void
test_fail_node(void)
{
	struct queue	 q;
	struct job	*a, *c, *j;

	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, NULL, "w1/1");
	(void)queue_take(&q, NULL, 0, NULL, "w2");
	c = queue_take(&q, NULL, 0, NULL, "w3");
	OK(a != NULL && strcmp(a->run->taken_node, "w1") == 0 &&
	    a->run->failed_node == NULL, "a take remembers the taker's node, "
	    "\"w1\" for w1/1");
	queue_fail_again(&q, a);
	queue_fail_again(&q, c);
	OK(strcmp(queue_order(&q), "1 3") == 0 && a->run->failed_node != NULL &&
	    strcmp(a->run->failed_node, "w1") == 0 && a->run->taken_node == NULL &&
	    queue_bad(&q) == NULL, "fail_again: the job waits at the end, "
	    "failed by node w1 (order \"%s\")", queue_order(&q));
	j = queue_take(&q, NULL, 0, NULL, "w1/2");
	OK(j == c && strcmp(queue_order(&q), "1") == 0 && queue_bad(&q) == NULL,
	    "w1/2, on the failing node, passes job 1 over for job 3 (got %llu)",
	    id_of(j));
	queue_fail_again(&q, c);
	j = queue_take(&q, NULL, 0, "a*", "w2");
	OK(j == a && a->run->failed_node == NULL && strcmp(a->run->taken_node, "w2") == 0,
	    "a take by another node (w2) clears the failed-by node (got %llu)",
	    id_of(j));
	queue_fail_again(&q, a);
	OK(strcmp(queue_order(&q), "3 1") == 0 && strcmp(a->run->failed_node,
	    "w2") == 0 && strcmp(c->run->failed_node, "w1") == 0,
	    "job 1 now failed on w2, job 3 on w1 (order \"%s\")",
	    queue_order(&q));
	j = queue_take(&q, NULL, 0, NULL, "w1");
	OK(j == a, "only the latest failing node counts: w1 (no slot number) "
	    "passes job 3 over and gets job 1, which w1 failed before w2 "
	    "(got %llu)", id_of(j));
	queue_fail_again(&q, a);
	j = queue_take(&q, NULL, 0, NULL, NULL);
	OK(j == c && c->run->failed_node == NULL && c->run->taken_node == NULL,
	    "a session with no name never passes a job over, and its take "
	    "makes the job forget (got %llu)", id_of(j));
	queue_fail_again(&q, c);
	OK(strcmp(queue_order(&q), "1 3") == 0 && c->run->failed_node == NULL,
	    "a failure on no node is remembered as none (order \"%s\")",
	    queue_order(&q));
	queue_finish(&q, a, JOB_FAILED);
	queue_requeue(&q, a);
	OK(a->run->failed_node == NULL && a->run->taken_node == NULL &&
	    queue_bad(&q) == NULL, "a job that failed for good forgets its "
	    "nodes, so RETRY starts afresh");
	queue_free(&q);

	/* a lone worker: nothing else may be taken, so it retries itself */
	queue_with(&q, three);
	a = queue_take(&q, NULL, 0, "a*", "w1/1");
	queue_fail_again(&q, a);
	queue_finish(&q, &JOBAT(&q, 1), JOB_DONE);
	queue_run(&JOBAT(&q, 2))->not_before_ms = util_now_ms() +
	    3600 * 1000;
	j = queue_take(&q, NULL, 0, NULL, "w1/2");
	OK(j == a && a->attempt == 2 && strcmp(a->run->failed_node, "w1") == 0 &&
	    queue_bad(&q) == NULL, "a job in its backoff does not count: "
	    "w1/2 gets its own node's failed job, attempt 2 (got %llu)",
	    id_of(j));
	queue_fail_again(&q, a);
	j = queue_take(&q, NULL, 0, "a*", "w1/3");
	OK(j == a && a->attempt == 3, "and so does a take whose glob matches "
	    "nothing else (got %llu)", id_of(j));
	queue_free(&q);
}

/* Run the tests and print the plan. */
/*
 * The queue grows in chunks that never move: jobs added while others run
 * (past several chunk boundaries) keep their ids and addresses, wait in
 * order, and are found by id and by name.
 */
static void
test_grow(void)
{
	struct queue	 q;
	struct job	*first, *last_of_chunk, *j, *taken;
	size_t		 i, n = 3 * QUEUE_CHUNK + 7;
	char		 name[32];
	int		 good = 1, err;

	queue_init(&q);
	first = queue_add(&q, xstrdup("first"), xstrdup("first.res"));
	taken = queue_take(&q, NULL, 0, NULL, NULL);
	for (i = 2; i <= QUEUE_CHUNK; i++)
		queue_add(&q, xprintf("job%zu", i), xprintf("job%zu.res", i));
	last_of_chunk = queue_get(&q, QUEUE_CHUNK);
	OK(taken == first && first->state == JOB_RUNNING &&
	    queue_find_name(&q, "job7", 4, &err) == queue_get(&q, 7) &&
	    err == 0, "a full first chunk: job 1 runs, job 7 found by name");
	for (i = QUEUE_CHUNK + 1; i <= n; i++) {
		snprintf(name, sizeof name, "job%zu", i);
		j = queue_add(&q, xstrdup(name), xprintf("%s.res", name));
		if (j->id != i || j->state != JOB_WAITING ||
		    TAILQ_LAST(&q.named[0]->level[0]->jobs, job_tailq) != j)
			good = 0;
	}
	OK(good && q.njobs == n && q.nchunks == 4,
	    "jobs added at run time get the next ids and wait last (%zu jobs, "
	    "%zu chunks)", q.njobs, q.nchunks);
	OK(queue_get(&q, 1) == first && first->id == 1 &&
	    queue_get(&q, QUEUE_CHUNK) == last_of_chunk &&
	    last_of_chunk->id == QUEUE_CHUNK && first->state == JOB_RUNNING &&
	    strcmp(first->path, "first") == 0,
	    "jobs added before keep their addresses and ids as chunks are added");
	for (i = 1, good = 1; i <= n; i++) {
		j = queue_get(&q, i);
		snprintf(name, sizeof name, "job%zu", i);
		if (j == NULL || j->id != i || (i > 1 && (queue_find_name(&q,
		    name, strlen(name), &err) != j || strcmp(j->path, name) != 0)))
			good = 0;
	}
	OK(good && queue_get(&q, 0) == NULL && queue_get(&q, n + 1) == NULL,
	    "every job is found by id and by name, across chunks; ids 0 and "
	    "n+1 are none");
	snprintf(name, sizeof name, "%zu", n);
	OK(queue_find(&q, name) == queue_get(&q, n) &&
	    queue_find_name(&q, "job", 3, &err) == NULL &&
	    queue_find_name(&q, "job1", 5, &err) == NULL,
	    "queue_find by wire id; unknown names (and a longer length) are "
	    "not found");
	OK(queue_bad(&q) == NULL && q.count[JOB_WAITING] == n - 1 &&
	    q.count[JOB_RUNNING] == 1, "the counts agree (%s)",
	    queue_bad(&q) ? queue_bad(&q) : "consistent");
	errno = 0;
	OK(queue_reserve(&q, QUEUE_JOBS_MAX) == -1 && errno == EOVERFLOW &&
	    queue_reserve(&q, 5000) == 0 && q.nchunks == 8 && q.njobs == n,
	    "queue_reserve refuses past QUEUE_JOBS_MAX, and makes room ahead "
	    "without adding jobs");
	queue_free(&q);
}

/* Add a job named name to queue qname with priority prio. */
static struct job *
add_in(struct queue *q, const char *qname, int prio, const char *name)
{
	char	*cause = NULL;
	int	 ix = queue_named_get(q, qname, strlen(qname), &cause);

	if (ix < 0) {
		printf("# %s\n", cause);
		exit(1);
	}
	return queue_add_in(q, xstrdup(name), xprintf("%s.res", name),
	    (uint16_t)ix, prio);
}

/* The ids of n takes from the named queues in list (comma-separated). */
static const char *
take_order(struct queue *q, const char *list, const char *match, int n)
{
	static char	 buf[256];
	char		*names[JQ_TAKE_QUEUES_MAX], *dup = xstrdup(list), *p, *w;
	uint16_t	 ix[JQ_TAKE_QUEUES_MAX];
	size_t		 nn = 0, nq, used = 0;
	struct job	*j;

	for (p = dup; (w = strsep(&p, ",")) != NULL;)
		names[nn++] = w;
	nq = queue_named_resolve(q, names, nn, ix);
	buf[0] = '\0';
	while (n-- > 0 && (j = queue_take(q, ix, nq, match, NULL)) != NULL)
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%llu",
		    used ? " " : "", (unsigned long long)j->id);
	free(dup);
	return buf;
}

/* Named queues kept apart; priorities, higher first; ties by arrival. */
static void
test_named(void)
{
	struct queue	 q;
	struct job	*j;
	const char	*o;
	char		*cause = NULL;
	uint16_t	 ix[1];
	int		 i, good;

	queue_init(&q);
	add_in(&q, "a", 0, "a1");		/* 1 */
	add_in(&q, "b", 0, "b1");		/* 2 */
	queue_add(&q, xstrdup("d1"), xstrdup("d1.res"));	/* 3 */
	add_in(&q, "a", 0, "a2");		/* 4 */
	OK(q.nnamed == 3 && strcmp(q.named[0]->name, QUEUE_DEFAULT) == 0 &&
	    strcmp(queue_named_name(&q, &JOBAT(&q, 0)), "a") == 0 &&
	    strcmp(queue_named_name(&q, &JOBAT(&q, 2)), QUEUE_DEFAULT) == 0,
	    "the default queue is [0]; a and b come with their first jobs");
	OK(q.named[1]->count[JOB_WAITING] == 2 &&
	    q.named[2]->count[JOB_WAITING] == 1 &&
	    q.named[0]->count[JOB_WAITING] == 1 && queue_bad(&q) == NULL,
	    "each queue counts its own jobs");
	o = take_order(&q, "default", NULL, 9);
	OK(strcmp(o, "3") == 0, "a default take gets only the default "
	    "queue's job (got \"%s\")", o);
	o = take_order(&q, "a", NULL, 9);
	OK(strcmp(o, "1 4") == 0, "a take of queue a gets a's jobs (got \"%s\")",
	    o);
	OK(queue_take(&q, NULL, 0, NULL, NULL) == NULL, "nothing left in the "
	    "default queue while b has a job");
	OK(queue_can_match(&q, NULL, 0, NULL), "a running job of the default "
	    "queue may come back: it can match");
	queue_finish(&q, &JOBAT(&q, 2), JOB_DONE);
	OK(!queue_can_match(&q, NULL, 0, NULL) && (ix[0] = 2,
	    queue_can_match(&q, ix, 1, NULL)) && !queue_can_match(&q, ix, 1,
	    "a*"), "can_match is per queue (and per glob)");
	o = take_order(&q, "nosuch,b", NULL, 9);
	OK(strcmp(o, "2") == 0, "a queue that does not exist is skipped "
	    "(got \"%s\")", o);
	queue_free(&q);

	queue_init(&q);
	add_in(&q, "p", 0, "zero");		/* 1 */
	add_in(&q, "p", 5, "five");		/* 2 */
	add_in(&q, "p", -3, "minus");		/* 3 */
	add_in(&q, "p", 5, "five2");		/* 4 */
	add_in(&q, "p", 1000, "top");		/* 5 */
	add_in(&q, "p", -1000, "bottom");	/* 6 */
	add_in(&q, "p", 0, "zero2");		/* 7 */
	OK(queue_bad(&q) == NULL && q.named[1]->nlevels == 5,
	    "five priorities, five levels (%zu)", q.named[1]->nlevels);
	o = take_order(&q, "p", NULL, 9);
	OK(strcmp(o, "5 2 4 1 7 3 6") == 0, "higher priority first, equal "
	    "ones in arrival order (got \"%s\")", o);
	queue_release(&q, &JOBAT(&q, 6));	/* zero2 */
	queue_release(&q, &JOBAT(&q, 3));	/* five2 */
	queue_release(&q, &JOBAT(&q, 0));	/* zero */
	queue_requeue(&q, &JOBAT(&q, 1));	/* five: at the end of 5 */
	OK(queue_bad(&q) == NULL, "release and requeue keep the lists sound");
	o = take_order(&q, "p", NULL, 9);
	OK(strcmp(o, "4 2 1 7") == 0, "a released job goes to the front of its "
	    "own level, a requeued one to its end (got \"%s\")", o);
	queue_free(&q);

	queue_init(&q);
	add_in(&q, "x", 1, "x1");		/* 1 */
	add_in(&q, "y", 2, "y1");		/* 2 */
	add_in(&q, "y", 1, "y2");		/* 3 */
	add_in(&q, "x", 1, "x2.wav");		/* 4 */
	add_in(&q, "x", 0, "x3");		/* 5 */
	add_in(&q, "y", 0, "y3.wav");		/* 6 */
	o = take_order(&q, "x,y", "*.wav", 9);
	OK(strcmp(o, "4 6") == 0, "a glob over two queues (got \"%s\")", o);
	o = take_order(&q, "x,y", NULL, 9);
	OK(strcmp(o, "2 1 3 5") == 0, "two queues: the highest priority among "
	    "them, then the lower id (got \"%s\")", o);
	OK(queue_bad(&q) == NULL && !queue_can_match(&q, NULL, 0, NULL),
	    "all taken; the default queue never had a job");
	queue_free(&q);

	queue_init(&q);
	for (i = 0, good = 1; i < JQ_QUEUES_MAX - 1; i++) {
		char name[16];

		snprintf(name, sizeof name, "q%d", i);
		if (queue_named_get(&q, name, strlen(name), &cause) != i + 1)
			good = 0;
	}
	OK(good && q.nnamed == JQ_QUEUES_MAX && queue_named_get(&q, "one-more",
	    8, &cause) == -1 && cause != NULL && strstr(cause, "too many") !=
	    NULL && queue_named_get(&q, "q7", 2, &cause) == 8,
	    "at most JQ_QUEUES_MAX queues (the default one included); a "
	    "known name is still found");
	free(cause);
	queue_free(&q);
	OK(proto_queue_valid("a-Z_0.9", 7) && !proto_queue_valid("", 0) &&
	    !proto_queue_valid("a/b", 3) && !proto_queue_valid("a b", 3) &&
	    !proto_queue_valid("a,b", 3) && !proto_queue_valid("%41", 3) &&
	    proto_queue_valid("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 64) &&
	    !proto_queue_valid("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 65),
	    "queue names: 1 to 64 of A-Za-z0-9._-");

	/* many jobs in one queue: a plain take does not walk them */
	queue_init(&q);
	for (i = 0; i < 200000; i++)
		queue_add(&q, xprintf("n%d", i), xprintf("n%d.res", i));
	add_in(&q, QUEUE_DEFAULT, 1, "urgent");
	for (i = 0, good = 1; i < 1000; i++) {
		j = queue_take(&q, NULL, 0, NULL, NULL);
		if (j == NULL || j->id != (i == 0 ? 200001U : (unsigned)i))
			good = 0;
	}
	OK(good && queue_bad(&q) == NULL, "200000 jobs: the urgent one first, "
	    "then in order");
	queue_free(&q);
}

/*
 * A job stays compact (issue 14, a million jobs): what only a taken job
 * needs is in j->run, a job's edges in j->deps, both NULL until used.
 */
static void
test_job_size(void)
{
	OK(sizeof(struct job) <= 192, "struct job is at most 192 bytes "
	    "(%zu)", sizeof(struct job));
}

int
main(void)
{
	/* a sanitizer abort must not swallow the TAP lines printed so far */
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_add_ready();
	test_find();
	test_take();
	test_release_requeue();
	test_finish_recover();
	test_walk();
	test_not_before();
	test_node_len();
	test_fail_node();
	test_grow();
	test_named();
	test_blocked();
	test_job_size();
	return t_done();
}
