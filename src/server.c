/*
 * server.c: jq-serve's event loop: listening sockets, accepting, waking
 * waiting TAKEs, and the orderly end once every job has finished.
 *
 * Anything that can change what a waiting TAKE would get, or end a job a
 * WAIT waits for (a job released, finished, failed or cancelled), calls
 * server_wake(), which only schedules server_check() for the next loop
 * iteration.  So no handler ever walks the waiters lists while another
 * handler is changing them.  jobs.c, which makes those changes, calls it
 * through the hook jobs_init hands it.
 *
 * Calls between the server's files run one way, each calling only files
 * further down: server.c -> conn.c -> cmd.c -> payload.c -> jobs.c ->
 * queue.c, journal.c, joblog.c (and store.c, commit.c below them); and
 * server.c -> watch.c (--watch) -> jobs.c, commit.c.  The only way back
 * up is the hooks handed down: server_wake to jobs.c (jobs_init),
 * conn_commit_done to commit.c (commit_start), and watch.c's own done hook
 * in the commits it submits.  conn.c, cmd.c and watch.c read the server's
 * state, the global `server`.
 *
 * Accepting (server_accept) is where a flood of connections meets its
 * limits: --max-conns counts authenticated connections only, and a new
 * connection is refused at once (ERR LIMIT) when they are all taken; the
 * unauthenticated ones have their own cap, --max-unauth, past which the
 * oldest of them is dropped to make room.  Dropping the oldest rather than
 * refusing the newest means that sockets opened and left idle cannot keep a
 * worker out for the JQ_HANDSHAKE_MS they may wait: a worker that connects
 * is let in, and only has to authenticate (one round trip) before
 * --max-unauth newer connections arrive.  Refusals and drops are logged as
 * one summary line per interval (server.turned_away), not one each.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

#define SERVER_LISTEN_MAX	64
#define SERVER_GRACE_SEC	5	/* to flush replies at the end */
#define SERVER_LINGER_CAP	10	/* arrivals stretch --linger this far */
#define SERVER_SETTLE_MS	1000	/* --linger 0: connections told the end */
#define SERVER_TOLD_MAX		4096	/* worker names told the end, kept */
#define SERVER_ACCEPT_PAUSE_MS	100	/* out of descriptors: accept later */
#define SERVER_FD_RESERVE	64	/* descriptors beside the connections' */
#define SERVER_FILES_MIN	4	/* the files' budget (server_limits) */

struct server	 server;

static int		 listen_fds[SERVER_LISTEN_MAX];
static struct event	*listen_evs[SERVER_LISTEN_MAX];
static size_t		 nlisten;
static struct net_addr	*listen_addrs;
static struct event	*accept_pause;
static struct event	*linger_ev;	/* the --linger deadline */
static struct event	*unspool_ev;	/* server_unspool, after the replies */
static char		**told_names;	/* workers told the end (stretch once) */
static size_t		 ntold_names;

/*
 * Remove the data of jobs done since last time (jobs_unspool).  The
 * spool's room counts for what comes next (an ADD, the next archive
 * entries, the end of the run): look again when some went.
 */
static void
server_unspool(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (jobs_unspool() > 0)
		server_wake();
}

/*
 * After conn_results_all: remove the data of the jobs done, once the
 * RESULTs just queued are written.  Their writes (conn.c's push events)
 * were made active first, and libevent runs active events in order.
 */
static void
server_unspool_later(void)
{
	if (unspool_ev != NULL)
		event_active(unspool_ev, EV_TIMEOUT, 0);
	else
		(void)jobs_unspool();
}

/* Schedule a look at the waiting TAKEs and at the end of the run. */
void
server_wake(void)
{
	event_active(server.check, EV_TIMEOUT, 0);
}

/* Stop listening and remove UNIX socket files. */
static void
server_unlisten(void)
{
	size_t	 i;

	for (i = 0; i < nlisten; i++) {
		if (listen_evs[i] != NULL)
			event_free(listen_evs[i]);
		close(listen_fds[i]);
	}
	nlisten = 0;
	for (i = 0; i < server.cfg.nlisten; i++)
		net_unlink_unix(&listen_addrs[i]);
}

/* Give up waiting for clients to read their last replies. */
static void
server_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(server.base);
}

/* The linger is over: stop listening, close idle connections, leave. */
static void
server_close(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	 tv = { SERVER_GRACE_SEC, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	server.closing = 1;
	evtimer_del(linger_ev);
	server_unlisten();
	conn_finish_all();
	if (server.nconns == 0)
		event_base_loopbreak(server.base);
	else
		event_base_once(server.base, -1, EV_TIMEOUT, server_grace_cb,
		    NULL, &tv);
}

/* Arm the linger timer to fire ms from now. */
static void
server_linger_arm(uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	evtimer_add(linger_ev, &tv);
}

/*
 * The run has finished: may the server leave before its linger is over?
 * Only when it does not linger (--linger 0, or no worker arrived within
 * --linger of the end), and then once every connection has heard
 * "finished" or is closing (workers still to ask are waited for), provided
 * workers were told and none left untold: such a worker may be
 * reconnecting.
 */
static void
server_end_check(void)
{
	if (server.linger_until != 0 || server.closing ||
	    conn_unsettled() > 0 || server.lost_workers > 0)
		return;
	server_close(-1, 0, NULL);
}

/* Linger until ms (monotonic), which is later than now. */
static void
server_linger_to(uint64_t ms, uint64_t now)
{
	server.linger_until = ms;
	server_linger_arm(ms - now);
}

/*
 * The linger timer fired.  While lingering for workers still arriving,
 * that ends the linger, not the run: the server then leaves as the run
 * that did not linger does, once every connection has heard the end, at
 * most SERVER_SETTLE_MS later.  Closing at once would cut off a
 * jq-stat --watch between two of its polls.  Otherwise the bound is up.
 */
static void
server_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	if (server.linger_until != 0 && !server.closing) {
		log_debug("no worker arrived for %llu ms: leaving once every "
		    "connection has heard the end",
		    (unsigned long long)server.cfg.linger_ms);
		server.linger_until = 0;
		server_linger_arm(SERVER_SETTLE_MS);
		server_end_check();
		return;
	}
	server_close(fd, what, arg);
}

/*
 * How long to listen on after the end, for workers that have not asked
 * yet (a node whose jq-run starts late, over ssh).  The server cannot count
 * them, but it can see whether workers are still arriving: it lingers
 * until no new worker has asked for work for --linger.  A run whose workers
 * all arrived longer ago than that ends at once (a second saved on every
 * run longer than --linger); a worker that left untold may be reconnecting
 * and is given the whole --linger.
 */
static uint64_t
server_linger_ms(uint64_t now)
{
	uint64_t	 linger = server.cfg.linger_ms;

	/* no worker asked yet: all may be late (a run finished before,
	 * resumed; a --keep server shut down before its workers came) */
	if (server.worker_ms == 0)
		return linger;
	if (linger == 0 || server.lost_workers > 0)
		return linger;
	if (now - server.worker_ms >= linger)
		return 0;
	return linger - (now - server.worker_ms);
}

/* Has the worker named name heard the end already (a --keep worker back)? */
static int
server_told_before(const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < ntold_names; i++)
		if (strcmp(told_names[i], name) == 0)
			return 1;
	return 0;
}

/* The worker named name (NULL: unnamed) heard the end of the run. */
void
server_worker_told(const char *name)
{
	if (name == NULL || ntold_names >= SERVER_TOLD_MAX ||
	    server_told_before(name))
		return;
	told_names = xreallocarray(told_names, ntold_names + 1,
	    sizeof *told_names);
	told_names[ntold_names++] = xstrdup(name);
}

/*
 * A connection of the worker named name asked for work for the first
 * time.  After the end, that is a late worker (it hears "finished");
 * others may follow it, so the linger is stretched to --linger from now,
 * at most SERVER_LINGER_CAP times --linger past the end.  A worker that
 * heard the end before and asks again (jq-run --keep watching for the
 * server to go) stretches nothing: it is no news of more workers.
 */
void
server_worker_arrived(const char *name)
{
	uint64_t	 now = util_now_ms(), until, cap;

	if (!server.finishing)
		server.worker_ms = now;
	if (!server.finishing || server.closing || server.cfg.linger_ms == 0 ||
	    server_told_before(name))
		return;
	server.worker_ms = now;
	until = now + server.cfg.linger_ms;
	cap = server.end_ms + SERVER_LINGER_CAP * server.cfg.linger_ms;
	if (until > cap)
		until = cap;
	if (until > now && until > server.linger_until) {
		log_debug("a worker arrived after the end: lingering %llu ms "
		    "more", (unsigned long long)(until - now));
		server_linger_to(until, now);
	}
}

/*
 * Every job has finished: answer waiting TAKEs with NOJOB, and keep
 * listening while workers may still be arriving (server_linger_ms) so that
 * those asking a moment late hear "no work remains" rather than find no
 * server; leave sooner when that buys nothing (server_end_check).
 */
static void
server_finish(void)
{
	uint64_t	 now = util_now_ms(), ms;

	server.finishing = 1;
	server.end_ms = now;
	status_finish();
	conn_retake_all();
	conn_results_all();	/* a WAIT for a job that never ran: ERR CLOSED */
	ms = server_linger_ms(now);
	if (ms > 0) {
		log_debug("lingering %llu ms for workers still arriving",
		    (unsigned long long)ms);
		server_linger_to(now + ms, now);
	} else {
		/* leave once every connection is settled (a jq-stat --watch
		 * sees the end), at most --linger, or a second with 0 */
		log_debug("no worker arrived in the last %llu ms: leaving once "
		    "every connection has heard the end",
		    (unsigned long long)server.cfg.linger_ms);
		server_linger_arm(server.cfg.linger_ms > 0 ?
		    server.cfg.linger_ms : SERVER_SETTLE_MS);
	}
	server_end_check();
}

/*
 * Deferred: end the run, or offer jobs to the TAKEs that wait.  A run ends
 * when every job has finished, or, after a shutdown was asked (and always
 * for --keep, which has no other end), when no job runs; never while an
 * ADD is on its way to becoming a job.  Once it has ended, a connection
 * told or gone may let the server leave early.
 */
static void
server_check(evutil_socket_t fd, short what, void *arg)
{
	int	 end;

	(void)fd;
	(void)what;
	(void)arg;
	if (server.finishing) {
		/* a WAIT that found no descriptor free tries again */
		if (server.fds_starved)
			conn_results_all();
		server_unspool_later();
		server_end_check();
		return;
	}
	conn_results_all();	/* a job may have ended */
	server_unspool_later();	/* its data, off the RESULT's path */
	archsrc_wake();		/* --archive: a job may have been taken */
	status_note();		/* idle, or work again: the rate's window */
	archout_feed(&server.queue);	/* --output-archive: results done */
	if (jobs_stopping())
		end = server.queue.count[JOB_RUNNING] == 0;
	else
		end = !server.cfg.keep && queue_all_finished(&server.queue);
	/* and every acknowledged result in its file (commit.c) */
	if (end && spool_inflight() == 0 && !archsrc_busy() &&
	    commit_flushing() == 0) {
		server_finish();
		return;
	}
	conn_retake_all();
}

/* Listen again after running out of descriptors. */
static void
server_resume_accept(evutil_socket_t fd, short what, void *arg)
{
	size_t	 i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < nlisten; i++)
		event_add(listen_evs[i], NULL);
}

/*
 * Out of descriptors: stop accepting for a moment (the listener would
 * fire again at once, for ever) and let the pending connections wait.
 */
static void
server_pause_accept(int errnum)
{
	struct timeval	 tv = { 0, SERVER_ACCEPT_PAUSE_MS * 1000 };
	size_t		 i;

	log_tally(&server.turned_away, "delayed: out of descriptors",
	    "accept: %s; accepting paused for %d ms", strerror(errnum),
	    SERVER_ACCEPT_PAUSE_MS);
	for (i = 0; i < nlisten; i++)
		event_del(listen_evs[i]);
	evtimer_add(accept_pause, &tv);
}

/* Refuse the connection on fd at once: every --max-conns place is taken. */
static void
server_refuse(int fd)
{
	static const char	 full[] = REPLY_ERR " " ERR_LIMIT " too many "
	    "connections; closing\n";
	char			*peer;

	/* best effort: the socket is fresh, the line fits */
	if (send(fd, full, sizeof full - 1, MSG_NOSIGNAL) < 0)
		log_debug("refusing a connection: %s", strerror(errno));
	peer = net_fd_name(fd, 1);
	log_tally(&server.turned_away, "over --max-conns", "refused the "
	    "connection from %s: %u connections (--max-conns)", peer,
	    server.nauthed);
	free(peer);
	close(fd);
}

/* Accept every pending connection on a listening socket. */
static void
server_accept(evutil_socket_t lfd, short what, void *arg)
{
	int	 fd, on = 1;

	(void)what;
	(void)arg;
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				server_pause_accept(errno);
			else if (errno != EAGAIN)
				log_warnx("accept: %s", strerror(errno));
			return;
		}
		if (server.nauthed >= server.cfg.max_conns) {
			server_refuse(fd);
			continue;
		}
		if (server.nunauth >= server.cfg.max_unauth)
			conn_drop_oldest_unauth();
		/*
		 * An OK written behind a job's data must not wait for the
		 * peer's delayed ACK (Nagle): 40 ms a job.  (EOPNOTSUPP on
		 * UNIX sockets, where there is no such delay.)
		 */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
		if (conn_new(fd) == NULL)
			log_warnx("cannot set up a connection");
	}
}

/* SIGINT, SIGTERM or SIGHUP: leave the loop. */
static void
server_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	server.signalled = (int)sig;
	event_base_loopbreak(server.base);
}

/*
 * Raise the descriptor limit as far as allowed, and share it out.  A
 * connection costs one descriptor, its socket; the files connections open
 * (a job's data or a WAIT's result being sent: one; a PUT's or an ADD's
 * temporary file and its directory: two) come from one budget,
 * server.fds_free, that conn.c reserves from when a request needs it and
 * returns to when the files are closed; a request that finds the budget
 * spent waits for it.  SERVER_FD_RESERVE are kept for the rest (listeners,
 * journal, libevent, a directory opened for a moment).  The
 * unauthenticated get at most a quarter of what is left, and --max-conns
 * is lowered so that the budget keeps at least an eighth of the rest
 * (SERVER_FILES_MIN at least); the budget is everything left over.
 */
static void
server_limits(void)
{
	struct rlimit	 rl;
	rlim_t		 avail, files;

	if (server.cfg.max_unauth == 0)
		server.cfg.max_unauth = JQ_UNAUTH_DEFAULT_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return;
	avail = rl.rlim_cur > SERVER_FD_RESERVE + 4 * SERVER_FILES_MIN ?
	    rl.rlim_cur - SERVER_FD_RESERVE : 4 * SERVER_FILES_MIN;
	if (server.cfg.max_unauth > avail / 4) {
		server.cfg.max_unauth = (unsigned)(avail / 4);
		log_info("--max-unauth lowered to %u by the descriptor limit",
		    server.cfg.max_unauth);
	}
	avail -= server.cfg.max_unauth;
	files = avail / 8 > SERVER_FILES_MIN ? avail / 8 : SERVER_FILES_MIN;
	if ((rlim_t)server.cfg.max_conns > avail - files) {
		server.cfg.max_conns = (unsigned)(avail - files);
		log_info("--max-conns lowered to %u by the descriptor limit",
		    server.cfg.max_conns);
	}
	files = avail - server.cfg.max_conns;
	if (files > UINT_MAX / 2)
		files = UINT_MAX / 2;
	server.fds_total = server.fds_free = (unsigned)files;
	log_debug("descriptors: %llu; %u connections, %u authenticating, %u "
	    "for files, %d kept", (unsigned long long)rl.rlim_cur,
	    server.cfg.max_conns, server.cfg.max_unauth, server.fds_total,
	    SERVER_FD_RESERVE);
}

/* Empty the lists of connections and name the log's tallies. */
static void
server_init_lists(void)
{
	TAILQ_INIT(&server.conns);
	TAILQ_INIT(&server.waiters);
	TAILQ_INIT(&server.unauth);
	/* no descriptor limit known (yet): the budget never runs out */
	server.fds_total = server.fds_free = UINT_MAX / 2;
	server.turned_away.what = "connections turned away";
	server.failed_auth.what = "failed handshakes";
}

/* Write every bound address to the --addr-file. */
static int
server_write_addrs(char **cause)
{
	char	*all = xstrdup(""), *name, *tmp;
	size_t	 i;
	int	 rc;

	for (i = 0; i < nlisten; i++) {
		name = net_fd_name(listen_fds[i], 0);
		tmp = xprintf("%s%s\n", all, name);
		free(all);
		free(name);
		all = tmp;
	}
	rc = util_atomic_write(server.cfg.addr_file, all, strlen(all), cause);
	free(all);
	return rc;
}

/*
 * jq-serve listens where -l says (or on its default), never at
 * $JQ_SERVER, which is the clients' default: when JQ_SERVER is set and
 * names an address none of our sockets would take a connection to, say so
 * once, at start, so that a user who exported it for the clients does not
 * wait for workers that talk to another address.
 */
static void
server_check_env(const char *names)
{
	const char	*env = getenv("JQ_SERVER");
	struct net_addr	 a;
	char		*cause = NULL;

	if (env == NULL || *env == '\0')
		return;
	if (net_parse_addr(env, 0, &a, &cause) != 0) {
		log_warnx("JQ_SERVER is not an address (%s); jq-serve does not "
		    "read it, and listens on %s", cause, names);
		free(cause);
		return;
	}
	if (!net_reaches(&a, listen_fds, nlisten))
		log_warnx("JQ_SERVER is %s, but this server listens on %s "
		    "(where -l says; jq-serve does not read JQ_SERVER): "
		    "clients that use JQ_SERVER will not reach it", env, names);
}

/*
 * Say that we serve, where (names) and how many jobs.  An archive's jobs
 * are counted as its entries are read, after this line: its count would
 * be 0, or the jobs an earlier run's journal knew, so it is not given.
 */
static void
server_start_line(const char *names)
{
	const char	*keep = server.cfg.keep ?
	    "; serving until shut down (--keep)" : "";
	size_t		 n = server.queue.njobs;

	if (server.cfg.archives != NULL)
		log_notice("archive %s: jobs are counted as entries are read, "
		    "listening on %s%s", server.cfg.archives, names, keep);
	else
		log_notice("%zu job%s, listening on %s%s", n,
		    n == 1 ? "" : "s", names, keep);
}

/*
 * Listen, serve until every job has finished (or a signal), and return the
 * exit status.  Start-up failures return JQ_EXIT_IO with *cause set.
 */
int
server_run(char **cause)
{
	struct event	*sigs[3];
	struct sigaction sa;
	size_t		 i;
	char		*names = NULL, *tmp, *name;
	int		 status;

	signal(SIGPIPE, SIG_IGN);
	server_init_lists();
	server_limits();
	if ((server.base = event_base_new()) == NULL) {
		*cause = xstrdup("cannot start the event loop");
		return JQ_EXIT_IO;
	}
	listen_addrs = xcalloc(server.cfg.nlisten, sizeof *listen_addrs);
	for (i = 0; i < server.cfg.nlisten; i++) {
		if (net_parse_addr(server.cfg.listen[i], 1, &listen_addrs[i],
		    cause) != 0 || net_listen(&listen_addrs[i], listen_fds,
		    &nlisten, SERVER_LISTEN_MAX, cause) != 0) {
			tmp = xprintf("cannot listen: %s", *cause);
			free(*cause);
			*cause = tmp;
			server.cfg.nlisten = i;
			server_unlisten();
			return JQ_EXIT_IO;
		}
	}
	for (i = 0; i < nlisten; i++) {
		listen_evs[i] = event_new(server.base, listen_fds[i],
		    EV_READ | EV_PERSIST, server_accept, NULL);
		event_add(listen_evs[i], NULL);
		name = net_fd_name(listen_fds[i], 0);
		tmp = xprintf("%s%s%s", names ? names : "", names ? ", " : "", name);
		free(names);
		free(name);
		names = tmp;
	}
	jobs_init(server.base, &server.queue, &server.cfg, server_wake);
	if (commit_start(server.base, conn_commit_done, cause) != 0) {
		server_unlisten();
		free(names);
		return JQ_EXIT_IO;
	}
	accept_pause = evtimer_new(server.base, server_resume_accept, NULL);
	linger_ev = evtimer_new(server.base, server_linger_cb, NULL);
	server.check = event_new(server.base, -1, 0, server_check, NULL);
	unspool_ev = event_new(server.base, -1, 0, server_unspool, NULL);
	sigs[0] = evsignal_new(server.base, SIGINT, server_signal, NULL);
	sigs[1] = evsignal_new(server.base, SIGTERM, server_signal, NULL);
	event_add(sigs[0], NULL);
	event_add(sigs[1], NULL);
	/*
	 * A hang-up (the terminal or ssh session went away) ends us like
	 * TERM, unless we were started with it ignored (nohup).
	 */
	sigs[2] = evsignal_new(server.base, SIGHUP, server_signal, NULL);
	if (sigaction(SIGHUP, NULL, &sa) != 0 || sa.sa_handler != SIG_IGN)
		event_add(sigs[2], NULL);
	if (server.cfg.addr_file != NULL && server_write_addrs(cause) != 0) {
		commit_stop();
		server_unlisten();
		free(names);
		return JQ_EXIT_IO;
	}
	server_start_line(names);
	server_check_env(names);
	free(names);
	status_start(server.base, &server.queue);
	watch_start(server.base);	/* --watch: events, the first scan */
	archsrc_start(server.base);	/* --archive: the first entries */
	server_wake();		/* an empty job list finishes at once */

	event_base_dispatch(server.base);
	while (ntold_names > 0)
		free(told_names[--ntold_names]);
	free(told_names);
	told_names = NULL;
	log_tally_flush(&server.turned_away, util_now_ms(), 1);
	log_tally_flush(&server.failed_auth, util_now_ms(), 1);

	if (server.signalled) {
		log_warnx("stopped by signal %d: %zu of %zu jobs finished",
		    server.signalled, server.queue.count[JOB_DONE] +
		    server.queue.count[JOB_FAILED], server.queue.njobs);
		status = JQ_EXIT_SIGNAL;
	} else if (server.queue.count[JOB_FAILED] > 0)
		status = JQ_EXIT_FAILED;
	else
		status = JQ_EXIT_OK;
	status_end();		/* the summary: jobs done, failed, wall time */
	server_unlisten();
	commit_stop();		/* results handed over are made durable */
	watch_stop();		/* after the files it handed over landed */
	conn_free_all();
	jobs_leases_free();
	event_free(sigs[0]);
	event_free(sigs[1]);
	event_free(sigs[2]);
	event_free(server.check);
	event_free(unspool_ev);
	unspool_ev = NULL;
	event_free(accept_pause);
	event_free(linger_ev);
	event_base_free(server.base);
	free(listen_addrs);
	return status;
}

/* Set up the loop and the commit thread without listening (tests/fuzz). */
int
server_init_loop(char **cause)
{
	server_init_lists();
	if ((server.base = event_base_new()) == NULL) {
		*cause = xstrdup("cannot start the event loop");
		return -1;
	}
	server.check = event_new(server.base, -1, 0, server_check, NULL);
	linger_ev = evtimer_new(server.base, server_linger_cb, NULL);
	jobs_init(server.base, &server.queue, &server.cfg, server_wake);
	return commit_start(server.base, conn_commit_done, cause);
}
