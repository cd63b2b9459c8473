/*
 * status.c: where jq-serve's run stands.
 *
 * The run's clock starts when serving starts (status_start) and stops when
 * every job has finished (status_finish), so that STAT's elapsed_ms and the
 * summary's wall time agree and the --linger that follows counts in
 * neither.  The jobs found finished at the start, from the journal, are the
 * resumed ones, which the rate leaves out (progress.c).
 *
 * The rate is taken over a window, the current stretch with work: it
 * opens when the run begins, and again when a server that serves on
 * (--keep, or one started with no files) had no job waiting or running and
 * gets one; while it has none it is idle, and has no rate.  server_check,
 * which runs after every change of a job's state, calls status_note to see
 * that; status_get looks too, so a STAT never reports a stale state.
 *
 * On a terminal (stderr a tty, the log not off with -q, TERM not "dumb"),
 * a status line (progress_line) stays under the log (log_status).  A timer
 * looks every STATUS_TICK_MS and draws it again only when its text changed
 * (a count, the rate or the ETA moved).  It is cut to the terminal's width,
 * since a line that wrapped could not be cleared, and it is not drawn
 * while jq-serve runs in the background of its terminal's shell, where it
 * would land in the middle of what the user types.  At the end the
 * summary takes its place.
 */
#include <sys/ioctl.h>

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "jq.h"

#define STATUS_TICK_MS	500	/* how often the status line is looked at */
#define STATUS_FAILED_SHOWN 10	/* failed jobs named at the end */
#define STATUS_MSG_SHOWN 160	/* bytes of each one's last message line */

static const struct queue	*status_queue;		/* NULL: not started */
static uint64_t			 status_start_ms;	/* monotonic */
static uint64_t			 status_end_ms;		/* 0 while running */
static uint64_t			 status_resumed;
static uint64_t			 status_resumed_done;	/* done at start */
static uint64_t			 status_window_ms;	/* monotonic: it opened */
static uint64_t			 status_window_base;	/* finished then */
static int			 status_idle;		/* no work, serving on */
static struct event		*status_tick;		/* NULL: no status line */
static char			 status_shown[LOG_STATUS_MAX];

/*
 * Look whether the server has work (a job waiting or running): idle when
 * it has none and the run goes on; a new window when it has some again.
 */
void
status_note(void)
{
	const struct queue	*q = status_queue;
	int			 busy;

	if (q == NULL || status_end_ms != 0) {
		status_idle = 0;
		return;
	}
	busy = q->count[JOB_WAITING] + q->count[JOB_RUNNING] > 0;
	if (!busy)
		status_idle = 1;
	else if (status_idle) {
		status_idle = 0;
		status_window_ms = util_now_ms();
		status_window_base = q->count[JOB_DONE] + q->count[JOB_FAILED];
	}
}

/* Fill p with the counts of the run, its clock and the rate's window. */
void
status_get(struct progress *p)
{
	const struct queue	*q = status_queue;
	uint64_t		 now, finished;

	memset(p, 0, sizeof *p);
	if (q == NULL)
		return;
	status_note();
	p->total = q->njobs;
	p->running = q->count[JOB_RUNNING];
	p->done = q->count[JOB_DONE];
	p->failed = q->count[JOB_FAILED];
	p->resumed = status_resumed;
	now = status_end_ms != 0 ? status_end_ms : util_now_ms();
	p->elapsed_ms = now > status_start_ms ? now - status_start_ms : 0;
	p->idle = status_idle;
	if (!p->idle) {
		finished = p->done + p->failed;
		p->window_ms = now > status_window_ms ? now - status_window_ms :
		    0;
		p->window_finished = finished > status_window_base ?
		    finished - status_window_base : 0;
	}
}

/* Jobs done in this run, those a journal had done before left out. */
uint64_t
status_done_here(void)
{
	const struct queue	*q = status_queue;

	if (q == NULL || q->count[JOB_DONE] < status_resumed_done)
		return 0;
	return q->count[JOB_DONE] - status_resumed_done;
}

/* Whether we run in the background of stderr's terminal. */
static int
status_background(void)
{
	pid_t	 fg = tcgetpgrp(STDERR_FILENO);

	return fg > 0 && fg != getpgrp();
}

/* The timer: draw the status line again if its text changed. */
static void
status_draw(evutil_socket_t fd, short what, void *arg)
{
	struct progress	 p;
	struct winsize	 ws;
	char		 line[PROGRESS_LINE_MAX];

	(void)fd;
	(void)what;
	(void)arg;
	if (status_background()) {
		log_status(NULL);
		status_shown[0] = '\0';
		return;
	}
	status_get(&p);
	progress_line(&p, line, sizeof line);
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 &&
	    strlen(line) > (size_t)ws.ws_col - 1)
		line[ws.ws_col - 1] = '\0';
	if (strcmp(line, status_shown) == 0)
		return;
	memcpy(status_shown, line, strlen(line) + 1);
	log_status(line);
}

/* Whether stderr shows a status line: a terminal that can, and not -q. */
static int
status_live(void)
{
	const char	*term = getenv("TERM");

	return log_verbose() >= 0 && isatty(STDERR_FILENO) &&
	    (term == NULL || strcmp(term, "dumb") != 0);
}

/*
 * Start the run's clock over the jobs of q (loaded and recovered from the
 * journal), and the status line when stderr shows one.
 */
void
status_start(struct event_base *base, const struct queue *q)
{
	struct timeval	 tv = { 0, STATUS_TICK_MS * 1000 };

	status_queue = q;
	status_start_ms = util_now_ms();
	status_end_ms = 0;
	status_resumed = q->count[JOB_DONE] + q->count[JOB_FAILED];
	status_resumed_done = q->count[JOB_DONE];
	status_window_ms = status_start_ms;
	status_window_base = status_resumed;
	status_idle = 0;
	status_note();
	if (!status_live())
		return;
	status_tick = event_new(base, -1, EV_PERSIST, status_draw, NULL);
	if (status_tick == NULL || event_add(status_tick, &tv) != 0)
		log_warnx("cannot start the status line");
	else
		status_draw(-1, 0, NULL);
}

/* Every job has finished: stop the run's clock. */
void
status_finish(void)
{
	if (status_end_ms == 0)
		status_end_ms = util_now_ms();
}

/* The last non-empty line of msg (len bytes): where in *line, its length. */
static size_t
status_last_line(const char *msg, size_t len, const char **line)
{
	size_t	 end = len, start;

	while (end > 0 && (msg[end - 1] == '\n' || msg[end - 1] == '\r'))
		end--;
	for (start = end; start > 0 && msg[start - 1] != '\n'; start--)
		;
	*line = msg + start;
	return end - start;
}

/*
 * Name the failed jobs, STATUS_FAILED_SHOWN at most, each with its status
 * and the last line of its message: the server exits next, and jq-stat
 * cannot ask it any more.
 */
static void
status_list_failed(const struct queue *q, uint64_t failed)
{
	const struct job	*j;
	const char		*line;
	size_t			 i, len, shown = 0;

	for (i = 0; i < q->njobs && shown < STATUS_FAILED_SHOWN; i++) {
		j = queue_get(q, i + 1);
		if (j->state != JOB_FAILED)
			continue;
		shown++;
		len = j->fail_msg != NULL ? status_last_line(j->fail_msg,
		    j->fail_len, &line) : 0;
		if (len > STATUS_MSG_SHOWN)
			len = STATUS_MSG_SHOWN;
		log_notice("failed: %s (%s)%s%.*s", j->path, j->fail_status ?
		    j->fail_status : STATUS_FAILED, len > 0 ? ": " : "",
		    (int)len, len > 0 ? line : "");
	}
	if (failed > shown)
		log_notice("failed: %llu more (jq-serve --joblog FILE keeps "
		    "every attempt)", (unsigned long long)(failed - shown));
}

/* The end: remove the status line and log the summary of the run. */
void
status_end(void)
{
	struct progress	 p;
	uint64_t	 left;
	char		 wall[32], rest[96] = "", resumed[96] = "";

	if (status_tick != NULL) {
		event_free(status_tick);
		status_tick = NULL;
	}
	log_status(NULL);
	if (status_queue == NULL)
		return;
	status_get(&p);
	progress_wall(p.elapsed_ms, wall, sizeof wall);
	left = p.total - p.done - p.failed;
	if (left > 0)
		snprintf(rest, sizeof rest, ", %llu not finished",
		    (unsigned long long)left);
	if (p.resumed > 0)
		snprintf(resumed, sizeof resumed, " (%llu of them finished in an "
		    "earlier run)", (unsigned long long)p.resumed);
	log_notice("%llu job%s: %llu done, %llu failed%s, in %s%s",
	    (unsigned long long)p.total, p.total == 1 ? "" : "s",
	    (unsigned long long)p.done,
	    (unsigned long long)p.failed, rest, wall, resumed);
	if (p.failed > 0)
		status_list_failed(status_queue, p.failed);
	/* a rerun of a failed list ends at once: say how to go on */
	if (p.failed > 0 && left == 0)
		log_notice("%s--retry-failed runs the failed jobs again; --fresh "
		    "forgets the earlier runs and starts over", p.resumed > 0 ?
		    "resumed from the journal of an earlier run; " : "");
	status_queue = NULL;
}
