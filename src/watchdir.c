/*
 * watchdir.c: the directory jq-serve --watch DIR serves, and which of the
 * names in it are jobs.  watch.c reads the events; this file decides.
 *
 * DIR is resolved (realpath) and opened once at start; its files are
 * opened relative to that descriptor, never through a symbolic link.  A
 * watched file's job is named by the resolved path, DIR/NAME, so that the
 * same directory spelt another way is the same jobs; the journal of a
 * watch server is named by the resolved DIR, the --watch-match globs
 * (watchdir_identity) and where results go (spool_identity: with no -o,
 * results of watched files and of added jobs alike go to DIR).
 *
 * Not served (watchdir_unwanted), because they are not finished inputs
 * or because serving them would feed the server its own output:
 *
 *   - dot files: temporary files of other tools (rsync's .NAME.XXXXXX) and
 *     of the server itself (store.c's ".jq-PID-N.tmp" result temp files);
 *   - names ending in "~", ".tmp" or ".part": backups and downloads in
 *     progress;
 *   - when results are written into DIR (no -o, or -o naming DIR itself):
 *     every name the --result template could give, whatever the input
 *     ("{name}.result": *.result).  That is what stops the loop of a result
 *     becoming a job whose result becomes a job...: it holds for the
 *     results of this run and of earlier ones, for added jobs' results, and
 *     whether or not the input is still there.  A template whose fixed
 *     text is only dots ("{stem}.{ext}") would take every name; it is
 *     refused at start;
 *   - the server's own files in DIR (--joblog, --addr-file and its
 *     temporary files);
 *   - names that no --watch-match glob matches, when there are some;
 *   - names too long to be a job's name (DIR/NAME over JQ_NAME_MAX).
 *
 * The journal's W record names the file by its name in DIR; replay
 * (watchdir_recover) makes the job again and pins the file as it is now,
 * if it is there as a regular file.  One that is not is settled after
 * replay (watchdir_settle): a waiting job fails, saying so; a done one
 * stays done.  Subdirectories are not watched.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define WATCHDIR_MATCH_MAX	64	/* --watch-match globs */
#define WATCHDIR_OWN_MAX	8	/* the server's own files */

static int		 wd_fd = -1;	/* the directory, open */
static char		*wd_path;	/* as given */
static char		*wd_real;	/* resolved */
static dev_t		 wd_dev;
static ino_t		 wd_ino;
static const char	*wd_outdir;	/* -o as given, or NULL: wd_real */
static const char	*wd_tmpl = "{name}.result";
static dev_t		 wd_rdev;	/* the result directory, pinned */
static ino_t		 wd_rino;
static long		 wd_name_max = NAME_MAX;
static char *const	*wd_match;	/* NULL: every name */
static char		*wd_result_glob;	/* results land in DIR: their shape */
static char		*wd_own[WATCHDIR_OWN_MAX];	/* base names in DIR */
static size_t		 wd_nown;

/*
 * The fnmatch pattern of every name template tmpl can give: a placeholder
 * stands for any text, the rest for itself (escaped).  *fixed is set when
 * the template holds fixed text other than dots.  A new string.
 */
static char *
watchdir_template_glob(const char *tmpl, int *fixed)
{
	char		*out = xmalloc(2 * strlen(tmpl) + 1), *o = out;
	const char	*p, *end;

	*fixed = 0;
	for (p = tmpl; *p != '\0'; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}'))
			p++;
		else if (*p == '{' && (end = strchr(p, '}')) != NULL) {
			if (o == out || o[-1] != '*')
				*o++ = '*';
			p = end;
			continue;
		}
		if (strchr("*?[\\", *p) != NULL)
			*o++ = '\\';
		*fixed |= *p != '.';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Open directory path and note its identity; -1 with errno. */
static int
watchdir_open(const char *path, dev_t *dev, ino_t *ino)
{
	struct stat	 st;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}

/* Note path as the server's own file if it is in the watched directory. */
static void
watchdir_own_add(const char *path)
{
	const char	*slash = strrchr(path, '/');
	struct stat	 st;
	char		*dir;
	int		 in;

	dir = slash == NULL ? xstrdup(".") : slash == path ? xstrdup("/") :
	    xstrndup(path, (size_t)(slash - path));
	in = stat(dir, &st) == 0 && st.st_dev == wd_dev && st.st_ino == wd_ino;
	free(dir);
	if (in && wd_nown < WATCHDIR_OWN_MAX)
		wd_own[wd_nown++] = xstrdup(slash != NULL ? slash + 1 : path);
}

static int	watchdir_setup_dir(const struct watchdir_config *, char **);

/*
 * Set up the watched directory of cfg: resolve and open it, pin where the
 * results go (-o DIR must exist: serve_load made it), check the template
 * and the globs.  0, or a JQ_EXIT_* status with *cause (and nothing set
 * up).
 */
int
watchdir_setup(const struct watchdir_config *cfg, char **cause)
{
	int	 rc;

	if ((rc = watchdir_setup_dir(cfg, cause)) != 0)
		watchdir_free();
	return rc;
}

/* watchdir_setup's work, which leaves what it set up on failure. */
static int
watchdir_setup_dir(const struct watchdir_config *cfg, char **cause)
{
	const char	*rdir;
	size_t		 i;
	int		 rfd, fixed, e;

	if ((wd_real = realpath(cfg->dir, NULL)) == NULL ||
	    (wd_fd = watchdir_open(wd_real, &wd_dev, &wd_ino)) < 0) {
		e = errno;
		*cause = xprintf("--watch %s: %s", cfg->dir, e == ENOTDIR ?
		    "not a directory" : strerror(e));
		return e == ENOTDIR ? JQ_EXIT_USAGE : JQ_EXIT_IO;
	}
	wd_path = xstrdup(cfg->dir);
	wd_outdir = cfg->outdir;
	if (cfg->tmpl != NULL)
		wd_tmpl = cfg->tmpl;
	for (i = 0; cfg->match != NULL && cfg->match[i] != NULL; i++)
		if (i == WATCHDIR_MATCH_MAX) {
			*cause = xprintf("--watch-match: at most %d globs",
			    WATCHDIR_MATCH_MAX);
			return JQ_EXIT_USAGE;
		}
	wd_match = i > 0 ? cfg->match : NULL;
	rdir = wd_outdir != NULL ? wd_outdir : wd_real;
	if ((rfd = watchdir_open(rdir, &wd_rdev, &wd_rino)) < 0) {
		*cause = xprintf("result directory %s: %s", rdir,
		    strerror(errno));
		return JQ_EXIT_IO;
	}
	if ((wd_name_max = fpathconf(rfd, _PC_NAME_MAX)) <= 0)
		wd_name_max = NAME_MAX;
	close(rfd);
	if (access(rdir, W_OK | X_OK) != 0) {
		*cause = xprintf("cannot write results in %s: %s", rdir,
		    strerror(errno));
		return JQ_EXIT_USAGE;
	}
	if (wd_rdev == wd_dev && wd_rino == wd_ino) {
		wd_result_glob = watchdir_template_glob(wd_tmpl, &fixed);
		if (!fixed) {
			*cause = xprintf("--result %s would write results into "
			    "the watched directory %s under names any file "
			    "could have; give the template fixed text (such as "
			    "{name}.out) or write results elsewhere with -o",
			    wd_tmpl, cfg->dir);
			return JQ_EXIT_USAGE;
		}
	}
	for (i = 0; cfg->own != NULL && cfg->own[i] != NULL; i++)
		watchdir_own_add(cfg->own[i]);
	return 0;
}

/* Whether jq-serve watches a directory. */
int
watchdir_active(void)
{
	return wd_fd >= 0;
}

/* The watched directory's descriptor (its files are opened in it). */
int
watchdir_fd(void)
{
	return wd_fd;
}

/* The watched directory as the operator named it. */
const char *
watchdir_path(void)
{
	return wd_path;
}

/* The watched directory, resolved (the start of its jobs' names). */
const char *
watchdir_real(void)
{
	return wd_real;
}

/* Where results of watched files (and of added jobs) go. */
const char *
watchdir_result_dir(void)
{
	return wd_outdir != NULL ? wd_outdir : wd_real;
}

/*
 * What, beside where results go, names the queue of a watch server for
 * its journal: the resolved directory and the globs.  A new string; NULL
 * when not watching.
 */
char *
watchdir_identity(void)
{
	char	*id, *tmp;
	size_t	 i;

	if (!watchdir_active())
		return NULL;
	id = xprintf("watched directory: %s", wd_real);
	for (i = 0; wd_match != NULL && wd_match[i] != NULL; i++) {
		tmp = xprintf("%s\n--watch-match %s", id, wd_match[i]);
		free(id);
		id = tmp;
	}
	return id;
}

/*
 * Whether name (len bytes) is a name under the watched directory: the
 * watch's own, which jq-put --add may not take.
 */
int
watchdir_owns_name(const char *name, size_t len)
{
	size_t	 n;

	if (!watchdir_active())
		return 0;
	n = strlen(wd_real);
	if (n == 1)		/* watching "/": DIR/NAME is "/NAME" */
		n = 0;
	return len > n + 1 && memcmp(name, wd_real, n) == 0 && name[n] == '/';
}

/* Whether name ends in suffix. */
static int
watchdir_ends(const char *name, const char *suffix)
{
	size_t	 n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

/*
 * Why the file name in the watched directory is not to be served (see
 * the top of this file), or NULL if it is.
 */
const char *
watchdir_unwanted(const char *name)
{
	size_t	 i;

	if (name[0] == '.')
		return "a dot file";
	if (watchdir_ends(name, "~") || watchdir_ends(name, ".tmp") ||
	    watchdir_ends(name, ".part"))
		return "a backup or a file in progress (~, .tmp, .part)";
	if (strlen(wd_real) + 1 + strlen(name) > JQ_NAME_MAX)
		return "its name is too long";
	for (i = 0; i < wd_nown; i++)
		if (strcmp(name, wd_own[i]) == 0 ||
		    (strncmp(name, wd_own[i], strlen(wd_own[i])) == 0 &&
		    strncmp(name + strlen(wd_own[i]), ".tmp-", 5) == 0))
			return "a file of this server's own";
	if (wd_result_glob != NULL && fnmatch(wd_result_glob, name, 0) == 0)
		return "named like a result (--result), which it may be";
	if (wd_match == NULL)
		return NULL;
	for (i = 0; wd_match[i] != NULL; i++)
		if (fnmatch(wd_match[i], name, 0) == 0)
			return NULL;
	return "no --watch-match glob matches it";
}

/* The job name of file name in the watched directory: a new string. */
char *
watchdir_job_name(const char *name)
{
	return xprintf("%s/%s", strcmp(wd_real, "/") == 0 ? "" : wd_real,
	    name);
}

/*
 * The result path of file name in the watched directory, or NULL with
 * *why (a new string) when it can have none.
 */
char *
watchdir_result(const char *name, char **why)
{
	char	*base, *path;

	if ((base = serve_result_name(wd_tmpl, name, why)) == NULL)
		return NULL;
	if (strlen(base) > (size_t)wd_name_max) {
		*why = xprintf("its result name would be %zu bytes, longer than "
		    "the %ld its directory allows", strlen(base), wd_name_max);
		free(base);
		return NULL;
	}
	path = xprintf("%s/%s", strcmp(watchdir_result_dir(), "/") == 0 ? "" :
	    watchdir_result_dir(), base);
	free(base);
	return path;
}

/*
 * Pin job j as the regular file st, name in the watched directory, and its
 * result directory as checked at start.
 */
void
watchdir_pin(struct job *j, const char *name, const struct stat *st)
{
	input_pin_stat(j, wd_fd, name, st);
	j->rdir_dev = wd_rdev;
	j->rdir_ino = wd_rino;
}

/*
 * Journal replay: the record "W id encname" makes the job of the file
 * encname in the watched directory, pinned if it is there now as a
 * regular file.  0; -1 if the record does not fit (not a watch server, an
 * id that is not the next one, a name that is no plain file name); -2 with
 * *cause when the name gives no result any more.
 */
int
watchdir_recover(struct queue *q, const char *id, char *encname,
    char **cause)
{
	struct stat	 st;
	struct job	*j;
	uint64_t	 n;
	ssize_t		 len;
	char		*result, *why = NULL;
	int		 fd;

	if (!watchdir_active() || id == NULL || encname == NULL ||
	    parse_u64(id, 1, UINT64_MAX, &n) != 0 || n != q->njobs + 1 ||
	    (len = proto_decode(encname)) <= 0 ||
	    memchr(encname, '\0', (size_t)len) != NULL ||
	    strchr(encname, '/') != NULL || strcmp(encname, ".") == 0 ||
	    strcmp(encname, "..") == 0)
		return -1;
	if ((result = watchdir_result(encname, &why)) == NULL) {
		*cause = xprintf("job %llu %s, found earlier in %s: no result "
		    "name with this --result: %s", (unsigned long long)n,
		    encname, wd_path, why);
		free(why);
		return -2;
	}
	j = queue_add(q, watchdir_job_name(encname), result);
	j->journaled = 1;
	j->rdir_dev = wd_rdev;
	j->rdir_ino = wd_rino;
	if ((fd = input_openat_file(wd_fd, encname, &st)) >= 0) {
		if (S_ISREG(st.st_mode))
			watchdir_pin(j, encname, &st);
		close(fd);
	}
	return 0;
}

/*
 * After the journal is read: a waiting job whose file is no longer in the
 * watched directory (as a regular file) fails, saying so.  Returns how
 * many failed (the journal must record them).
 */
size_t
watchdir_settle(struct queue *q)
{
	struct job	*j;
	uint64_t	 id;
	size_t		 failed = 0;

	if (!watchdir_active())
		return 0;
	for (id = 1; id <= q->njobs; id++) {
		j = queue_get(q, id);
		if (j->origin != JOB_FILE || j->in_name != NULL ||
		    j->state != JOB_WAITING)
			continue;
		free(j->fail_status);
		free(j->fail_msg);
		j->fail_status = xstrdup(STATUS_FAILED);
		j->fail_msg = xstrdup("input gone: its file left the watched "
		    "directory (or is no longer a regular file) while the "
		    "server was down");
		j->fail_len = strlen(j->fail_msg);
		log_warnx("job %llu %s: %s; it fails", (unsigned long long)j->id,
		    j->path, j->fail_msg);
		queue_recover(q, j, JOB_FAILED);
		failed++;
	}
	return failed;
}

/* Close the directory and forget the watch (at exit). */
void
watchdir_free(void)
{
	size_t	 i;

	if (wd_fd >= 0)
		close(wd_fd);
	wd_fd = -1;
	free(wd_path);
	free(wd_real);
	free(wd_result_glob);
	wd_path = wd_real = wd_result_glob = NULL;
	for (i = 0; i < wd_nown; i++)
		free(wd_own[i]);
	wd_nown = 0;
	wd_match = NULL;
	wd_outdir = NULL;
	wd_tmpl = "{name}.result";
}
