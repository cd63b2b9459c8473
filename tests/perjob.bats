#!/usr/bin/env bats
# tests/perjob.bats: the shortcuts of jq-run's per-job path (issue 14) keep what the command sees.
#
# jq-run resets in the child only the signal dispositions that are not the default (found once,
# plus the ones it changes later), and looks the command up in $PATH once, exec'ing that path;
# when that exec fails the child searches $PATH again as execvp does.  Each test here fails if a
# shortcut changed what a command gets.  No timing: jobs run one after another (-j 1).

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run

setup() {
	load test_helper/common
	jq_setup root sock worker
}

# jr ARG...: run jq-run with the test's --tmpdir (stdout and stderr apart)
jr() {
	run --separate-stderr timeout -k 5 120 jq-run --tmpdir "$TMPD" "$@"
}

@test "perjob: signals jq-run inherited as ignored are not ignored in the command" {
	printf 'x' >"$D/in/a.txt"
	printf 'y' >"$D/in/b.txt"
	start_server --fresh --redo "$D/in/a.txt" "$D/in/b.txt"
	# ignored before jq-run starts: only the scan at the first spawn can find these
	run --separate-stderr timeout -k 5 120 bash -c 'trap "" TTIN XFSZ WINCH RTMIN+3; exec "$@"' _ \
		jq-run -j 1 --tmpdir "$TMPD" "$SERVER" -- "$BUILDDIR/fdprobe"
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	# both jobs, the first spawn and a later one
	for f in a b; do
		assert_equal "$(<"$D/in/$f.txt.result")" "0 1 2 SigBlk:	0000000000000000
SigIgn:	0000000000000000
own group"
	done
}

@test "perjob: a command found in \$PATH and gone before the next job is searched for again" {
	mkdir -p "$D/p1" "$D/p2"
	# the first one found removes itself: the next job must find the second, as execvp would
	printf '#!/bin/sh\nrm -f "$0"\necho first\n' >"$D/p1/perjobcmd"
	printf '#!/bin/sh\necho second\n' >"$D/p2/perjobcmd"
	chmod +x "$D/p1/perjobcmd" "$D/p2/perjobcmd"
	printf 'x' >"$D/in/a.txt"
	printf 'y' >"$D/in/b.txt"
	start_server --fresh --redo "$D/in/a.txt" "$D/in/b.txt"
	PATH=$D/p1:$D/p2:$PATH jr -j 1 "$SERVER" -- perjobcmd
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(cat "$D/in/a.txt.result" "$D/in/b.txt.result" | sort | tr '\n' ' ')" "first second "
	[[ ! -e $D/p1/perjobcmd ]]
}

@test "perjob: a command found in \$PATH that is not a binary and has no #! runs through /bin/sh" {
	mkdir -p "$D/p1"
	printf 'echo "plain $JQ_JOB_ID"\n' >"$D/p1/perjobplain"
	chmod +x "$D/p1/perjobplain"
	printf 'x' >"$D/in/a.txt"
	start_server --fresh --redo "$D/in/a.txt"
	PATH=$D/p1:$PATH jr -j 1 "$SERVER" -- perjobplain
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	assert_equal "$(<"$D/in/a.txt.result")" "plain 1"
}

# journal: the server's journal file (one run, so one)
journal() {
	local f=("$JQ_STATE_DIR"/journal-*)
	[[ -f ${f[0]} ]] || fail "no journal in $JQ_STATE_DIR"
	echo "${f[0]}"
}

@test "perjob: with --no-sync, adds and results (committed in the loop) are answered, journaled and known after a restart" {
	mkdir -p "$D/out"
	start_server -v --no-sync -o "$D/out"
	run -0 jq-put --add "$SERVER" --name one <<<'data one'
	assert_output 1
	run -0 jq-put --add "$SERVER" --name two <<<'data two'
	assert_output 2
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	assert_equal "$(<"$D/out/one.result")" 'data one'
	run -0 jq-put --wait "$SERVER" 1
	assert_output 'data one'
	run -0 jq-put --shutdown "$SERVER"
	wait_server_exit 30
	assert_equal "$status" 0
	grep -q '^A 1 one ' "$(journal)"
	grep -q '^A 2 two ' "$(journal)"
	grep -q '^D 1 ' "$(journal)"
	# the next start knows both: job 1 done (not served again), job 2 waiting with its data
	start_server -v --no-sync -o "$D/out"
	run -0 jq-put --add --if-new "$SERVER" --name two <<<'other'
	assert_output 2
	run -0 jq-take -o "$D/job2" "$SERVER"
	assert_handle 2
	assert_equal "$(<"$D/job2")" 'data two'
}

@test "perjob: a slot's jobs share one TMPDIR, emptied (never through a link) and 0700 again before each job, removed at the end" {
	local f
	for f in a b c d; do printf 'x' >"$D/in/$f.txt"; done
	start_server --fresh --redo "$D/in/a.txt" "$D/in/b.txt" "$D/in/c.txt" "$D/in/d.txt"
	# each job prints its TMPDIR's mode and contents, notes its path, then litters it: a tree with
	# a locked directory, a link out of it; job b opens it to all, job c removes it
	# shellcheck disable=SC2016 # for the inner sh
	jr -j 1 "$SERVER" -- sh -c 'stat -c %a "$TMPDIR"; ls -A "$TMPDIR"
		printf "%s %s\n" "${JQ_JOB_NAME##*/}" "$TMPDIR" >>"$M/dirs"
		mkdir "$TMPDIR/sub"; echo x >"$TMPDIR/sub/f"; chmod 0 "$TMPDIR/sub"; ln -s "$M" "$TMPDIR/link"
		case $JQ_JOB_NAME in *b.txt) chmod 777 "$TMPDIR" ;; *c.txt) rm -rf "$TMPDIR" ;; esac'
	assert_success
	wait_server_exit
	assert_equal "$status" 0
	for f in a b c d; do
		assert_equal "$(<"$D/in/$f.txt.result")" 700
	done
	# one directory for a, b and c; c took it away, so d got a new one
	run -0 awk '{ print $2 }' "$M/dirs"
	[[ ${lines[0]} == "$TMPD"/jq-run.* ]] || fail "not a job directory: ${lines[0]}"
	assert_equal "${lines[1]}" "${lines[0]}"
	assert_equal "${lines[2]}" "${lines[0]}"
	[[ ${lines[3]} != "${lines[0]}" && ${lines[3]} == "$TMPD"/jq-run.* ]] || fail "job d: ${lines[3]}"
	# the link was removed, not followed; nothing is left behind
	[[ -s $M/dirs ]]
	assert_equal "$(ls -A "$TMPD")" ""
}
