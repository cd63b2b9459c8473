/*
 * spawn.c: start a command the careful way, and reap it.
 *
 * The child gets every signal disposition back to its default (jq-run
 * ignores SIGPIPE and catches others; a command must inherit none of that)
 * and an empty signal mask, its own process group so that a timeout or a
 * second SIGTERM can kill the whole tree with one kill(-pgid), exactly the
 * three descriptors it is given, and the environment built by spawn_env().
 * Signals stay blocked in jq-run between the clone and the child's reset, so
 * no handler of jq-run ever runs in the child.  Only the dispositions that
 * are not the default need a reset: the ones found at the first spawn (what
 * jq-run inherited or set by then) and the ones changed since (runsig.c
 * tells, spawn_signal_changed), a few system calls a job instead of 64.
 *
 * A command name without a '/' is looked up in $PATH once (spawn_resolve,
 * kept for the next job of the same name) and exec'd by its path; only when
 * that exec fails does the child search $PATH as execvp does, so a program
 * removed or moved meanwhile behaves as before.
 *
 * The child is a clone(CLONE_VM | CLONE_VFORK) on a stack of its own, as
 * glibc's posix_spawn makes it: no page tables are copied, which saves about
 * a millisecond a job on our machines (fork: 324 spawns a second, vfork:
 * 522).  Until it execs, the child shares our memory and we are suspended:
 * it makes system calls only, and allocates nothing.
 *
 * Reaping is done in a loop with WNOHANG, outside any signal handler; the
 * handler in runsig.c only notes that SIGCHLD arrived.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jq.h"

extern char **environ;

static unsigned char spawn_dirty[NSIG];	/* 1: the child resets that one */
static int	 spawn_scanned;	/* spawn_dirty holds the first scan */
static char	*spawn_name;	/* the last name looked up in $PATH */
static char	*spawn_path;	/* and where it was found */

#define SPAWN_STACK	(256U << 10)	/* the child's stack until it execs */

/*
 * The child's code runs on that stack, which AddressSanitizer does not know
 * (it warns of false positives at every noreturn call): not instrumented.
 */
#define SPAWN_CHILD	__attribute__((no_sanitize_address))

/* What the child needs, in memory it shares with us until it execs. */
struct spawn_args {
	const char	*path;		/* argv[0] found in $PATH, or NULL */
	char *const	*argv;
	char *const	*envp;
	int		 src[3];
	volatile int	 exec_errno;	/* set by the child when exec fails */
};

/*
 * Build an environment: the current one, with the NAME=VALUE entries of set
 * replacing any variable of the same name.  Free with spawn_env_free().
 */
char **
spawn_env(const char *const set[])
{
	char	**env;
	size_t	  n = 0, nset = 0, i, j, k = 0;

	while (environ[n] != NULL)
		n++;
	while (set[nset] != NULL)
		nset++;
	env = xcalloc(n + nset + 1, sizeof *env);
	for (i = 0; i < n; i++) {
		for (j = 0; j < nset; j++) {
			size_t len = strcspn(set[j], "=") + 1;
			if (strncmp(environ[i], set[j], len) == 0)
				break;
		}
		if (j == nset)
			env[k++] = xstrdup(environ[i]);
	}
	for (j = 0; j < nset; j++)
		env[k++] = xstrdup(set[j]);
	env[k] = NULL;
	return env;
}

/* Free an environment made by spawn_env(). */
void
spawn_env_free(char **env)
{
	size_t	i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/*
 * Close every descriptor from 3 up (in the child, before exec).  Without
 * close_range (Linux before 5.9) every possible one is closed: no opendir,
 * which would allocate in memory we share with the parent.
 */
static void SPAWN_CHILD
spawn_close_from3(void)
{
	struct rlimit	 rl;
	int		 fd, max = 65536;

	if (close_range(3, ~0U, 0) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max)
		max = (int)rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		close(fd);
}

/*
 * In the child: set up signals, group and descriptors, then exec.  When the
 * exec (or the set-up) fails, errno goes to a->exec_errno, which the parent
 * reads once we are gone: a command that cannot start is the node's fault,
 * not the job's, and the parent says so instead of the command's stderr.
 */
static void JQ_NORETURN SPAWN_CHILD
spawn_child(struct spawn_args *a)
{
	static const unsigned long kact[4];
	sigset_t		 none;
	char *const		*argv = a->argv;
	int			*src = a->src;
	int			 i;

	/* Dispositions first, then the mask: a pending signal must meet SIG_DFL. */
	for (i = 1; i < NSIG; i++) {
		if (!spawn_dirty[i])
			continue;
		/*
		 * Through the kernel: libc keeps 32 and 33 for itself and
		 * refuses them, yet an ignored disposition there survives
		 * exec.  An all-zero kernel sigaction is SIG_DFL on every ABI.
		 */
		(void)syscall(SYS_rt_sigaction, i, kact, NULL,
		    (size_t)(_NSIG / 8));
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	(void)setpgid(0, 0);

	/*
	 * Move every source above 2 first, so that a source which already is
	 * 0, 1 or 2 (jq-run started with a standard stream closed) cannot be
	 * overwritten before it is used; dup2 then clears close-on-exec.
	 */
	for (i = 0; i < 3; i++)
		if ((src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) == -1)
			goto fail;
	for (i = 0; i < 3; i++)
		if (dup2(src[i], i) == -1)
			goto fail;
	spawn_close_from3();

	if (a->path != NULL) {
		execve(a->path, argv, a->envp);
		/* gone, or not a binary (a script without #!): as execvp does */
	}
	execvpe(argv[0], argv, a->envp);	/* (searches PATH on the stack) */
fail:
	a->exec_errno = errno != 0 ? errno : ENOEXEC;
	_exit(a->exec_errno == ENOENT ? 127 : 126);
}

/* The clone's entry point. */
static int SPAWN_CHILD
spawn_child_main(void *arg)
{
	struct spawn_args	*a = arg;

	spawn_child(a);
}

/* Close both ends of every pipe made for a child, and /dev/null. */
static void
spawn_close_all(int pipes[3][2], int nullfd)
{
	int	 i;

	for (i = 0; i < 3; i++) {
		if (pipes[i][0] != -1)
			close(pipes[i][0]);
		if (pipes[i][1] != -1)
			close(pipes[i][1]);
	}
	if (nullfd != -1)
		close(nullfd);
}

/* jq-run changed sig's disposition: the child resets it from now on. */
void
spawn_signal_changed(int sig)
{
	if (sig > 0 && sig < NSIG)
		spawn_dirty[sig] = 1;
}

/*
 * Once, before the first child: note every disposition that is not the
 * default (inherited ignored, or set by us so far).  libc's own 32 and 33,
 * which sigaction cannot read, are always reset.
 */
static void
spawn_scan_signals(void)
{
	struct sigaction	 sa;
	int			 i;

	for (i = 1; i < NSIG; i++) {
		if (i == SIGKILL || i == SIGSTOP)
			continue;
		/* (a set of our own: sigaddset refuses libc's signals too) */
		if (sigaction(i, NULL, &sa) != 0 || sa.sa_handler != SIG_DFL ||
		    (i >= 32 && i < SIGRTMIN))
			spawn_dirty[i] = 1;
	}
	spawn_scanned = 1;
}

/*
 * Where the child should exec name: its path found in $PATH (looked up
 * once per name), or NULL to leave it to execvpe (a name with a '/', or
 * one not found now: the exec then fails the usual way).
 */
static const char *
spawn_lookup(const char *name)
{
	char	*cause = NULL;

	if (strchr(name, '/') != NULL)
		return NULL;
	if (spawn_name != NULL && strcmp(spawn_name, name) == 0)
		return spawn_path;
	free(spawn_name);
	free(spawn_path);
	spawn_name = xstrdup(name);
	if ((spawn_path = spawn_resolve(name, &cause)) == NULL)
		free(cause);
	return spawn_path;
}

/*
 * Start argv[0] (searched in PATH) with environment envp.  in, out and err
 * say what the command's stdin, stdout and stderr are: SPAWN_PIPE (a pipe to
 * us, our end in sp->fd_in/fd_out/fd_err; fd_in is non-blocking), SPAWN_NULL
 * (/dev/null), or a descriptor of ours to pass on.  All our pipe ends are
 * close-on-exec.  Returns 0; -1 with *cause; or -2 with *cause when the
 * command itself could not be started (its exec failed: not found, not
 * executable, ...), the child already reaped.
 */
int
spawn_start(struct spawn *sp, char *const argv[], char *const envp[], int in,
    int out, int err, char **cause)
{
	static char		*stack;	/* the child's, reused */
	struct spawn_args	 args;
	int			 mode[3] = { in, out, err };
	int			 pipes[3][2] = { { -1, -1 }, { -1, -1 },
				     { -1, -1 } };
	int			 src[3], ours[3] = { -1, -1, -1 };
	int			 nullfd = -1, i, saved;
	sigset_t		 all, old;
	pid_t			 pid;

	memset(sp, 0, sizeof *sp);
	sp->pid = -1;
	sp->fd_in = sp->fd_out = sp->fd_err = -1;
	for (i = 0; i < 3; i++) {
		if (mode[i] == SPAWN_NULL && nullfd == -1 &&
		    (nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
			*cause = xprintf("/dev/null: %s", strerror(errno));
			goto fail;
		}
		if (mode[i] == SPAWN_PIPE) {
			if (pipe2(pipes[i], O_CLOEXEC) == -1) {
				*cause = xprintf("pipe: %s", strerror(errno));
				goto fail;
			}
			/* stdin: the command reads [0]; stdout/err: it writes [1] */
			src[i] = pipes[i][i == 0 ? 0 : 1];
			ours[i] = pipes[i][i == 0 ? 1 : 0];
		} else
			src[i] = mode[i] == SPAWN_NULL ? nullfd : mode[i];
	}

	if (stack == NULL && (stack = mmap(NULL, SPAWN_STACK, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0)) ==
	    MAP_FAILED) {
		stack = NULL;
		*cause = xprintf("mmap: %s", strerror(errno));
		goto fail;
	}
	if (!spawn_scanned)
		spawn_scan_signals();
	args.path = spawn_lookup(argv[0]);
	args.argv = argv;
	args.envp = envp;
	memcpy(args.src, src, sizeof args.src);
	args.exec_errno = 0;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* We sleep until the child has exec'd (or exited). */
	pid = clone(spawn_child_main, stack + SPAWN_STACK, CLONE_VM |
	    CLONE_VFORK | SIGCHLD, &args);
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		*cause = xprintf("clone: %s", strerror(saved));
		goto fail;
	}
	if (args.exec_errno != 0) {
		/* CLONE_VFORK: it has exited by now, so this does not block. */
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
		*cause = xprintf("cannot run %s: %s", argv[0],
		    strerror(args.exec_errno));
		errno = args.exec_errno;
		spawn_close_all(pipes, nullfd);
		return -2;
	}
	/* Also here, so kill(-pid) works even before the child ran. */
	(void)setpgid(pid, pid);

	for (i = 0; i < 3; i++)
		if (mode[i] == SPAWN_PIPE)
			close(src[i]);
	if (nullfd != -1)
		close(nullfd);
	sp->pid = pid;
	sp->fd_in = ours[0];
	sp->fd_out = ours[1];
	sp->fd_err = ours[2];
	if (sp->fd_in != -1)
		(void)util_nonblock(sp->fd_in, 1);
	return 0;

fail:
	saved = errno;
	spawn_close_all(pipes, nullfd);
	errno = saved;
	return -1;
}

/*
 * Reap every child that has exited, without blocking, noting sp's status.
 * Returns 1 once sp's process has been reaped, else 0.
 */
int
spawn_reap(struct spawn *sp)
{
	pid_t	 pid;
	int	 status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == -1 && errno == EINTR)
			continue;
		if (pid <= 0)
			break;		/* 0: none left to reap now; -1: ECHILD */
		if (pid == sp->pid) {
			sp->exited = 1;
			sp->status = status;
		}
	}
	return sp->exited;
}

/* Wait (blocking) until sp's process has exited. */
int
spawn_wait(struct spawn *sp)
{
	pid_t	 pid;
	int	 status;

	while (!sp->exited && sp->pid > 0) {
		pid = waitpid(sp->pid, &status, 0);
		if (pid == -1 && errno == EINTR)
			continue;
		if (pid == -1)
			return -1;
		sp->exited = 1;
		sp->status = status;
	}
	return 0;
}

/* Send sig to the command's whole process group. */
int
spawn_kill(const struct spawn *sp, int sig)
{
	if (sp->pid <= 0)
		return -1;
	if (kill(-sp->pid, sig) == -1 && !sp->exited)
		return kill(sp->pid, sig);	/* group not formed yet */
	return 0;
}

/* Close whichever of our pipe ends are still open. */
void
spawn_close_fds(struct spawn *sp)
{
	if (sp->fd_in != -1)
		close(sp->fd_in);
	if (sp->fd_out != -1)
		close(sp->fd_out);
	if (sp->fd_err != -1)
		close(sp->fd_err);
	sp->fd_in = sp->fd_out = sp->fd_err = -1;
}

/*
 * Describe a wait status in the one fixed form ("exit 1", "signal 9") into
 * buf; return 0 when the command exited with status 0.
 */
int
spawn_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status)) {
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
		return WEXITSTATUS(status) == 0 ? 0 : -1;
	}
	if (WIFSIGNALED(status)) {
		snprintf(buf, size, "signal %d", WTERMSIG(status));
		return -1;
	}
	snprintf(buf, size, "status 0x%x", (unsigned)status);
	return -1;
}

/*
 * Find the program name as execvp would: a name with a '/' is taken as it
 * is, others are looked up in $PATH (unset: /bin:/usr/bin; an empty entry
 * is the current directory).  Returns the path (malloc'd) of the first
 * executable regular file, or NULL with *cause saying why there is none.
 */
char *
spawn_resolve(const char *name, char **cause)
{
	const char	*path = getenv("PATH"), *p, *colon;
	struct stat	 st;
	char		*try;
	int		 denied = 0;

	if (*name == '\0') {
		*cause = xstrdup("the command name is empty");
		return NULL;
	}
	if (strchr(name, '/') != NULL) {
		if (stat(name, &st) != 0) {
			*cause = xprintf("%s: %s", name, strerror(errno));
			return NULL;
		}
		if (!S_ISREG(st.st_mode) || access(name, X_OK) != 0) {
			*cause = xprintf("%s: %s", name, S_ISREG(st.st_mode) ?
			    "not executable" : "not a regular file");
			return NULL;
		}
		return xstrdup(name);
	}
	if (path == NULL)
		path = "/bin:/usr/bin";
	for (p = path;; p = colon + 1) {
		colon = strchr(p, ':');
		if (colon == NULL)
			colon = p + strlen(p);
		try = colon == p ? xprintf("./%s", name) :
		    xprintf("%.*s/%s", (int)(colon - p), p, name);
		if (stat(try, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(try, X_OK) == 0)
				return try;
			denied = 1;
		}
		free(try);
		if (*colon == '\0')
			break;
	}
	*cause = xprintf("%s: %s in PATH (%s)", name, denied ?
	    "not executable" : "not found", path);
	return NULL;
}
