#!/usr/bin/env bats
# shellcheck disable=SC2154 # $stderr and $stderr_lines are set by bats' run --separate-stderr
# jq-serve: the job list (operands, --files-from, -0, --skip-missing), where
# results go (-o, -r), what it refuses at start, and how and with what status
# it ends.

bats_require_minimum_version 1.5.0

setup() {
	load test_helper/common
	jq_setup
}

# answer_all: take every job from $SERVER and put back "result:" + its data,
# until jq-take stops (no work, or the server has gone).
answer_all() {
	local id
	while id=$(jq-take -o "$BATS_TEST_TMPDIR/job" "$SERVER"); do
		{ printf 'result:'; cat "$BATS_TEST_TMPDIR/job"; } >"$BATS_TEST_TMPDIR/res"
		jq-put "$SERVER" "$id" "$BATS_TEST_TMPDIR/res" || return 1
	done
}

# expect_result INPUT RESULT: RESULT holds what answer_all sends for INPUT
expect_result() {
	assert_file_exist "$2"
	cmp "$2" <(printf 'result:'; cat "$1")
}

@test "one job per file in operand order, results beside the inputs, exit 0" {
	make_files "$D/in" 3
	start_server "$D/in/file0001.dat" "$D/in/file0003.dat" "$D/in/file0002.dat"
	# ids 1..N follow the operand order, names come back with -n
	for want in file0001 file0003 file0002; do
		run -0 jq-take -n -o "$D/job" "$SERVER"
		assert_equal "${#lines[@]}" 2
		[[ ${lines[1]} == *"$want.dat" ]]
		cmp "$D/job" "$D/in/$want.dat"
		{ printf 'result:'; cat "$D/job"; } >"$D/res"
		run -0 jq-put "$SERVER" "${lines[0]}" "$D/res"
	done
	wait_server_exit
	assert_equal "$status" 0
	for i in 1 2 3; do
		expect_result "$D/in/file000$i.dat" "$D/in/file000$i.dat.result"
	done
	# nothing else was written beside the inputs (no temporary files left)
	run ls -A "$D/in"
	assert_equal "${#lines[@]}" 6
}

@test "the server exits after the last result, with status 0" {
	make_files "$D/in" 5
	start_server "$D"/in/*.dat
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	for f in "$D"/in/*.dat; do
		expect_result "$f" "$f.result"
	done
}

@test "the server exits 1 when at least one job failed" {
	make_files "$D/in" 3
	start_server "$D"/in/*.dat
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put --fail -m 'broken' "$SERVER" "$HANDLE"
	answer_all
	wait_server_exit
	assert_equal "$status" 1
	assert_file_not_exist "$D/in/file0001.dat.result"
	expect_result "$D/in/file0002.dat" "$D/in/file0002.dat.result"
	expect_result "$D/in/file0003.dat" "$D/in/file0003.dat.result"
}

@test "-o DIR puts the results under DIR and nothing beside the inputs" {
	make_files "$D/in" 2
	mkdir "$D/out"
	start_server -o "$D/out" "$D"/in/*.dat
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/in/file0001.dat" "$D/out/file0001.dat.result"
	expect_result "$D/in/file0002.dat" "$D/out/file0002.dat.result"
	run ls -A "$D/in"
	assert_output "$(printf '%s\n' file0001.dat file0002.dat)"
	run ls -A "$D/out"
	assert_output "$(printf '%s\n' file0001.dat.result file0002.dat.result)"
}

@test "-r '{stem}.mp3' names the result after the input's stem" {
	printf 'A\n' >"$D/A.wav"
	printf 'B\n' >"$D/B.x.wav"
	printf 'C\n' >"$D/noext"
	start_server -r '{stem}.mp3' "$D/A.wav" "$D/B.x.wav" "$D/noext"
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/A.wav" "$D/A.mp3"
	expect_result "$D/B.x.wav" "$D/B.x.mp3"
	expect_result "$D/noext" "$D/noext.mp3"
	assert_file_not_exist "$D/A.wav.result"
}

@test "-r expands {name}, {ext} and literal {{ }} and works with -o" {
	printf 'A\n' >"$D/A.wav"
	mkdir "$D/out"
	start_server -o "$D/out" -r '{{{name}}}-{ext}.txt' "$D/A.wav"
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/A.wav" "$D/out/{A.wav}-wav.txt"
}

@test "-r with jq-run's bracket form (<stem>.mp3) is a usage error naming it; nothing is written" {
	printf 'A\n' >"$D/A.wav"
	local t
	for t in '<stem>.mp3' '{stem}<ext>' '<NAME>.out'; do
		run -2 --separate-stderr jq-serve -r "$t" "$D/A.wav"
		[[ $stderr == *"is jq-run's bracket form"* ]]
		[[ $stderr == *'{name}, {stem} and {ext}'* ]]
	done
	assert_equal "$(ls -A "$D")" "A.wav"
}

@test "an existing result file older than its input is replaced" {
	printf 'A\n' >"$D/A.wav"
	printf 'stale result, to be replaced\n' >"$D/A.wav.result"
	# older than the input: not up to date (a newer one would be left alone; see rerun.bats)
	touch -d 2020-01-01T00:00:00 "$D/A.wav.result"
	start_server "$D/A.wav"
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/A.wav" "$D/A.wav.result"
}

@test "two jobs with the same result path are refused at start (exit 2)" {
	printf 'A\n' >"$D/A.wav"
	printf 'A2\n' >"$D/A.flac"
	printf 'B\n' >"$D/B.wav"
	mkdir "$D/d1" "$D/d2" "$D/out"
	printf '1\n' >"$D/d1/x.wav"
	printf '2\n' >"$D/d2/x.wav"
	serve_refused 2 -r same.out "$D/A.wav" "$D/B.wav"
	serve_refused 2 -r '{stem}.mp3' "$D/A.wav" "$D/A.flac"
	serve_refused 2 -o "$D/out" "$D/d1/x.wav" "$D/d2/x.wav"
	serve_refused 2 "$D/A.wav" "$D/A.wav"
	# without -o the two x.wav results are in different directories: fine
	start_server "$D/d1/x.wav" "$D/d2/x.wav"
	stop_server
}

@test "a result path equal to an input path is refused at start (exit 2)" {
	printf 'A\n' >"$D/A.wav"
	printf 'B\n' >"$D/A.wav.result"
	serve_refused 2 -r '{name}' "$D/A.wav"
	# A.wav's result would overwrite the input A.wav.result (jq-serve * over old results):
	# the message says what to do
	serve_refused 2 "$D/A.wav" "$D/A.wav.result"
	assert_regex "$stderr" "the result of $D/A\.wav, $D/A\.wav\.result, would overwrite the input $D/A\.wav\.result \([^)]*\); serve only the inputs, e\.g\. \*\.wav, or put the results elsewhere with -o DIR"
	assert_equal "$(cat "$D/A.wav.result")" B
}

@test "bad result templates are usage errors (exit 2)" {
	printf 'A\n' >"$D/A.wav"
	for t in '' 'a/b' '{bogus}' '{stem' 'x}' '{}' '/abs'; do
		serve_refused 2 -r "$t" "$D/A.wav"
	done
	# a template that expands to nothing for this file
	printf 'N\n' >"$D/noext"
	serve_refused 2 -r '{ext}' "$D/noext"
}

@test "a missing file is refused at start, by name, with exit 8" {
	printf 'A\n' >"$D/A.wav"
	serve_refused 8 "$D/A.wav" "$D/missing.wav"
	[[ $stderr == *"$D/missing.wav"* ]]
	[[ $stderr == *'No such file or directory'* ]]
	# every bad file is named, not only the first
	serve_refused 8 "$D/gone1" "$D/A.wav" "$D/gone2"
	[[ $stderr == *"$D/gone1"* && $stderr == *"$D/gone2"* ]]
	# a directory is a job (trees.bats), but not one that cannot be packed: a FIFO in it
	mkdir "$D/dir"
	mkfifo "$D/dir/pipe"
	serve_refused 8 "$D/A.wav" "$D/dir"
	[[ $stderr == *"$D/dir: cannot pack the tree: entry 'pipe': a FIFO"* ]]
}

@test "--skip-missing warns about missing files and serves the others" {
	printf 'A\n' >"$D/A.wav"
	printf 'B\n' >"$D/B.wav"
	start_server --skip-missing "$D/A.wav" "$D/missing.wav" "$D/B.wav"
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"total": ?2[,}]'
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/A.wav" "$D/A.wav.result"
	expect_result "$D/B.wav" "$D/B.wav.result"
	assert_file_not_exist "$D/missing.wav.result"
	grep -q "missing.wav" "$SERVER_LOG"
}

# odd_names DIR: create files with awkward names in DIR and write their names,
# NUL-separated, to DIR.list0 (and newline-free ones, one per line, to DIR.list)
odd_names() {
	local dir=$1 n i=0
	local names=('with space' $'new\nline' '-dash' '--double' 'ünïcödé ☃' $'tab\there'
		'back\slash' '%25percent' 'quote"s' "apo'strophe" ' lead' 'trail ')
	mkdir -p "$dir"
	: >"$dir.list0"
	: >"$dir.list"
	for n in "${names[@]}"; do
		i=$((i + 1))
		printf 'data %d\n' "$i" >"$dir/$n"
		printf '%s\0' "$n" >>"$dir.list0"
		[[ $n == *$'\n'* ]] || printf '%s\n' "$n" >>"$dir.list"
	done
}

# check_odd_results DIR LIST0: every file named in LIST0 got its result beside it
check_odd_results() {
	local n count=0
	while IFS= read -r -d '' n; do
		expect_result "$1/$n" "$1/$n.result"
		count=$((count + 1))
	done <"$2"
	((count > 0))
}

@test "--files-from -0 serves names with spaces, newlines, leading dashes and unicode" {
	odd_names "$D/odd"
	cd "$D/odd"
	start_server -0 --files-from "$D/odd.list0"
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"total": ?12[,}]'
	# the names come back intact from jq-take -n -z
	jq-take -n -z -o "$D/job" "$SERVER" >"$D/rec"
	readarray -d '' rec <"$D/rec"
	[[ ${rec[0]} =~ ^1:[0-9a-f]{32}$ ]]
	[[ ${rec[1]} == *'with space' ]]
	cmp "$D/job" "$D/odd/with space"
	{ printf 'result:'; cat "$D/job"; } >"$D/res"
	jq-put "$SERVER" "${rec[0]}" "$D/res"
	jq-take -n -z -o "$D/job" "$SERVER" >"$D/rec"
	readarray -d '' rec <"$D/rec"
	[[ ${rec[0]} =~ ^2:[0-9a-f]{32}$ ]]
	[[ ${rec[1]} == *$'new\nline' ]]
	cmp "$D/job" "$D/odd/"$'new\nline'
	{ printf 'result:'; cat "$D/job"; } >"$D/res"
	jq-put "$SERVER" "${rec[0]}" "$D/res"
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	check_odd_results "$D/odd" "$D/odd.list0"
}

@test "--files-from - reads the names from standard input" {
	odd_names "$D/odd"
	cd "$D/odd"
	jq_tmpdir
	timeout -k 10 "$JQ_WATCHDOG" jq-serve -l 127.0.0.1:0 --addr-file "$JQ_TMP/addr" \
		--null --files-from - <"$D/odd.list0" >"$JQ_TMP/server.log" 2>&1 3>&- &
	SERVER_PID=$!
	JQ_PIDS+=("$SERVER_PID")
	wait_for_file "$JQ_TMP/addr"
	SERVER=$(head -n 1 "$JQ_TMP/addr")
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	check_odd_results "$D/odd" "$D/odd.list0"
}

@test "--files-from without -0 takes one name per line, after the operands" {
	odd_names "$D/odd"
	printf 'first\n' >"$D/first"
	cd "$D/odd"
	start_server --files-from "$D/odd.list" "$D/first"
	# operands come first
	run -0 jq-take -n -o "$D/job" "$SERVER"
	[[ ${lines[0]} =~ ^1:[0-9a-f]{32}$ ]]
	[[ ${lines[1]} == *first ]]
	{ printf 'result:'; cat "$D/job"; } >"$D/res"
	jq-put "$SERVER" "${lines[0]}" "$D/res"
	run -0 jq-stat --json "$SERVER"
	assert_output --regexp '"total": ?12[,}]'
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/first" "$D/first.result"
	tr '\n' '\0' <"$D/odd.list" >"$D/odd.list.0"
	check_odd_results "$D/odd" "$D/odd.list.0"
}

@test "a leading-dash operand after -- is a file, not an option" {
	cd "$D"
	printf 'dash\n' >-v
	start_server -- -v
	answer_all
	wait_server_exit
	assert_equal "$status" 0
	expect_result "$D/-v" "$D/-v.result"
}

@test "an empty job list exits 0 at once: it never listens and leaves no journal" {
	# --files-from naming nothing, and --skip-missing with only missing files (an empty
	# directory's unexpanded glob, as a cron line gives it)
	: >"$D/none.list"
	for args in "-T $D/none.list" "--skip-missing $D/empty/*.wav"; do
		rm -f "$D/addr"
		# shellcheck disable=SC2086 # the words of $args
		JQ_STATE_DIR=$D/st run --separate-stderr timeout -k 5 30 \
			jq-serve --addr-file "$D/addr" -l 127.0.0.1:0 $args
		assert_equal "$status" 0
		assert_file_not_exist "$D/addr"
		refute [ -e "$D/st" ]
	done
}

@test "-l twice listens on TCP and on a UNIX socket at once" {
	make_files "$D/in" 2
	jq_tmpdir
	start_server -l 127.0.0.1:0 -l "unix:$JQ_TMP/s" "$D"/in/*.dat
	run -0 printf '%s\n' "$SERVER_ADDRS"
	assert_equal "${#lines[@]}" 2
	assert_line --regexp '^127\.0\.0\.1:[0-9]+$'
	assert_line "unix:$JQ_TMP/s"
	run -0 jq-take -o "$D/job" "$(sed -n 1p <<<"$SERVER_ADDRS")"
	assert_handle 1
	h1=$HANDLE
	run -0 jq-take -o "$D/job" "$(sed -n 2p <<<"$SERVER_ADDRS")"
	assert_handle 2
	run -0 jq-put "unix:$JQ_TMP/s" "$h1" "$D/job"
	run -0 jq-put "$(sed -n 1p <<<"$SERVER_ADDRS")" "$HANDLE" "$D/job"
	wait_server_exit
	assert_equal "$status" 0
	# the UNIX socket is gone once the server has finished
	assert_file_not_exist "$JQ_TMP/s"
}

@test ":PORT whose 127.0.0.1:PORT another program holds does not start (exit 8); no journal is left" {
	make_files "$D/in" 1
	make_files "$D/other" 1 txt
	start_server "$D/other/file0001.txt"
	port=${SERVER##*:}
	rm -f "$D/addr"
	JQ_STATE_DIR=$D/st run --separate-stderr timeout -k 5 30 \
		jq-serve --addr-file "$D/addr" -l ":$port" "$D/in/file0001.dat"
	assert_equal "$status" 8
	# 0.0.0.0:PORT is the one taken (the IPv6 socket is IPv6 only)
	assert_equal "$stderr" "jq-serve: cannot listen: 0.0.0.0:$port: address in use (another program listens there)"
	assert_file_not_exist "$D/addr"
	# the failed start left no journal (nor a state directory it made)
	run -0 find "$D" -name 'journal-*'
	assert_output ''
	# the other server is untouched: its job is the one localhost:PORT hands out
	run -0 jq-take -o "$D/job" "localhost:$port"
	cmp "$D/job" "$D/other/file0001.txt"
}

@test "a restart that cannot listen keeps the journal of the interrupted run" {
	make_files "$D/in" 2
	start_server "$D"/in/*.dat
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	run -0 jq-put "$SERVER" "$HANDLE" "$D/job"
	kill -TERM "$SERVER_PID"
	wait_server_exit
	assert_equal "$status" 9
	journal=$(find "$JQ_STATE_DIR" -name 'journal-*' -size +0)
	[[ -n $journal ]]
	make_files "$D/other" 1 txt
	start_server "$D/other/file0001.txt"	# holds a port
	run --separate-stderr timeout -k 5 30 jq-serve -l "$SERVER" "$D"/in/*.dat
	assert_equal "$status" 8
	[[ $stderr == *"$SERVER: address in use"* ]]
	assert_file_not_empty "$journal"
}

@test "SIGTERM stops the server with exit 9 and removes its UNIX socket" {
	make_files "$D/in" 2
	start_server_unix "$D"/in/*.dat
	sock=${SERVER#unix:}
	assert_socket_exist "$sock"
	run -0 jq-take -o "$D/job" "$SERVER"
	kill -TERM "$SERVER_PID"
	wait_server_exit
	assert_equal "$status" 9
	assert_file_not_exist "$sock"
	assert_file_not_exist "$D/in/file0001.dat.result"
}

@test "--max-result refuses a larger result and keeps the job open" {
	printf 'A\n' >"$D/A.wav"
	start_server --max-result 4 "$D/A.wav"
	run -0 jq-take -o "$D/job" "$SERVER"
	assert_handle 1
	printf '12345' >"$D/big"
	run --separate-stderr -7 jq-put "$SERVER" "$HANDLE" "$D/big"
	assert_file_not_exist "$D/A.wav.result"
	printf '1234' >"$D/ok"
	run -0 jq-put "$SERVER" "$HANDLE" "$D/ok"
	wait_server_exit
	assert_equal "$status" 0
	cmp "$D/ok" "$D/A.wav.result"
}
