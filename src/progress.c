/*
 * progress.c: where a run stands, from its counts: the rate, the ETA, and
 * the one line that says both (jq-serve's status line, jq-stat's progress
 * line).  No I/O: jq-serve and jq-stat give it their counts.
 *
 * The rate counts this run's own results only: jobs found finished in the
 * journal at start (resumed) took no time in this run, so they are left
 * out, or a resumed run would promise an ETA it cannot keep.  The rate is
 * the average over the current stretch with work (the window: since the
 * run began, or since a --keep server that had nothing to do got work
 * again), so that the idle time between bursts does not dilute it; while
 * the server is idle there is no rate, and the line says "idle".  The ETA
 * is the jobs not finished divided by the rate, and is unknown until a
 * first result came.
 */
#include <stdio.h>

#include "jq.h"

/* The jobs that have not finished yet. */
static uint64_t
progress_left(const struct progress *p)
{
	uint64_t	 finished = p->done + p->failed;

	return p->total > finished ? p->total - finished : 0;
}

/* The rate in jobs per second: 0, or -1 while it is unknown or idle. */
int
progress_rate(const struct progress *p, double *rate)
{
	if (p->idle || p->window_finished == 0 || p->window_ms == 0)
		return -1;
	*rate = (double)p->window_finished * 1000.0 / (double)p->window_ms;
	return 0;
}

/*
 * Make the window the whole run, for counts without one (a server older
 * than the window keys): this run's results over its elapsed time.
 */
void
progress_window_run(struct progress *p)
{
	uint64_t	 finished = p->done + p->failed;

	p->window_ms = p->elapsed_ms;
	p->window_finished = finished > p->resumed ? finished - p->resumed : 0;
	p->idle = 0;
}

/* The seconds left at the current rate, rounded up: 0, or -1 if unknown. */
int
progress_eta(const struct progress *p, uint64_t *secs)
{
	double	 rate, eta;

	if (progress_rate(p, &rate) != 0)
		return -1;
	eta = (double)progress_left(p) / rate;
	*secs = eta >= 1e12 ? (uint64_t)1e12 : (uint64_t)eta;
	if ((double)*secs < eta)
		(*secs)++;
	return 0;
}

/* Write a duration of secs in two units at most: 45s, 1m05s, 2h03m, 3d04h. */
void
progress_duration(uint64_t secs, char *buf, size_t size)
{
	unsigned long long	 s = secs;

	if (s < 60)
		snprintf(buf, size, "%llus", s);
	else if (s < 3600)
		snprintf(buf, size, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%lluh%02llum", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, size, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

/* Write a wall time for a summary: "10.4 s" under a minute, else 1m05s. */
void
progress_wall(uint64_t ms, char *buf, size_t size)
{
	if (ms < 60000)
		snprintf(buf, size, "%.1f s", (double)ms / 1000.0);
	else
		progress_duration((ms + 500) / 1000, buf, size);
}

/*
 * Write where the run stands in one line: "150/200 (75%), 10 running,
 * 2 failed, 12.3 jobs/s, ETA 4s" (the first number counts the jobs
 * finished, done or failed); the rate and the ETA once a rate is known,
 * "finished" instead of the ETA at the end, "idle" instead of both while
 * a server that serves on has nothing to do.
 */
void
progress_line(const struct progress *p, char *buf, size_t size)
{
	uint64_t	 finished = p->done + p->failed, secs;
	unsigned	 pct;
	double		 rate;
	char		 eta[32];
	int		 n, digits;

	pct = p->total == 0 ? 100 : (unsigned)(finished >= p->total ? 100 :
	    finished * 100 / p->total);
	n = snprintf(buf, size, "%llu/%llu (%u%%), %llu running, %llu failed",
	    (unsigned long long)finished, (unsigned long long)p->total, pct,
	    (unsigned long long)p->running, (unsigned long long)p->failed);
	if (n < 0 || (size_t)n >= size)
		return;
	if (p->idle) {
		snprintf(buf + n, size - (size_t)n, ", idle");
		return;
	}
	if (progress_rate(p, &rate) == 0) {
		/* three significant digits or so: 123, 12.3, 1.2, 0.12, 0.012 */
		digits = rate >= 100 ? 0 : rate >= 1 ? 1 : rate >= 0.1 ? 2 : 3;
		n += snprintf(buf + n, size - (size_t)n, ", %.*f jobs/s",
		    digits, rate);
		if (n < 0 || (size_t)n >= size)
			return;
	}
	if (progress_left(p) == 0)
		snprintf(buf + n, size - (size_t)n, ", finished");
	else if (progress_eta(p, &secs) == 0) {
		progress_duration(secs, eta, sizeof eta);
		snprintf(buf + n, size - (size_t)n, ", ETA %s", eta);
	}
}
