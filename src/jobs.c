/*
 * jobs.c: the job lifecycle policy of jq-serve: who holds a running job, its
 * lease, and what each way a run ends does to the job.  queue.c keeps the
 * states (queue_set_state is the one transition point); this file decides
 * which transition an event calls for, and keeps the joblog, the journal
 * and the log in step with it.
 *
 * A job is taken for a session (jobs_take): it runs, held by that session,
 * and its lease starts.  A lease is renewed by TOUCH (jobs_renew) and, for a
 * hold=conn job, by any traffic from its holder (jobs_renew_held).  A run
 * ends in one of these ways:
 *
 *   jobs_done           its result is stored and journaled: DONE, final
 *   jobs_fail_reported  a FAIL: the job waits again, at the end of the
 *                       queue, while --retries allows, to be given to
 *                       another node than its taker's first (queue.c);
 *                       then FAILED, final
 *   jobs_fail_found     the server cannot read the job's file: FAILED, final
 *   jobs_release        handed back by RELEASE: it waits again, at the
 *                       front of the queue
 *   jobs_lost           its worker is lost: its hold=conn holder left
 *                       (jobs_holder_gone) or its lease ran out; it waits
 *                       again at the front, unless that happened
 *                       --crash-limit times: then FAILED (lost), final
 *   jobs_reopen         the server could not store a result of its current
 *                       attempt: released at once, so that the next try
 *                       need not wait for the lease (which traffic on a
 *                       hold=conn connection would otherwise keep
 *                       renewing), but not handed out again before a
 *                       backoff of 1 s, then 2 s, 4 s...; after
 *                       JOBS_STORE_TRIES such failures it fails, final.
 *                       A result of an older attempt leaves the job to its
 *                       holder
 *
 * and a FAILED job waits again after RETRY (jobs_retry), its failures
 * and losses counted afresh.  A waiting job fails for good, "cancelled",
 * after CANCEL (jobs_cancel), and a drained worker gets no job
 * (jobs_drain, drain.c); both are journaled before they are answered,
 * and refused when the journal cannot take them.
 *
 * Dependencies (deps.c keeps the edges): a job whose prerequisites are not
 * all DONE is BLOCKED instead of waiting (queue.c).  jobs_done lets its
 * dependents wait once their last prerequisite is done (deps_met); a
 * final failure fails its blocked and waiting dependents, status
 * "dependency", and theirs in turn (jobs_cascade); a running dependent
 * runs on, and fails so once it would wait again (jobs_settle).  A FAIL
 * with tempfail=1 (the command exited 75, EX_TEMPFAIL) is not a failure
 * when the job has unmet prerequisites: it is BLOCKED until they are done
 * and then runs again.  Without any, it waits JQ_TEMPFAIL_BACKOFF_MS, then
 * twice that, and so on, for JQ_TEMPFAIL_TRIES such FAILs in a row; the
 * next one in a row is an ordinary failure (--retries applies).
 *
 * Jobs come in after start only through jobs_add (an ADD once its data
 * and record are durable; spool.c).  A shutdown (jobs_shutdown, from
 * SHUTDOWN) takes no new jobs and hands out none: the running ones finish
 * or their leases run out, then server.c ends the run.
 *
 * Identity (jq-protocol(7), "Attempt tokens"): every take is an attempt
 * with a serial of this server instance, and its token names the instance,
 * the serial and the input's fingerprint.  FAIL, RELEASE and TOUCH count
 * only from the holder of the current attempt (jobs_holder_check); a result
 * is matched to a job by its token (jobs_put_target): by the attempt when
 * this instance handed it out, else by the input's fingerprint, and never
 * stored under a job whose input it was not made from.  The losses a
 * crash limit counts are this instance's: the journal records only final
 * outcomes, so after a restart a job has its full --crash-limit again.
 *
 * Journal failures: a final failure the journal cannot take still stands
 * for this run (after a crash the job would simply run again), so it is
 * only logged; a RETRY the journal cannot take is refused, and the job
 * stays failed.
 *
 * jobs.c calls nothing above it (conn.c, cmd.c, server.c).  Whatever may
 * change what a waiting TAKE gets, or end the run, calls the wake hook
 * given to jobs_init (server_wake), which only schedules a look at the
 * queue for the next loop iteration.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "jq.h"

#define JOBS_STORE_TRIES	3	/* results that cannot be stored, then FAILED */
#define JOBS_BACKOFF_MS		1000	/* first wait after one; doubles */
#define JOBS_UNSPOOL_MAX	4096	/* done jobs whose data waits to go */

static struct event		*jobs_backoff_ev;	/* the next not-before time */
static uint64_t			 jobs_backoff_at;	/* when it fires; 0: idle */
static struct event_base		*jobs_base;
static struct queue			*jobs_queue;
static const struct server_config	*jobs_cfg;
static void				(*jobs_wake)(void);
static uint32_t				 jobs_instance;	/* random, not 0 */
static int				 jobs_stop;	/* a shutdown was asked */
static uint32_t				 jobs_serial;	/* the last attempt's */
static uint32_t				*jobs_attempts;	/* serial-1 -> job id */
static size_t				 jobs_nattempts, jobs_attempts_alloc;
static uint64_t				*jobs_unspooled;	/* done, data still there */
static size_t				 jobs_nunspooled, jobs_unspooled_alloc;

static void	jobs_backoff_arm(uint64_t);

/* Give jobs.c the loop, the queue, --lease and --retries, and the wake hook. */
void
jobs_init(struct event_base *base, struct queue *q,
    const struct server_config *cfg, void (*wake)(void))
{
	jobs_base = base;
	jobs_queue = q;
	jobs_cfg = cfg;
	jobs_wake = wake;
	do
		jobs_instance = randombytes_random();
	while (jobs_instance == 0);
}

/* The fingerprint of j's input as recorded at start. */
static uint64_t
jobs_fingerprint(const struct job *j)
{
	return proto_fingerprint((uint64_t)j->in_dev, (uint64_t)j->in_ino,
	    j->in_size, j->in_mtime_ns);
}

/*
 * Start a new attempt of j: its serial, remembered for matching results of
 * older attempts.  If the map cannot grow, only the newest attempt of j can
 * deliver (jobs_attempt_of checks it first).
 */
static void
jobs_new_attempt(struct job *j)
{
	uint32_t	*v;
	size_t		 n;

	if (jobs_serial == UINT32_MAX)	/* 4 billion hand-outs: start over */
		jobs_serial = jobs_nattempts = 0;
	j->serial = ++jobs_serial;
	if (jobs_nattempts == jobs_attempts_alloc) {
		n = jobs_attempts_alloc ? jobs_attempts_alloc * 2 : 256;
		if ((v = reallocarray(jobs_attempts, n, sizeof *v)) == NULL)
			return;
		jobs_attempts = v;
		jobs_attempts_alloc = n;
	}
	if (jobs_nattempts == (size_t)j->serial - 1)
		jobs_attempts[jobs_nattempts++] = (uint32_t)j->id;
}

/* Whether serial was an attempt of j in this instance. */
static int
jobs_attempt_of(const struct job *j, uint32_t serial)
{
	if (serial == 0 || serial > j->serial)
		return 0;
	if (serial == j->serial)
		return 1;
	return serial <= jobs_nattempts &&
	    jobs_attempts[serial - 1] == (uint32_t)j->id;
}

/* The token of j's current attempt, for its JOB line. */
void
jobs_token(const struct job *j, char buf[PROTO_TOKEN_LEN + 1])
{
	struct proto_token	 t;

	t.instance = jobs_instance;
	t.serial = j->serial;
	t.fingerprint = jobs_fingerprint(j);
	proto_token_format(&t, buf);
}

/*
 * Whether token t belongs to the holder of j's current attempt: 0, or -1
 * with *why saying who holds it (for ERR NOTHELD).
 */
int
jobs_holder_check(const struct job *j, const struct proto_token *t,
    char **why)
{
	unsigned long long	 id = (unsigned long long)j->id;

	if (t->instance != jobs_instance)
		*why = xprintf("job %llu: the token is from an earlier server; "
		    "that attempt is over", id);
	else if (!jobs_attempt_of(j, t->serial) ||
	    t->fingerprint != jobs_fingerprint(j))
		*why = xprintf("the token is not one of job %llu", id);
	else if (j->state != JOB_RUNNING)
		*why = xprintf("job %llu is not running", id);
	else if (t->serial != j->serial)
		*why = xprintf("job %llu is held by a later attempt", id);
	else
		return 0;
	return -1;
}

/* Is t the token of an attempt of j that this server handed out? */
int
jobs_is_attempt(const struct job *j, const struct proto_token *t)
{
	return t->instance == jobs_instance && jobs_attempt_of(j, t->serial) &&
	    t->fingerprint == jobs_fingerprint(j);
}

/*
 * The job a result sent as "PUT id" with token t is for, or NULL with *err
 * and *errmsg (ours to free) saying why it is refused.  A token of this
 * instance must name an attempt of job id; one of an earlier instance is
 * matched by its input's fingerprint, which may name another id: the
 * result belongs to the input it was made from.  Either way id must be a
 * job id (a positive decimal number), if perhaps of another list.
 */
struct job *
jobs_put_target(const char *id, const struct proto_token *t,
    const char **err, char **errmsg)
{
	struct job	*j = queue_find(jobs_queue, id), *k, *found = NULL;
	size_t		 i, n = 0;
	uint64_t	 num;

	if (parse_u64(id, 1, UINT64_MAX, &num) != 0) {
		*err = ERR_NOSUCHJOB;
		*errmsg = xprintf("no job with id \"%.40s\"", id);
		return NULL;
	}
	if (t->instance == jobs_instance) {
		if (j == NULL) {
			*err = ERR_NOSUCHJOB;
			*errmsg = xprintf("no job with id \"%.40s\"", id);
			return NULL;
		}
		if (jobs_attempt_of(j, t->serial) &&
		    t->fingerprint == jobs_fingerprint(j))
			return j;
		*err = ERR_STALE;
		*errmsg = xprintf("the token is not one of job %llu; result "
		    "not stored", (unsigned long long)j->id);
		return NULL;
	}
	if (j != NULL && jobs_fingerprint(j) == t->fingerprint)
		return j;
	for (i = 1; i <= jobs_queue->njobs; i++) {
		k = queue_get(jobs_queue, i);
		if (jobs_fingerprint(k) == t->fingerprint) {
			found = k;
			n++;
		}
	}
	if (n == 1) {
		log_info("a result sent for job %.40s of an earlier server is "
		    "for job %llu %s here: same input", id,
		    (unsigned long long)found->id, found->path);
		return found;
	}
	*err = ERR_STALE;
	*errmsg = n == 0 ? xstrdup("no job here has that input; result not "
	    "stored") : xprintf("%zu jobs here have that input; result not "
	    "stored", n);
	return NULL;
}

/* A job stops running: drop it from its holder's list, stop its lease. */
static void
jobs_leave(struct job *j)
{
	if (j->run == NULL)		/* never taken */
		return;
	if (j->run->holder != NULL) {
		LIST_REMOVE(j, run->hold_entry);
		j->run->holder = NULL;
	}
	if (j->run->lease_ev != NULL) {
		event_free(j->run->lease_ev);
		j->run->lease_ev = NULL;
	}
}

static void	 jobs_fail_final(struct job *, const char *, const char *);
static void	 jobs_settle(struct job *);

/* A running job goes back to the queue, first in line, for another worker. */
void
jobs_release(struct job *j)
{
	joblog_end(j, "lost", 0);
	jobs_leave(j);
	queue_release(jobs_queue, j);
	jobs_settle(j);
	jobs_wake();
}

/*
 * The worker of running job j is lost (why says how): it waits again,
 * first in line, unless this was its --crash-limit'th lost worker: then it
 * fails for good, "lost N times".
 */
static void
jobs_lost(struct job *j, const char *why)
{
	char	*msg;

	j->lost++;
	if (jobs_cfg->crash_limit == 0 || j->lost < jobs_cfg->crash_limit) {
		log_info("job %llu %s: %s; it waits again",
		    (unsigned long long)j->id, j->path, why);
		jobs_release(j);
		return;
	}
	log_info("job %llu %s: %s", (unsigned long long)j->id, j->path, why);
	msg = xprintf("lost %u times", j->lost);
	jobs_fail_final(j, STATUS_LOST, msg);
	free(msg);
}

/* A job's lease ran out: its worker is lost. */
static void
jobs_lease_expired(evutil_socket_t fd, short what, void *arg)
{
	struct job	*j = arg;
	char		*why;

	(void)fd;
	(void)what;
	/* a result being stored decides: done, or waiting again (jobs_reopen) */
	if (j->state != JOB_RUNNING || j->committing)
		return;
	why = xprintf("lease of %llu ms ran out", (unsigned long long)
	    j->run->lease_ms);
	jobs_lost(j, why);
	free(why);
}

/* Start or renew the lease of a running job. */
void
jobs_renew(struct job *j)
{
	struct timeval	 tv;

	if (j->run->lease_ev == NULL)
		j->run->lease_ev = evtimer_new(jobs_base, jobs_lease_expired,
		    j);
	tv.tv_sec = (time_t)(j->run->lease_ms / 1000);
	tv.tv_usec = (suseconds_t)(j->run->lease_ms % 1000 * 1000);
	evtimer_add(j->run->lease_ev, &tv);
	j->run->renewed_ms = util_now_ms();
}

/*
 * TOUCH: renew the lease of running job j, lease_ms long from now if not 0,
 * but never longer than j->run->lease_max_ms (the longer of --lease and the
 * lease it was taken with).
 */
void
jobs_touch(struct job *j, uint64_t lease_ms)
{
	if (lease_ms != 0)
		j->run->lease_ms = lease_ms < j->run->lease_max_ms ? lease_ms :
		    j->run->lease_max_ms;
	jobs_renew(j);
}

/*
 * Input from a session at time now is a sign of life: renew the leases of
 * its hold=conn jobs.  Renewing re-arms a timer: do it at most 4 times a
 * lease.
 */
void
jobs_renew_held(struct session *s, uint64_t now)
{
	struct job	*j;

	LIST_FOREACH(j, &s->held, run->hold_entry)
		if (j->hold_conn &&
		    now - j->run->renewed_ms >= j->run->lease_ms / 4)
			jobs_renew(j);
}

/*
 * Take the next waiting job of the named queues qix[0..nq-1] (none: the
 * default one) that matches match (NULL: any) for session s: it runs,
 * held by s, for a lease of lease_ms (0: --lease).  NULL when no such job
 * waits.
 */
struct job *
jobs_take(const uint16_t *qix, size_t nq, const char *match,
    struct session *s, int hold_conn, uint64_t lease_ms)
{
	struct job	*j;

	if ((j = queue_take(jobs_queue, qix, nq, match, s->name)) == NULL)
		return NULL;
	j->run->holder = s;
	j->hold_conn = hold_conn;
	LIST_INSERT_HEAD(&s->held, j, run->hold_entry);
	j->run->lease_ms = lease_ms ? lease_ms : jobs_cfg->lease_ms;
	j->run->lease_max_ms = j->run->lease_ms > jobs_cfg->lease_ms ?
	    j->run->lease_ms : jobs_cfg->lease_ms;
	jobs_new_attempt(j);
	jobs_renew(j);
	return j;
}

/* A taken job's data, size bytes, goes out to who: an attempt starts. */
void
jobs_sent(struct job *j, uint64_t size, const char *who)
{
	j->run->size_in = size;
	joblog_start(j, who);
	log_info("job %llu %s taken by %s (attempt %u)",
	    (unsigned long long)j->id, j->path, who, j->attempt);
}

/*
 * The backoff timer fired: wake the waiting TAKEs (queue_take hands out
 * the jobs whose time has come) and arm the timer for the next job.
 */
static void
jobs_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	 next;

	(void)fd;
	(void)what;
	(void)arg;
	jobs_backoff_at = 0;
	next = queue_next_not_before(jobs_queue, util_now_ms());
	if (next != 0)
		jobs_backoff_arm(next);
	jobs_wake();
}

/* Make the backoff timer fire at monotonic time at, or earlier. */
static void
jobs_backoff_arm(uint64_t at)
{
	struct timeval	 tv;
	uint64_t	 now = util_now_ms(), ms;

	if (jobs_backoff_at != 0 && jobs_backoff_at <= at)
		return;
	if (jobs_backoff_ev == NULL)
		jobs_backoff_ev = evtimer_new(jobs_base, jobs_backoff_cb, NULL);
	ms = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(jobs_backoff_ev, &tv);
	jobs_backoff_at = at;
}

/*
 * A result for j, sent with token t, could not be stored (cause says why).
 * If the attempt that sent it is the one running, the job waits again, not
 * before a backoff; after JOBS_STORE_TRIES such failures it fails, final.
 * A result of an older attempt (or an earlier server) leaves the job to its
 * holder.  Returns 1 if the job failed, else 0.
 */
int
jobs_reopen(struct job *j, const struct proto_token *t, const char *cause)
{
	char	*msg;
	uint64_t backoff;

	if (j == NULL || j->state != JOB_RUNNING ||
	    t->instance != jobs_instance || t->serial != j->serial)
		return 0;
	if (++j->run->store_failures >= JOBS_STORE_TRIES) {
		msg = xprintf("cannot store result: %s (%u attempts)", cause,
		    j->run->store_failures);
		jobs_fail_found(j, msg);
		free(msg);
		return 1;
	}
	backoff = (uint64_t)JOBS_BACKOFF_MS <<
	    (j->run->store_failures - 1);
	log_info("job %llu %s: result not stored (%u of %u attempts); it "
	    "waits %llu ms", (unsigned long long)j->id, j->path,
	    j->run->store_failures, JOBS_STORE_TRIES,
	    (unsigned long long)backoff);
	j->run->not_before_ms = util_now_ms() + backoff;
	jobs_backoff_arm(j->run->not_before_ms);
	jobs_release(j);
	return 0;
}

/*
 * Session s, known as who, is gone: its hold=conn jobs go back to the
 * queue; its hold=lease jobs run on until their leases run out.
 */
void
jobs_holder_gone(struct session *s, const char *who)
{
	struct job	*j;
	char		*why;

	while ((j = LIST_FIRST(&s->held)) != NULL) {
		/* hold=lease: runs on without us; a result being stored
		 * decides: done, or waiting again (jobs_reopen) */
		if (!j->hold_conn || j->committing) {
			LIST_REMOVE(j, run->hold_entry);
			j->run->holder = NULL;
			continue;
		}
		if (j->state != JOB_RUNNING) {
			jobs_leave(j);
			continue;
		}
		why = xprintf("%s disconnected while running it", who);
		jobs_lost(j, why);
		free(why);
	}
}

/*
 * Add a job at run time, named name with result path result (both now the
 * queue's), to named queue qix with priority prio: it gets the next id and
 * waits, last of its priority, and waiting TAKEs get a look.  The one way
 * jobs come in after start; queue_reserve made room for it.
 */
struct job *
jobs_add(char *name, char *result, uint16_t qix, int prio, const char *who)
{
	struct job	*j;

	j = queue_add_in(jobs_queue, name, result, qix, prio);
	if (qix != 0 || prio != 0)
		log_info("job %llu %s added by %s to queue %s, priority %d",
		    (unsigned long long)j->id, j->path, who,
		    queue_named_name(jobs_queue, j), prio);
	else
		log_info("job %llu %s added by %s", (unsigned long long)j->id,
		    j->path, who);
	jobs_wake();
	return j;
}

/*
 * Job j, just added by add a, runs after a's prerequisites and is one of
 * a->before's (deps.c; deps_check passed when the ADD came, but jobs may
 * have ended since): a prerequisite that failed meanwhile fails j,
 * "dependency"; a before= job that ended meanwhile needs j no more.
 * An edge past the caps or memory is logged and dropped.
 */
void
jobs_add_deps(struct job *j, const struct spool_add *a)
{
	struct job	*p, *t;
	char		*cause;
	uint32_t	 i;

	for (i = 0; i < a->nafter; i++) {
		if ((p = queue_get(jobs_queue, a->after[i])) == NULL)
			continue;
		if (deps_attach(jobs_queue, j, p, &cause) != 0) {
			log_warnx("job %llu %s: %s", (unsigned long long)j->id,
			    j->path, cause);
			free(cause);
		}
	}
	if (a->before != 0 && (t = queue_get(jobs_queue, a->before)) != NULL &&
	    t->state != JOB_DONE && t->state != JOB_FAILED) {
		if (deps_attach(jobs_queue, t, j, &cause) != 0) {
			log_warnx("job %llu %s: %s", (unsigned long long)t->id,
			    t->path, cause);
			free(cause);
		} else
			log_info("job %llu %s runs after job %llu %s",
			    (unsigned long long)t->id, t->path,
			    (unsigned long long)j->id, j->path);
	}
	if (j->state == JOB_BLOCKED && deps_failed_prereq(jobs_queue, j)) {
		jobs_settle(j);
		jobs_wake();
	}
}

/*
 * who asked the server to shut down: no job is added or handed out from
 * now on; the running ones may finish.
 */
void
jobs_shutdown(const char *who)
{
	if (jobs_stop)
		return;
	jobs_stop = 1;
	log_notice("shutdown asked by %s: %zu job%s running, %zu waiting",
	    who, jobs_queue->count[JOB_RUNNING],
	    jobs_queue->count[JOB_RUNNING] == 1 ? "" : "s",
	    jobs_queue->count[JOB_WAITING]);
	jobs_wake();
}

/* Whether a shutdown was asked. */
int
jobs_stopping(void)
{
	return jobs_stop;
}

/*
 * Done job j's added data is not needed any more: it goes in jobs_unspool,
 * once the WAITs for j have their RESULT, so that the unlink is not on the
 * path of the reply.  Past JOBS_UNSPOOL_MAX such jobs, at once.  A crash
 * in between leaves the file to the next start's sweep, as a failed unlink
 * does.
 */
static void
jobs_unspool_later(struct job *j)
{
	if (j->origin != JOB_SPOOL || j->in_name == NULL)
		return;
	if (jobs_nunspooled == JOBS_UNSPOOL_MAX) {
		spool_remove(j);
		return;
	}
	if (jobs_nunspooled == jobs_unspooled_alloc) {
		jobs_unspooled_alloc = jobs_unspooled_alloc == 0 ? 16 :
		    jobs_unspooled_alloc * 2;
		jobs_unspooled = xreallocarray(jobs_unspooled,
		    jobs_unspooled_alloc, sizeof *jobs_unspooled);
	}
	jobs_unspooled[jobs_nunspooled++] = j->id;
}

/*
 * Remove the added data of the jobs done since the last call (server.c).
 * Returns how many jobs' data went: the spool's room changed.
 */
size_t
jobs_unspool(void)
{
	struct job	*j;
	size_t		 i, n = jobs_nunspooled;

	for (i = 0; i < n; i++)
		if ((j = queue_get(jobs_queue, jobs_unspooled[i])) != NULL)
			spool_remove(j);
	jobs_nunspooled = 0;
	return n;
}

/* The result of j, size bytes from who, is stored and journaled. */
void
jobs_done(struct job *j, uint64_t size, const char *who)
{
	jobs_leave(j);
	joblog_end(j, "0", size);
	j->result_size = size;
	if (j->run != NULL)
		j->run->tempfails = 0;
	queue_finish(jobs_queue, j, JOB_DONE);
	if (!j->committing)	/* else once its file is in place */
		(void)deps_met(jobs_queue, j);
	jobs_unspool_later(j);	/* an added job's data: not needed any more */
	log_info("job %llu %s done by %s: %llu bytes to %s",
	    (unsigned long long)j->id, j->path, who, (unsigned long long)size,
	    j->result);
	jobs_wake();
}

/*
 * Done job j's result, acknowledged from the journal (commit.c), is in its
 * file now (j->committing cleared): what reads it may go on, its
 * dependents first.
 */
void
jobs_flushed(struct job *j)
{
	(void)deps_met(jobs_queue, j);
	jobs_wake();
}

/* Record a final failure in the journal; if it cannot, the failure stands. */
static void
jobs_journal_failed(struct job *j)
{
	char	*cause;

	if (journal_failed(j, &cause) != 0) {
		log_warnx("job %llu %s: %s", (unsigned long long)j->id, j->path,
		    cause);
		free(cause);
	}
}

/* The server cannot run j (msg says why): it fails, final. */
void
jobs_fail_found(struct job *j, const char *msg)
{
	jobs_fail_final(j, STATUS_FAILED, msg);
}

/*
 * Job first has failed for good: its waiting and blocked dependents fail
 * too, status "dependency", the message naming the prerequisite and its
 * reason, and theirs in turn.  The jobs still to look at are kept in a
 * list through their wait_entry, free once a job has failed (it is in no
 * waiting list then), so a long chain needs no memory and no recursion.
 * A running dependent is left to run (jobs_settle fails it later).
 */
static void
jobs_cascade(struct job *first)
{
	struct job_tailq	 todo = TAILQ_HEAD_INITIALIZER(todo);
	struct job		*p, *d;
	uint32_t		 i;

	TAILQ_INSERT_TAIL(&todo, first, wait_entry);
	while ((p = TAILQ_FIRST(&todo)) != NULL) {
		TAILQ_REMOVE(&todo, p, wait_entry);
		for (i = 0; i < deps_peek(p)->ndependent; i++) {
			d = queue_get(jobs_queue, deps_peek(p)->dependent[i]);
			if (d == NULL || (d->state != JOB_BLOCKED &&
			    d->state != JOB_WAITING))
				continue;
			free(d->fail_status);
			free(d->fail_msg);
			d->fail_status = xstrdup(STATUS_DEPENDENCY);
			d->fail_msg = deps_fail_msg(p);
			d->fail_len = strlen(d->fail_msg);
			queue_finish(jobs_queue, d, JOB_FAILED);
			log_warnx("job %llu %s failed: %s",
			    (unsigned long long)d->id, d->path, d->fail_msg);
			jobs_journal_failed(d);
			TAILQ_INSERT_TAIL(&todo, d, wait_entry);
		}
	}
}

/*
 * Job j has just gone back to the queue: if it is BLOCKED on a
 * prerequisite that failed meanwhile (it ran when that one failed), it
 * fails, "dependency", with its dependents.
 */
static void
jobs_settle(struct job *j)
{
	struct job	*p;
	char		*msg;

	if (j->state != JOB_BLOCKED ||
	    (p = deps_failed_prereq(jobs_queue, j)) == NULL)
		return;
	msg = deps_fail_msg(p);
	free(j->fail_status);
	free(j->fail_msg);
	j->fail_status = xstrdup(STATUS_DEPENDENCY);
	j->fail_msg = msg;
	j->fail_len = strlen(msg);
	queue_finish(jobs_queue, j, JOB_FAILED);
	log_warnx("job %llu %s failed: %s", (unsigned long long)j->id, j->path,
	    msg);
	jobs_journal_failed(j);
	jobs_cascade(j);
}

/* j fails, final, with status and msg (both copied). */
static void
jobs_fail_final(struct job *j, const char *status, const char *msg)
{
	jobs_leave(j);
	free(j->fail_status);
	free(j->fail_msg);
	j->fail_status = xstrdup(status);
	j->fail_msg = xstrdup(msg);
	j->fail_len = strlen(msg);
	joblog_end(j, j->fail_status, 0);
	queue_finish(jobs_queue, j, JOB_FAILED);
	log_warnx("job %llu %s failed: %s", (unsigned long long)j->id, j->path,
	    msg);
	jobs_journal_failed(j);
	jobs_cascade(j);
	jobs_wake();
}

/*
 * A FAIL with tempfail=1 (EX_TEMPFAIL) of running job j, whose status and
 * message are set: 1 if it is dealt with here (the job is BLOCKED on its
 * prerequisites, or waits a backoff), 0 if it counts as an ordinary
 * failure: JQ_TEMPFAIL_TRIES came in a row already.
 */
static int
jobs_tempfail(struct job *j, const char *who)
{
	uint64_t	 backoff;

	if (j->unmet > 0 && deps_failed_prereq(jobs_queue, j) == NULL) {
		j->run->tempfails = 0;
		log_info("job %llu %s: temporary failure on attempt %u, "
		    "reported by %s; it waits for %u prerequisite%s",
		    (unsigned long long)j->id, j->path, j->attempt, who,
		    j->unmet, j->unmet == 1 ? "" : "s");
		queue_release(jobs_queue, j);	/* BLOCKED */
		return 1;
	}
	if (j->unmet > 0) {		/* a prerequisite failed meanwhile */
		queue_release(jobs_queue, j);
		jobs_settle(j);
		return 1;
	}
	if (++j->run->tempfails > JQ_TEMPFAIL_TRIES) {
		j->run->tempfails = 0;
		return 0;
	}
	backoff = (uint64_t)JQ_TEMPFAIL_BACKOFF_MS <<
	    (j->run->tempfails - 1);
	log_info("job %llu %s: temporary failure %u of %d in a row on attempt "
	    "%u, reported by %s; it runs again in %llu ms",
	    (unsigned long long)j->id, j->path, j->run->tempfails,
	    JQ_TEMPFAIL_TRIES,
	    j->attempt, who, (unsigned long long)backoff);
	j->run->not_before_ms = util_now_ms() + backoff;
	jobs_backoff_arm(j->run->not_before_ms);
	queue_requeue(jobs_queue, j);
	return 1;
}

/*
 * who reported j failed with status (NULL: STATUS_FAILED) and the len
 * bytes of msg (NUL-terminated); both are now the job's.  A temporary
 * failure (tempfail) waits as jobs_tempfail says; otherwise it runs again
 * while --retries allows, else it fails, final.
 */
void
jobs_fail_reported(struct job *j, char *status, char *msg, size_t len,
    int tempfail, const char *who)
{
	free(j->fail_msg);
	free(j->fail_status);
	j->fail_msg = msg;
	j->fail_len = len;
	j->fail_status = status ? status : xstrdup(STATUS_FAILED);
	jobs_leave(j);
	joblog_end(j, j->fail_status, 0);
	if (tempfail && jobs_tempfail(j, who)) {
		jobs_wake();
		return;
	}
	if (++j->failures <= jobs_cfg->retries) {
		log_info("job %llu %s failed (%s) on attempt %u, reported by "
		    "%s; it runs again", (unsigned long long)j->id, j->path,
		    j->fail_status, j->attempt, who);
		queue_fail_again(jobs_queue, j);
		jobs_settle(j);
	} else {
		queue_finish(jobs_queue, j, JOB_FAILED);
		log_info("job %llu %s failed (%s) on attempt %u, reported by %s",
		    (unsigned long long)j->id, j->path, j->fail_status,
		    j->attempt, who);
		jobs_journal_failed(j);
		jobs_cascade(j);
	}
	jobs_wake();
}

/*
 * RETRY from who: failed job j waits again, its failures counted afresh.
 * -1 with *cause set if the journal cannot record it; j stays failed.
 */
int
jobs_retry(struct job *j, const char *who, char **cause)
{
	if (journal_retry(j, cause) != 0)
		return -1;
	j->failures = 0;
	j->lost = 0;
	if (j->run != NULL)
		j->run->tempfails = 0;
	queue_requeue(jobs_queue, j);	/* BLOCKED if its prerequisites are not done */
	jobs_settle(j);
	log_info("job %llu %s: retry asked by %s", (unsigned long long)j->id,
	    j->path, who);
	jobs_wake();
	return 0;
}

/* How j ended, for a refusal ("has a result", "failed"); NULL if it has not. */
const char *
jobs_outcome(const struct job *j)
{
	if (j->state == JOB_DONE)
		return "has a result";
	if (j->state == JOB_FAILED)
		return "failed";
	return NULL;
}

/*
 * Free every lease timer and the backoff timer, and remove the data of the
 * jobs done last (at exit, loop stopped).
 */
void
jobs_leases_free(void)
{
	struct job	*j;
	size_t		 i;

	if (jobs_backoff_ev != NULL) {
		event_free(jobs_backoff_ev);
		jobs_backoff_ev = NULL;
		jobs_backoff_at = 0;
	}
	for (i = 1; i <= jobs_queue->njobs; i++) {
		j = queue_get(jobs_queue, i);
		if (j->run != NULL && j->run->lease_ev != NULL) {
			event_free(j->run->lease_ev);
			j->run->lease_ev = NULL;
		}
	}
	free(jobs_attempts);
	jobs_attempts = NULL;
	jobs_nattempts = jobs_attempts_alloc = 0;
	(void)jobs_unspool();	/* the last results came in with commit_stop */
	free(jobs_unspooled);
	jobs_unspooled = NULL;
	jobs_unspooled_alloc = 0;
}

/*
 * CANCEL from who: waiting (or blocked) job j fails for good with status
 * "cancelled", and its dependents with it ("dependency").
 * Journaled first: -1 with *cause set if the journal cannot take it, and j
 * waits on, unchanged.  No attempt of it ends: the joblog says nothing.
 */
int
jobs_cancel(struct job *j, const char *who, char **cause)
{
	char	*status = j->fail_status, *msg = j->fail_msg;
	size_t	 len = j->fail_len;

	j->fail_status = xstrdup(STATUS_CANCELLED);
	j->fail_msg = xprintf("cancelled by %s", who);
	j->fail_len = strlen(j->fail_msg);
	if (journal_failed(j, cause) != 0) {
		free(j->fail_status);
		free(j->fail_msg);
		j->fail_status = status;
		j->fail_msg = msg;
		j->fail_len = len;
		return -1;
	}
	free(status);
	free(msg);
	queue_finish(jobs_queue, j, JOB_FAILED);
	log_info("job %llu %s cancelled by %s", (unsigned long long)j->id,
	    j->path, who);
	jobs_cascade(j);
	jobs_wake();
	return 0;
}

/*
 * DRAIN (on) or UNDRAIN from who: the workers matching pattern get no job
 * from now on, or may again.  Journaled first: -1 with *cause set if the
 * journal cannot take it, and nothing changes.  The caller has checked
 * that the list has room (drain_add cannot fail) or holds the pattern.
 * The waiting TAKEs get a look: a drained one is answered.
 */
int
jobs_drain(const char *pattern, int on, const char *who, char **cause)
{
	char	*enc;

	if (journal_drain(pattern, on, cause) != 0)
		return -1;
	if (on)
		(void)drain_add(pattern);
	else
		(void)drain_remove(pattern);
	enc = proto_encode_dup(pattern, strlen(pattern));
	log_notice("workers matching %s %s by %s", enc, on ? "drained" :
	    "no longer drained", who);
	free(enc);
	jobs_wake();
	return 0;
}
