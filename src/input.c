/*
 * input.c: a job's input file, pinned at start and only ever opened again
 * as that same file.
 *
 * At start (input_pin) each input's directory is opened once (one shared
 * descriptor per distinct directory, kept for the whole run) and the file
 * is looked at in it without following a symbolic link: a regular file
 * that is ours and readable by its mode is only stat'ed (a million inputs
 * start in half the time); anything else is opened there with O_NOFOLLOW |
 * O_NONBLOCK, as before, so that a FIFO cannot block, an unreadable file
 * is refused with the open's error, and a symbolic link is never followed
 * after the operator's own naming:
 * an input the operator named through a symbolic link is pinned as the
 * file it led to at start.  Its identity (device, inode, size, mtime) is
 * recorded in the job.
 *
 * When the job is handed out (input_open) the file is opened the same way
 * relative to the pinned directory and must still be that regular file,
 * unchanged.  Anything else is a reason for the job to fail for good: no
 * retry makes a replaced input the one the operator gave.
 *
 * A directory is a job too, whose data is its tree (kind=tree).  Its size
 * must be known before it is sent and it must not change between
 * attempts, so it is packed once, at start (arch.c: an uncompressed pax
 * tar, within --max-tree-size and --max-tree-entries), into an unlinked
 * file in the state directory that only the server holds (tree_fd); each
 * attempt sends that file.  The tree is thus pinned as it was at start:
 * later changes to the directory are not seen, and nothing can swap what
 * is sent.  The cost is a copy of each tree in the state directory's file
 * system for the run, and one descriptor per directory job.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

#define INPUT_OPEN_FLAGS \
	(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

struct input_dir {
	dev_t	 dev;
	ino_t	 ino;
	int	 fd;
};

static struct input_dir	*input_dirs;	/* one per distinct directory */
static size_t		 input_ndirs, input_adirs;
static char		*input_lastdir;	/* the directory of the last pin */
static char		*input_tree_dir;	/* where trees are packed */
static int		 input_lastfd = -1;

/* What kind of file mode is, for a message: "a FIFO", "a directory"... */
const char *
input_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "a regular file";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a regular file";
}

/*
 * Every distinct input directory holds a descriptor for the whole run:
 * raise the soft limit on descriptors to the hard one, once.
 */
static void
input_raise_limit(void)
{
	static int	 done;
	struct rlimit	 rl;

	if (done++)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The shared descriptor of directory dir; -1 with *cause. */
static int
input_dir_fd(const char *dir, char **cause)
{
	struct stat	 st;
	size_t		 i;
	int		 fd;

	if (input_lastdir != NULL && strcmp(input_lastdir, dir) == 0)
		return input_lastfd;
	input_raise_limit();
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		*cause = xprintf("directory %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (i = 0; i < input_ndirs; i++) {
		if (input_dirs[i].dev == st.st_dev &&
		    input_dirs[i].ino == st.st_ino) {
			close(fd);
			fd = input_dirs[i].fd;
			break;
		}
	}
	if (i == input_ndirs) {
		if (input_ndirs == input_adirs) {
			input_adirs = input_adirs ? input_adirs * 2 : 16;
			input_dirs = xreallocarray(input_dirs, input_adirs,
			    sizeof *input_dirs);
		}
		input_dirs[input_ndirs++] = (struct input_dir){ st.st_dev,
		    st.st_ino, fd };
	}
	free(input_lastdir);
	input_lastdir = xstrdup(dir);
	input_lastfd = fd;
	return fd;
}

/* Split path into its directory (new string) and its final name. */
static char *
input_split(const char *path, const char **name)
{
	const char	*slash = strrchr(path, '/');

	*name = slash == NULL ? path : slash + 1;
	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/*
 * Open name in directory fd dirfd as an input may be opened; fill *st.
 * The fd, or -1 with errno.
 */
static int
input_openat(int dirfd, const char *name, struct stat *st)
{
	int	 fd, saved;

	if ((fd = openat(dirfd, name, INPUT_OPEN_FLAGS)) < 0)
		return -1;
	if (fstat(fd, st) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * Look at name in directory dirfd as an input is pinned at start: fill *st
 * (never through a symbolic link: ELOOP).  A regular file that the mode
 * bits let us read, as its owner, is only stat'ed (*fd is -1): opening
 * and closing a million inputs was most of a large start.  Anything else
 * (a directory to pack, a file not ours, a FIFO, a device) is opened as
 * before, so that its error is the open's: *fd is the descriptor then.
 * 0, or -1 with errno.
 */
static int
input_probe(int dirfd, const char *name, struct stat *st, int *fd)
{
	static uid_t	 euid = (uid_t)-1;

	if (euid == (uid_t)-1)
		euid = geteuid();
	*fd = -1;
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	if (S_ISLNK(st->st_mode)) {
		errno = ELOOP;
		return -1;
	}
	if (S_ISREG(st->st_mode) && st->st_uid == euid &&
	    (st->st_mode & S_IRUSR) != 0)
		return 0;
	if ((*fd = input_openat(dirfd, name, st)) < 0)
		return -1;
	return 0;
}

/* Pack directories served as jobs in dir (the state directory). */
void
input_tree_setup(const char *dir)
{
	free(input_tree_dir);
	input_tree_dir = xstrdup(dir);
}

/*
 * A new unlinked file in the state directory, only ours, to pack a tree
 * into: its fd, or -1 with *cause.
 */
int
input_tree_file(char **cause)
{
	char	*tmpl;
	int	 tfd;

	if (input_tree_dir == NULL) {
		*cause = xstrdup("no state directory to pack a tree in");
		return -1;
	}
	if (mkdir(input_tree_dir, 0700) != 0 && errno != EEXIST) {
		*cause = xprintf("state directory %s: %s", input_tree_dir,
		    strerror(errno));
		return -1;
	}
	tfd = open(input_tree_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tfd == -1 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		tmpl = xprintf("%s/.jq-tree.XXXXXX", input_tree_dir);
		if ((tfd = mkostemp(tmpl, O_CLOEXEC)) != -1)
			(void)unlink(tmpl);
		free(tmpl);
	}
	if (tfd == -1)
		*cause = xprintf("cannot pack a tree in %s: %s", input_tree_dir,
		    strerror(errno));
	return tfd;
}

/*
 * Pack the directory fd (job j's input) into an unlinked file in the
 * state directory, kept open in j->tree_fd; its modification time becomes
 * the newest of any entry in the tree.  0, or -1 with *cause.
 */
static int
input_pin_tree(struct job *j, int fd, char **cause)
{
	struct stat	 st;
	char		*why = NULL;
	int64_t		 newest;
	int		 tfd;

	if ((tfd = input_tree_file(cause)) == -1)
		return -1;
	if (arch_pack(fd, tfd, &cli_tree_limits, &newest, &why) != 0 ||
	    fstat(tfd, &st) != 0) {
		*cause = xprintf("cannot pack the tree: %s", why != NULL ? why :
		    strerror(errno));
		free(why);
		close(tfd);
		return -1;
	}
	j->tree_fd = tfd;
	j->in_size = (uint64_t)st.st_size;	/* what is sent */
	/* the tree's age (make's rule, serve.c): its newest entry's */
	if (newest > j->in_mtime_ns)
		j->in_mtime_ns = newest;
	return 0;
}

/*
 * Pin job j's input at start: open its directory (shared) and the file in
 * it, and record the file's identity.  An input named through a symbolic
 * link is pinned as the file it leads to now.  INPUT_OK; INPUT_BAD with
 * *cause when it cannot be opened; INPUT_NOT_FILE with *cause when it is
 * not a regular file.
 */
int
input_pin(struct job *j, char **cause)
{
	struct stat	 st;
	const char	*name;
	char		*dir, *real = NULL;
	int		 dirfd, fd, rc = INPUT_OK, ok;

	dir = input_split(j->path, &name);
	if ((dirfd = input_dir_fd(dir, cause)) < 0) {
		free(dir);
		return INPUT_BAD;
	}
	ok = input_probe(dirfd, name, &st, &fd);
	if (ok != 0 && errno == ELOOP) {		/* named through a link */
		if ((real = realpath(j->path, NULL)) == NULL) {
			*cause = xstrdup(strerror(errno));
			free(dir);
			return INPUT_BAD;
		}
		free(dir);
		dir = input_split(real, &name);
		if ((dirfd = input_dir_fd(dir, cause)) < 0) {
			free(dir);
			free(real);
			return INPUT_BAD;
		}
		ok = input_probe(dirfd, name, &st, &fd);
	}
	if (ok != 0) {
		*cause = xstrdup(strerror(errno));
		rc = INPUT_BAD;
	} else if (S_ISDIR(st.st_mode)) {
		input_pin_stat(j, dirfd, name, &st);
		if (input_pin_tree(j, fd, cause) != 0)
			rc = INPUT_BAD;
	} else if (!S_ISREG(st.st_mode)) {
		*cause = xprintf("is %s, not a regular file or a directory",
		    input_kind(st.st_mode));
		rc = INPUT_NOT_FILE;
	} else
		input_pin_stat(j, dirfd, name, &st);
	if (fd >= 0)
		close(fd);
	free(dir);
	free(real);
	return rc;
}

/*
 * Open name in directory dirfd as an input is opened (never through a
 * symbolic link, never blocking) and fill *st.  The fd, or -1 with errno
 * (ELOOP: name is a symbolic link).  For a file the operator did not name
 * (a watched directory's), where no link is followed at all.
 */
int
input_openat_file(int dirfd, const char *name, struct stat *st)
{
	return input_openat(dirfd, name, st);
}

/* Drop job j's input name: freed unless it points into j->path. */
void
input_name_clear(struct job *j)
{
	if (!j->in_name_borrowed)
		free(j->in_name);
	j->in_name = NULL;
	j->in_name_borrowed = 0;
}

/*
 * Pin job j's input as the regular file st, name in directory dirfd (a
 * descriptor that outlives the job): a file found at run time.
 */
void
input_pin_stat(struct job *j, int dirfd, const char *name,
    const struct stat *st)
{
	uintptr_t	 n = (uintptr_t)name, p = (uintptr_t)j->path;

	input_name_clear(j);
	if (j->path != NULL && n >= p && n < p + strlen(j->path)) {
		j->in_name = (char *)(uintptr_t)name;	/* the tail of path */
		j->in_name_borrowed = 1;
	} else
		j->in_name = xstrdup(name);
	j->in_dirfd = dirfd;
	j->in_dev = st->st_dev;
	j->in_ino = st->st_ino;
	j->in_size = (uint64_t)st->st_size;
	j->in_mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
}

/*
 * Whether some process has the file we opened read-only on fd open for
 * writing: Linux refuses a read lease on such a file (EAGAIN).  A file
 * we may not lease (not ours: EACCES; a file system without leases) is
 * taken as not being written: 0.  The lease is let go at once; a writer
 * opening the file in between waits for that, and the lease-break SIGIO
 * it would send us must be ignored (watch_setup).
 */
int
input_writers(int fd)
{
	int	 saved = errno, busy = 0;

	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	else
		busy = errno == EAGAIN;
	errno = saved;
	return busy;
}

/*
 * Why st is no longer job j's input as pinned, or NULL if it still is.
 * The reason is a new string.
 */
char *
input_changed(const struct job *j, const struct stat *st)
{
	int64_t	 mtime;

	if (j->tree_fd >= 0)		/* the packed tree: only we write it */
		return S_ISREG(st->st_mode) && (uint64_t)st->st_size ==
		    j->in_size ? NULL : xstrdup("the tree packed at start "
		    "changed");
	if (!S_ISREG(st->st_mode))
		return xprintf("input changed since start: now %s",
		    input_kind(st->st_mode));
	if (st->st_dev != j->in_dev || st->st_ino != j->in_ino)
		return xstrdup("input changed since start: replaced (inode "
		    "changed)");
	if ((uint64_t)st->st_size != j->in_size)
		return xprintf("input changed since start: size %llu -> %llu",
		    (unsigned long long)j->in_size,
		    (unsigned long long)st->st_size);
	mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (mtime != j->in_mtime_ns)
		return xstrdup("input changed since start: modified (mtime "
		    "changed)");
	return NULL;
}

/*
 * Open job j's input to send it: the file pinned at start, unchanged.
 * The fd (in_size bytes to send), or -1 with *cause: why the job fails.
 * Never blocks: a FIFO swapped in is opened non-blocking and refused.
 */
int
input_open(const struct job *j, char **cause)
{
	struct stat	 st;
	int		 fd;

	if (j->in_name == NULL) {
		*cause = xstrdup("input was not checked at start");
		return -1;
	}
	if (j->tree_fd >= 0) {
		/* the tree packed at start, opened anew (its own offset) */
		char proc[32];

		snprintf(proc, sizeof proc, "/proc/self/fd/%d", j->tree_fd);
		if ((fd = open(proc, O_RDONLY | O_CLOEXEC)) < 0 ||
		    fstat(fd, &st) != 0 || (uint64_t)st.st_size != j->in_size) {
			*cause = xprintf("the tree packed at start cannot be "
			    "read: %s", fd < 0 ? strerror(errno) : "changed");
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	if ((fd = input_openat(j->in_dirfd, j->in_name, &st)) < 0) {
		if (errno == ELOOP)
			*cause = xstrdup("input changed since start: now a "
			    "symbolic link");
		else if (errno == ENOENT)
			*cause = xprintf("input gone: %s", strerror(errno));
		else
			*cause = xprintf("input cannot be opened: %s",
			    strerror(errno));
		return -1;
	}
	if ((*cause = input_changed(j, &st)) != NULL) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Close the shared directory descriptors (at exit). */
void
input_free(void)
{
	size_t	 i;

	for (i = 0; i < input_ndirs; i++)
		close(input_dirs[i].fd);
	free(input_dirs);
	input_dirs = NULL;
	input_ndirs = input_adirs = 0;
	free(input_lastdir);
	input_lastdir = NULL;
	input_lastfd = -1;
	free(input_tree_dir);
	input_tree_dir = NULL;
}
