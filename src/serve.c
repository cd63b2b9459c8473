/*
 * serve.c: jq-serve's start-up: the files to serve and where their results
 * go.  Every input is pinned (input.c: its directory opened, its identity
 * recorded), every result name is worked out and checked for a path that
 * can be written, and inputs and results are compared by identity
 * (directory device and inode, final name, file inode), before anything
 * listens.  Once the journal is read, the inputs whose results are up to
 * date are left out (serve_skip_current).
 *
 * This is start-up code, run once before serving: like the main it works
 * for, it reports what is wrong on stderr (each bad input, up to
 * SERVE_REPORT_MAX) and exits with the JQ_EXIT_* status instead of
 * returning a cause.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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
	size_t	 n = strlen(name);

	/* "scenes/a/" is the directory scenes/a: its job's name, and its
	 * result scenes/a.result, beside it, not in it */
	while (n > 1 && name[n - 1] == '/')
		name[--n] = '\0';
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

/* Copy len bytes of s to out + *n unless out is NULL; count them in *n. */
static void
serve_put(char *out, size_t *n, const char *s, size_t len)
{
	if (out != NULL)
		memcpy(out + *n, s, len);
	*n += len;
}

/*
 * Expand template tmpl for base name base (stem ends at dot) into out,
 * or with out NULL only measure it: its length, or -1 for a bad template.
 */
static ssize_t
serve_expand_into(const char *tmpl, const char *base, const char *dot,
    char *out)
{
	const char	*p, *end;
	size_t		 n = 0;

	for (p = tmpl; *p != '\0'; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			serve_put(out, &n, p++, 1);
		} else if (*p == '{') {
			if ((end = strchr(p, '}')) == NULL)
				return -1;
			if (strncmp(p, "{name}", 6) == 0)
				serve_put(out, &n, base, strlen(base));
			else if (strncmp(p, "{stem}", 6) == 0)
				serve_put(out, &n, base, (size_t)(dot - base));
			else if (strncmp(p, "{ext}", 5) == 0) {
				if (*dot != '\0')
					serve_put(out, &n, dot + 1,
					    strlen(dot + 1));
			} else
				return -1;
			p = end;
		} else if (*p == '}')
			return -1;
		else
			serve_put(out, &n, p, 1);
	}
	return (ssize_t)n;
}

/*
 * Whether tmpl uses jq-run's bracket spelling (which would name every
 * result "<stem>.mp3"): NULL, or the bracket form found.
 */
static const char *
serve_tmpl_angled(const char *tmpl)
{
	static const char *const angled[] = { "<name>", "<stem>", "<ext>",
	    "<in>", "<out>", "<id>" };
	size_t		 i;

	if (strchr(tmpl, '<') == NULL)		/* the usual case: quick */
		return NULL;
	for (i = 0; i < sizeof angled / sizeof *angled; i++)
		if (strcasestr(tmpl, angled[i]) != NULL)
			return angled[i];
	return NULL;
}

/*
 * Expand a --result template for input base name base after the first
 * plen bytes of prefix (a directory and its '/', or nothing): {name},
 * {stem}, {ext} (split by template_stem_end's rule), {{ and }}.  Measured
 * first, then built in one allocation of its exact size.  Returns NULL
 * with *cause for a bad template or result.
 */
static char *
serve_expand(const char *tmpl, const char *base, const char *prefix,
    size_t plen, char **cause)
{
	const char	*dot = template_stem_end(base), *form;
	ssize_t		 len;
	char		*out, *name;

	if ((form = serve_tmpl_angled(tmpl)) != NULL) {
		*cause = xprintf("--result %s: %s is jq-run's bracket form; the "
		    "result placeholders are {name}, {stem} and {ext}", tmpl,
		    form);
		return NULL;
	}
	if ((len = serve_expand_into(tmpl, base, dot, NULL)) < 0) {
		*cause = xprintf("--result %s: unknown or unclosed placeholder; "
		    "use {name}, {stem}, {ext}, and {{ or }} for braces", tmpl);
		return NULL;
	}
	out = xmalloc(plen + (size_t)len + 1);
	memcpy(out, prefix, plen);
	(void)serve_expand_into(tmpl, base, dot, out + plen);
	out[plen + (size_t)len] = '\0';
	name = out + plen;
	if (*name == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		*cause = xprintf("--result %s gives \"%s\" for %s: a result name "
		    "must be a plain, non-empty file name", tmpl, name, base);
		free(out);
		return NULL;
	}
	return out;
}

/*
 * Expand a --result template for input base name base: {name}, {stem},
 * {ext} (split by template_stem_end's rule), {{ and }}.  Returns NULL with
 * *cause for a bad template or result.
 */
char *
serve_result_name(const char *tmpl, const char *base, char **cause)
{
	return serve_expand(tmpl, base, "", 0, cause);
}

/* Work out the result path of input path. */
static char *
serve_result_path(const char *path, const char *outdir, const char *tmpl,
    char **cause)
{
	const char	*slash = strrchr(path, '/');
	char		*full, *dir;

	if (outdir == NULL)
		return serve_expand(tmpl, slash ? slash + 1 : path, path,
		    slash ? (size_t)(slash - path + 1) : 0, cause);
	dir = xprintf("%s/", outdir);
	full = serve_expand(tmpl, slash ? slash + 1 : path, dir, strlen(dir),
	    cause);
	free(dir);
	return full;
}

/*
 * One input or result at start, by identity: the directory it is in
 * (device, inode) and its final name, and for an input (or a result that
 * exists already) the file's own device and inode.
 */
struct pathref {
	dev_t		 ddev;
	ino_t		 dino;
	const char	*name;		/* final name in that directory */
	dev_t		 fdev;
	ino_t		 fino;
	int		 has_file;	/* fdev, fino are set */
	int		 result;	/* 0 input, 1 result */
	size_t		 job;		/* its id */
};

/* Whether two refs name one directory entry. */
static int
pathref_same_name(const struct pathref *x, const struct pathref *y)
{
	return x->ddev == y->ddev && x->dino == y->dino &&
	    strcmp(x->name, y->name) == 0;
}

/* The base name of a path (after its last '/'). */
static const char *
serve_base(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Report a clash between x and y (x sorts first); counts it in *bad. */
static void
serve_clash(struct queue *q, const struct pathref *x, const struct pathref *y,
    const char *how, size_t *bad)
{
	const struct job *xj = queue_get(q, x->job), *yj = queue_get(q, y->job);
	const char	*xin = xj->path, *yin = yj->path, *ext;

	if ((*bad)++ >= SERVE_REPORT_MAX)
		return;
	/* an input's extension, for the hint: jq-serve * over old results */
	ext = strrchr(serve_base(yin), '.');
	if (ext == serve_base(yin) || (ext != NULL && ext[1] == '\0'))
		ext = NULL;
	if (!x->result && !y->result)
		fprintf(stderr, "%s: %s and %s are the same file (%s); "
		    "each file may be served once\n", cli_prog, xin, yin, how);
	else if (!x->result)
		fprintf(stderr, "%s: the result of %s, %s, would overwrite the "
		    "input %s (%s); serve only the inputs%s%s, or put the "
		    "results elsewhere with -o DIR\n", cli_prog, yin,
		    yj->result, xin, how, ext != NULL ? ", e.g. *" : "",
		    ext != NULL ? ext : "");
	else
		fprintf(stderr, "%s: the results of %s and %s would both be "
		    "written to %s (%s)\n", cli_prog, xin, yin,
		    yj->result, strcmp(serve_base(xin),
		    serve_base(yin)) == 0 ? "inputs of the same name in "
		    "different directories: drop --output-dir to keep each "
		    "result beside its input, or serve each directory with its "
		    "own --output-dir" : "choose another --result or "
		    "--output-dir");
}

/* The result directory of the previous job, checked once for all its jobs. */
struct serve_rdir {
	char		*dir;		/* as spelled in the result paths */
	int		 fd;
	dev_t		 dev;
	ino_t		 ino;
	long		 name_max;	/* fpathconf's, or <= 0: unknown */
};

/*
 * Open and check result directory dir (for job j) into *rd, unless it is
 * the one *rd holds already.  NULL, or why results cannot go there (a new
 * string).
 */
static char *
serve_rdir_open(struct serve_rdir *rd, const struct job *j, const char *dir)
{
	struct stat	 st;

	if (rd->dir != NULL && strcmp(rd->dir, dir) == 0)
		return rd->fd < 0 ? xprintf("result directory %s (for %s): %s",
		    dir, j->path, strerror(EBADF)) : NULL;
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->dir);
	rd->dir = xstrdup(dir);
	if ((rd->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return xprintf("result directory %s (for %s): %s", dir,
		    j->path, strerror(errno));
	if (access(dir, W_OK | X_OK) != 0)
		return xprintf("cannot write results in %s (for %s): %s",
		    dir, j->path, strerror(errno));
	if (fstat(rd->fd, &st) != 0)
		return xprintf("result directory %s (for %s): %s", dir,
		    j->path, strerror(errno));
	rd->dev = st.st_dev;
	rd->ino = st.st_ino;
	errno = 0;
	rd->name_max = fpathconf(rd->fd, _PC_NAME_MAX);
	return NULL;
}

/*
 * Check job j's result path: a writable directory that exists, a name it
 * can hold (with store.c's temporary name beside it), and nothing but a
 * regular file at it now (or a symbolic link, which the result replaces,
 * never follows; or, for a directory job, a directory: a tree result).  Fill *ref, pin the directory in the job (store_open
 * refuses another one later), and note whether the result is up to date
 * (serve_skip_current).  *rd caches the directory of the previous result.
 * NULL, or why the path can never be written (a new string).
 */
static char *
serve_check_result(struct job *j, struct pathref *ref, struct serve_rdir *rd)
{
	const char	*slash = strrchr(j->result, '/');
	struct stat	 st;
	char		*why, tmp[64];
	long		 max;
	int		 tree;

	if (slash == NULL)
		why = serve_rdir_open(rd, j, ".");
	else if (slash == j->result)
		why = serve_rdir_open(rd, j, "/");
	else {
		char *dir = xstrndup(j->result, (size_t)(slash - j->result));

		why = serve_rdir_open(rd, j, dir);
		free(dir);
	}
	if (why != NULL)
		return why;
	ref->name = slash == NULL ? j->result : slash + 1;
	j->rdir_dev = ref->ddev = rd->dev;
	j->rdir_ino = ref->dino = rd->ino;
	max = rd->name_max;
	snprintf(tmp, sizeof tmp, ".jq-%ld-%u.tmp", (long)INT32_MAX, UINT32_MAX);
	if (max > 0 && (strlen(ref->name) > (size_t)max ||
	    strlen(tmp) > (size_t)max))
		return xprintf("result %s (for %s): the name is longer than "
		    "the %ld bytes its directory allows", j->result, j->path,
		    max);
	if (fstatat(rd->fd, ref->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* a directory job's result may be a tree from an earlier run */
		tree = S_ISDIR(st.st_mode) && j->tree_fd >= 0;
		if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode) && !tree)
			return xprintf("result %s (for %s) is %s; a result can "
			    "replace only a file%s", j->result, j->path,
			    input_kind(st.st_mode), j->tree_fd >= 0 ? " or a "
			    "directory" : "");
		ref->fdev = st.st_dev;
		ref->fino = st.st_ino;
		ref->has_file = 1;
		/*
		 * make's rule; a symbolic link is not a result, and is
		 * replaced.  A tree result's time is its directory's own (set
		 * when the server unpacked it: entries made in it), and a
		 * directory job's input time is its tree's newest (input.c).
		 */
		j->result_current = (S_ISREG(st.st_mode) || tree) &&
		    (int64_t)st.st_mtim.tv_sec * 1000000000 +
		    st.st_mtim.tv_nsec >= j->in_mtime_ns;
	} else if (errno != ENOENT)
		return xprintf("result %s (for %s): %s", j->result, j->path,
		    strerror(errno));
	return NULL;
}

/*
 * The identity checks of serve_check_results, without sorting: each entry
 * (an input, or a result) goes into a hash table by its key, and meets
 * there the last entry of the same key.  Entries go in as a stable sort
 * would have ordered them within one key (the inputs in job order, then
 * the results in job order), so the pairs found are the neighbours the
 * sorted list had, and the reports the same.  An entry is a 32-bit ref:
 * id << 1 for an input; for a result, id << 1 | 1 in the pass by name and
 * (its index in rfile) << 1 | 1 in the pass by file.  Never 0: 0 is an
 * empty slot.  Table and refs cost 16 bytes a job, where the sorted
 * array of refs cost 112 (and as much again for qsort's merge buffer).
 */
enum serve_pass { SERVE_BY_NAME, SERVE_BY_FILE };

struct serve_ids {
	struct queue	*q;
	enum serve_pass	 pass;
	struct serve_dirid {		/* an input directory, by its fd */
		dev_t	 dev;
		ino_t	 ino;
		int	 known;
	}		*dirs;
	size_t		 ndirs;
	struct serve_rfile {		/* a result that exists at start */
		uint32_t job;
		dev_t	 dev;
		ino_t	 ino;
	}		*rfile;
	size_t		 nrfile, arfile;
	uint32_t	*slot;
	size_t		 mask;
};

/* The entry ref stands for, as a pathref. */
static void
serve_ids_ref(const struct serve_ids *ids, uint32_t ref, struct pathref *r)
{
	const struct serve_rfile	*rf = NULL;
	const struct job		*j;
	uint32_t			 id = ref >> 1;

	memset(r, 0, sizeof *r);
	if ((ref & 1) != 0 && ids->pass == SERVE_BY_FILE &&
	    ids->rfile != NULL) {
		rf = &ids->rfile[id];
		id = rf->job;
	}
	j = queue_get(ids->q, id);
	r->job = id;
	if ((ref & 1) == 0) {
		r->ddev = ids->dirs[j->in_dirfd].dev;
		r->dino = ids->dirs[j->in_dirfd].ino;
		r->name = j->in_name;
		r->fdev = j->in_dev;
		r->fino = j->in_ino;
		r->has_file = 1;
		return;
	}
	r->result = 1;
	r->ddev = j->rdir_dev;
	r->dino = j->rdir_ino;
	r->name = serve_base(j->result);
	if (rf != NULL) {
		r->fdev = rf->dev;
		r->fino = rf->ino;
		r->has_file = 1;
	}
}

/* Mix a device and an inode number into a hash. */
static uint32_t
serve_ids_mix(uint64_t dev, uint64_t ino, uint32_t h)
{
	uint64_t	 x = (dev * 0x9e3779b97f4a7c15ULL) ^ ino ^ h;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Whether x and y have one key in this pass. */
static int
serve_ids_same(const struct serve_ids *ids, const struct pathref *x,
    const struct pathref *y)
{
	if (ids->pass == SERVE_BY_NAME)
		return pathref_same_name(x, y);
	return x->fdev == y->fdev && x->fino == y->fino;
}

/* Put entry ref in the table; report a clash with the last of its key. */
static void
serve_ids_put(struct serve_ids *ids, uint32_t ref, size_t *bad)
{
	struct pathref	 x, y;
	uint32_t	 h;
	size_t		 i;

	serve_ids_ref(ids, ref, &y);
	if (ids->pass == SERVE_BY_NAME)
		h = serve_ids_mix(y.ddev, y.dino, queue_hash(y.name,
		    strlen(y.name)));
	else
		h = serve_ids_mix(y.fdev, y.fino, 0);
	for (i = h & ids->mask; ids->slot[i] != 0; i = (i + 1) & ids->mask) {
		serve_ids_ref(ids, ids->slot[i], &x);
		if (!serve_ids_same(ids, &x, &y))
			continue;
		if (ids->pass == SERVE_BY_NAME)
			serve_clash(ids->q, &x, &y, "one name", bad);
		else if (!y.result && !pathref_same_name(&x, &y))
			serve_clash(ids->q, &x, &y, "hard links to one file",
			    bad);
		else if (!x.result && y.result && !pathref_same_name(&x, &y))
			serve_clash(ids->q, &x, &y, "a hard link to it", bad);
		break;
	}
	ids->slot[i] = ref;	/* the last of its key, for the next */
}

/*
 * Note input directory fd of job j in ids (stat'ed once: inputs share
 * their directory's descriptor).  NULL, or why not (a new string).
 */
static char *
serve_ids_dir(struct serve_ids *ids, const struct job *j)
{
	struct stat	 st;
	size_t		 fd = (size_t)j->in_dirfd, n;

	if (ids->dirs == NULL || fd >= ids->ndirs) {
		n = fd + 64;
		ids->dirs = xreallocarray(ids->dirs, n, sizeof *ids->dirs);
		memset(&ids->dirs[ids->ndirs], 0, (n - ids->ndirs) *
		    sizeof *ids->dirs);
		ids->ndirs = n;
	}
	if (ids->dirs[fd].known)
		return NULL;
	if (fstat(j->in_dirfd, &st) != 0)
		return xprintf("%s: %s", j->path, strerror(errno));
	ids->dirs[fd].dev = st.st_dev;
	ids->dirs[fd].ino = st.st_ino;
	ids->dirs[fd].known = 1;
	return NULL;
}

/*
 * Compare every input and result by identity, not spelling: one file named
 * twice (or by two hard links), a result path that is an input, two results
 * on one path are refused, naming both; so is a result path that can never
 * be written.  Pins each result's directory.  Exits 2 on failure.
 */
static void
serve_check_results(struct queue *q)
{
	struct serve_ids ids;
	struct serve_rdir rd;
	struct serve_rfile *rf;
	struct pathref	 ref;
	struct job	*j;
	size_t		 i, cap, bad = 0;
	char		*why = NULL;

	memset(&ids, 0, sizeof ids);
	ids.q = q;
	memset(&rd, 0, sizeof rd);
	rd.fd = -1;
	for (i = 1; i <= q->njobs && why == NULL; i++) {
		j = queue_get(q, i);
		if ((why = serve_ids_dir(&ids, j)) != NULL)
			break;
		memset(&ref, 0, sizeof ref);
		if ((why = serve_check_result(j, &ref, &rd)) != NULL ||
		    !ref.has_file)
			continue;
		if (ids.nrfile == ids.arfile) {
			ids.arfile = ids.arfile ? ids.arfile * 2 : 64;
			ids.rfile = xreallocarray(ids.rfile, ids.arfile,
			    sizeof *ids.rfile);
		}
		rf = &ids.rfile[ids.nrfile++];
		rf->job = (uint32_t)i;
		rf->dev = ref.fdev;
		rf->ino = ref.fino;
	}
	if (rd.fd >= 0)
		close(rd.fd);
	free(rd.dir);
	if (why != NULL) {
		free(ids.dirs);
		free(ids.rfile);
		fprintf(stderr, "%s: %s; nothing served\n", cli_prog, why);
		free(why);
		exit(JQ_EXIT_USAGE);
	}
	for (cap = 16; cap < q->njobs * 4; cap *= 2)	/* half full at most */
		;
	ids.slot = xreallocarray(NULL, cap, sizeof *ids.slot);
	ids.mask = cap - 1;
	ids.pass = SERVE_BY_NAME;
	memset(ids.slot, 0, cap * sizeof *ids.slot);
	for (i = 1; i <= q->njobs; i++)
		serve_ids_put(&ids, (uint32_t)i << 1, &bad);
	for (i = 1; i <= q->njobs; i++)
		serve_ids_put(&ids, (uint32_t)i << 1 | 1, &bad);
	ids.pass = SERVE_BY_FILE;
	memset(ids.slot, 0, cap * sizeof *ids.slot);
	for (i = 1; i <= q->njobs; i++)
		serve_ids_put(&ids, (uint32_t)i << 1, &bad);
	for (i = 0; i < ids.nrfile; i++)
		serve_ids_put(&ids, (uint32_t)i << 1 | 1, &bad);
	free(ids.slot);
	free(ids.dirs);
	free(ids.rfile);
	if (bad > 0) {
		if (bad > SERVE_REPORT_MAX)
			fprintf(stderr, "%s: ... and %zu more\n", cli_prog,
			    bad - SERVE_REPORT_MAX);
		fprintf(stderr, "%s: %zu clash%s between inputs and results; "
		    "nothing served\n", cli_prog, bad, bad == 1 ? "" : "es");
		exit(JQ_EXIT_USAGE);
	}
}

/* Directories --output-dir made, deepest last, until the start succeeds. */
static char	**serve_made;
static size_t	  serve_nmade;

/* The start failed after --output-dir was made: remove what we made. */
static void
serve_unmake_outdir(void)
{
	while (serve_nmade > 0)
		rmdir(serve_made[--serve_nmade]);	/* only if still empty */
}

/*
 * Make --output-dir and any missing parents (mode 0777 less the umask), so
 * that "-o mp3" needs no mkdir first.  If the start fails later, the
 * directories made are removed again.  Exits on failure.
 */
static void
serve_make_outdir(const char *outdir)
{
	struct stat	 st;
	char		*path = xstrdup(outdir), *p;

	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (stat(path, &st) != 0) {
			if (errno != ENOENT || mkdir(path, 0777) != 0) {
				fprintf(stderr, "%s: --output-dir %s: cannot make "
				    "%s: %s\n", cli_prog, outdir, path,
				    strerror(errno));
				exit(JQ_EXIT_IO);
			}
			if (serve_nmade == 0)
				atexit(serve_unmake_outdir);
			serve_made = xreallocarray(serve_made, serve_nmade + 1,
			    sizeof *serve_made);
			serve_made[serve_nmade++] = xstrdup(path);
		} else if (!S_ISDIR(st.st_mode)) {
			fprintf(stderr, "%s: --output-dir %s: %s is not a "
			    "directory\n", cli_prog, outdir, path);
			exit(JQ_EXIT_USAGE);
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
}

/* The start succeeded: keep the directories --output-dir made. */
void
serve_keep_outdir(void)
{
	while (serve_nmade > 0)
		free(serve_made[--serve_nmade]);
	free(serve_made);
	serve_made = NULL;
}

/*
 * Build the queue from the names (it takes them over, freeing the bad
 * ones); report or skip bad inputs, then check and pin the results.  An
 * input that cannot be opened (or a directory that cannot be packed)
 * exits JQ_EXIT_IO; one that is neither a regular file nor a directory (a
 * FIFO, a device) exits JQ_EXIT_USAGE.
 */
void
serve_load(struct queue *q, struct serve_files *files, const char *outdir,
    const char *tmpl, int skip)
{
	struct job	 tmp, *j;
	size_t		 i, bad = 0, notfile = 0;
	char		*why, *result, *cause = NULL;
	int		 rc;

	queue_init(q);
	for (i = 0; i < files->n; i++) {
		memset(&tmp, 0, sizeof tmp);
		tmp.path = files->v[i];
		tmp.in_dirfd = -1;
		tmp.tree_fd = -1;
		why = NULL;
		if (strlen(files->v[i]) > JQ_NAME_MAX) {
			why = xprintf("name longer than %d bytes", JQ_NAME_MAX);
			rc = INPUT_BAD;
		} else
			rc = input_pin(&tmp, &why);
		if (rc != INPUT_OK) {
			if (rc == INPUT_NOT_FILE)
				notfile++;
			if (bad++ < SERVE_REPORT_MAX || skip)
				fprintf(stderr, "%s: %s: %s%s\n", cli_prog,
				    files->v[i], why, skip ? "; skipped" : "");
			free(why);
			input_name_clear(&tmp);
			free(files->v[i]);
			continue;
		}
		if ((result = serve_result_path(files->v[i], outdir, tmpl,
		    &cause)) == NULL)
			usage_error(cli_prog, "%s", cause);
		j = queue_add(q, files->v[i], result);
		j->in_dirfd = tmp.in_dirfd;
		j->in_name = tmp.in_name;
		j->in_name_borrowed = tmp.in_name_borrowed;
		j->in_dev = tmp.in_dev;
		j->in_ino = tmp.in_ino;
		j->in_size = tmp.in_size;
		j->in_mtime_ns = tmp.in_mtime_ns;
		j->tree_fd = tmp.tree_fd;
	}
	if (bad > 0 && !skip) {
		if (bad > SERVE_REPORT_MAX)
			fprintf(stderr, "%s: ... and %zu more\n", cli_prog,
			    bad - SERVE_REPORT_MAX);
		if (notfile > 0) {
			fprintf(stderr, "%s: %zu input%s not a regular file; "
			    "nothing served (--skip-missing serves the rest)\n",
			    cli_prog, notfile, notfile == 1 ? " is" : "s are");
			exit(JQ_EXIT_USAGE);
		}
		fprintf(stderr, "%s: %zu input%s missing or unreadable; nothing "
		    "served (--skip-missing serves the rest)\n", cli_prog, bad,
		    bad == 1 ? " is" : "s are");
		exit(JQ_EXIT_IO);
	}
	free(files->v);
	if (outdir != NULL)
		serve_make_outdir(outdir);
	serve_check_results(q);
}

/*
 * Rerun like make: leave out of the run every input whose result is up to
 * date (a regular file at the result path whose modification time is not
 * older than the input's, to the nanosecond, as seen at start) and of
 * which the journal says nothing.  The journal wins where it speaks: a job
 * it records as done, failed or to run again stays, and so its state.
 * redo: leave nothing out.  Nor is anything left out when the journal of
 * an interrupted run is resumed (not one whose run ended, its X record,
 * kept for its failures): there a result file without a record may
 * be one the crash caught between its rename and its record, and the
 * journal's rule is that such a job runs again (journal.c), which a worker
 * still holding its result can then deliver.  Left-out inputs are not
 * jobs of this run: the others are numbered from 1 again, without gaps, as
 * --skip-missing does (the journal finds its records by name).  Call once
 * the journal is open, before serving.  Says in one line how many were
 * left out, and returns that number.
 */
size_t
serve_skip_current(struct queue *q, int redo)
{
	struct queue	 old, gone;
	struct job	*o, *k;
	struct job	 keep;
	size_t		 total = q->njobs, skipped = 0;
	uint64_t	 id;
	int		 skip;

	if (redo || (journal_was_resumed() && !journal_run_ended()))
		return 0;
	for (id = 1; id <= total; id++) {
		o = queue_get(q, id);
		skipped += o->result_current && !o->journaled;
	}
	if (skipped == 0)
		return 0;
	/* move the jobs that stay into q anew, the others into gone */
	old = *q;
	queue_init(q);
	queue_init(&gone);
	for (id = 1; id <= total; id++) {
		o = queue_get(&old, id);
		if ((skip = o->result_current && !o->journaled))
			log_info("%s: its result %s is up to date; not served",
			    o->path, o->result);
		k = queue_add(skip ? &gone : q, o->path, o->result);
		keep = *k;		/* its id, state and place in line */
		*k = *o;		/* k owns the strings now */
		k->id = keep.id;
		k->state = keep.state;
		k->wait_entry = keep.wait_entry;
		k->queue_ix = keep.queue_ix;	/* files: the default queue */
		k->priority = keep.priority;
		if (!skip && o->state != JOB_WAITING)
			queue_recover(q, k, o->state);
	}
	queue_free(&gone);
	queue_forget(&old);		/* its strings moved; only the chunks */
	if (q->njobs == 0 && total == 1)
		log_notice("the one input already has a result; --redo runs it "
		    "again");
	else if (q->njobs == 0)
		log_notice("all %zu inputs already have results; --redo runs "
		    "them again", total);
	else
		log_notice("%zu of %zu inputs already %s; --redo runs %s again",
		    skipped, total, skipped == 1 ? "has a result" :
		    "have results", skipped == 1 ? "it" : "them");
	return skipped;
}
