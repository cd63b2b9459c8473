/*
 * joblog.c: --joblog, one tab-separated line per finished attempt, in the
 * spirit of GNU parallel's job log, for sort, grep, awk and plotting:
 *
 *   id name worker start runtime attempt status bytes_in bytes_out
 *
 * start is the epoch time the job was taken (seconds, 3 decimals), runtime
 * the seconds until the attempt ended; status is 0 (result stored), exit:N,
 * signal:N, timeout, failed, or lost (lease lapsed, worker gone, released).
 * Control bytes, tabs and '%' in names are written as %XX.  The log is
 * written with O_APPEND and is not synced: the journal is the durable record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jq.h"

static int	 joblog_fd = -1;

/* Open the job log for appending; write the header into a new one. */
int
joblog_open(const char *path, char **cause)
{
	static const char header[] = "id\tname\tworker\tstart\truntime\t"
	    "attempt\tstatus\tbytes_in\tbytes_out\n";

	joblog_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (joblog_fd < 0) {
		*cause = xprintf("--joblog %s: %s", path, strerror(errno));
		return -1;
	}
	if (lseek(joblog_fd, 0, SEEK_END) == 0 &&
	    util_write_all(joblog_fd, header, sizeof header - 1) != 0) {
		*cause = xprintf("--joblog %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Escape control bytes, DEL and '%' as %XX into a new string. */
static char *
joblog_escape(const char *s)
{
	char	*out = xmalloc(strlen(s) * 3 + 1), *w = out;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '%')
			w += sprintf(w, "%%%02X", c);
		else
			*w++ = (char)c;
	}
	*w = '\0';
	return out;
}

/* Note the start of an attempt: when, and by whom (JOBS reports it too). */
void
joblog_start(struct job *j, const char *worker)
{
	struct job_run	*r = queue_run(j);
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	r->start_wall_ms = (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
	r->start_ms = util_now_ms();
	r->end_ms = 0;
	free(r->worker);
	r->worker = xstrdup(worker);
}

/*
 * Note the end of an attempt, and write its line (only with --joblog).
 * An attempt never handed out (a job that failed before it was ever
 * taken, a result for a job of an earlier server) has no start, no end and
 * no run time.
 */
void
joblog_end(struct job *j, const char *status, uint64_t bytes_out)
{
	static const struct job_run none;	/* never taken: all 0 */
	const struct job_run *r = j->run != NULL ? j->run : &none;
	char		*name, *worker, *line;
	uint64_t	 run, now = util_now_ms();

	if (j->run != NULL && j->run->start_ms != 0 && j->run->end_ms == 0)
		j->run->end_ms = now;
	if (joblog_fd < 0)
		return;
	run = r->start_ms != 0 ? now - r->start_ms : 0;
	name = joblog_escape(j->path);
	worker = joblog_escape(r->worker ? r->worker : "-");
	line = xprintf("%llu\t%s\t%s\t%llu.%03llu\t%llu.%03llu\t%u\t%s\t%llu\t"
	    "%llu\n", (unsigned long long)j->id, name, worker,
	    (unsigned long long)r->start_wall_ms / 1000,
	    (unsigned long long)r->start_wall_ms % 1000,
	    (unsigned long long)run / 1000, (unsigned long long)run % 1000,
	    j->attempt, status, (unsigned long long)r->size_in,
	    (unsigned long long)bytes_out);
	if (util_write_all(joblog_fd, line, strlen(line)) != 0)
		log_warnx("--joblog: %s", strerror(errno));
	free(line);
	free(name);
	free(worker);
}
