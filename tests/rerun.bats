#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr is set by bats' run --separate-stderr
# jq-serve reruns like make: an input whose result exists, is a regular file and is not older
# than the input (and of which no journal says otherwise) is left out of the run, in one line;
# --redo serves it anyway; a journal's word wins over the file rule.  Every mtime is set with
# touch -d (inputs in 2020, results in 2021 unless a test says otherwise): no test sleeps.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup sock
}

OLD=2020-01-01T00:00:00
RES=2021-01-01T00:00:00
NEWER=2022-01-01T00:00:00

# inputs NAME...: make $D/NAME for each, holding its name, with mtime $OLD
inputs() {
	local n
	for n in "$@"; do
		printf '%s\n' "$n" >"$D/$n"
		touch -d "$OLD" "$D/$n"
	done
}

# results FILE...: make each FILE an up-to-date result ("old result"), with mtime $RES
results() {
	local f
	for f in "$@"; do
		printf 'old result\n' >"$f"
		touch -d "$RES" "$f"
	done
}

# serve_all ARG...: serve ARG... on a UNIX socket, run jq-run -- cat until the server is
# done; the server must exit 0
serve_all() {
	start_server_unix "$@"
	run -0 timeout -k 5 60 jq-run "$SERVER" -- cat
	wait_server_exit 60
	assert_equal "$status" 0
}

# serve_none STATUS ARG...: jq-serve ARG... must exit STATUS without listening; its stderr
# is in $stderr
serve_none() {
	local want=$1
	shift
	rm -f "$D/addr"
	run --separate-stderr timeout -k 5 30 jq-serve --addr-file "$D/addr" \
		-l "unix:$JQ_TMP/none" "$@"
	if ((status != want)); then
		echo "jq-serve $*: exit $status, expected $want; stderr: $stderr" >&2
		return 1
	fi
	assert_file_not_exist "$D/addr"
}

# mtime FILE: FILE's modification time in ns
mtime() {
	stat -c %.9Y "$1"
}

@test "a finished run run again serves nothing: one line, exit 0, no listening, no journal" {
	inputs a.wav b.wav c.wav
	serve_all "$D"/*.wav
	cmp "$D/b.wav.result" "$D/b.wav"
	local before
	before=$(stat -c '%i %.9Y' "$D"/*.result)
	serve_none 0 "$D"/*.wav
	assert_equal "$stderr" "jq-serve: all 3 inputs already have results; --redo runs them again"
	# not one result rewritten, and no journal left behind
	assert_equal "$(stat -c '%i %.9Y' "$D"/*.result)" "$before"
	assert_file_not_exist "$JQ_STATE_DIR"
	# -q: the line too is silent (a cron job mails nothing)
	serve_none 0 -q "$D"/*.wav
	assert_equal "$stderr" ""
	# one input: the line says so in the singular
	serve_none 0 "$D/a.wav"
	assert_equal "$stderr" "jq-serve: the one input already has a result; --redo runs it again"
}

@test "an input made newer than its result runs again, alone, numbered 1" {
	inputs a.wav b.wav c.wav
	results "$D"/{a,b,c}.wav.result
	printf 'b, edited\n' >"$D/b.wav"
	touch -d "$NEWER" "$D/b.wav"
	start_server_unix -v "$D"/*.wav
	run -0 jq-stat --json "$SERVER"
	printf '%s\n' "$output" >"$D/stat.json"
	# skipped inputs are not jobs of this run
	json_file_check "$D/stat.json" 'j["jobs"]["total"] == 1' 'j["jobs"]["waiting"] == 1'
	run -0 timeout -k 5 60 jq-run "$SERVER" -- cat
	wait_server_exit 60
	assert_equal "$status" 0
	assert_equal "$(cat "$D/b.wav.result")" "b, edited"
	assert_equal "$(cat "$D/a.wav.result")" "old result"
	assert_equal "$(cat "$D/c.wav.result")" "old result"
	assert_equal "$(mtime "$D/a.wav.result")" "$(mtime "$D/c.wav.result")"
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 2 of 3 inputs already have results; --redo runs them again"
	assert_line "jq-serve: $D/a.wav: its result $D/a.wav.result is up to date; not served"
	assert_line --partial "job 1 $D/b.wav taken"
	assert_line --regexp '^jq-serve: 1 job: 1 done, 0 failed, in '
}

@test "a result older than its input is made again; one of the same time is not" {
	inputs a.wav b.wav
	results "$D/a.wav.result" "$D/b.wav.result"
	touch -d "2019-12-31T23:59:59" "$D/a.wav.result"
	# b's result has the input's very mtime, to the nanosecond: up to date
	touch -r "$D/b.wav" "$D/b.wav.result"
	serve_all "$D"/*.wav
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 1 of 2 inputs already has a result; --redo runs it again"
	assert_equal "$(cat "$D/a.wav.result")" "a.wav"
	assert_equal "$(cat "$D/b.wav.result")" "old result"
	# one nanosecond older is older
	python3 -c 'import os, sys; st = os.stat(sys.argv[1]); os.utime(sys.argv[2], ns=(st.st_atime_ns, st.st_mtime_ns - 1))' \
		"$D/b.wav" "$D/b.wav.result"
	rm -f "$JQ_TMP/sock"
	serve_all "$D/b.wav"
	assert_equal "$(cat "$D/b.wav.result")" "b.wav"
}

@test "--redo serves every input and replaces every result" {
	inputs a.wav b.wav c.wav
	results "$D"/{a,b,c}.wav.result
	serve_all --redo "$D"/*.wav
	local f
	for f in a b c; do
		assert_equal "$(cat "$D/$f.wav.result")" "$f.wav"
	done
	run cat "$SERVER_LOG"
	refute_output --partial "already"
	assert_line --regexp '^jq-serve: 3 jobs: 3 done, 0 failed, in '
}

@test "a symbolic link at the result name is not a result: served, the link replaced, its target kept" {
	inputs a.wav
	results "$D/target"
	ln -s target "$D/a.wav.result"
	serve_all "$D/a.wav"
	[[ ! -L $D/a.wav.result ]]
	assert_equal "$(cat "$D/a.wav.result")" "a.wav"
	assert_equal "$(cat "$D/target")" "old result"
	run cat "$SERVER_LOG"
	refute_output --partial "already"
}

@test "a directory at the result name is refused as before, with --redo or without" {
	inputs a.wav
	mkdir "$D/a.wav.result"
	touch -d "$RES" "$D/a.wav.result"
	serve_refused 2 "$D/a.wav"
	[[ $stderr == *"a.wav.result (for $D/a.wav) is a directory"* ]]
	serve_refused 2 --redo "$D/a.wav"
	[[ -d $D/a.wav.result ]]
}

@test "-o DIR and -r TEMPLATE: the result they name is the one looked at" {
	inputs a.wav b.wav c.wav
	mkdir "$D/out"
	results "$D/out/a.out" "$D/out/c.wav.result" "$D/b.wav.result"
	# -o out -r '{stem}.out': a's result is up to date, b's and c's do not exist under that name
	serve_all -o "$D/out" -r '{stem}.out' "$D"/*.wav
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 1 of 3 inputs already has a result; --redo runs it again"
	assert_equal "$(cat "$D/out/a.out")" "old result"
	assert_equal "$(cat "$D/out/b.out")" "b.wav"
	assert_equal "$(cat "$D/out/c.out")" "c.wav"
	# -o out alone: c's result there is up to date
	rm -f "$JQ_TMP/sock"
	serve_all -o "$D/out" "$D"/*.wav
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 1 of 3 inputs already has a result; --redo runs it again"
	assert_equal "$(cat "$D/out/c.wav.result")" "old result"
	assert_equal "$(cat "$D/out/a.wav.result")" "a.wav"
	# and -o out -r '{stem}.out' again: every result is there now
	serve_none 0 -o "$D/out" -r '{stem}.out' "$D"/*.wav
	assert_equal "$stderr" "jq-serve: all 3 inputs already have results; --redo runs them again"
}

# fail_b: jq-run's command for the journal tests: the job of b.wav fails, the others echo
fail_b() {
	timeout -k 5 60 jq-run "$SERVER" -- sh -c 'if grep -q "^b"; then exit 3; fi; cat'
}

@test "a job the journal records as failed stays failed although its result looks up to date" {
	inputs a.wav b.wav
	start_server_unix "$D"/*.wav
	run -1 fail_b
	wait_server_exit 60
	assert_equal "$status" 1
	# something else leaves an up-to-date b.wav.result: the journal still says failed
	results "$D/b.wav.result"
	rm -f "$JQ_TMP/sock"
	run --separate-stderr timeout -k 5 30 jq-serve -l "unix:$JQ_TMP/sock" --linger 0 "$D"/*.wav
	assert_equal "$status" 1
	[[ $stderr != *already* ]]
	[[ $stderr == *"2 jobs: 1 done, 1 failed"* ]]
	[[ $stderr == *"--retry-failed runs the failed jobs again"* ]]
	# --retry-failed runs it again, result or not
	rm -f "$JQ_TMP/sock"
	serve_all --retry-failed "$D"/*.wav
	assert_equal "$(cat "$D/b.wav.result")" "b.wav"
	run cat "$SERVER_LOG"
	assert_line --regexp '^jq-serve: 2 jobs: 2 done, 0 failed, in .*\(1 of them finished in an earlier run\)$'
}

@test "--fresh forgets the journal, not the results: the failed job runs, the done one is left out" {
	inputs a.wav b.wav
	start_server_unix "$D"/*.wav
	run -1 fail_b
	wait_server_exit 60
	assert_equal "$status" 1
	rm -f "$JQ_TMP/sock"
	serve_all --fresh "$D"/*.wav
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 1 of 2 inputs already has a result; --redo runs it again"
	assert_line --regexp '^jq-serve: 1 job: 1 done, 0 failed, in '
	assert_equal "$(cat "$D/b.wav.result")" "b.wav"
}

@test "a skipping run killed with -9 resumes from its journal: records found by name, nothing left out" {
	inputs a.wav b.wav c.wav
	results "$D/a.wav.result"
	start_server_unix "$D"/*.wav
	# job 1 of this run is b.wav (a.wav is left out); its result is stored and journaled
	run -0 jq-take -o "$D/job" "$SERVER"
	local handle=$output
	[[ $handle == 1:* ]]
	assert_equal "$(cat "$D/job")" "b.wav"
	run -0 jq-put "$SERVER" "$handle" "$D/job"
	local pid
	pid=$(pgrep -P "$SERVER_PID" -x jq-serve)
	kill -KILL "$pid"
	wait_server_exit 30
	rm -f "$JQ_TMP/sock"
	serve_all -v "$D"/*.wav
	run cat "$SERVER_LOG"
	# resuming, the journal's rule holds: what it does not record as finished runs (a result
	# without a record may be one the crash caught before its record)
	refute_output --partial "already has a result"
	assert_line --partial ": 1 done, 0 failed, 2 to run"
	assert_line --regexp '^jq-serve: 3 jobs: 3 done, 0 failed, in .*\(1 of them finished in an earlier run\)$'
	refute_output --partial "damaged"
	assert_equal "$(cat "$D/a.wav.result")" "a.wav"
	assert_equal "$(cat "$D/b.wav.result")" "b.wav"
	assert_equal "$(cat "$D/c.wav.result")" "c.wav"
}

# cron_serve DIR SOCK LOG: what a crontab line runs: jq-serve on DIR/*.wav, in cron's bare
# environment (PATH and HOME only; the journal and token under HOME), its stderr to LOG
cron_serve() {
	env -i PATH="/usr/bin:/bin:$BUILDDIR" HOME="$BATS_TEST_TMPDIR/home" \
		${ASAN_OPTIONS:+"ASAN_OPTIONS=$ASAN_OPTIONS"} \
		${UBSAN_OPTIONS:+"UBSAN_OPTIONS=$UBSAN_OPTIONS"} \
		${JQ_VALGRIND_LOG:+"JQ_VALGRIND_LOG=$JQ_VALGRIND_LOG"} \
		sh -c 'cd "$1" && exec jq-serve -l "unix:$2" --addr-file "$2.addr" --linger 0 *.wav' \
		cron "$1" "$2" 2>"$3"
}

# cron_round N: one cron run over $D/drop with a jq-run -- cat worker (in the same bare
# environment); its stderr in $D/cron.N
cron_round() {
	local sock=$JQ_TMP/cron$1
	jq_bg cron_serve "$D/drop" "$sock" "$D/cron.$1"
	local pid=$!
	if wait_for_file "$sock.addr" 30; then
		env -i PATH="/usr/bin:/bin:$BUILDDIR" HOME="$BATS_TEST_TMPDIR/home" \
			timeout -k 5 60 jq-run "unix:$sock" -- cat
	fi
	wait_pid "$pid" 60
}

@test "cron over a growing directory: each run serves only the new files" {
	mkdir -p "$D/drop" "$BATS_TEST_TMPDIR/home"
	local n
	for n in a b; do
		printf '%s\n' "$n" >"$D/drop/$n.wav"
		touch -d "$OLD" "$D/drop/$n.wav"
	done
	export -f cron_serve
	export BUILDDIR BATS_TEST_TMPDIR
	cron_round 1 >/dev/null
	assert_equal "$status" 0
	run cat "$D/cron.1"
	assert_line --regexp '^jq-serve: 2 jobs: 2 done, 0 failed, in '
	# a new file arrives (copied with its old mtime, as cp -p or rsync -t would)
	printf 'c\n' >"$D/drop/c.wav"
	touch -d "$OLD" "$D/drop/c.wav"
	cron_round 2 >/dev/null
	assert_equal "$status" 0
	run cat "$D/cron.2"
	assert_line "jq-serve: 2 of 3 inputs already have results; --redo runs them again"
	assert_line --regexp '^jq-serve: 1 job: 1 done, 0 failed, in '
	assert_equal "$(cat "$D/drop/c.wav.result")" "c"
	# nothing new: the next run exits 0 at once, without listening
	run -0 cron_serve "$D/drop" "$JQ_TMP/cron3" "$D/cron.3"
	assert_file_not_exist "$JQ_TMP/cron3.addr"
	assert_equal "$(cat "$D/cron.3")" "jq-serve: all 3 inputs already have results; --redo runs them again"
	# the journal of each run was removed with its success
	run -0 find "$BATS_TEST_TMPDIR/home" -name 'journal-*'
	assert_output ""
	# and the token the first one made is the one every later run used
	assert_file_exist "$BATS_TEST_TMPDIR/home/.config/jq/token"
}

@test "a run that ended with a failure, run again, still leaves out the inputs it left out (no rerun of done work)" {
	local before
	inputs a.wav b.wav c.wav
	results "$D/a.wav.result" "$D/c.wav.result"
	before=$(mtime "$D/a.wav.result")
	start_server_unix "$D"/*.wav
	run -1 fail_b
	wait_server_exit 60
	assert_equal "$status" 1
	run cat "$SERVER_LOG"
	assert_line "jq-serve: 2 of 3 inputs already have results; --redo runs them again"
	# the same command again: the journal of the ended run is resumed, and a.wav and
	# c.wav, which it never served, are still left out, not served again
	rm -f "$JQ_TMP/sock"
	run --separate-stderr timeout -k 5 30 jq-serve -l "unix:$JQ_TMP/sock" --linger 0 "$D"/*.wav
	assert_equal "$status" 1
	[[ $stderr == *"2 of 3 inputs already have results"* ]]
	[[ $stderr == *"1 job: 0 done, 1 failed"* ]]
	assert_equal "$(mtime "$D/a.wav.result")" "$before"
	assert_equal "$(cat "$D/a.wav.result")" "old result"
	# and --retry-failed runs only the failed one
	rm -f "$JQ_TMP/sock"
	serve_all --retry-failed "$D"/*.wav
	assert_equal "$(cat "$D/b.wav.result")" "b.wav"
	assert_equal "$(cat "$D/a.wav.result")" "old result"
	assert_equal "$(mtime "$D/a.wav.result")" "$before"
}
