#!/usr/bin/env bats
# tests/leases.bats: leases and their renewal (jq-take --lease, jq-put --touch), jq-put --retry,
# jq-run's heartbeats, and jq-run riding out a server that is killed and started again (issue 4).
#
# Nothing here asserts on timing: a lease that must lapse is waited for with a bounded wait (a
# jq-take --wait that the server answers when the lease runs out), and where a test must act while
# a job runs, the command leaves a marker file and waits for one.

# shellcheck disable=SC2154 # $stderr, $output and $status are set by bats' run

setup() {
	load test_helper/common
	jq_setup root sock worker
}

# json_field JSON KEY: the number after "KEY": in JSON
json_field() {
	local re="\"$2\":([0-9]+)"
	[[ $1 =~ $re ]] && printf '%s\n' "${BASH_REMATCH[1]}"
}

# serve_ab ARG...: a server for the two jobs a.txt (id 1) and b.txt (id 2)
serve_ab() {
	printf 'alpha\n' >"$D/in/a.txt"
	printf 'beta\n' >"$D/in/b.txt"
	start_server "$@" "$D/in/a.txt" "$D/in/b.txt"
}

@test "jq-take --lease and jq-put --touch/--lease/--retry: bad uses are usage errors (exit 2)" {
	local v h=1:0badc0de000000010123456789abcdef
	for v in 0 0s x 1x 366d -1; do
		run -2 jq-take --lease "$v" -o "$D/x" 127.0.0.1:1
		assert_output --partial -- "--lease"
		run -2 jq-put --touch --lease "$v" 127.0.0.1:1 "$h"
		assert_output --partial -- "--lease"
	done
	run -2 jq-put --touch 127.0.0.1:1 "$h" "$D/in/a.txt"
	assert_output --partial "reads no FILE"
	run -2 jq-put --retry 127.0.0.1:1 "$h" "$D/in/a.txt"
	assert_output --partial "reads no FILE"
	run -2 jq-put --lease 5s 127.0.0.1:1 "$h"
	assert_output --partial "needs --touch"
	run -2 jq-put --touch --retry 127.0.0.1:1 "$h"
	run -2 jq-put --touch --fail 127.0.0.1:1 "$h"
	run -2 jq-put --retry 127.0.0.1:1 x
	# nothing reached a server: no usage error ever connects (127.0.0.1:1 would give 6)
	assert_file_not_exist "$D/x"
}

@test "jq-take --lease 1: without a touch the job goes to another jq-take once the lease ran out" {
	serve_ab
	run -0 jq-take --lease 1 -m '*/a.txt' -o "$D/first" "$SERVER"
	assert_handle 1
	h1=$HANDLE
	assert_equal "$(<"$D/first")" alpha
	# the server answers this TAKE when the lease has run out (bounded: 30 s)
	run -0 jq-take -w 30 -m '*/a.txt' -o "$D/second" "$SERVER"
	assert_handle 1
	[[ $HANDLE != "$h1" ]]
	assert_equal "$(<"$D/second")" alpha
	# and the first worker's late result is still accepted: no result was stored yet
	run -0 jq-put "$SERVER" "$h1" "$D/first"
	run -4 jq-put "$SERVER" "$HANDLE" "$D/second"
	assert_equal "$(<"$D/in/a.txt.result")" alpha
}

@test "jq-put --touch renews a lease: the job stays taken past it; --touch of a finished job exits 4" {
	local start id json
	serve_ab
	run -0 jq-take --lease 3 -m '*/a.txt' -o "$D/first" "$SERVER"
	assert_handle 1
	id=$HANDLE
	# touch every 0.2 s for longer than the lease
	start=$SECONDS
	while ((SECONDS - start <= 5)); do
		run -0 jq-put --touch --lease 3 "$SERVER" "$id"
		sleep 0.2
	done
	json=$(jq-stat -j "$SERVER")
	assert_equal "$(json_field "$json" running)" 1
	assert_equal "$(json_field "$json" waiting)" 1
	# nobody else gets it
	run -5 jq-take -w 0 -m '*/a.txt' -o "$D/other" "$SERVER"
	assert_file_not_exist "$D/other"
	run -0 jq-put --touch "$SERVER" "$id"
	run -0 jq-put "$SERVER" "$id" "$D/first"
	assert_equal "$(<"$D/in/a.txt.result")" alpha
	# the job is done: a touch is refused
	run -4 jq-put --touch "$SERVER" "$id"
	# so is one for a job that waits (nobody runs it) or does not exist
	run -4 jq-put --touch "$SERVER" "$(old_handle 2 "$D/in/b.txt")"
	run -4 jq-put --touch "$SERVER" "99:${id#*:}"
}

@test "jq-put --retry: a failed job (jq-serve --retries 0) can be taken again; exit 4 if it has not failed" {
	serve_ab --retries 0 --linger 0
	run -0 jq-take -m '*/a.txt' -o "$D/first" "$SERVER"
	assert_handle 1
	run -0 jq-put --fail -m broken "$SERVER" "$HANDLE"
	# failed for good with --retries 0: nothing to take under this glob
	run -3 jq-take -w 0 -m '*/a.txt' -o "$D/x" "$SERVER"
	json=$(jq-stat -j "$SERVER")
	assert_equal "$(json_field "$json" failed)" 1
	# job 2 waits, it has not failed: refused
	run -4 jq-put --retry "$SERVER" 2
	run -0 jq-put --retry "$SERVER" 1
	json=$(jq-stat -j "$SERVER")
	assert_equal "$(json_field "$json" failed)" 0
	assert_equal "$(json_field "$json" waiting)" 2
	run -0 jq-take -w 0 -m '*/a.txt' -o "$D/again" "$SERVER"
	assert_handle 1
	assert_equal "$(<"$D/again")" alpha
	# a retried job is running, not failed: a second retry is refused (handle or bare id)
	run -4 jq-put --retry "$SERVER" "$HANDLE"
	run -4 jq-put --retry "$SERVER" 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/again"
	run -0 jq-take -w 0 -o "$D/b" "$SERVER"
	assert_handle 2
	run -0 jq-put "$SERVER" "$HANDLE" "$D/b"
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(<"$D/in/a.txt.result")" alpha
	assert_equal "$(<"$D/in/b.txt.result")" beta
}

@test "jq-run: commands that outlive the lease (--lease 2s) keep their jobs: one run per job" {
	local i
	make_files "$D/in" 3 txt
	start_server --lease 2s --linger 0 "$D"/in/*.txt
	# an idle fourth slot would take a job whose lease lapsed
	# shellcheck disable=SC2016
	run --separate-stderr timeout -k 5 120 jq-run --tmpdir "$TMPD" -j 4 "$SERVER" -- \
		sh -c 'echo "$JQ_JOB_ID" >>"$M/runs"; sleep 5; cat'
	assert_success
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(sort -n "$M/runs" | tr '\n' ' ')" "1 2 3 "
	for i in 1 2 3; do
		cmp "$D/in/file000$i.txt" "$D/in/file000$i.txt.result"
	done
}

@test "jq-run: the server is killed (-9) during a job and started again: jq-run reconnects and delivers" {
	local sock args pid i n f
	make_files "$D/in" 4 txt
	sock=$JQ_TMP/sock
	args=(-l "unix:$sock" --linger 0 "$D"/in/*.txt)
	start_server "${args[@]}"
	# every job waits for "go" (made after the restart); every run is counted
	# shellcheck disable=SC2016
	jq-run --tmpdir "$TMPD" -j 1 --reconnect 60s "$SERVER" -- sh -c \
		'echo "$JQ_JOB_ID" >>"$M/runs"; echo x >"$M/started.$JQ_JOB_ID"
		 while [ ! -e "$M/go" ]; do sleep 0.05; done; sleep 0.2; cat "$1"' sh '<in>' \
		>"$D/run.out" 2>"$D/run.err" 3>&- &
	JR_PID=$!
	JQ_PIDS+=("$JR_PID")
	wait_for_file "$M/started.1"
	# kill jq-serve itself (start_server runs it under timeout(1))
	pid=$(pgrep -P "$SERVER_PID" -x jq-serve)
	[[ -n $pid ]]
	kill -9 "$pid"
	wait_server_exit 30
	assert_equal "$status" 137
	start_server "${args[@]}"
	touch "$M/go"
	wait_pid "$JR_PID" 90
	assert_equal "$status" 0
	wait_server_exit 60
	assert_equal "$status" 0
	# every result is right, and there is one result file per job and nothing else
	for f in "$D"/in/*.txt; do
		cmp "$f" "$f.result"
	done
	n=$(find "$D/in" -name '*.result' | wc -l)
	assert_equal "$n" 4
	run find "$D/in" -name '.*'
	assert_output ''
	# job 1 ran on while the server was away and was delivered afterwards, so (with one slot)
	# it ran once; no job ran more than twice
	assert_equal "$(grep -cx 1 "$M/runs")" 1
	for i in 1 2 3 4; do
		n=$(grep -cx "$i" "$M/runs")
		((n >= 1 && n <= 2)) || fail "job $i ran $n times"
	done
	grep -q "reconnected to" "$D/run.err"
	assert_equal "$(ls -A "$TMPD")" ""
}

@test "jq-run: a streamed result computed while the server is away is spooled and delivered" {
	local sock args pid f
	make_files "$D/in" 2 txt
	sock=$JQ_TMP/sock
	args=(-l "unix:$sock" --linger 0 "$D"/in/*.txt)
	start_server "${args[@]}"
	# stdin to stdout: the result is streamed, or spooled while the server is away
	# shellcheck disable=SC2016
	jq-run --tmpdir "$TMPD" -j 1 "$SERVER" -- sh -c \
		'echo "$JQ_JOB_ID" >>"$M/runs"; echo x >"$M/started.$JQ_JOB_ID"
		 while [ ! -e "$M/go" ]; do sleep 0.05; done; tr a-z A-Z' \
		>"$D/run.out" 2>"$D/run.err" 3>&- &
	JR_PID=$!
	JQ_PIDS+=("$JR_PID")
	wait_for_file "$M/started.1"
	pid=$(pgrep -P "$SERVER_PID" -x jq-serve)
	[[ -n $pid ]]
	kill -9 "$pid"
	wait_server_exit 30
	start_server "${args[@]}"
	touch "$M/go"
	wait_pid "$JR_PID" 90
	assert_equal "$status" 0
	wait_server_exit 60
	assert_equal "$status" 0
	for f in "$D"/in/*.txt; do
		cmp <(tr a-z A-Z <"$f") "$f.result"
	done
	assert_equal "$(sort -n "$M/runs" | tr '\n' ' ')" "1 2 "
	grep -q "runs on" "$D/run.err"
	assert_equal "$(ls -A "$TMPD")" ""
}

@test "jq-run --reconnect 0: a lost server ends jq-run with exit 6 at once; bad values exit 2" {
	printf 'a' >"$D/in/a.txt"
	start_server "$D/in/a.txt"
	# shellcheck disable=SC2016
	jq-run --tmpdir "$TMPD" --reconnect 0 "$SERVER" -- sh -c \
		'echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; cat' \
		>"$D/run.out" 2>"$D/run.err" 3>&- &
	JR_PID=$!
	JQ_PIDS+=("$JR_PID")
	wait_for_file "$M/started"
	stop_server
	touch "$M/go"
	wait_pid "$JR_PID" 60
	assert_equal "$status" 6
	assert_equal "$(ls -A "$TMPD")" ""
	run -2 jq-run --reconnect x 127.0.0.1:1 -- cat
	assert_output --partial -- "--reconnect"
	run -2 jq-run --reconnect 400d 127.0.0.1:1 -- cat
}
