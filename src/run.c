/*
 * run.c: jq-run's worker, the parent process.
 *
 * The parent forks one slot process per -j (slot.c); it does nothing else
 * than relay signals and reap slots.  Each slot takes jobs and runs them
 * one after the other on its own connection (runjob.c runs one job).  See
 * run.h for how the files fit together.
 *
 * Signals: the parent catches SIGINT and SIGTERM (and SIGHUP, which a
 * closed terminal sends).  The first becomes SIGUSR1 to every slot (take no
 * new job, finish and deliver the running one), the second SIGUSR2 (kill the
 * running command's process group, hand the job back, remove T, exit).
 * Slots ignore SIGINT, SIGTERM and SIGHUP, so a Ctrl-C in a terminal reaches
 * them only through the parent; on Linux a parent killed outright sends its
 * slots SIGUSR2 (PR_SET_PDEATHSIG).  Handlers only set flags and write a
 * byte to a self-pipe that the poll loops watch (runsig.c).
 *
 * A slot may stop the whole worker (--halt-after, a command that cannot be
 * started): it sends the parent SIGUSR1, which the parent relays as the
 * first stop above, without counting it as a signal from the user.
 *
 * What the slots share (the --max-jobs counter, their tallies for the
 * summary, the streak of failures, messages said once) lives in one shared
 * mapping made here (runshare.c).
 */
#include <sys/wait.h>

#include <err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

/* The slot processes, by index: their pids (-1 once reaped) and statuses. */
struct run_slots {
	unsigned	 n, alive;
	pid_t		*pids;
	int		*statuses;	/* wait statuses */
};

/*
 * Fork the slots, each named WORKER/I (or WORKER with one slot).  They
 * inherit a mask that blocks the signals jq-run handles, and set old as
 * their mask once their handlers are in place.
 */
static void
run_fork_slots(const struct run_config *cfg, struct run_slots *sl,
    const sigset_t *old)
{
	char		*base, *worker;
	pid_t		 pid, parent = getpid();
	unsigned	 i;
	int		 status;

	base = cfg->worker != NULL ? xstrdup(cfg->worker) : util_worker_name();
	sl->n = cfg->jobs;
	sl->alive = 0;
	sl->pids = xcalloc(sl->n, sizeof *sl->pids);
	sl->statuses = xcalloc(sl->n, sizeof *sl->statuses);
	fflush(NULL);
	for (i = 0; i < sl->n; i++) {
		worker = sl->n > 1 ? xprintf("%s/%u", base, i + 1) :
		    xstrdup(base);
		pid = fork();
		if (pid == 0) {
			free(sl->pids);
			free(sl->statuses);
			run_self = i;
			status = run_slot_main(cfg, worker, old, parent);
			free(worker);
			free(base);
			exit(status);
		}
		free(worker);
		if (pid == -1) {
			log_warn("fork");
			sl->statuses[i] = JQ_EXIT_IO << 8;
			sl->pids[i] = -1;
			continue;
		}
		sl->pids[i] = pid;
		sl->alive++;
	}
	free(base);
}

/* Reap the slots that exited, until none is left to wait for. */
static void
run_reap_slots(struct run_slots *sl)
{
	pid_t		 pid;
	unsigned	 i;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < sl->n; i++)
			if (sl->pids[i] == pid) {
				sl->statuses[i] = status;
				sl->pids[i] = -1;
				sl->alive--;
			}
}

/*
 * Wait for every slot to exit, passing SIGINT/SIGTERM/SIGHUP on: the first
 * as SIGUSR1, the second as SIGUSR2; a slot's SIGUSR1 (it halts the
 * worker) goes on as a first one.  Signals are taken only inside
 * sigsuspend() with old's mask (but SIGUSR2).
 */
static void
run_wait_slots(struct run_slots *sl, const sigset_t *old)
{
	sigset_t	 wait_mask = *old;
	int		 sent = 0, level;
	unsigned	 i;

	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGHUP);
	sigdelset(&wait_mask, SIGCHLD);
	sigdelset(&wait_mask, SIGUSR1);
	sigaddset(&wait_mask, SIGUSR2);
	for (;;) {
		run_reap_slots(sl);
		if (sl->alive == 0)
			break;
		level = run_signals >= 2 ? 2 : run_signals == 1 || run_stop ?
		    1 : 0;
		if (level > sent) {
			sent = level;
			if (run_signals > 0)
				log_warnx(sent == 1 ? "stopping: running jobs "
				    "finish first (signal again to stop now)" :
				    "stopping now: running jobs are handed back");
			for (i = 0; i < sl->n; i++)
				if (sl->pids[i] > 0)
					kill(sl->pids[i], sent == 1 ? SIGUSR1 :
					    SIGUSR2);
		}
		sigsuspend(&wait_mask);
	}
}

/*
 * jq-run's exit status from the slots': the worst of them (a slot killed
 * by a signal counts as JQ_EXIT_IO), some job failed, or stopped by a
 * signal.
 */
static int
run_exit_status(const struct run_slots *sl)
{
	int		 result = JQ_EXIT_OK, status;
	unsigned	 i;

	for (i = 0; i < sl->n; i++) {
		status = sl->statuses[i];
		if (WIFSIGNALED(status)) {
			log_warnx("worker slot %u killed by signal %d", i + 1,
			    WTERMSIG(status));
			status = JQ_EXIT_IO;
		} else
			status = WEXITSTATUS(status);
		if (status == JQ_EXIT_FAILED && result == JQ_EXIT_OK)
			result = JQ_EXIT_FAILED;
		else if (status > JQ_EXIT_FAILED && status != JQ_EXIT_SIGNAL &&
		    result <= JQ_EXIT_FAILED)
			result = status;
	}
	if (run_signals > 0)
		result = JQ_EXIT_SIGNAL;
	return result;
}

/*
 * Log the summary: the attempts the slots ran to their end (a job run
 * again here, exit 75 or a retry, counts each time), done and failed, the
 * wall time.
 */
static void
run_summary(const struct run_slots *sl, uint64_t start_ms)
{
	uint64_t	 done = 0, failed = 0, refused = 0, unstored = 0;
	uint64_t	 tempfail = 0, unconfirmed = 0, n;
	unsigned	 i;
	size_t		 len;
	char		 wall[32], extra[256] = "";

	for (i = 0; i < sl->n; i++) {
		done += run_share_tally(i)->done;
		failed += run_share_tally(i)->failed;
		refused += run_share_tally(i)->refused;
		unstored += run_share_tally(i)->unstored;
		tempfail += run_share_tally(i)->tempfail;
		unconfirmed += run_share_tally(i)->unconfirmed;
	}
	n = done + failed + refused + unstored + tempfail + unconfirmed;
	if (refused > 0)
		snprintf(extra, sizeof extra, ", %llu result%s not kept (the "
		    "server had one already)", (unsigned long long)refused,
		    refused == 1 ? "" : "s");
	len = strlen(extra);
	if (unstored > 0)
		snprintf(extra + len, sizeof extra - len, ", %llu result%s the "
		    "server could not store", (unsigned long long)unstored,
		    unstored == 1 ? "" : "s");
	len = strlen(extra);
	if (unconfirmed > 0)
		snprintf(extra + len, sizeof extra - len, ", %llu result%s "
		    "unconfirmed (the connection was lost before the answer)",
		    (unsigned long long)unconfirmed, unconfirmed == 1 ? "" : "s");
	len = strlen(extra);
	if (tempfail > 0)
		snprintf(extra + len, sizeof extra - len, ", %llu to run "
		    "again (exit 75)", (unsigned long long)tempfail);
	progress_wall(util_now_ms() - start_ms, wall, sizeof wall);
	log_notice("%llu attempt%s run: %llu done, %llu failed%s, in %s",
	    (unsigned long long)n, n == 1 ? "" : "s", (unsigned long long)done,
	    (unsigned long long)failed, extra, wall);
}

/*
 * jq-run's parent: fork the slots, relay SIGINT/SIGTERM to them, reap them,
 * and combine their statuses into jq-run's exit status.
 */
int
run_main(const struct run_config *cfg)
{
	struct run_slots	 sl;
	sigset_t		 block, old;
	uint64_t		 start_ms = util_now_ms();
	int			 result;

	run_sigaction(SIGPIPE, SIG_IGN);
	run_share_new(cfg->jobs);

	/* Slots inherit this mask and unblock once their handlers are set. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	run_sigaction(SIGINT, run_on_signal);
	run_sigaction(SIGTERM, run_on_signal);
	run_sigaction(SIGHUP, run_on_signal);
	run_sigaction(SIGCHLD, run_on_signal);
	run_sigaction(SIGUSR1, run_on_signal);

	run_fork_slots(cfg, &sl, &old);
	run_wait_slots(&sl, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);

	result = run_exit_status(&sl);
	run_summary(&sl, start_ms);
	run_share_free();
	free(sl.pids);
	free(sl.statuses);
	return result;
}
