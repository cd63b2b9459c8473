/*
 * runshare.c: what the slots of one jq-run share, in one anonymous shared
 * mapping the parent makes before it forks them.
 *
 *   taken    the --max-jobs counter, incremented before each counted TAKE
 *   streak   jobs failed in a row, every slot together (--halt-after),
 *            counted when the failure report is sent
 *   running  jobs the slots hold now
 *   halted   set once by the slot that stops the whole worker
 *   finished set once a slot heard the server say it has no more work:
 *            a slot still waiting to (re)connect need not wait any more
 *   held     slots holding a result made for an earlier connection (the
 *            server went away while its command ran), until the server has
 *            answered it: no slot asks for a job meanwhile (slot.c)
 *   said     recent messages, so that a message every slot would print
 *            (the server is gone, it is back) is printed once per worker
 *   tallies  each slot's counts, for the summary
 *
 * Counters change with atomic operations only.  said[] is guarded by a
 * spin lock held for a few instructions; a slot that cannot get it soon
 * (its holder was killed in between) prints its message anyway: a message
 * twice is better than none.
 *
 * A slot halts the worker by asking the parent (SIGUSR1), which relays the
 * first stop to every slot as a Ctrl-C would: running jobs finish and are
 * delivered, no new job is taken.
 */
#include <sys/mman.h>

#include <err.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define RUN_SAID_MAX	16		/* messages remembered */
#define RUN_SAID_MS	10000		/* a message repeated within: once */
#define RUN_LOCK_TRIES	1000		/* yields before we print anyway */

/* A message one slot printed, by the hash of its text. */
struct run_said {
	uint64_t	 hash;
	uint64_t	 at_ms;			/* monotonic */
	unsigned	 slot;
};

struct run_shared {
	uint64_t	 taken;
	uint64_t	 streak;
	uint64_t	 running;
	int		 halted;
	int		 finished;
	uint64_t	 held;
	char		 lock;
	struct run_said	 said[RUN_SAID_MAX];
	unsigned	 nslots;
	struct run_tally tallies[];		/* nslots of them */
};

struct run_shared	*run_shared;		/* this jq-run's */
unsigned		 run_self;		/* this slot's index */

/* Map the shared state for n slots, zeroed; exits if it cannot. */
void
run_share_new(unsigned n)
{
	size_t	 size = sizeof *run_shared + n * sizeof run_shared->tallies[0];

	run_shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	if (run_shared == MAP_FAILED)
		err(JQ_EXIT_IO, "mmap");
	memset(run_shared, 0, size);
	run_shared->nslots = n;
}

/* Unmap the shared state. */
void
run_share_free(void)
{
	munmap(run_shared, sizeof *run_shared + run_shared->nslots *
	    sizeof run_shared->tallies[0]);
	run_shared = NULL;
}

/* Slot i's tally. */
struct run_tally *
run_share_tally(unsigned i)
{
	return &run_shared->tallies[i];
}

/* The --max-jobs counter. */
uint64_t *
run_share_taken(void)
{
	return &run_shared->taken;
}

/* Results the server accepted from every slot so far. */
uint64_t
run_share_done(void)
{
	uint64_t	 done = 0;
	unsigned	 i;

	for (i = 0; i < run_shared->nslots; i++)
		done += __atomic_load_n(&run_shared->tallies[i].done,
		    __ATOMIC_RELAXED);
	return done;
}

/*
 * Count a job whose report goes out: failed (1) adds to the streak of
 * failures, a result (0) ends it; -1 only reads it.  Returns the streak.
 */
uint64_t
run_share_streak(int failed)
{
	if (failed == -1)
		return __atomic_load_n(&run_shared->streak, __ATOMIC_RELAXED);
	if (!failed) {
		__atomic_store_n(&run_shared->streak, 0, __ATOMIC_RELAXED);
		return 0;
	}
	return __atomic_add_fetch(&run_shared->streak, 1, __ATOMIC_RELAXED);
}

/* A slot took a job (1) or is done with it (-1); the jobs held now. */
uint64_t
run_share_running(int delta)
{
	if (delta > 0)
		return __atomic_add_fetch(&run_shared->running, 1,
		    __ATOMIC_RELAXED);
	if (delta < 0)
		return __atomic_sub_fetch(&run_shared->running, 1,
		    __ATOMIC_RELAXED);
	return __atomic_load_n(&run_shared->running, __ATOMIC_RELAXED);
}

/* Has a slot halted the worker? */
int
run_share_halted(void)
{
	return __atomic_load_n(&run_shared->halted, __ATOMIC_ACQUIRE);
}

/*
 * Stop the whole worker (every slot finishes its job and takes no other).
 * Returns 1 for the first slot to ask, which says why; 0 if one did already.
 */
int
run_share_halt(void)
{
	int	 zero = 0;

	if (!__atomic_compare_exchange_n(&run_shared->halted, &zero, 1, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	if (run_stop == 0)
		run_stop = 1;		/* at once for us; the others via the parent */
	(void)kill(getppid(), SIGUSR1);
	return 1;
}

/* Note that the server said it has no more work for us. */
void
run_share_finish(void)
{
	__atomic_store_n(&run_shared->finished, 1, __ATOMIC_RELEASE);
}

/* Has the server said it has no more work? */
int
run_share_finished(void)
{
	return __atomic_load_n(&run_shared->finished, __ATOMIC_ACQUIRE);
}

/*
 * A slot begins (1) or ends (-1) holding a result for an earlier
 * connection; 0 only reads.  Returns how many slots hold one now.
 */
uint64_t
run_share_held(int delta)
{
	if (delta > 0)
		return __atomic_add_fetch(&run_shared->held, 1,
		    __ATOMIC_SEQ_CST);
	if (delta < 0)
		return __atomic_sub_fetch(&run_shared->held, 1,
		    __ATOMIC_SEQ_CST);
	return __atomic_load_n(&run_shared->held, __ATOMIC_SEQ_CST);
}

/* FNV-1a of a message. */
static uint64_t
run_share_hash(const char *s)
{
	uint64_t	 h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * Should this slot print the message whose hash is h?  Not when another
 * slot printed it within RUN_SAID_MS; otherwise it is noted as ours.
 */
static int
run_share_fresh(uint64_t h)
{
	struct run_said	*e, *oldest = NULL;
	uint64_t	 now = util_now_ms();
	unsigned	 i;
	int		 tries, fresh = 1;

	for (tries = 0; __atomic_test_and_set(&run_shared->lock,
	    __ATOMIC_ACQUIRE); tries++) {
		if (tries == RUN_LOCK_TRIES)
			return 1;
		sched_yield();
	}
	for (i = 0; i < RUN_SAID_MAX; i++) {
		e = &run_shared->said[i];
		if (e->hash == h && e->at_ms != 0 &&
		    now - e->at_ms < RUN_SAID_MS) {
			if (e->slot != run_self)
				fresh = 0;
			oldest = e;
			break;
		}
		if (oldest == NULL || e->at_ms < oldest->at_ms)
			oldest = e;
	}
	if (fresh) {
		oldest->hash = h;
		oldest->at_ms = now;
		oldest->slot = run_self;
	}
	__atomic_clear(&run_shared->lock, __ATOMIC_RELEASE);
	return fresh;
}

/*
 * Log a message about the worker rather than one job (the server is gone,
 * it is back): once, however many slots say it within RUN_SAID_MS.
 */
void
run_say(const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		err(JQ_EXIT_IO, "vasprintf");
	va_end(ap);
	if (run_shared == NULL || run_share_fresh(run_share_hash(msg)))
		log_warnx("%s", msg);
	free(msg);
}
