/*
 * slot.c: a jq-run slot, one process that takes jobs and runs them one
 * after the other on its own blocking connection.
 *
 * TAKE says hold=conn, so the server takes back the jobs of a slot that
 * dies.  A job costs one round trip: the result (PUT or FAIL, payload and
 * all) and the next TAKE leave in one write, and the replies to both are
 * read together (slotconn.c keeps the ring of replies owed).
 *
 * The slot owns the connection; a job (runjob.c) only moves payload and
 * result bytes through it.  Each step of a job returns a verdict, and the
 * slot does what touches the connection's state: keep-alives, replies,
 * dropping the connection and reconnecting, prefetching the next job,
 * sending the result or the failure.
 *
 * Leases: while a job runs, a slot that has sent nothing for a third of the
 * job's lease (from the JOB line; RUN_KEEPALIVE_MS if it gave none) sends
 * TOUCH (whose reply tells the lease too), or "DATA 0" inside a result
 * being streamed.
 *
 * A lost server (kill -9, restart): a slot reconnects with exponential
 * backoff (100 ms doubling to 5 s, with jitter) for at most --reconnect,
 * then takes jobs again.  A command running when the connection dropped
 * runs on if run_job_offline() allows; its result is sent after
 * reconnecting (the server keeps the first result it gets; a refusal is
 * logged); until it is answered, no slot of the worker asks for a job
 * (run_slot_await_held), so a job held here does not run twice here.  A
 * failure seen while away is not reported: the restarted server runs the
 * job again, so a late failure can never cancel another worker's result.
 * Otherwise the command is killed and the job, which the restarted server
 * has waiting again, runs again.
 *
 * --max-jobs N is exact across slots: a counter in a shared anonymous
 * mapping, incremented atomically by a slot before each TAKE.
 *
 * A slot whose TAKE is answered NOJOB drained (jq-put --drain) stops as
 * when no work remains, but even with --keep: its running job, if any,
 * was delivered first, since the TAKE went with its result.
 */
#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <err.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

#define RUN_KEEPALIVE_MS 500		/* when the JOB line tells no lease */
#define RUN_ID_MAX	64		/* bytes of a job id we accept */
#define RUN_DOUBT_MS	250		/* run_slot_doubt asks this often */
#define RUN_HELD_WAIT_MS 60000		/* run_slot_await_held at most */
#define RUN_HELD_NAP_MS	20		/* ... looks this often */

/*
 * Is id usable in a command line, a file name and a message: 1 to RUN_ID_MAX
 * ASCII letters, digits, '_' or '-', not beginning with '-'?  Otherwise a
 * hostile server could slip an option ("-rf") or a path ("../x") into {id},
 * or terminal escapes into our messages.
 */
static int
run_id_ok(const char *id)
{
	size_t	 i, len = strlen(id);
	char	 c;

	if (len == 0 || len > RUN_ID_MAX || id[0] == '-')
		return 0;
	for (i = 0; i < len; i++) {
		c = id[i];
		if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
		    !(c >= 'A' && c <= 'Z') && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/*
 * Keep the job's lease alive (the server has not heard from us for a third
 * of it): TOUCH, or inside a result being streamed "DATA 0".  0 or -1.
 */
static int
run_slot_keepalive(struct run_slot *s, struct run_job *j)
{
	struct client	*c = s->link.c;
	char		*cause = NULL;
	int		 rc;

	if (j->put_started)
		rc = client_send(c, &cause, FRAME_WORD_DATA " 0");
	else if ((rc = client_send(c, &cause, "TOUCH %s " KEY_TOKEN "=%s",
	    j->cj->id, j->cj->token)) == 0)
		run_conn_owe(s, OWED_TOUCH, NULL, NULL);
	if (rc != 0 || client_flush(c, &cause) != 0)
		return run_conn_fatal(s, cause);
	j->last_sent = util_now_ms();
	return 0;
}

/*
 * What a job's verdict means for the slot: 0 go on, 1 stopped (SIGUSR2),
 * -1 the job ends: fatal (s->status set) or lost (the job's cause, if any,
 * goes to run_conn_fatal).  RUN_IDLE and RUN_SOCKET are the callers'.
 */
static int
run_slot_verdict(struct run_slot *s, struct run_job *j, enum run_verdict v)
{
	switch (v) {
	case RUN_DONE:
		return 0;
	case RUN_STOPPED:
		return 1;
	case RUN_LOST:
		if (j->cause != NULL)
			run_conn_fatal(s, j->cause);
		j->cause = NULL;
		return -1;
	default:		/* RUN_FATAL */
		s->status = JQ_EXIT_IO;
		return -1;
	}
}

/*
 * The slot's job was handed out by an earlier connection, which is gone:
 * until the server has answered its result, no slot asks for a job
 * (run_slot_await_held), since a restarted server has this job waiting
 * again.  Undone at the end of run_slot_job.
 */
static void
run_slot_hold(struct run_slot *s)
{
	if (s->holding)
		return;
	s->holding = 1;
	(void)run_share_held(1);
}

/*
 * A step of a running job failed (-1).  When that lost the connection, the
 * job may go on without the server (0); otherwise it ends here (-1).
 */
static int
run_slot_runs_on(struct run_slot *s, struct run_job *j)
{
	int	 rc;

	if (s->status != 0 || !s->lost)
		return -1;
	if ((rc = run_slot_verdict(s, j, run_job_offline(j))) == 0)
		run_slot_hold(s);
	return rc;
}

/* Receive the job's payload into its <in> file.  0, -1 or 1 (stopped). */
static int
run_slot_receive(struct run_slot *s, struct run_job *j)
{
	enum run_verdict	 v;

	while ((v = run_job_receive(j)) == RUN_IDLE)
		if (run_slot_keepalive(s, j) != 0)
			return -1;
	return run_slot_verdict(s, j, v);
}

/*
 * Run the job's command to its end (run_job_loop), doing for it what
 * touches the connection.  0 finished, -1 fatal or lost, 1 stopped.
 */
static int
run_slot_watch(struct run_slot *s, struct run_job *j)
{
	enum run_verdict	 v;
	int			 rc;

	for (;;) {
		switch (v = run_job_loop(j, s->nowed > 0)) {
		case RUN_IDLE:
			rc = run_slot_keepalive(s, j);
			break;
		case RUN_SOCKET:
			rc = s->nowed > 0 ? run_conn_reply(s) :
			    run_conn_hangup(s);
			break;
		case RUN_LOST:
			rc = run_slot_verdict(s, j, v);
			break;
		default:		/* finished, stopped or fatal */
			return run_slot_verdict(s, j, v);
		}
		if (rc == -1 && run_slot_runs_on(s, j) == -1)
			return -1;
	}
}

/*
 * The job succeeded: send its result, the <out> or spool file, or the
 * stdout held back (maybe none) when none of it went yet; a streamed
 * result only needs its end.  A file that cannot be read turns the outcome
 * into a failure.  0 or -1.
 */
static int
run_slot_put(struct run_slot *s, struct run_job *j, struct run_outcome *o)
{
	struct client	*c;
	char		*cause = NULL;

	if (o->fd == -1 && j->put_started)
		return 0;
	if (run_conn_prefetch(s, j->offline || j->gen != s->gen) != 0)
		return -1;
	c = s->link.c;
	client_tx_init(&j->tx);
	if (client_send(c, &cause, "PUT %s " KEY_TOKEN "=%s%s", j->cj->id,
	    j->cj->token, o->tree ? " " KEY_KIND "=" KIND_TREE : "") != 0)
		return run_conn_fatal(s, cause);
	j->put_started = 1;
	if (o->fd == -1) {
		if (j->held > 0 && client_tx_data(c, &j->tx, s->link.hold,
		    j->held, &cause) != 0)
			return run_conn_fatal(s, cause);
		j->held = 0;
	} else if (client_tx_fd(c, &j->tx, o->fd, &cause) != 0) {
		if (client_status(c) != JQ_EXIT_IO)
			return run_conn_fatal(s, cause);
		o->ok = 0;
		o->kv[0] = '\0';
		snprintf(o->how, sizeof o->how, "unreadable output");
		o->reason = xprintf("jq-run: %s", cause);
		free(cause);
	}
	return 0;
}

/*
 * The job failed: end a result being sent (ABORT), then FAIL with the
 * stderr tail and our reason.  0 or -1.
 */
static int
run_slot_fail(struct run_slot *s, struct run_job *j,
    const struct run_outcome *o)
{
	char	*cause = NULL, *msg;
	size_t	 len;
	int	 rc;

	if (j->put_started) {
		if (client_tx_abort(s->link.c, &cause) != 0)
			return run_conn_fatal(s, cause);
		run_conn_owe(s, OWED_ABORTED, j->cj->id, j->label);
	}
	/* counted first: at --halt-after, no next job is asked for with it;
	 * a temporary failure (exit 75) is no failure of this node */
	if (!o->tempfail)
		(void)run_share_streak(1);
	if (run_conn_prefetch(s, j->offline || j->gen != s->gen) != 0)
		return -1;
	msg = run_job_fail_msg(j, o->reason, &len);
	client_tx_init(&j->tx);
	rc = client_send(s->link.c, &cause, "FAIL %s " KEY_TOKEN "=%s%s%s",
	    j->cj->id, j->cj->token, *o->kv != '\0' ? " " : "", o->kv) != 0 ||
	    client_tx_data(s->link.c, &j->tx, msg, len, &cause) != 0 ||
	    client_tx_end(s->link.c, &j->tx, &cause) != 0 ? -1 : 0;
	free(msg);
	if (rc != 0)
		return run_conn_fatal(s, cause);
	run_conn_owe(s, OWED_FAILURE, j->cj->id, j->label);
	if (o->tempfail) {
		log_warnx("%s: job %s: temporary failure (%s, EX_TEMPFAIL): it "
		    "runs again later", j->label, j->cj->id, o->how);
		return 0;
	}
	s->failed = 1;
	log_warnx("%s: job %s failed: %s", j->label, j->cj->id, o->how);
	return 0;
}

/*
 * The command ended: queue the result or the failure (replies are read by
 * run_conn_settle() with the next TAKE's).  A job that ran on without the
 * server reconnects first.  Returns 0, -1 (fatal, or lost again: see
 * s->lost) or 1 (SIGUSR2 while reconnecting).
 */
static int
run_slot_deliver(struct run_slot *s, struct run_job *j)
{
	struct run_outcome	 o;
	char			*cause = NULL;
	int			 rc;

	if (run_job_unreported(j)) {
		s->failed = 1;
		s->tally->failed++;
		return 0;
	}
	if (s->link.c == NULL || j->gen != s->gen)
		run_slot_hold(s);	/* a result for an earlier connection */
	if (s->link.c == NULL && (rc = run_conn_reconnect(s, 0)) != 0)
		return rc;
	run_job_outcome(j, &o);		/* o.fd and o.reason are ours */
	rc = o.ok ? run_slot_put(s, j, &o) : 0;
	if (rc == 0 && o.ok) {
		if (client_tx_end(s->link.c, &j->tx, &cause) != 0)
			rc = run_conn_fatal(s, cause);
		else
			run_conn_owe(s, OWED_RESULT, j->cj->id, j->label);
	} else if (rc == 0)
		rc = run_slot_fail(s, j, &o);
	if (rc == 0 && s->link.cfg->verbose)
		log_warnx("%s: job %s: %s in %llu ms", j->label, j->cj->id,
		    o.ok ? "done" : o.how,
		    (unsigned long long)(util_now_ms() - j->start));
	if (rc == 0 && o.ok) {
		s->tally->done++;
		(void)run_share_streak(0);
	}
	else if (rc == 0 && o.tempfail)
		s->tally->tempfail++;
	else if (rc == 0)
		s->tally->failed++;
	if (o.fd != -1)
		close(o.fd);
	free(o.reason);
	return rc;
}

/*
 * SIGUSR2 during a job, its command killed: give the job back.  When its
 * payload was read to the end the stream is in sync and we say RELEASE;
 * otherwise the slot just closes the connection, which hands back a
 * hold=conn job just as well.
 */
static void
run_slot_release(struct run_slot *s, struct run_job *j)
{
	char	*cause = NULL;

	if (!j->rx_done || s->link.c == NULL)
		return;
	if (j->put_started) {
		if (client_tx_abort(s->link.c, &cause) != 0)
			goto fail;
		run_conn_owe(s, OWED_ABORTED, j->cj->id, j->label);
	}
	if (client_send(s->link.c, &cause, "RELEASE %s " KEY_TOKEN "=%s",
	    j->cj->id, j->cj->token) != 0)
		goto fail;
	run_conn_owe(s, OWED_RELEASE, j->cj->id, j->label);
	(void)run_conn_settle(s);
	return;
fail:
	log_warnx("%s", cause);
	free(cause);
}

/*
 * The job's command could not be started (exec failed, j->cause says why).
 * That is this node's fault, not the job's: the job goes back to the
 * server for another worker, and this worker stops, with usage's status as
 * when the command is not found at start.
 */
static void
run_slot_noexec(struct run_slot *s, struct run_job *j)
{
	run_say("%s; job %s (%s) handed back; this worker stops", j->cause,
	    j->cj->id, j->label);
	free(j->cause);
	j->cause = NULL;
	s->status = JQ_EXIT_USAGE;
	(void)run_share_halt();
	/* a job fed on stdin was not read yet: read it to the end first */
	if (j->rx_done || run_slot_receive(s, j) == 0)
		run_slot_release(s, j);
}

/*
 * Run one job.  0 delivered (a result or a failure), -1 fatal or lost (see
 * s->lost), 1 stopped, 2 could not start the command (handed back).
 */
static int
run_slot_job(struct run_slot *s, struct client_job *cj)
{
	struct run_job		 j;
	enum run_verdict	 v = RUN_DONE;
	int			 rc;

	(void)run_share_running(1);
	/* Heartbeats at a third of the lease the server gave this job. */
	s->link.keepalive_ms = cj->lease > 0 ? (uint64_t)cj->lease * 1000 / 3 :
	    RUN_KEEPALIVE_MS;
	run_job_init(&j, &s->link, cj);
	j.gen = s->gen;
	rc = run_slot_verdict(s, &j, run_job_prepare(&j));
	if (rc == 0 && j.in != NULL)
		rc = run_slot_receive(s, &j);
	if (rc == 0 && j.refused != NULL) {
		/* a tree refused: the job fails, its command never runs */
		rc = run_slot_deliver(s, &j);
	} else if (rc == 0 && (v = run_job_spawn(&j)) == RUN_NOEXEC) {
		run_slot_noexec(s, &j);
		rc = 2;
	} else if (rc == 0) {
		rc = run_slot_verdict(s, &j, v);
		if (rc == 0)
			rc = run_slot_watch(s, &j);
		/* From a file, a result lost with the server can go again. */
		while (rc == 0 && (rc = run_slot_deliver(s, &j)) == -1 &&
		    s->lost && s->status == 0 && run_job_resend(&j))
			rc = 0;
	}
	if (s->holding) {
		/* the server's answer to the held result; then the other
		 * slots may ask for jobs again */
		if (rc == 0 && s->link.c != NULL && run_conn_settle(s) != 0)
			rc = -1;
		s->holding = 0;
		(void)run_share_held(-1);
	}
	if (rc == 1) {
		run_job_abandon(&j);
		run_slot_release(s, &j);
	} else if (rc == -1)
		run_job_kill(&j);
	run_job_free(&j);
	(void)run_share_running(-1);
	return rc;
}

/*
 * Another slot holds a job of an earlier connection (the server went away
 * while its command ran, and came back): ask for no job until the server
 * has answered its result.  A restarted server has that job waiting again;
 * taken here, it would run twice and one of the two results would be
 * refused.  The holder may never get through (it gave up, its command runs
 * for hours, its result is huge), so this waits RUN_HELD_WAIT_MS at most.
 * 0, or 1 when a stop came.
 */
static int
run_slot_await_held(const struct run_slot *s)
{
	struct pollfd	 pfd;
	uint64_t	 end;

	if (run_share_held(0) == 0)
		return 0;
	if (s->link.cfg->verbose)
		run_say("waiting for the results of jobs other slots hold "
		    "from before the connection was lost, before taking a job");
	end = util_now_ms() + RUN_HELD_WAIT_MS;
	while (!run_stop && run_share_held(0) > 0 && util_now_ms() < end) {
		/* another slot cannot wake us: look again soon */
		pfd.fd = run_wake[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, RUN_HELD_NAP_MS) > 0)
			run_drain_wake();
	}
	return run_stop ? 1 : 0;
}

/*
 * Read the reply to the TAKE that went out with the last result, after the
 * replies owed before it.  Like client_take_reply() (1 job, 0 NOJOB, -1
 * error), and 2 to go round again (every job is held: ask again, waiting;
 * or the connection was lost), 3 to stop (a fatal error, said already, or
 * a stop signal: a job that came is handed back).
 */
static int
run_slot_take_prefetched(struct run_slot *s, struct client_job *cj,
    char **cause)
{
	struct client_rx	 rx;
	const char		*data;
	char			*label;
	ssize_t			 n;
	int			 r;

	memset(cj, 0, sizeof *cj);
	if (run_conn_settle(s) != 0)
		return s->lost && s->status == 0 ? 2 : 3;
	s->prefetched = 0;
	r = client_take_reply(s->link.c, cj, cause);
	if (r == 0 && client_status(s->link.c) == JQ_EXIT_TIMEOUT) {
		free(*cause);
		*cause = NULL;
		return 2;
	}
	if (r != 1 || !run_stop)
		return r;
	if (run_stop == 2) {
		/* No time to read its data: closing hands the job back. */
		client_job_free(cj);
		run_conn_drop(s);
		return 3;
	}
	/* The first stop: read the data to its end and say RELEASE. */
	client_rx_init(&rx);
	while ((n = client_rx_next(s->link.c, &rx, &data, cause)) > 0)
		;
	label = run_label(cj->name);
	if (n < 0 || client_send(s->link.c, cause, "RELEASE %s "
	    KEY_TOKEN "=%s", cj->id, cj->token) != 0)
		run_conn_fatal(s, *cause);
	else
		run_conn_owe(s, OWED_RELEASE, cj->id, label);
	*cause = NULL;
	free(label);
	client_job_free(cj);
	return 3;
}

/*
 * --halt-after failures in a row here, and no other worker's success seen
 * yet (run_conn_halt_check stops the worker when there is one): is the
 * fault this node's or the jobs'?  Before taking another job, watch the
 * server while other workers' jobs run.  One of them succeeds: the node is
 * at fault, it halts (1).  One fails too, or none runs: the jobs are, go on
 * (0).  So a bad node that starts with a healthy one costs a few jobs, not
 * the queue.
 */
static int
run_slot_doubt(struct run_slot *s)
{
	const struct run_config	*cfg = s->link.cfg;
	struct run_stat		 st0, st;
	uint64_t		 streak0 = run_share_streak(-1), streak;
	uint64_t		 ours0 = run_share_done(), mine;
	int			 said = 0, seen = 0;

	if (cfg->halt_after == 0 || streak0 < cfg->halt_after)
		return 0;
	if (run_conn_settle(s) != 0 || run_stop)
		return run_stop ? 1 : 0;
	if (run_conn_stat(s, &st0) != 0)
		return 0;		/* the caller sees the connection */
	st = st0;
	for (;;) {
		/* a success of ours ended the streak: go on */
		if ((streak = run_share_streak(-1)) < cfg->halt_after)
			return 0;
		/* others fail too (ours add to the streak): the jobs' fault */
		if (st.reported > st0.reported + (streak - streak0))
			return 0;
		/* others succeed, and still none of them failed one poll
		 * later: the node's */
		if (st.done - st0.done > run_share_done() - ours0 &&
		    seen++ > 0) {
			if (run_share_halt())
				run_say("stopping: the last %llu jobs failed "
				    "here while jobs succeeded elsewhere; "
				    "--halt-after %u", (unsigned long long)streak,
				    cfg->halt_after);
			return 1;
		}
		mine = run_share_running(0);
		if (!seen && st.running <= mine)
			return 0;	/* nothing runs elsewhere to tell */
		if (!said) {
			said = 1;
			run_say("%u or more jobs in a row failed here; waiting "
			    "for jobs running elsewhere to see whether the "
			    "fault is this node's (--halt-after)",
			    cfg->halt_after);
		}
		run_conn_nap(s, RUN_DOUBT_MS, 1);
		if (run_stop)
			return 1;
		if (run_conn_stat(s, &st) != 0)
			return 0;
	}
}

/*
 * Get the next job: the reply to the TAKE that went with the last result,
 * or that of a new TAKE.  Returns as run_slot_take_prefetched().
 */
static int
run_slot_take(struct run_slot *s, struct client_job *cj, char **cause)
{
	if (s->prefetched)
		return run_slot_take_prefetched(s, cj, cause);
	if (run_stop)
		return 3;
	if (s->link.c == NULL && run_conn_reconnect(s, 1) != 0)
		return 3;
	if (run_slot_doubt(s) != 0)
		return 3;
	if (s->link.c == NULL)
		return s->lost && s->status == 0 ? 2 : 3;
	if (run_slot_await_held(s) != 0)
		return 3;
	if (!run_conn_count(s))
		return 3;
	if (client_send(s->link.c, cause, "%s", s->take) != 0) {
		run_conn_fatal(s, *cause);
		*cause = NULL;
		return s->lost && s->status == 0 ? 2 : 3;
	}
	if (run_conn_settle(s) != 0)
		return s->lost && s->status == 0 ? 2 : 3;
	if (run_conn_wait(s) != 0)
		return 3;
	return client_take_reply(s->link.c, cj, cause);
}

/* Refuse a job whose id is unsafe (run_id_ok): 0, or -1 (status set). */
static int
run_slot_check_id(struct run_slot *s, struct client_job *cj)
{
	char	*label;

	if (run_id_ok(cj->id))
		return 0;
	label = run_label(cj->id);
	run_say("%s sent a job id that is not 1 to %d letters, digits, '-' "
	    "or '_': \"%s\"; not run", client_server(s->link.c), RUN_ID_MAX,
	    label);
	free(label);
	s->status = JQ_EXIT_PROTOCOL;
	return -1;
}

/*
 * The signals of a slot: SIGINT, SIGTERM and SIGHUP come only through the
 * parent, as SIGUSR1 (finish the running job, take no other) and SIGUSR2
 * (stop now); mask is the mask to run with once the handlers are set.
 */
static void
run_slot_signals(const sigset_t *mask, pid_t parent)
{
	run_sigaction(SIGINT, SIG_IGN);
	run_sigaction(SIGTERM, SIG_IGN);
	run_sigaction(SIGHUP, SIG_IGN);
	run_sigaction(SIGUSR1, run_on_signal);
	run_sigaction(SIGUSR2, run_on_signal);
	if (pipe2(run_wake, O_CLOEXEC | O_NONBLOCK) == -1)
		err(JQ_EXIT_IO, "pipe");
#ifdef __linux__
	/* A parent killed outright must not leave slots running on their own:
	 * its death stops the slot as a second SIGTERM would. */
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2) == -1)
		log_warn("prctl");
	if (getppid() != parent)
		run_stop = 2;
#else
	(void)parent;
#endif
	sigprocmask(SIG_SETMASK, mask, NULL);
}

/*
 * --keep: this server has no more work for us.  Wait for it to go, then
 * for the next one at the same address.  0 connected to it, else stop.
 * Said once: the server that said it may linger and say it again to each
 * connection (run_conn_reconnect naps longer each time).
 */
static int
run_slot_next(struct run_slot *s)
{
	if (s->idle_next++ == 0)
		run_say("%s has no more work; --keep: waiting for the next "
		    "server there", client_server(s->link.c));
	if (run_conn_await_close(s) != 0)
		return -1;
	return run_conn_reconnect(s, 1);
}

/* Take and run jobs until none remains, a stop came or something failed. */
static void
run_slot_serve(struct run_slot *s)
{
	struct client_job	 cj;
	char			*cause = NULL;
	int			 r;

	for (;;) {
		r = run_slot_take(s, &cj, &cause);
		if (r == 2)
			continue;	/* every job is held, or reconnect */
		if (r == 3)
			break;		/* a stop came: a job went back */
		if (r == 0) {		/* NOJOB: nothing left for us */
			free(cause);
			cause = NULL;
			if (client_status(s->link.c) != JQ_EXIT_NOWORK)
				break;
			if (cj.drained) {	/* finished, for us: even --keep */
				run_say("%s drained this worker (jq-put "
				    "--drain): it takes no more jobs",
				    client_server(s->link.c));
				break;
			}
			if (s->link.cfg->keep && run_slot_next(s) == 0)
				continue;
			run_share_finish();
			break;
		}
		if (r < 0) {
			run_conn_fatal(s, cause);
			cause = NULL;
			if (s->lost && s->status == 0)
				continue;
			break;
		}
		if (run_slot_check_id(s, &cj) != 0) {
			client_job_free(&cj);
			break;
		}
		s->counted = 0;
		s->idle_next = 0;	/* a job: news worth telling again */
		r = run_slot_job(s, &cj);
		client_job_free(&cj);
		if (r == -1 && s->lost && s->status == 0)
			continue;
		if (r != 0)
			break;
	}
}

/* A slot process: take and run jobs until none remains or told to stop. */
int
run_slot_main(const struct run_config *cfg, const char *worker,
    const sigset_t *mask, pid_t parent)
{
	struct run_slot	 s;
	char		*enc;

	memset(&s, 0, sizeof s);
	s.link.cfg = cfg;
	s.link.worker = xstrdup(worker);
	s.counter = cfg->max_jobs > 0 ? run_share_taken() : NULL;
	s.tally = run_share_tally(run_self);
	s.lost = 1;			/* run_slot_take connects */
	s.why = RUN_CONNECT_FIRST;
	run_slot_signals(mask, parent);
	if (run_share_halted() && run_stop == 0)
		run_stop = 1;		/* a slot forked after the halt */
	if (cfg->match != NULL) {
		enc = proto_encode_dup(cfg->match, strlen(cfg->match));
		s.take = xprintf("TAKE hold=conn%s%s match=%s",
		    cfg->queues ? " " KEY_QUEUE "=" : "",
		    cfg->queues ? cfg->queues : "", enc);
		free(enc);
	} else
		s.take = xprintf("TAKE hold=conn%s%s",
		    cfg->queues ? " " KEY_QUEUE "=" : "",
		    cfg->queues ? cfg->queues : "");
	s.link.buf = xmalloc(RUN_BUF);
	s.link.hold = xmalloc(RUN_BUF);
	s.link.keepalive_ms = RUN_KEEPALIVE_MS;
	srandom((unsigned)getpid() ^ (unsigned)util_now_ms());

	run_slot_serve(&s);

	run_link_end_dir(&s.link);
	run_conn_close(&s);
	free(s.take);
	free(s.link.buf);
	free(s.link.hold);
	free(s.link.inbuf);
	free(s.link.worker);
	if (s.status != 0)
		return s.status;
	if (run_stop == 2)
		return JQ_EXIT_SIGNAL;
	if (s.tally->unstored > 0)	/* the server answered an error */
		return JQ_EXIT_PROTOCOL;
	return s.failed ? JQ_EXIT_FAILED : JQ_EXIT_OK;
}
