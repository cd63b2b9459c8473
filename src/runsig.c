/*
 * runsig.c: the signal state of a jq-run process (the parent or a slot).
 *
 * The handler only notes what came and writes a byte to the self-pipe that
 * a slot's poll loops watch; the parent, which has no pipe, waits in
 * sigsuspend().  What each signal means is said in run.c.
 */
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

volatile sig_atomic_t	run_signals;	/* parent: SIGINT/TERM/HUP seen */
volatile sig_atomic_t	run_stop;	/* slot: 1 SIGUSR1, 2 SIGUSR2 */
volatile sig_atomic_t	run_child;	/* SIGCHLD seen */
int			run_wake[2] = { -1, -1 };	/* slot: self-pipe */

/* Note a signal and wake the poll loop; nothing else. */
void
run_on_signal(int sig)
{
	int	 saved = errno;
	ssize_t	 n;

	if (sig == SIGCHLD)
		run_child = 1;
	else if (sig == SIGUSR1) {
		if (run_stop == 0)
			run_stop = 1;
	} else if (sig == SIGUSR2)
		run_stop = 2;
	else
		run_signals = run_signals + 1;
	if (run_wake[1] != -1)
		n = write(run_wake[1], "", 1);	/* full pipe: already awake */
	(void)n;
	errno = saved;
}

/* Install handler (or SIG_IGN/SIG_DFL) for sig, restarting system calls. */
void
run_sigaction(int sig, void (*handler)(int))
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, NULL) == -1)
		err(JQ_EXIT_IO, "sigaction");
	spawn_signal_changed(sig);	/* the command must not inherit it */
}

/* Empty the self-pipe. */
void
run_drain_wake(void)
{
	char	 buf[64];

	while (read(run_wake[0], buf, sizeof buf) > 0)
		;
}
