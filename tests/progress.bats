#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# Where a run stands: jq-serve's status line on a terminal (under script(1)'s pseudo-terminal) and
# not elsewhere, the one-line summaries of jq-serve and jq-run, jq-stat's rate and ETA (text and
# --json) and jq-stat --watch.  Timing values are only checked to be present and well-formed.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup root sock worker
}

# slow_mixed N: N input files in $D/in, every third one named bad-*, which the command of
# run_mixed fails
slow_mixed() {
	local i name
	for ((i = 1; i <= $1; i++)); do
		name=ok-$i
		((i % 3 != 0)) || name=bad-$i
		printf 'job %d\n' "$i" >"$D/in/$name.txt"
	done
}

# run_mixed [OPTION]...: jq-run on $SERVER with 2 slots: a job sleeps 0.3 s, then fails (exit 3)
# when its name begins with bad-, else copies its input
run_mixed() {
	timeout -k 5 120 jq-run --tmpdir "$TMPD" -j 2 "$@" "$SERVER" -- \
		sh -c 'sleep 0.3; case "$1" in *bad-*) exit 3 ;; esac; cat "$2"' sh '<name>' '<in>'
}

@test "on a terminal, jq-serve keeps a status line with the total, the rate and an ETA" {
	local cmd i
	slow_mixed 12
	cmd=$(printf '%q ' env TERM=xterm jq-serve --addr-file "$JQ_TMP/addr" \
		-l "unix:$JQ_TMP/sock" "$D"/in/*.txt)
	timeout -k 5 120 script -qefc "$cmd" "$D/tty" </dev/null >/dev/null 2>&1 3>&- &
	JQ_PIDS+=("$!")
	export SERVER_PID=$! # wait_server_exit waits for script, which waits for jq-serve
	wait_for_file "$JQ_TMP/addr"
	SERVER=unix:$JQ_TMP/sock
	run -1 run_mixed
	wait_server_exit 60
	assert_equal "$status" 1
	run cat -v "$D/tty"
	# drawn in place: return, erase the line, the counts of 12 jobs
	assert_output --regexp '\^M\^\[\[K[0-9]+/12 \([0-9]+%\), [0-9]+ running, [0-9]+ failed'
	assert_output --regexp '[0-9]+/12 \([0-9]+%\), [0-9]+ running, [0-9]+ failed, [0-9.]+ jobs/s, ETA ([0-9]+[dhm])?[0-9]+[hms]'
	# the summary takes its place at the end
	assert_output --regexp '\^\[\[Kjq-serve: 12 jobs: 8 done, 4 failed, in [0-9]+\.[0-9] s'
	# no log line shares a row with the status line: each starts at the line's start
	for i in "${lines[@]}"; do
		[[ $i != *'jq-serve: '* || $i == *'^[[Kjq-serve: '* || $i == 'jq-serve: '* ]]
	done
}

@test "with stderr a file jq-serve logs plain lines, no status line, and ends with its summary" {
	slow_mixed 6
	start_server_unix "$D"/in/*.txt
	run -1 run_mixed
	assert_line --regexp '^jq-run: 6 attempts run: 4 done, 2 failed, in [0-9]+\.[0-9] s$'
	# the summary is jq-run's last line
	assert_regex "${lines[-1]}" '^jq-run: 6 attempts run:'
	wait_server_exit 60
	assert_equal "$status" 1
	run cat "$SERVER_LOG"
	# it says where it listens first, as a person starting it wants to know
	assert_regex "${lines[0]}" "^jq-serve: 6 jobs, listening on unix:$JQ_TMP/sock\$"
	assert_line --regexp '^jq-serve: 6 jobs: 4 done, 2 failed, in [0-9]+\.[0-9] s$'
	refute_output --partial $'\r'
	refute_output --partial $'\e'
	# the summary replaces the old end lines
	refute_output --partial 'jobs finished'
	refute_output --partial '2 of 6 jobs failed'
}

@test "jq-serve -q prints no summary; a resumed run counts its earlier results apart" {
	slow_mixed 3
	start_server_unix -q "$D"/in/*.txt
	run -1 run_mixed
	wait_server_exit 60
	run cat "$SERVER_LOG"
	assert_output ''
	# the same list again, with the failed jobs retried: two were done before
	rm -f "$JQ_TMP/sock"
	start_server_unix --retry-failed "$D"/in/*.txt
	run -0 jq-stat --json "$SERVER"
	printf '%s\n' "$output" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["progress"]["resumed"] == 2' 'j["progress"]["rate"] is None' \
		'j["progress"]["eta_s"] is None'
	run -1 run_mixed
	assert_line --regexp '^jq-run: 1 attempt run: 0 done, 1 failed, in [0-9]+\.[0-9] s$'
	wait_server_exit 60
	run cat "$SERVER_LOG"
	assert_line --regexp '^jq-serve: 3 jobs: 2 done, 1 failed, in [0-9]+\.[0-9] s \(2 of them finished in an earlier run\)$'
	# a run that ends with failures says what it resumed and how to go on
	assert_line 'jq-serve: resumed from the journal of an earlier run; --retry-failed runs the failed jobs again; --fresh forgets the earlier runs and starts over'
}

@test "jq-run's summary counts the jobs of every slot, also with --max-jobs" {
	make_files "$D/in" 9
	start_server_unix "$D"/in/*.dat
	run -0 timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 3 --max-jobs 5 "$SERVER" -- cat
	assert_line --regexp '^jq-run: 5 attempts run: 5 done, 0 failed, in [0-9]+\.[0-9] s$'
	run -0 timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 4 "$SERVER" -- cat
	assert_line --regexp '^jq-run: 4 attempts run: 4 done, 0 failed, in [0-9]+\.[0-9] s$'
	wait_server_exit 60
	assert_equal "$status" 0
	run cat "$SERVER_LOG"
	assert_line --regexp '^jq-serve: 9 jobs: 9 done, 0 failed, in [0-9]+\.[0-9] s$'
}

@test "jq-stat shows the rate and the ETA once a result came, in text and in --json" {
	make_files "$D/in" 4
	start_server_unix "$D"/in/*.dat
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +0/4 \(0%\), 0 running, 0 failed$'
	assert_line --regexp '^elapsed +[0-9]+\.[0-9] s$'
	jq-stat --json "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["progress"]["rate"] is None' 'j["progress"]["eta_s"] is None' \
		'j["progress"]["resumed"] == 0' 'isinstance(j["progress"]["elapsed_ms"], int)' \
		'j["jobs"] == {"total": 4, "waiting": 4, "running": 0, "done": 0, "failed": 0, "blocked": 0}'
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	sleep 0.1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	run -0 jq-stat "$SERVER"
	assert_line --regexp '^progress +1/4 \(25%\), 0 running, 0 failed, [0-9.]+ jobs/s, ETA ([0-9]+[dhm])?[0-9]+[hms]$'
	jq-stat --json "$SERVER" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["progress"]["rate"] > 0' \
		'isinstance(j["progress"]["eta_s"], int) and j["progress"]["eta_s"] >= 0' \
		'j["progress"]["elapsed_ms"] >= 100' 'j["progress"]["resumed"] == 0' \
		'list(j) == ["schema", "server", "version", "protocol", "jobs", "queues", "progress", "workers", "failed"]'
	stop_server
}

@test "jq-stat --watch refreshes until the run ends, then exits 0 by itself" {
	slow_mixed 6
	start_server_unix "$D"/in/*.txt
	jq_bg sh -c 'exec jq-stat --watch 0.2 "$1" >"$2"' sh "$SERVER" "$D/watch"
	local watch=$!
	run -1 run_mixed
	wait_pid "$watch" 30
	assert_equal "$status" 0
	run cat "$D/watch"
	# one block per interval on a non-terminal, the last one at the end of the run
	assert [ "$(grep -c '^server ' "$D/watch")" -ge 2 ]
	assert_regex "$(grep '^progress ' "$D/watch" | tail -n 1)" \
		'^progress +6/6 \(100%\), 0 running, 2 failed, [0-9.]+ jobs/s, finished$'
	refute_output --partial $'\e'
	wait_server_exit 60
	# --json --watch: a JSON object per line, the last one finished
	start_server_unix --linger 30s "$D"/in/*.txt
	run -0 timeout 30 jq-stat --json --watch "$SERVER"
	assert_equal "${#lines[@]}" 1
	printf '%s\n' "$output" >"$D/stat.json"
	json_file_check "$D/stat.json" 'j["jobs"]["done"] + j["jobs"]["failed"] == j["jobs"]["total"]'
	stop_server
}

@test "jq-stat --watch takes an interval, or the SERVER after it; a bad interval is a usage error" {
	run -2 jq-stat --watch 50ms unix:/nonexistent/sock
	assert_output --partial '--watch'
	run -2 jq-stat --watch=2 unix:/nonexistent/a unix:/nonexistent/b
	run -6 jq-stat --watch unix:/nonexistent/sock
	run -6 jq-stat --watch 2 unix:/nonexistent/sock
}

@test "on a pseudo-terminal jq-stat --watch redraws in place" {
	local cmd
	make_files "$D/in" 2
	start_server_unix "$D"/in/*.dat
	cmd=$(printf '%q ' jq-stat --watch 0.2 "$SERVER")
	timeout -k 5 60 script -qefc "$cmd" "$D/tty" </dev/null >/dev/null 2>&1 3>&- &
	local pid=$!
	JQ_PIDS+=("$pid")
	sleep 0.5
	run -0 timeout -k 5 60 jq-run --tmpdir "$TMPD" "$SERVER" -- cat
	wait_pid "$pid" 30
	assert_equal "$status" 0
	run cat -v "$D/tty"
	assert_output --partial '^[[H^[[2J'
	assert_output --regexp 'progress +2/2 \(100%\), 0 running, 0 failed, [0-9.]+ jobs/s, finished'
	wait_server_exit 60
}

@test "jq-run's summary does not count as done a result the server had already" {
	printf 'data\n' >"$D/in/a"
	start_server_unix --lease 1s "$D/in/a"
	# a first worker takes the job and lets its lease run out
	run -0 jq-take -o "$D/first" "$SERVER"
	assert_handle 1
	sleep 1.5
	# jq-run takes it again and waits; meanwhile the first worker's late result is stored
	# shellcheck disable=SC2016
	jq-run --tmpdir "$TMPD" "$SERVER" -- sh -c 'echo x >"$M/started"; while [ ! -e "$M/go" ]; do sleep 0.05; done; cat' \
		>"$D/run.out" 2>"$D/run.err" 3>&- &
	local jr=$!
	JQ_PIDS+=("$jr")
	wait_for_file "$M/started"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/first"
	touch "$M/go"
	wait_pid "$jr" 60
	assert_equal "$status" 0
	run cat "$D/run.err"
	assert_line --regexp '^jq-run: 1 attempt run: 0 done, 0 failed, 1 result not kept \(the server had one already\), in [0-9]+\.[0-9] s$'
}

@test "jq-run's summary counts apart the results the server could not store (ERR IO) and exits 7" {
	printf 'a\n' >"$D/in/a"
	printf 'b\n' >"$D/in/b"
	start_server_unix -o "$D/out" "$D/in/a" "$D/in/b"
	# the result directory is replaced: every result is refused with ERR IO
	mv "$D/out" "$D/out.old"
	mkdir "$D/out"
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 1 "$SERVER" -- cat
	assert_equal "$status" 7
	run cat <<<"$stderr"
	assert_line --regexp '^jq-run: ([0-9]+) attempts run: 0 done, 0 failed, [0-9]+ results the server could not store, in [0-9]+\.[0-9] s$'
	refute_output --partial 'not kept'
	wait_server_exit 60
}

@test "a failed run names its failed jobs at the end: status and last message line, ten at most" {
	local i
	for ((i = 1; i <= 12; i++)); do printf 'job %d\n' "$i" >"$D/in/bad-$(printf %02d "$i").txt"; done
	start_server --fresh "$D"/in/*.txt
	run --separate-stderr timeout -k 5 60 jq-run --tmpdir "$TMPD" -j 2 "$SERVER" -- \
		sh -c 'echo "first line" >&2; echo "cannot read $1" >&2; exit 3' sh '<name>'
	assert_equal "$status" 1
	wait_server_exit 30
	assert_equal "$status" 1
	assert_equal "$(grep -c '^jq-serve: failed: .*bad-[0-9]*\.txt (exit:3): cannot read .*bad-[0-9]*\.txt$' "$SERVER_LOG")" 10
	grep -q "^jq-serve: failed: 2 more (jq-serve --joblog FILE keeps every attempt)$" "$SERVER_LOG"
	# a rerun ends at once and names them again, from the journal
	run --separate-stderr timeout -k 5 60 jq-serve -l 127.0.0.1:0 "$D"/in/*.txt
	assert_equal "$status" 1
	assert_equal "$(grep -c 'jq-serve: failed: .*(exit:3): cannot read' <<<"$stderr")" 10
}
