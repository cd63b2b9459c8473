/*
 * serve.c: jq-serve's start-up: the files to serve and where their results
 * go.  Every input is opened once, every result name is worked out and
 * checked for collisions, every result directory for write access, before
 * anything listens.
 *
 * This is start-up code, run once before serving: like the main it works
 * for, it reports what is wrong on stderr (each bad input, up to
 * SERVE_REPORT_MAX) and exits with the JQ_EXIT_* status instead of
 * returning a cause.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define SERVE_REPORT_MAX	20	/* bad files named one by one */

/* Append a name to the list (which owns it from now on). */
void
serve_files_add(struct serve_files *l, char *name)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 64;
		l->v = xreallocarray(l->v, l->alloc, sizeof *l->v);
	}
	l->v[l->n++] = name;
}

/* Read names from a file ("-" is stdin), separated by LF or NUL. */
void
serve_files_read(struct serve_files *l, const char *from, int nul)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	if (strcmp(from, "-") == 0)
		f = stdin;
	else if ((f = fopen(from, "re")) == NULL) {
		fprintf(stderr, "%s: --files-from %s: %s\n", cli_prog, from,
		    strerror(errno));
		exit(JQ_EXIT_IO);
	}
	while ((n = getdelim(&line, &cap, nul ? '\0' : '\n', f)) > 0) {
		if (line[n - 1] == (nul ? '\0' : '\n'))
			line[--n] = '\0';
		if (n > 0)
			serve_files_add(l, xstrndup(line, (size_t)n));
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: --files-from %s: %s\n", cli_prog, from,
		    strerror(errno));
		exit(JQ_EXIT_IO);
	}
	free(line);
	if (f != stdin)
		fclose(f);
}

/*
 * Expand a --result template for input base name base: {name}, {stem},
 * {ext} (split by template_stem_end's rule), {{ and }}.  Returns NULL with
 * *cause for a bad template or result.
 */
char *
serve_result_name(const char *tmpl, const char *base, char **cause)
{
	static const char *const angled[] = { "<name>", "<stem>", "<ext>",
	    "<in>", "<out>", "<id>" };
	const char	*dot = template_stem_end(base), *p, *end;
	size_t		 stemlen = (size_t)(dot - base), i;
	char		*out, *tmp, *piece;

	/* jq-run's spelling here would name every result "<stem>.mp3" */
	for (i = 0; i < sizeof angled / sizeof *angled; i++)
		if (strcasestr(tmpl, angled[i]) != NULL) {
			*cause = xprintf("--result %s: %s is jq-run's bracket "
			    "form; the result placeholders are {name}, {stem} "
			    "and {ext}", tmpl, angled[i]);
			return NULL;
		}
	out = xstrdup("");
	for (p = tmpl; *p != '\0'; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			piece = xstrndup(p++, 1);
		} else if (*p == '{') {
			if ((end = strchr(p, '}')) == NULL)
				goto bad;
			if (strncmp(p, "{name}", 6) == 0)
				piece = xstrdup(base);
			else if (strncmp(p, "{stem}", 6) == 0)
				piece = xstrndup(base, stemlen);
			else if (strncmp(p, "{ext}", 5) == 0)
				piece = xstrdup(*dot ? dot + 1 : "");
			else
				goto bad;
			p = end;
		} else if (*p == '}')
			goto bad;
		else
			piece = xstrndup(p, 1);
		tmp = xprintf("%s%s", out, piece);
		free(out);
		free(piece);
		out = tmp;
	}
	if (*out == '\0' || strchr(out, '/') != NULL || strcmp(out, ".") == 0 ||
	    strcmp(out, "..") == 0) {
		*cause = xprintf("--result %s gives \"%s\" for %s: a result name "
		    "must be a plain, non-empty file name", tmpl, out, base);
		free(out);
		return NULL;
	}
	return out;
bad:
	*cause = xprintf("--result %s: unknown or unclosed placeholder; use "
	    "{name}, {stem}, {ext}, and {{ or }} for braces", tmpl);
	free(out);
	return NULL;
}

/* Work out the result path of input path. */
static char *
serve_result_path(const char *path, const char *outdir, const char *tmpl,
    char **cause)
{
	const char	*slash = strrchr(path, '/');
	char		*name, *full;

	if ((name = serve_result_name(tmpl, slash ? slash + 1 : path,
	    cause)) == NULL)
		return NULL;
	if (outdir != NULL)
		full = xprintf("%s/%s", outdir, name);
	else if (slash != NULL)
		full = xprintf("%.*s/%s", (int)(slash - path + 1) - 1, path, name);
	else
		full = xstrdup(name);
	free(name);
	return full;
}

/*
 * Check that path is a readable regular file and fill *st from the open
 * file (its identity for the job); NULL or the reason.
 */
static char *
serve_check_input(const char *path, struct stat *st)
{
	int		 fd;
	char		*why = NULL;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0)
		return xstrdup(strerror(errno));
	if (fstat(fd, st) != 0)
		why = xstrdup(strerror(errno));
	else if (!S_ISREG(st->st_mode))
		why = xstrdup(S_ISDIR(st->st_mode) ? "is a directory" :
		    "is not a regular file");
	close(fd);
	return why;
}

struct pathref {
	const char	*path;
	int		 result;	/* 0 input, 1 result */
};

/* Order paths by name, inputs first. */
static int
pathref_cmp(const void *a, const void *b)
{
	const struct pathref	*x = a, *y = b;
	int			 c = strcmp(x->path, y->path);

	return c != 0 ? c : x->result - y->result;
}

/*
 * Refuse two jobs with one result path, or a result path that is an input,
 * and result directories we cannot write.  Exits on failure.
 */
static void
serve_check_results(struct queue *q)
{
	struct pathref	*v;
	size_t		 i, n = 0, bad = 0;
	char		*dir, *lastdir = NULL;
	const char	*slash;

	v = xreallocarray(NULL, q->njobs * 2 + 1, sizeof *v);
	for (i = 0; i < q->njobs; i++) {
		v[n++] = (struct pathref){ q->jobs[i].path, 0 };
		v[n++] = (struct pathref){ q->jobs[i].result, 1 };
	}
	qsort(v, n, sizeof *v, pathref_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1].path, v[i].path) != 0 || !v[i].result)
			continue;
		if (bad++ < SERVE_REPORT_MAX)
			fprintf(stderr, "%s: %s: %s\n", cli_prog, v[i].path,
			    v[i - 1].result ? "two jobs would write this result "
			    "(choose another --result or --output-dir)" :
			    "this result would overwrite an input");
	}
	if (bad > 0) {
		fprintf(stderr, "%s: %zu result name collision%s; nothing "
		    "served\n", cli_prog, bad, bad == 1 ? "" : "s");
		exit(JQ_EXIT_USAGE);
	}
	for (i = 0; i < n; i++) {
		if (!v[i].result)
			continue;
		slash = strrchr(v[i].path, '/');
		dir = slash == NULL ? xstrdup(".") : slash == v[i].path ?
		    xstrdup("/") : xstrndup(v[i].path, (size_t)(slash - v[i].path));
		if (lastdir == NULL || strcmp(dir, lastdir) != 0) {
			if (access(dir, W_OK | X_OK) != 0) {
				fprintf(stderr, "%s: cannot write results in %s: %s\n",
				    cli_prog, dir, strerror(errno));
				exit(JQ_EXIT_IO);
			}
			free(lastdir);
			lastdir = dir;
		} else
			free(dir);
	}
	free(lastdir);
	free(v);
}

/*
 * Remember which directory each result goes to (device and inode), so that
 * one replaced while we run is refused instead of followed (store_open).
 */
static void
serve_pin_dirs(struct queue *q)
{
	struct stat	 sb;
	const char	*slash, *res;
	char		*dir, *lastdir = NULL;
	size_t		 i;

	for (i = 0; i < q->njobs; i++) {
		res = q->jobs[i].result;
		slash = strrchr(res, '/');
		dir = slash == NULL ? xstrdup(".") : slash == res ?
		    xstrdup("/") : xstrndup(res, (size_t)(slash - res));
		if (lastdir == NULL || strcmp(dir, lastdir) != 0) {
			if (stat(dir, &sb) != 0) {
				fprintf(stderr, "%s: cannot write results in "
				    "%s: %s\n", cli_prog, dir, strerror(errno));
				exit(JQ_EXIT_IO);
			}
			free(lastdir);
			lastdir = dir;
		} else
			free(dir);
		q->jobs[i].rdir_dev = sb.st_dev;
		q->jobs[i].rdir_ino = sb.st_ino;
	}
	free(lastdir);
}

/*
 * Build the queue from the names (it takes them over, freeing the bad
 * ones); report or skip bad inputs, then check and pin the results.
 */
void
serve_load(struct queue *q, struct serve_files *files, const char *outdir,
    const char *tmpl, int skip)
{
	struct stat	 st;
	struct job	*j;
	size_t		 i, bad = 0;
	char		*why, *result, *cause = NULL;

	queue_init(q);
	for (i = 0; i < files->n; i++) {
		memset(&st, 0, sizeof st);
		if (strlen(files->v[i]) > JQ_NAME_MAX)
			why = xprintf("name longer than %d bytes", JQ_NAME_MAX);
		else
			why = serve_check_input(files->v[i], &st);
		if (why != NULL) {
			if (bad++ < SERVE_REPORT_MAX || skip)
				fprintf(stderr, "%s: %s: %s%s\n", cli_prog,
				    files->v[i], why, skip ? "; skipped" : "");
			free(why);
			free(files->v[i]);
			continue;
		}
		if ((result = serve_result_path(files->v[i], outdir, tmpl,
		    &cause)) == NULL)
			usage_error(cli_prog, "%s", cause);
		j = queue_add(q, files->v[i], result);
		j->in_dev = st.st_dev;
		j->in_ino = st.st_ino;
		j->in_size = (uint64_t)st.st_size;
		j->in_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		    st.st_mtim.tv_nsec;
	}
	if (bad > 0 && !skip) {
		if (bad > SERVE_REPORT_MAX)
			fprintf(stderr, "%s: ... and %zu more\n", cli_prog,
			    bad - SERVE_REPORT_MAX);
		fprintf(stderr, "%s: %zu input%s missing or unreadable; nothing "
		    "served (--skip-missing serves the rest)\n", cli_prog, bad,
		    bad == 1 ? " is" : "s are");
		exit(JQ_EXIT_IO);
	}
	free(files->v);
	serve_check_results(q);
	serve_pin_dirs(q);
	queue_ready(q);
}
